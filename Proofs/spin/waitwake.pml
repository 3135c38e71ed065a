/*
 * waitwake.pml: the wait/wake protocol of one NetMP socket's receive buffer, checked by SPIN.
 *
 * It follows Sources/NetMPSockets (Socket.swift, Socket-io.swift, SocketWaiter.swift,
 * SocketBuffer.swift, WakeList.swift, AtomicSocketState.swift), the local domain's data path
 * (Sources/NetMPLocal/LocalDomain-dataPath.swift: the peer appends straight into this socket's
 * receive buffer) and the owner's port (Sources/NetMPRuntime/ProtocolThread.swift: one FIFO
 * port, messages run in order, a message is released after it ran). Each proctype and inline
 * names the functions it stands for.
 *
 * What is shared and how, as in the code:
 *   - state bits (cantReceiveMore, noFileReference): atomic, set by either side;
 *   - the error slot: atomic, set by the owner, taken (cleared) by readers;
 *   - the buffer: a lock, the byte count and the waiter list (under the lock), waiterCount
 *     (written under the lock, read without it by wake());
 *   - each SocketWaiter: its phase (claimed/published/armed), its outcome, and its reference
 *     count (ARC: the waiting thread, the message in the port, the buffer's list, a WakeList);
 *     the waiter holds a strong reference on the socket until its last holder lets go;
 *   - the socket's reference count: every reader's handle, the closer's, the shutdown caller's,
 *     the peer's link (dropped by detach), the peer's local variable during one send, each
 *     checkstate message, and each live waiter. The socket is freed when it reaches zero.
 *
 * Switches (-D):
 *   NR=2|3          user threads blocked in read (reader 0 blocking, reader 1 async, reader 2
 *                   blocking)
 *   WITH_CLOSE, WITH_SHUTDOWN, WITH_ERROR  which of close(2), shutdown(.read) and an error
 *                   from the network may happen (each may or may not; default: close)
 *   NB=1|2          bytes the peer writes
 *   INLINE_PORT     the port is synchronous (SynchronousPort: the local domain's default): the
 *                   predicate message, checkstate and detach run on the caller's thread
 *   CANCEL          blocking readers may time out and async readers' tasks may be cancelled
 *                   (safety runs only: under weak fairness an always-enabled timeout would end
 *                   every wait, hiding a lost wake-up from the liveness properties)
 *   BUG_WAITER_NO_REF  seeded bug (c): a waiter does not hold the socket (a message that
 *                   outlives its sender then touches a freed socket)
 *   NO_EPILOGUE     leave out the end-state checks (to see what the LTL properties alone find)
 *   BUG_CHECK_BEFORE_REGISTER  seeded bug (a): the owner checks the condition before it
 *                   registers the waiter, outside the lock
 *   BUG_DROP_WAKE   seeded bug (b): the appender claims satisfied waiters under the lock and
 *                   drops its wake list instead of publishing it after unlocking
 */

#ifndef NR
#define NR 2
#endif
#define NW NR           /* waiter objects: one per reader (see Reader) */
#ifndef NB
#define NB 1            /* bytes the peer writes */
#endif

#define CLAIMED 1
#define PUBLISHED 2
#define ARMED 4

#define SATISFIED 0
#define ENDED 1         /* timedOut or cancelled */

mtype = { PRED, CHECKSTATE, DETACH };

chan port = [8] of { mtype, byte };   /* ProtocolThread's FIFO port */
chan detachReply = [1] of { bit };    /* the reply of the detach call (owner.call) */

bit cantrcv;            /* SocketState.cantReceiveMore */
bit nofdref;            /* SocketState.noFileReference */
bit err;                /* Socket.errorSlot != 0 */
bit linked = 1;         /* the peer's control block links to this socket */

byte lockHolder;        /* SocketBuffer.lock: 0 when free, else holder's _pid + 1 */
byte count;             /* SocketBuffer.chain.count / byteCount (written under the lock) */
byte waiters;           /* SocketBuffer.waiters as a bit set of waiter objects (under lock) */
byte waiterCount;       /* SocketBuffer.waiterCount */

byte phase[NW];         /* SocketWaiter.phase */
bit outcome[NW];        /* SocketWaiter.outcome */
byte wrefs[NW];         /* strong references to each SocketWaiter */
bit resumed[NW];        /* the async waiter's continuation was resumed */
bit inScope[NR];        /* an async reader is inside withTaskCancellationHandler */
bit taskCancelled[NR];
byte current[NR];       /* the waiter an async reader's cancellation handler refers to */

#if !defined(WITH_CLOSE) && !defined(WITH_SHUTDOWN) && !defined(WITH_ERROR)
#define WITH_CLOSE
#endif
#ifdef WITH_CLOSE
#define CLOSE_REF 1
#else
#define CLOSE_REF 0
#endif
#ifdef WITH_SHUTDOWN
#define SHUT_REF 1
#else
#define SHUT_REF 0
#endif
#ifdef WITH_ERROR
#define ERROR_REF 1
#else
#define ERROR_REF 0
#endif
/* readers' handles, the peer's link, and the closer's, shutdown caller's, network's */
byte refs = NR + 1 + CLOSE_REF + SHUT_REF + ERROR_REF;
bit freed;              /* the socket was deallocated */

