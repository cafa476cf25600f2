/* preload/fast.h: the fused fast path of the default configuration.
 *
 * When the active backend is the bare freelist (MALLARD_BACKEND=freelist,
 * or unset, with MALLARD_TRACE=0 and no MALLARD_STATS or MALLARD_FAIL*
 * decorator), the C and C++ entry points pop and push the thread cache
 * inline (core/freelist.h) instead of calling through ml_active.  ml_fast
 * says so: set on the first slow-path call that finds the state READY and
 * ml_active the bare freelist, never cleared (ml_active is set once, while
 * booting, and every decorator wraps it before READY).
 */
#ifndef ML_PRELOAD_FAST_H
#define ML_PRELOAD_FAST_H

#include "../core/freelist.h"
#include "boot.h"

extern int ml_fast ML_HIDDEN;

#define ML_FAST() ML_LIKELY(__atomic_load_n(&ml_fast, __ATOMIC_RELAXED))
/* 0 < n <= ML_FL_FAST_MAX, in one comparison */
static inline int ml_fast_size(size_t n) { return n - 1 < ML_FL_FAST_MAX; }
#define ML_FAST_SIZE(n) ML_LIKELY(ml_fast_size(n))

/* Sets ml_fast when it applies; for the slow paths. */
static inline void ml_fast_note(void)
{
    if (!__atomic_load_n(&ml_fast, __ATOMIC_RELAXED) &&
        __atomic_load_n(&ml_state, __ATOMIC_RELAXED) == ML_READY && ml_active == &ml_backend_freelist)
        __atomic_store_n(&ml_fast, 1, __ATOMIC_RELAXED);
}

#endif
