/* preload/stats.h: MALLARD_STATS=1 with the tracer off (MALLARD_TRACE=0).
 *
 * A thin decorator in front of the chosen backend, installed at start-up
 * only when MALLARD_STATS=1 and the tracer is off (with the tracer on the
 * trace layer's own counts are printed in its report).  Counts live in
 * per-thread slots, so the hot path touches no shared cache line; a thread
 * that ends folds its slot into a global total under a lock, and the exit
 * summary adds the live slots to that total. */
#ifndef ML_PRELOAD_STATS_H
#define ML_PRELOAD_STATS_H

#include "../core/backend.h"

/* Returns the decorator around inner (called once, single-threaded). */
const struct ml_backend *ml_stats_wrap(const struct ml_backend *inner, const struct ml_options *opt);

#endif