bit pending[NR];        /* reader r sent its predicate message and has not seen the reply */
byte done;              /* readers whose read returned */
bit detached;           /* proto.detach ran on the owner */

#define COND (nofdref || err || cantrcv || count > 0)   /* Socket.isSatisfied(.readable(1)) */

#include "waiter.pml"

/* --- the processes ----------------------------------------------------------------------- */

/*
 * A user thread in NetSocket.read (blocking, async == 0) or NetSocket.read async
 * (async == 1): Socket.attemptStreamReceive, then Socket.wait (SocketWaiter.forThreadWait,
 * owner.post, SocketWaiter.waitOnThread, SocketWaiter.returnToThread) or Socket.waitAsync
 * (SocketWaiter.waitAsync), until it reads a byte, end-of-file, an error or a closed socket.
 */
proctype Reader(byte r; bit async) {
    byte w, wl, k, before;
    bit ok, nowCant, nowNofd, timedOut;

again:
    /* attemptStreamReceive: `let now = state.value`, then the buffer under its lock */
    atomic { nowCant = cantrcv; nowNofd = nofdref };
    atomic {
        lock();
        if
        :: count > 0 ->
            /* removeAndCopyOutLocked: take the byte, collect waiters, unlock */
            count--;
            collectSatisfiedLocked();
            ok = 1
        :: else -> ok = 0
        fi;
        unlock()
    };
    if
    :: ok -> ok = 0; publishAll(); goto finish      /* publish, then copy out */
    :: else -> skip
    fi;
    /* takeError(), then the state read before the lock */
    atomic {
        if
        :: err -> err = 0; goto finish
        :: else -> skip
        fi
    };
    if
    :: nowNofd || nowCant -> goto finish
    :: else -> skip
    fi;

    /* forThreadWait / SocketWaiter.init: the thread's spare when nobody else holds it. The
     * code makes a new waiter otherwise; the model waits for the old one to be let go (one
     * waiter object per reader keeps the state space small). The waiter takes a reference on
     * the socket (its maker holds one, so the socket is live). */
    w = r;
    atomic {
        wrefs[w] == 0 ->
        assert(!freed && refs > 0);
        phase[w] = 0; resumed[w] = 0; outcome[w] = SATISFIED; wrefs[w] = 1;
#ifndef BUG_WAITER_NO_REF
        refs++
#else
        skip
#endif
    };
    if
    :: !async ->
        /* Socket.wait: post, then waitOnThread */
        pending[r] = 1;
        post(w);
        timedOut = 0;
        /* a reader may stay blocked when no byte comes (a valid end): Epilogue checks it */
endBlocked:
        if
        :: (phase[w] & PUBLISHED) != 0 -> skip
#ifdef CANCEL
        :: timedOut == 0 ->
            /* the deadline passed: cancel(.timedOut), or wait for the publish under way */
            cancel(w, ok);
            (phase[w] & PUBLISHED) != 0
#endif
        fi
    :: else ->
        /* waitAsync: withTaskCancellationHandler { withUnsafeContinuation { arm; deliver } } */
        atomic { inScope[r] = 1; current[r] = w; ok = taskCancelled[r] };
        if
        :: ok -> cancel(w, ok)           /* cancelled before the handler: onCancel runs first */
        :: else -> skip
        fi;
        atomic { before = phase[w]; phase[w] = phase[w] | ARMED };
        if
        :: (before & PUBLISHED) != 0 -> resumed[w] = 1
        :: else -> pending[r] = 1; post(w)
        fi;
endSuspended:
        resumed[w] == 1;                  /* the task runs again */
        inScope[r] = 0
    fi;
    assert((phase[w] & PUBLISHED) != 0);
    ok = outcome[w];
    pending[r] = 0;
    waiterRelease(w);                     /* returnToThread / the task lets go */
    if
    :: ok == ENDED -> goto finish         /* .wouldBlock or .cancelled */
    :: else -> goto again
    fi;

finish:
    pending[r] = 0;
    done++;
    socketRelease()                       /* NetSocket.read returns: the handle goes */
}

#ifdef CANCEL
/* Task.cancel() on an async reader: onCancel runs cancel(.cancelled) on the waiter in scope
 * (its closure holds the waiter). */
proctype Canceller(byte r) {
    byte w, wl, k, before;
    bit ok, act;
    atomic {
        taskCancelled[r] = 1;
        act = inScope[r];
        if
        :: act -> w = current[r]; wrefs[w]++
        :: else -> skip
        fi
    };
    if
    :: act -> cancel(w, ok); waiterRelease(w)
    :: else -> skip
    fi
}
#endif

/*
 * The peer's user thread writing NB bytes: LocalDomain.sendStream (block(socket).peer is a
 * strong reference for the call; lockForAppend; appendIntoTailRoom; finishAppendLocked). UDP's
 * delivery on the owner thread has the same shape (append under the lock, collect, unlock,
 * publish).
 */
