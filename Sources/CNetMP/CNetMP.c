#define _GNU_SOURCE
#include "CNetMP.h"
#include <errno.h>
#include <malloc.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { PARK_IDLE = 0, PARK_NOTIFIED = 1, PARK_SLEEPING = 2 };

int netmp_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000LL);
        ts.tv_nsec = (long)(timeout_ns % 1000000000LL);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
    return r == 0 ? 0 : errno;
}

int netmp_futex_wake(_Atomic uint32_t *addr, int count) {
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}

void netmp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void netmp_parker_init(netmp_parker *p) {
    atomic_init(&p->state, PARK_IDLE);
    atomic_init(&p->unparked_at, 0);
}

bool netmp_parker_is_sleeping(netmp_parker *p) {
    return atomic_load_explicit(&p->state, memory_order_acquire) == PARK_SLEEPING;
}

void netmp_parker_reset(netmp_parker *p) { atomic_store_explicit(&p->state, PARK_IDLE, memory_order_relaxed); }

static bool parker_try_consume(netmp_parker *p) {
    uint32_t expected = PARK_NOTIFIED;
    return atomic_compare_exchange_strong_explicit(&p->state, &expected, PARK_IDLE, memory_order_acquire,
                                                   memory_order_relaxed);
}

int netmp_parker_park_reporting(netmp_parker *p, int spins, int yields, int64_t timeout_ns) {
    return netmp_parker_park_measuring(p, spins, yields, timeout_ns, NULL, NULL);
}

int netmp_parker_park_measuring(netmp_parker *p, int spins, int yields, int64_t timeout_ns, int64_t *yielded_ns,
                                int64_t *wake_ns) {
    if (yielded_ns) *yielded_ns = 0;
    if (wake_ns) *wake_ns = -1;
    for (int i = 0; i < spins; i++) {
        if (atomic_load_explicit(&p->state, memory_order_relaxed) == PARK_NOTIFIED && parker_try_consume(p)) {
            return i;
        }
        netmp_cpu_relax();
    }
    // A few yields next: when the thread that will notify us shares this CPU, it gets to run
    // without us paying for a sleep and a kernel wake-up.
    for (int i = 0; i < yields; i++) {
        if (parker_try_consume(p)) return NETMP_PARK_YIELDED;
        if (yielded_ns) {
            int64_t before = netmp_monotonic_ns();
            sched_yield();
            *yielded_ns += netmp_monotonic_ns() - before;
        } else {
            sched_yield();
        }
    }
    int64_t deadline = timeout_ns >= 0 ? netmp_monotonic_ns() + timeout_ns : -1;
    int64_t asleep_since = -1;  // set when a futex wait is about to begin
    for (;;) {
        if (parker_try_consume(p)) {
            // The unpark that found us asleep stamped its time; an older stamp is another wait's.
            int64_t unparked = atomic_load_explicit(&p->unparked_at, memory_order_acquire);
            if (wake_ns && asleep_since >= 0 && unparked >= asleep_since) *wake_ns = netmp_monotonic_ns() - unparked;
            return NETMP_PARK_SLEPT;
        }
        if (wake_ns && asleep_since < 0) asleep_since = netmp_monotonic_ns();
        uint32_t expected = PARK_IDLE;
        if (!atomic_compare_exchange_strong_explicit(&p->state, &expected, PARK_SLEEPING, memory_order_acq_rel,
                                                     memory_order_relaxed)) {
            if (expected == PARK_NOTIFIED) continue;
        }
        int64_t remaining = -1;
        if (deadline >= 0) {
            remaining = deadline - netmp_monotonic_ns();
            if (remaining <= 0) {
                expected = PARK_SLEEPING;
                if (atomic_compare_exchange_strong_explicit(&p->state, &expected, PARK_IDLE, memory_order_acquire,
                                                            memory_order_relaxed)) {
                    return NETMP_PARK_TIMED_OUT;
                }
                continue;  // notified meanwhile
            }
        }
        netmp_futex_wait(&p->state, PARK_SLEEPING, remaining);
    }
}

bool netmp_parker_park(netmp_parker *p, int spins, int64_t timeout_ns) {
    return netmp_parker_park_reporting(p, spins, spins > 0 ? 4 : 0, timeout_ns) != NETMP_PARK_TIMED_OUT;
}

void netmp_parker_unpark(netmp_parker *p) {
    uint32_t previous = atomic_exchange_explicit(&p->state, PARK_NOTIFIED, memory_order_release);
    if (previous == PARK_SLEEPING) {
        // Only on the slow path: lets the sleeper measure what its wake-up cost.
        atomic_store_explicit(&p->unparked_at, netmp_monotonic_ns(), memory_order_release);
        netmp_futex_wake(&p->state, 1);
    }
}

int netmp_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int netmp_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static __thread void *current_context;
void *netmp_current_context(void) { return current_context; }
void netmp_set_current_context(void *context) { current_context = context; }

