/*
 * listen.pml: a listen socket's queues with accept racing the children's aborts, checked by
 * SPIN.
 *
 * It follows Sources/NetMPSockets/ListenQueue.swift (one short lock over the complete queue,
 * its length and each child's queue state), Socket-io.swift (attemptAccept, finishAccept),
 * Socket.swift (close: the queued, unaccepted children are aborted; wait for .acceptable),
 * Sources/NetMPLocal/LocalDomain-connections.swift (connect: a child is made, linked and put
 * on the complete queue, then the listener's receive buffer is woken) and
 * Sources/NetMPRuntime/ProtocolThread.swift (each child's requests run on its owner thread, in
 * order). The waiter machinery is waiter.pml's, on the listener's receive buffer.
 *
 * A child's references: the complete queue's entry (which moves to the acceptor that takes it
 * or to close's list of children to abort) and its protocol control block's (dropped when the
 * block goes: detach after an accepted child is closed, abort, or the child's own reset while
 * queued, which TCP will do with ListenQueue.remove).
 *
 * Switches (-D): NA=1|2 acceptors; NC=1|2 connecting peers; BACKLOG; WITH_RESET (a queued
 * child may be reset by its peer and removed from the queue); INLINE_PORT as in waitwake.pml;
 * NO_EPILOGUE; BUG_ABORT_UNLOCKED (seeded bug: close picks the queued children without the
 * queue's lock, so accept can take one that is then aborted).
 */

#ifndef NA
#define NA 2
#endif
#ifndef NC
#define NC 2
#endif
#ifndef BACKLOG
#define BACKLOG 1
#endif
#define NR NA
#define NW NA

#define CLAIMED 1
#define PUBLISHED 2
#define ARMED 4
#define SATISFIED 0
#define ENDED 1

/* a child's place (ListenQueue's queues and SocketState.inCompleteQueue) */
#define NONE 0
#define QUEUED 1        /* on the complete queue */
#define ACCEPTED 2      /* taken by accept */
#define CLOSING 3       /* taken by the listener's close, to be aborted */
#define REMOVED 4       /* removed by its own reset */
#define REFUSED 5       /* the queue was closed or full: never queued */

mtype = { PRED, DETACH, ABORT, RESET };

chan port = [4] of { mtype, byte };           /* the listener's owner */
chan detachReply = [1] of { bit };
chan childPort[NC] = [2] of { mtype };        /* each child's owner */
chan childReply[NC] = [1] of { bit };

/* the listener */
bit nofdref;
bit err;
bit bound = 1;                  /* named in the namespace (a reference) */
byte lockHolder;
byte waiters;
byte waiterCount;
byte phase[NW];
bit outcome[NW];
byte wrefs[NW];
bit resumed[NW];
byte refs = NA + 2;             /* acceptors' handles, the closer's, the namespace's */
bit freed;
bit pending[NA];
byte done;
bit detached;

/* ListenQueue */
byte qlock;
bit qclosed;
byte completeCount;

/* the children */
byte childState[NC];
byte childRefs[NC];
bit childFreed[NC];
bit childBlock[NC];             /* its control block is attached */
bit childNofd[NC];

/* Socket.isSatisfied(.acceptable) for the listener */
#define COND (nofdref || err || completeCount > 0)

#include "waiter.pml"

inline childRelease(c) {
    atomic {
        assert(childRefs[c] > 0 && !childFreed[c]);
        childRefs[c]--;
        if
        :: childRefs[c] == 0 -> childFreed[c] = 1
        :: else -> skip
        fi
    }
}

/* proto.abort / proto.detach on the child's owner: the control block goes with its reference. */
inline dropBlock(c) {
    assert(!childFreed[c] && childBlock[c]);
    childBlock[c] = 0;
    childRelease(c)
}

/* NetSocket.accept: checkOpen, attemptAccept (ListenQueue.takeComplete), finishAccept, or
 * Socket.wait(.acceptable) and again. The acceptor then closes the child it got. */
