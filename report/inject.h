/* report/inject.h: fault injection (MALLARD_FAIL, MALLARD_FAIL_RATE with
 * MALLARD_SEED, MALLARD_LIMIT).
 *
 * A decorator installed in front of ml_active (the trace layer or the bare
 * backend) only when one of those options is set, so a run without them
 * pays nothing.  It counts every allocation call that reaches it (malloc,
 * calloc, realloc, the memalign family, operator new) and makes the chosen
 * ones return NULL; the shim then sets errno to ENOMEM. */
#ifndef ML_REPORT_INJECT_H
#define ML_REPORT_INJECT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/backend.h"

struct ml_options;

/* 1 when opt asks for fault injection. */
int ml_inject_wanted(const struct ml_options *opt);

/* Wraps inner; returns the decorator to install as ml_active.  Called
 * once while booting; allocates nothing. */
const struct ml_backend *ml_inject_wrap(const struct ml_backend *inner, const struct ml_options *opt);

/* From the end of mallard's constructor: calls count from now on (mallard's
 * own start-up requests do not). */
void ml_inject_start(void);

/* 1 once ml_inject_wrap has run. */
extern int ml_inject_on;

/* operator new and delete (preload/cxx.c) while injecting: like
 * ml_trace_alloc and ml_trace_free (or the bare backend when not tracing).
 * A failed new makes the next request of the same size on this thread (the
 * C++ runtime's own retry, which then throws std::bad_alloc) fail too. */
void *ml_inject_cxx_alloc(size_t align, size_t n, unsigned kind);
void ml_inject_cxx_free(void *p, unsigned kind);

/* The failures injected so far and the stack of the first one (0: none, or
 * not tracing). */
void ml_inject_stats(uint64_t *count, uint32_t *first_stack);

#endif
