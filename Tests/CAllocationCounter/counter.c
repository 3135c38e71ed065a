// Counts heap allocations in the test process by defining malloc and its kin in the test
// binary, which the dynamic linker then binds every library to, and forwarding to glibc's own
// entry points. Tests use it to show that a path allocates nothing.
#include "CAllocationCounter.h"

#include <errno.h>
#include <execinfo.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define NETMP_NO_COUNTING 1
#endif
#endif

#ifndef NETMP_NO_COUNTING

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

static atomic_long total_allocations;
static __thread long thread_allocations;
static atomic_int traces_left;
static __thread int tracing;

static inline void count_one(void) {
    atomic_fetch_add_explicit(&total_allocations, 1, memory_order_relaxed);
    thread_allocations++;
    if (atomic_load_explicit(&traces_left, memory_order_relaxed) > 0 && !tracing &&
        atomic_fetch_sub_explicit(&traces_left, 1, memory_order_relaxed) > 0) {
        tracing = 1;
        void *frames[24];
        int depth = backtrace(frames, 24);
        backtrace_symbols_fd(frames, depth, 2);
        write(2, "--\n", 3);
        tracing = 0;
    }
}

void netmp_allocations_trace_next(int count) { atomic_store(&traces_left, count); }

void *malloc(size_t size) {
    count_one();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    count_one();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    count_one();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    count_one();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

void free(void *pointer) { __libc_free(pointer); }

bool netmp_allocation_counting_available(void) { return true; }
long netmp_allocations_total(void) { return atomic_load_explicit(&total_allocations, memory_order_relaxed); }
long netmp_allocations_this_thread(void) { return thread_allocations; }

#else

bool netmp_allocation_counting_available(void) { return false; }
void netmp_allocations_trace_next(int count) { (void)count; }
long netmp_allocations_total(void) { return 0; }
long netmp_allocations_this_thread(void) { return 0; }

#endif