proctype Acceptor(byte r) {
    byte w, wl, k, before, c;
    bit ok;
again:
    if
    :: nofdref -> goto finish                       /* checkOpen: badDescriptor */
    :: else -> skip
    fi;
    atomic {
        qlock == 0 -> qlock = _pid + 1;
        assert(!freed);
        c = 0;
        do
        :: c < NC && childState[c] == QUEUED ->
            childState[c] = ACCEPTED;               /* clear(.inCompleteQueue) */
            completeCount--;
            ok = 1;
            break
        :: c < NC && childState[c] != QUEUED -> c++
        :: c == NC -> ok = 0; break
        od;
        qlock = 0
    };
    if
    :: ok ->
        /* finishAccept: the child's accept request on its owner; then the acceptor owns the
         * child (the queue's reference) and, later, closes it: detach on its owner. */
        assert(!childFreed[c] && !childNofd[c]);
        childNofd[c] = 1;
        childPort[c]!DETACH;
        childReply[c]?_;
        childRelease(c);
        goto finish
    :: else -> skip
    fi;
    atomic {
        if
        :: err -> err = 0; goto finish
        :: else -> skip
        fi
    };
    /* Socket.wait(for: .acceptable, on: receiveBuffer) */
    w = r;
    atomic {
        wrefs[w] == 0 ->
        assert(!freed && refs > 0);
        phase[w] = 0; resumed[w] = 0; outcome[w] = SATISFIED; wrefs[w] = 1;
        refs++
    };
    pending[r] = 1;
    post(w);
endBlocked:
    (phase[w] & PUBLISHED) != 0;
    pending[r] = 0;
    ok = outcome[w];
    waiterRelease(w);
    goto again;
finish:
    pending[r] = 0;
    done++;
    socketRelease()
}

/* A peer's connect: LocalDomain.connect (the listener found by name holds a reference for the
 * call; the child made, linked, then ListenQueue.addComplete; refused when closed or full),
 * then listener.receiveBuffer.wake(). */
proctype Connector(byte c) {
    byte wl, k, before;
    bit ok;
    atomic {
        if
        :: bound && !nofdref -> assert(!freed); refs++
        :: else -> childState[c] = REFUSED; childFreed[c] = 1; goto out
        fi
    };
    atomic { childRefs[c] = 2; childBlock[c] = 1 };  /* the queue entry and the control block */
    atomic {
        qlock == 0 -> qlock = _pid + 1;
        if
        :: qclosed || completeCount >= BACKLOG ->
            /* refused: child.state.set(.noFileReference); the child goes */
            childState[c] = REFUSED; childNofd[c] = 1; childBlock[c] = 0; childRefs[c] = 0; childFreed[c] = 1;
            ok = 0
        :: else -> childState[c] = QUEUED; completeCount++; ok = 1
        fi;
        qlock = 0
    };
    if
    :: ok -> wake()
    :: else -> skip
    fi;
    socketRelease();
    if
    :: ok -> childPort[c]!RESET        /* the child's owner may later see a reset */
    :: else -> skip
    fi;
out:
    skip
}

/* Each child's owner thread: its requests in order. */
proctype ChildOwner(byte c) {
    mtype m;
end:
    do
    :: childPort[c]?m ->
        if
        :: m == DETACH ->
            assert(childState[c] == ACCEPTED);
            dropBlock(c);
            childReply[c]!0
        :: m == ABORT ->
            assert(childState[c] == CLOSING);   /* never an accepted child */
            dropBlock(c);
            childReply[c]!0
        :: m == RESET ->
#ifdef WITH_RESET
            /* TCP's reset of a child: ListenQueue.remove, then abort if it was still queued;
             * an accepted child is disconnected instead (nothing to free here). */
            if
            :: true ->
                atomic {
                    qlock == 0 -> qlock = _pid + 1;
                    if
                    :: childState[c] == QUEUED ->
                        childState[c] = REMOVED; completeCount--;
                        assert(!childFreed[c]);
                        childNofd[c] = 1;
                        childBlock[c] = 0;
                        childRefs[c] = childRefs[c] - 2;   /* the queue's entry and the block */
                        if
                        :: childRefs[c] == 0 -> childFreed[c] = 1
                        :: else -> skip
                        fi
                    :: else -> skip
                    fi;
                    qlock = 0
                }
            :: true -> skip
            fi
#else
            skip
#endif
        fi
    od
}