proctype Appender() {
    byte n, wl, k, before;
    bit ok;
    do
    :: n < NB ->
        atomic {
            if
            :: linked -> assert(!freed); refs++        /* let peer = block(socket).peer */
            :: else -> goto stop                       /* notConnected / brokenPipe */
            fi
        };
        if
        :: cantrcv || nofdref -> socketRelease(); goto stop   /* brokenPipe */
        :: else -> skip
        fi;
        atomic {
            lock();                                    /* lockForAppend */
            if
            :: cantrcv || nofdref -> unlock(); socketRelease(); goto stop
            :: else -> skip
            fi;
            count++;
            n++;
            collectSatisfiedLocked();                  /* finishAppendLocked */
            unlock()
        };
#ifdef BUG_DROP_WAKE
        dropAll();
#else
        publishAll();
#endif
        socketRelease()
    :: else -> break
    od;
stop:
    skip
}

/* close(2): Socket.close (closeStarted once; noFileReference; wakeAll; detach as a request
 * waited for; flush), then NetSocket's handle goes. May not happen. */
proctype Closer() {
    byte wl, k, before;
    bit ok;
    if
    :: true ->
        nofdref = 1;
        wakeAll();
#ifdef INLINE_PORT
        detached = 1; linked = 0; socketRelease();
#else
        port!DETACH, 0;
        detachReply?_;
#endif
        flush()
    :: true -> skip
    fi;
    socketRelease()
}

/* shutdown(.read): Socket.shutdown (checkOpen; cantReceiveMore; flush; wake; the checkstate
 * message, which holds the socket). May not happen. */
proctype Shutter() {
    byte wl, k, before;
    bit ok;
    if
    :: !nofdref ->
        cantrcv = 1;
        flush();
        wake();
#ifdef INLINE_PORT
        wake();                          /* LocalDomain.shutdownReceive */
#else
        atomic { assert(!freed); refs++; port!CHECKSTATE, 0 }
#endif
    :: true -> skip
    fi;
    socketRelease()
}

/* An error from the network while the control block is attached (UDP's ICMP error:
 * setError, receiveBuffer.wake()). May not happen. Its reference is the control block's. */
proctype NetworkError() {
    byte wl, k, before;
    bit ok;
    if
    :: true ->
        atomic {
            if
            :: !detached -> err = 1
            :: else -> goto out
            fi
        };
        wake()
    :: true -> skip
    fi;
out:
    socketRelease()
}

#ifndef INLINE_PORT
/* The owner protocol thread: ProtocolThread.runLoop / drainPort running each message, then
 * releasing it. */
proctype Owner() {
    byte w, wl, k, before;
    bit ok;
    mtype m;
end:
    do
    :: port?m, w ->
        if
        :: m == PRED -> evaluateAndRegister(w); waiterRelease(w)
        :: m == CHECKSTATE -> wake(); socketRelease()       /* proto.shutdownReceive */
        :: m == DETACH ->
            /* proto.detach: unlinks the peer (its link reference goes) */
            atomic { detached = 1; linked = 0 };
            socketRelease();
            detachReply!0
        fi
    od
}
#endif

/* At the end (nothing can move): no waiter is left on the list, and the socket was freed
 * exactly when it was closed (its last reference, the peer's link, goes at detach). */
proctype Epilogue() {
    byte r;
    timeout ->
    /* no lost wake-up: a reader still waiting has a false condition and is on the list */
    do
    :: r < NR ->
        assert(!pending[r] || (!COND && (waiters & (1 << r)) != 0));
        r++
    :: else -> break
    od;
    assert(done == NR || !(nofdref || cantrcv));
    assert(done < NR || (waiters == 0 && waiterCount == 0));
    assert(done < NR || freed == detached)
}

init {
    atomic {
#ifndef INLINE_PORT
        run Owner();
#endif
        run Reader(0, 0);
        run Reader(1, 1);
#if NR > 2
        run Reader(2, 0);
#endif
#ifdef CANCEL
        run Canceller(1);
#endif
        run Appender();
#ifdef WITH_CLOSE
        run Closer();
#endif
#ifdef WITH_SHUTDOWN
        run Shutter();
#endif
#ifdef WITH_ERROR
        run NetworkError();
#endif
#ifndef NO_EPILOGUE
        run Epilogue()
#else
        skip
#endif
    }
}

/* No lost wake-up: a waiter whose condition holds is answered unless the condition goes
 * away (another reader took the byte). */
ltl nolost {
    [] ((pending[0] && COND) -> <> (!pending[0] || !COND)) &&
    [] ((pending[1] && COND) -> <> (!pending[1] || !COND))
#if NR > 2
    && [] ((pending[2] && COND) -> <> (!pending[2] || !COND))
#endif
}

/* Every blocked call ends after close or shutdown. */
ltl closeends { [] ((nofdref || cantrcv) -> <> (done == NR)) }
