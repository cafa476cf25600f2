/* report/busy.h: the trace layer's per-thread "inside a lock" count.
 *
 * ml_tr_busy counts, for the calling thread, the trace-layer locks it holds
 * and the backend or meta-heap calls it is inside (each of which may hold a
 * lock of its own).  A malloc-family call that starts while it is non-zero
 * can only come from a signal handler that interrupted that very thread
 * (mallard calls out to nothing while it holds a lock), and taking any
 * lock there could wait forever on the frame it interrupted; trace.c serves
 * such calls without a lock (see "re-entry from a signal handler" there).
 * The count is changed by single instructions on the thread itself, so a
 * handler always sees a consistent value. */
#ifndef ML_REPORT_BUSY_H
#define ML_REPORT_BUSY_H

#include "../core/lock.h"
#include "../core/os.h"

extern ML_TLS int ml_tr_busy;

static inline void ml_tr_busy_enter(void)
{
    ml_tr_busy++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void ml_tr_busy_leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ml_tr_busy--;
}

/* The trace layer's locks: counted before taking, uncounted after release. */
static inline void ml_tr_lock(ml_mutex *l)
{
    ml_tr_busy_enter();
    ml_mutex_lock(l);
}

static inline void ml_tr_unlock(ml_mutex *l)
{
    ml_mutex_unlock(l);
    ml_tr_busy_leave();
}

#endif