/* close(2) on the listener: Socket.close (noFileReference; wakeAll; ListenQueue.close; each
 * child: noFileReference, abort on its owner, wakeAll; detach), then the handle goes. */
proctype Closer() {
    byte wl, k, before, c, picked;
    bit ok;
    if
    :: true ->
        nofdref = 1;
        wakeAll();
#ifdef BUG_ABORT_UNLOCKED
        /* seeded bug: the queued children are picked without the queue's lock, then taken */
        c = 0;
        do
        :: c < NC ->
            if
            :: childState[c] == QUEUED -> picked = picked | (1 << c)
            :: else -> skip
            fi;
            c++
        :: else -> c = 0; break
        od;
        c = 0;
        do
        :: c < NC ->
            if
            :: (picked & (1 << c)) != 0 -> childState[c] = CLOSING
            :: else -> skip
            fi;
            c++
        :: else -> c = 0; break
        od;
#endif
        atomic {
            qlock == 0 -> qlock = _pid + 1;
            qclosed = 1;
            c = 0;
            do
            :: c < NC ->
                if
                :: childState[c] == QUEUED -> childState[c] = CLOSING
                :: else -> skip
                fi;
                c++
            :: else -> c = 0; break
            od;
            completeCount = 0;
            qlock = 0
        };
        do
        :: c < NC ->
            if
            :: childState[c] == CLOSING ->
                assert(!childFreed[c]);
                childNofd[c] = 1;
                childPort[c]!ABORT;
                childReply[c]?_;
                childRelease(c)                  /* close's list of children goes */
            :: else -> skip
            fi;
            c++
        :: else -> break
        od;
#ifdef INLINE_PORT
        atomic { detached = 1; bound = 0 };
        socketRelease()
#else
        port!DETACH, 0;
        detachReply?_
#endif
    :: true -> skip
    fi;
    socketRelease()
}

#ifndef INLINE_PORT
proctype Owner() {
    byte w, wl, k, before;
    bit ok;
    mtype m;
end:
    do
    :: port?m, w ->
        if
        :: m == PRED -> evaluateAndRegister(w); waiterRelease(w)
        :: m == DETACH ->
            atomic { detached = 1; bound = 0 };   /* the name goes from the namespace */
            socketRelease();
            detachReply!0
        fi
    od
}
#endif

proctype Epilogue() {
    byte r, c;
    timeout ->
    do
    :: r < NA ->
        assert(!pending[r] || (!COND && (waiters & (1 << r)) != 0));
        r++
    :: else -> break
    od;
    assert(done == NA || !nofdref);
    do
    :: c < NC ->
        /* every child is either still queued (nobody accepted, no close) or gone */
        assert(childState[c] == QUEUED || (childFreed[c] && !childBlock[c]));
        assert(childState[c] != QUEUED || !nofdref);
        c++
    :: else -> break
    od;
    assert(done < NA || freed == detached)
}

init {
    atomic {
#ifndef INLINE_PORT
        run Owner();
#endif
        run Acceptor(0);
#if NA > 1
        run Acceptor(1);
#endif
        run Connector(0);
        run ChildOwner(0);
#if NC > 1
        run Connector(1);
        run ChildOwner(1);
#endif
        run Closer();
#ifndef NO_EPILOGUE
        run Epilogue()
#else
        skip
#endif
    }
}

ltl nolost {
    [] ((pending[0] && COND) -> <> (!pending[0] || !COND))
#if NA > 1
    && [] ((pending[1] && COND) -> <> (!pending[1] || !COND))
#endif
}

ltl closeends { [] (nofdref -> <> (done == NA)) }
