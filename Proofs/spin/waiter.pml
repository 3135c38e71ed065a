/*
 * waiter.pml: the shared part of the models (included by waitwake.pml and listen.pml): a
 * socket's reference count, its buffer's lock and waiter list, and SocketWaiter's phases.
 * The including model declares the globals and defines COND (Socket.isSatisfied for the
 * condition its waiters wait for).
 */

/* --- the socket's reference count ---------------------------------------------------------- */

inline socketRelease() {
    atomic {
        assert(refs > 0 && !freed);
        refs--;
        if
        :: refs == 0 -> freed = 1     /* Socket.deinit */
        :: else -> skip
        fi
    }
}

/* A SocketWaiter's holder lets go; the last one releases the waiter's socket reference. */
inline waiterRelease(w) {
    atomic {
        assert(wrefs[w] > 0);
        wrefs[w]--;
        if
        :: wrefs[w] == 0 -> socketRelease()
        :: else -> skip
        fi
    }
}

/* --- SocketBuffer.lock ------------------------------------------------------------------- */

inline lock() {
    atomic { lockHolder == 0 -> lockHolder = _pid + 1 };
    assert(!freed)                      /* every buffer access is to a live socket */
}

inline unlock() {
    assert(lockHolder == _pid + 1);
    lockHolder = 0
}

/* --- SocketWaiter ------------------------------------------------------------------------ */

/* SocketWaiter.claim(): the compare-exchange loop; only one caller ever gets true. */
inline claim(w, ok) {
    atomic {
        assert(wrefs[w] > 0);
        if
        :: (phase[w] & CLAIMED) == 0 -> phase[w] = phase[w] | CLAIMED; ok = 1
        :: else -> ok = 0
        fi
    }
}

/* SocketWaiter.publish(_:): outcome, then `published` (an atomic or); resume the
 * continuation if the task had armed it; unpark the thread (the blocking wait polls
 * `published`, so the parker's permit is not modelled). Call after dropping the lock. */
inline publish(w, o) {
    atomic {
        assert(wrefs[w] > 0 && (phase[w] & CLAIMED) != 0 && (phase[w] & PUBLISHED) == 0);
        outcome[w] = o;
        before = phase[w];
        phase[w] = phase[w] | PUBLISHED
    };
    if
    :: (before & ARMED) != 0 -> resumed[w] = 1
    :: else -> skip
    fi
}

/* SocketBuffer.registerLocked / unregisterLocked (the list holds a reference). */
inline registerLocked(w) {
    waiters = waiters | (1 << w);
    waiterCount++;
    wrefs[w]++
}

/* unregisterLocked of a waiter whose list reference moves to the caller's WakeList. */
inline unlinkLocked(w) {
    waiters = waiters & ~(1 << w);
    waiterCount--
}

inline unregisterLocked(w) {
    if
    :: (waiters & (1 << w)) != 0 -> unlinkLocked(w); waiterRelease(w)
    :: else -> skip
    fi
}

/* SocketBuffer.collectSatisfiedLocked(into:): drops claimed waiters, claims satisfied ones
 * and moves them to the wake list `wl`. */
inline collectSatisfiedLocked() {
    k = 0;
    atomic {
    do
    :: k < NW ->
        if
        :: (waiters & (1 << k)) != 0 ->
            if
            :: (phase[k] & CLAIMED) != 0 -> unlinkLocked(k); waiterRelease(k)
            :: else ->
                if
                :: COND ->
                    claim(k, ok);
                    if
                    :: ok -> unlinkLocked(k); wl = wl | (1 << k)
                    :: else -> skip
                    fi
                :: else -> skip
                fi
            fi
        :: else -> skip
        fi;
        k++
    :: else -> k = 0; break
    od
    }
}

/* WakeList.publishAll(), then the list goes (its references with it). */
inline publishAll() {
    atomic {
        k = 0;
        do
        :: k < NW ->
            if
            :: (wl & (1 << k)) != 0 -> publish(k, SATISFIED); waiterRelease(k)
            :: else -> skip
            fi;
            k++
        :: else -> k = 0; break
        od;
        wl = 0; before = 0
    }
}

/* Seeded bug (b): the wake list is dropped, not published. */
inline dropAll() {
    atomic {
    k = 0;
    do
    :: k < NW ->
        if
        :: (wl & (1 << k)) != 0 -> waiterRelease(k)
        :: else -> skip
        fi;
        k++
    :: else -> k = 0; break
    od;
    wl = 0
    }
}

/* SocketBuffer.wake(): cheap when nobody waits (waiterCount read without the lock). */
inline wake() {
    if
    :: waiterCount > 0 ->
        atomic { lock(); collectSatisfiedLocked(); unlock() };
        publishAll()
    :: else -> skip
    fi
}

/* SocketBuffer.wakeAll(): every registered waiter ends (close). */
inline wakeAll() {
    atomic {
    lock();
    k = 0;
    do
    :: k < NW ->
        if
        :: (waiters & (1 << k)) != 0 ->
            claim(k, ok);
            unlinkLocked(k);
            if
            :: ok -> wl = wl | (1 << k)
            :: else -> waiterRelease(k)
            fi
        :: else -> skip
        fi;
        k++
    :: else -> k = 0; break
    od;
    assert(waiterCount == 0);
    unlock()
    };
    publishAll()
}

/* SocketBuffer.flush() */
inline flush() {
    atomic { lock(); count = 0; unlock() }
}

/* SocketWaiter.handle() -> evaluateAndRegister(): the predicate message on the owner. */
inline evaluateAndRegister(w) {
#ifdef BUG_CHECK_BEFORE_REGISTER
    /* (a) the condition is checked first, outside the lock, then the waiter registered. */
    if
    :: COND ->
        claim(w, ok);
        if
        :: ok -> wrefs[w]++; wl = wl | (1 << w); publishAll()
        :: else -> skip
        fi
    :: else ->
        lock();
        if
        :: (phase[w] & CLAIMED) == 0 -> registerLocked(w)
        :: else -> skip
        fi;
        unlock()
    fi
#else
    /* two steps under the lock: registration, then the check (the order that resolves the
     * race with a change made before its wake-up reads waiterCount) */
    atomic {
        lock();
        if
        :: (phase[w] & CLAIMED) != 0 -> unlock(); ok = 0
        :: else -> registerLocked(w); ok = 1
        fi
    };
    if
    :: ok ->
        atomic {
            if
            :: COND ->
                claim(w, ok);
                if
                :: ok -> unlinkLocked(w); wl = wl | (1 << w)
                :: else -> skip
                fi
            :: else -> skip
            fi;
            unlock()
        };
        publishAll()
    :: else -> skip
    fi;
    ok = 0
#endif
}

/* SocketWaiter.cancel(_:): claim, unregister under the lock, publish. */
inline cancel(w, ok) {
    claim(w, ok);
    if
    :: ok ->
        atomic { lock(); unregisterLocked(w); unlock() };
        publish(w, ENDED)
    :: else -> skip
    fi
}

/* owner.post(waiter): the message holds the waiter. */
inline post(w) {
#ifdef INLINE_PORT
    wrefs[w]++;
    evaluateAndRegister(w);
    waiterRelease(w)
#else
    atomic { wrefs[w]++; port!PRED, w }
#endif
}