static __thread int streaming_posts;
int netmp_streaming_posts(void) { return streaming_posts; }
void netmp_set_streaming_posts(int value) { streaming_posts = value; }

static _Atomic uint32_t next_thread_stripe;
static __thread uint32_t thread_stripe_plus_one;
uint32_t netmp_thread_stripe(void) {
    if (thread_stripe_plus_one == 0) {
        thread_stripe_plus_one = atomic_fetch_add_explicit(&next_thread_stripe, 1, memory_order_relaxed) + 1;
    }
    return thread_stripe_plus_one - 1;
}

int64_t netmp_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Under ThreadSanitizer the lock is a pthread mutex, whose semantics TSan models exactly (lock
// order included); otherwise a futex word, a compare-and-swap each way when uncontended, where
// pthread_mutex_lock and _unlock took about thirty instructions each (a round trip takes two
// dozen locks).
#if defined(__SANITIZE_THREAD__)
#define NETMP_PTHREAD_MUTEX 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NETMP_PTHREAD_MUTEX 1
#endif
#endif

#ifdef NETMP_PTHREAD_MUTEX
struct netmp_mutex { pthread_mutex_t m; };

static void netmp_mutex_init(netmp_mutex *m) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&m->m, &attr);
    pthread_mutexattr_destroy(&attr);
}
static void netmp_mutex_deinit(netmp_mutex *m) { pthread_mutex_destroy(&m->m); }
void netmp_mutex_lock(netmp_mutex *m) { pthread_mutex_lock(&m->m); }
void netmp_mutex_unlock(netmp_mutex *m) { pthread_mutex_unlock(&m->m); }
bool netmp_mutex_trylock(netmp_mutex *m) { return pthread_mutex_trylock(&m->m) == 0; }
#else
// 0 unlocked, 1 locked, 2 locked and a waiter may sleep on the word (Drepper, "Futexes Are
// Tricky", mutex 3). A contended lock spins briefly first, as the adaptive pthread mutex did.
enum { MUTEX_UNLOCKED = 0, MUTEX_LOCKED = 1, MUTEX_CONTENDED = 2, MUTEX_SPINS = 100 };
struct netmp_mutex { _Atomic uint32_t state; };

static void netmp_mutex_init(netmp_mutex *m) { atomic_init(&m->state, MUTEX_UNLOCKED); }
static void netmp_mutex_deinit(netmp_mutex *m) { (void)m; }

static void netmp_mutex_lock_contended(netmp_mutex *m) {
    for (int spin = 0; spin < MUTEX_SPINS; spin++) {
        netmp_cpu_relax();
        uint32_t expected = MUTEX_UNLOCKED;
        if (atomic_load_explicit(&m->state, memory_order_relaxed) == MUTEX_UNLOCKED &&
            atomic_compare_exchange_weak_explicit(&m->state, &expected, MUTEX_LOCKED, memory_order_acquire,
                                                  memory_order_relaxed)) {
            return;
        }
    }
    // Marked contended whenever this thread takes it from here on: its unlock then wakes one.
    while (atomic_exchange_explicit(&m->state, MUTEX_CONTENDED, memory_order_acquire) != MUTEX_UNLOCKED) {
        netmp_futex_wait(&m->state, MUTEX_CONTENDED, -1);
    }
}

void netmp_mutex_lock(netmp_mutex *m) {
    uint32_t expected = MUTEX_UNLOCKED;
    if (atomic_compare_exchange_strong_explicit(&m->state, &expected, MUTEX_LOCKED, memory_order_acquire,
                                                memory_order_relaxed)) {
        return;
    }
    netmp_mutex_lock_contended(m);
}

void netmp_mutex_unlock(netmp_mutex *m) {
    if (atomic_exchange_explicit(&m->state, MUTEX_UNLOCKED, memory_order_release) == MUTEX_CONTENDED) {
        netmp_futex_wake(&m->state, 1);
    }
}

bool netmp_mutex_trylock(netmp_mutex *m) {
    uint32_t expected = MUTEX_UNLOCKED;
    return atomic_compare_exchange_strong_explicit(&m->state, &expected, MUTEX_LOCKED, memory_order_acquire,
                                                   memory_order_relaxed);
}
#endif

netmp_mutex *netmp_mutex_create(void) {
    netmp_mutex *m = aligned_alloc(64, 64);
    if (!m) abort();
    netmp_mutex_init(m);
    return m;
}

netmp_mutex *netmp_mutex_create_compact(void) {
    netmp_mutex *m = malloc(sizeof(netmp_mutex));
    if (!m) abort();
    netmp_mutex_init(m);
    return m;
}
void netmp_mutex_destroy(netmp_mutex *m) {
    netmp_mutex_deinit(m);
    free(m);
}

size_t netmp_malloc_usable_size(const void *pointer) { return malloc_usable_size((void *)pointer); }

