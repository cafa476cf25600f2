/* core/freelist.h: the freelist backend's hot path, inline.
 *
 * For the preload shim's fused fast path: when the active backend is the
 * bare freelist (no trace, stats or fault-injection decorator; decided once,
 * after start-up), malloc and free pop and push the thread's cache here
 * directly instead of making the indirect call through ml_active.  Anything
 * these cannot finish (a request above 1 KiB, an empty or full bin, a
 * pointer that is not a small freelist object) they leave to the backend's
 * ordinary slots, which then do the whole job: these never change state
 * they do not complete.  The state below belongs to core/freelist.c, the
 * only writer apart from these two functions.
 */
#ifndef ML_CORE_FREELIST_H
#define ML_CORE_FREELIST_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "owner.h"

#define ML_FL_NCLASS 60
#define ML_FL_FAST_MAX 1024 /* the sizes ml_fl_class_small maps */

/* A thread's list of free objects of one class.  room = max - count, kept
 * instead of the count so that free's overflow test is one decrement. */
struct ml_fl_bin {
    void *head;
    int32_t room; /* objects the bin may still take; < 0: over its limit */
    uint32_t max;
};

/* The class-map byte of the nursery (core/freelist.c): small objects of
 * every class carved side by side from one shared page.  Its bin, the last,
 * never has room, so ml_fl_free_fast leaves such objects to the backend's
 * free slot, which knows their class. */
#define ML_FL_NURSERY (ML_FL_NCLASS + 1)

struct ml_fl_tcache {
    struct ml_fl_bin bins[ML_FL_NCLASS + 1]; /* the last: the nursery's, always empty and full */
    size_t grow_left;                        /* bytes the bins may still grow by */
    int live;                                /* maxes set, thread registered */
    int dead;                                /* thread_exit ran: bypass the cache */
    /* nursery objects of each class this thread freed (core/freelist.c);
     * here, not in the backend's state, so that a forked child freeing
     * them does not copy a page of it */
    uint8_t nursery_frees[ML_FL_NCLASS];
};

/* The calling thread's cache. */
extern ML_TLS struct ml_fl_tcache ml_fl_tc ML_HIDDEN;
/* (n + 15) / 16 -> class, for n <= ML_FL_FAST_MAX (a constant table). */
extern const uint8_t ml_fl_class_small[ML_FL_FAST_MAX / 16 + 1] ML_HIDDEN;

/* 0 when every size up to the largest small class maps to the smallest
 * class that holds it, else EINVAL (the unit test's check). */
int ml_fl_classes_check(void) ML_HIDDEN;
/* The class map: class + 1 of every 64 KiB page of a live span,
 * ML_FL_NURSERY for the nursery's page, else 0; laid out like the owner
 * map (owner.h).  Never faults. */
extern uint8_t *ml_fl_cls_l1[ML_OS_L1_SIZE] ML_HIDDEN;

/* class + 1 of the small object p, ML_FL_NURSERY when p lies in the
 * nursery's page, or 0 when p is none. */
static inline unsigned ml_fl_class_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (ML_UNLIKELY(a >> 47))
        return 0;
    uint8_t *l2 = __atomic_load_n(&ml_fl_cls_l1[a >> ML_OS_L1_SHIFT], __ATOMIC_ACQUIRE);
    if (ML_UNLIKELY(!l2))
        return 0;
    return __atomic_load_n(&l2[(a >> ML_OS_GRANULE_SHIFT) & (ML_OS_L2_SIZE - 1)], __ATOMIC_RELAXED);
}

/* 0 < n <= ML_FL_FAST_MAX.  An object from the thread's cache, or NULL
 * when its bin is empty (the backend's malloc then refills it). */
static inline void *ml_fl_malloc_fast(size_t n)
{
    struct ml_fl_bin *b = &ml_fl_tc.bins[ml_fl_class_small[(n + 15) >> 4]];
    void *p = b->head;
    if (ML_LIKELY(p)) {
        b->head = *(void **)p;
        b->room++;
    }
    return p;
}

/* Pushes p on the thread's cache and returns 1 when p is a small freelist
 * object and its bin has room; otherwise returns 0 and does nothing. */
static inline int ml_fl_free_fast(void *p)
{
    size_t c = ml_fl_class_of(p);
    if (ML_UNLIKELY(!c))
        return 0;
    struct ml_fl_bin *b = &ml_fl_tc.bins[c - 1];
    if (ML_UNLIKELY(b->room <= 0))
        return 0; /* full, or the cache is not started: the slot's job */
    b->room--;
    *(void **)p = b->head;
    b->head = p;
    return 1;
}

#endif
