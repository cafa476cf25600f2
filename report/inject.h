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
#include "trace.h" /* the part preload/ calls */

struct ml_options;

/* 1 once ml_inject_wrap has run. */
extern int ml_inject_on;

/* The failures injected so far and the stack of the first one (0: none, or
 * not tracing). */
void ml_inject_stats(uint64_t *count, uint32_t *first_stack);

#endif