uint64_t netmp_malloc_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return (uint64_t)info.uordblks + (uint64_t)info.hblkhd;
}

struct thread_start { netmp_thread_body body; void *context; };
static void *thread_trampoline(void *arg) {
    struct thread_start start = *(struct thread_start *)arg;
    free(arg);
    start.body(start.context);
    return NULL;
}
int netmp_thread_start(netmp_thread_body body, void *context, uint64_t *handle_out) {
    struct thread_start *start = malloc(sizeof *start);
    if (!start) return ENOMEM;
    start->body = body;
    start->context = context;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    int r = pthread_create(&thread, &attr, thread_trampoline, start);
    pthread_attr_destroy(&attr);
    if (r != 0) { free(start); return r; }
    *handle_out = (uint64_t)thread;
    return 0;
}
int netmp_thread_join(uint64_t handle) { return pthread_join((pthread_t)handle, NULL); }
int netmp_thread_detach(uint64_t handle) { return pthread_detach((pthread_t)handle); }
void netmp_thread_set_name(const char *name) {
    char buf[16];
    strncpy(buf, name, 15);
    buf[15] = 0;
    pthread_setname_np(pthread_self(), buf);
}

double netmp_measure_pause_ns(int rounds, int trials) {
    if (rounds < 1) rounds = 1;
    double best = -1;
    for (int t = 0; t < trials; t++) {
        int64_t start = netmp_monotonic_ns();
        for (int i = 0; i < rounds; i++) netmp_cpu_relax();
        double each = (double)(netmp_monotonic_ns() - start) / rounds;
        if (best < 0 || each < best) best = each;
    }
    return best;
}

/// Shared by the measuring thread and the sleeper of `netmp_measure_wake_ns`.
struct wake_probe {
    netmp_parker parker;
    _Atomic int64_t unparked_at;   // when the measuring thread unparked the sleeper
    _Atomic int done;              // samples the sleeper has taken
    int samples;
    int64_t *latencies;
};

static void wake_probe_sleeper(void *context) {
    struct wake_probe *probe = context;
    for (int i = 0; i < probe->samples; i++) {
        // Sleep at once (no spin, no yield): the wake-up is what is measured. A timeout ends a
        // sample the measuring thread could not deliver.
        int result = netmp_parker_park_reporting(&probe->parker, 0, 0, 50 * 1000000LL);
        int64_t woke = netmp_monotonic_ns();
        int64_t sent = atomic_load_explicit(&probe->unparked_at, memory_order_acquire);
        probe->latencies[i] = result == NETMP_PARK_SLEPT && sent > 0 ? woke - sent : -1;
        atomic_store_explicit(&probe->unparked_at, 0, memory_order_relaxed);
        atomic_store_explicit(&probe->done, i + 1, memory_order_release);
    }
}

static int compare_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t netmp_measure_wake_ns(int samples) {
    if (samples < 1) samples = 1;
    struct wake_probe *probe = calloc(1, sizeof *probe);
    int64_t *latencies = calloc((size_t)samples, sizeof *latencies);
    if (!probe || !latencies) {
        free(probe);
        free(latencies);
        return -1;
    }
    netmp_parker_init(&probe->parker);
    probe->samples = samples;
    probe->latencies = latencies;
    uint64_t handle;
    if (netmp_thread_start(wake_probe_sleeper, probe, &handle) != 0) {
        free(probe);
        free(latencies);
        return -1;
    }
    for (int i = 0; i < samples; i++) {
        // Wait (yielding, so a sleeper sharing this CPU can run) until the sleeper really sleeps.
        int64_t give_up = netmp_monotonic_ns() + 20 * 1000000LL;
        while (atomic_load_explicit(&probe->parker.state, memory_order_acquire) != PARK_SLEEPING &&
               netmp_monotonic_ns() < give_up) {
            sched_yield();
        }
        int64_t unparked = netmp_monotonic_ns();
        atomic_store_explicit(&probe->unparked_at, unparked, memory_order_release);
        netmp_parker_unpark(&probe->parker);
        // Keep this CPU busy for a while, as a waker that goes on spinning does: the sleeper is
        // then woken on another CPU, which is the wake-up a spinning partner pays for. Yield
        // after a millisecond, in case the sleeper can only run here.
        while (atomic_load_explicit(&probe->done, memory_order_acquire) <= i) {
            if (netmp_monotonic_ns() - unparked < 1000000LL) {
                netmp_cpu_relax();
            } else {
                sched_yield();
            }
        }
    }
    netmp_thread_join(handle);
    int valid = 0;
    for (int i = 0; i < samples; i++) {
        if (latencies[i] > 0) latencies[valid++] = latencies[i];
    }
    int64_t median = -1;
    if (valid > 0) {
        qsort(latencies, (size_t)valid, sizeof *latencies, compare_int64);
        median = latencies[valid / 2];
    }
    free(probe);
    free(latencies);
    return median;
}
