#ifndef CNETMP_H
#define CNETMP_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include "CNetMPTAP.h"

/// A one-word wake-up cell: a thread parks on it, another unparks it. The parker spins
/// briefly before it sleeps in the kernel, and an unpark only makes a system call when the
/// parker is really asleep, so a hand-off between two busy threads costs no system call.
typedef struct netmp_parker {
    _Atomic uint32_t state;   // 0 idle, 1 notified, 2 sleeping in futex
    _Atomic int64_t unparked_at;  // when an unpark last found the parker asleep (monotonic ns)
} netmp_parker;

void netmp_parker_init(netmp_parker *p);
/// Waits until notified, spinning `spins` rounds first. `timeout_ns` < 0 waits forever.
/// Returns true when notified, false on timeout. Consumes the notification.
bool netmp_parker_park(netmp_parker *p, int spins, int64_t timeout_ns);
/// Like `netmp_parker_park`, reporting how the wait ended: the spin rounds used (>= 0) when
/// the notification came while spinning, NETMP_PARK_YIELDED when it came while yielding,
/// NETMP_PARK_SLEPT after sleeping in the kernel, NETMP_PARK_TIMED_OUT on timeout.
/// A waiter uses this to size its next spin to what worked.
#define NETMP_PARK_YIELDED (-1)
#define NETMP_PARK_SLEPT (-2)
#define NETMP_PARK_TIMED_OUT (-3)
int netmp_parker_park_reporting(netmp_parker *p, int spins, int yields, int64_t timeout_ns);
/// Like `netmp_parker_park_reporting`, also storing in `*yielded_ns` how long its yields took in
/// all (much more than a system call's worth means other threads ran on this CPU meanwhile),
/// and in `*wake_ns`, after a sleep, how long it took from the unpark to running again (-1 when
/// not known). Either pointer may be NULL.
int netmp_parker_park_measuring(netmp_parker *p, int spins, int yields, int64_t timeout_ns, int64_t *yielded_ns,
                                int64_t *wake_ns);
/// True while the parker sleeps in the kernel (for tests and calibration).
bool netmp_parker_is_sleeping(netmp_parker *p);

/// Notifies the parker; wakes it through the kernel only if it sleeps there.
void netmp_parker_unpark(netmp_parker *p);
/// Clears a pending notification without waiting.
void netmp_parker_reset(netmp_parker *p);

/// futex(2) on a 32-bit word.
int netmp_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns);
int netmp_futex_wake(_Atomic uint32_t *addr, int count);

/// A CPU hint for spin loops (`pause` on x86, `yield` on ARM).
void netmp_cpu_relax(void);

/// The cost of one `netmp_cpu_relax` in nanoseconds: the least over `trials` timings of
/// `rounds` of them (the least is the one no preemption disturbed).
double netmp_measure_pause_ns(int rounds, int trials);
/// How long a thread asleep on a parker takes to run again after it is unparked, in
/// nanoseconds: the median over `samples` wake-ups of a helper thread. -1 if none could be taken.
int64_t netmp_measure_wake_ns(int samples);

/// Pins the calling thread to one CPU (sched_setaffinity). Returns 0 or an errno.
int netmp_pin_current_thread(int cpu);
int netmp_cpu_count(void);

/// The calling thread's current protocol-thread context (a thread-local word), so a
/// synchronous message sent to one's own thread can run inline.
void *netmp_current_context(void);
void netmp_set_current_context(void *context);

/// Whether the calling thread has posted to a protocol thread without waiting or reading since
/// (a thread-local word): such a thread is streaming, and its posts are queued, not dispatched.
int netmp_streaming_posts(void);
void netmp_set_streaming_posts(int value);

/// A small number for the calling OS thread, given on its first call in the order threads ask
/// (a thread-local word): which stripe of a `StripedCounters` the thread adds to.
uint32_t netmp_thread_stripe(void);

/// Relaxed atomic add and load on a plain 64-bit word (a `StripedCounters` cell), inlined.
static inline void netmp_counter_add(int64_t *counter, int64_t value) {
    __atomic_fetch_add(counter, value, __ATOMIC_RELAXED);
}
static inline int64_t netmp_counter_load(const int64_t *counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }
/// Sequentially consistent add and load (a `StripedCounters` used as a count of readers).
static inline void netmp_counter_add_ordered(int64_t *counter, int64_t value) {
    __atomic_fetch_add(counter, value, __ATOMIC_SEQ_CST);
}
static inline int64_t netmp_counter_load_ordered(const int64_t *counter) {
    return __atomic_load_n(counter, __ATOMIC_SEQ_CST);
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC).
int64_t netmp_monotonic_ns(void);

/// A short lock: a futex word (a compare-and-swap to lock and an exchange to unlock when
/// uncontended; a brief spin, then the kernel, when not); under ThreadSanitizer a pthread
/// mutex, which TSan models exactly.
typedef struct netmp_mutex netmp_mutex;
netmp_mutex *netmp_mutex_create(void);
/// The same in a block of its own size rather than a cache line: for locks that are many and
/// rarely contended (one socket's readiness observers, its names).
netmp_mutex *netmp_mutex_create_compact(void);
void netmp_mutex_destroy(netmp_mutex *m);
void netmp_mutex_lock(netmp_mutex *m);
void netmp_mutex_unlock(netmp_mutex *m);
bool netmp_mutex_trylock(netmp_mutex *m);

/// The bytes malloc really gave the block at `pointer` (malloc_usable_size), for memory reports.
size_t netmp_malloc_usable_size(const void *pointer);
/// The bytes the process's malloc has handed out and not had back (mallinfo2: in-use heap
/// blocks plus mmapped ones), for memory reports.
uint64_t netmp_malloc_in_use(void);

/// Starts a detached-or-joinable OS thread running `body(context)`. Returns 0 or an errno.
typedef void (*netmp_thread_body)(void *context);
int netmp_thread_start(netmp_thread_body body, void *context, uint64_t *handle_out);
int netmp_thread_join(uint64_t handle);
int netmp_thread_detach(uint64_t handle);
void netmp_thread_set_name(const char *name);

#endif
