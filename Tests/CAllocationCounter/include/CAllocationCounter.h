#ifndef CALLOCATIONCOUNTER_H
#define CALLOCATIONCOUNTER_H

#include <stdbool.h>

/// True when this test binary counts heap allocations (it does not under sanitizers, whose
/// runtimes own malloc).
bool netmp_allocation_counting_available(void);

/// Allocations (malloc, calloc, realloc, the aligned kinds) made by any thread so far.
long netmp_allocations_total(void);

/// Allocations made by the calling thread so far.
long netmp_allocations_this_thread(void);

/// Prints a backtrace (to standard error) of each of the next `count` allocations: for finding
/// what allocates on a path that should not.
void netmp_allocations_trace_next(int count);

#endif
