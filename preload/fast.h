/* preload/fast.h: the fused fast paths of the bare backends.
 *
 * When the active backend is a bare freelist, bump or arena (no trace,
 * stats or fault-injection decorator; arena without MALLARD_ARENA_LIMIT),
 * the C and C++ entry points pop and push the thread's state inline
 * (core/freelist.h, core/chunk.h) instead of calling through ml_active.
 * ml_fast says which: ML_FAST_UNSET until the first slow-path call that
 * finds the state READY, then the mode, never changed again (ml_active is
 * set once, while booting, and every decorator wraps it before READY).
 * Whatever a fast path cannot finish it leaves untouched for the slow path.
 */
#ifndef ML_PRELOAD_FAST_H
#define ML_PRELOAD_FAST_H

#include <string.h>

#include "../core/chunk.h"
#include "../core/freelist.h"
#include "boot.h"

enum {
    ML_FAST_UNSET = 0,
    ML_FAST_FREELIST,
    ML_FAST_BUMP,
    ML_FAST_ARENA,
    ML_FAST_NONE, /* READY with another backend or a decorator */
};

extern int ml_fast ML_HIDDEN;

static inline int ml_fast_mode(void) { return __atomic_load_n(&ml_fast, __ATOMIC_RELAXED); }

/* 0 < n <= ML_FL_FAST_MAX, in one comparison */
static inline int ml_fast_size(size_t n) { return n - 1 < ML_FL_FAST_MAX; }
#define ML_FAST_SIZE(n) ML_LIKELY(ml_fast_size(n))

/* Sets ml_fast once the state is READY; for the slow paths. */
static inline void ml_fast_note(void)
{
    if (ML_LIKELY(__atomic_load_n(&ml_fast, __ATOMIC_RELAXED)) ||
        __atomic_load_n(&ml_state, __ATOMIC_RELAXED) != ML_READY)
        return;
    const struct ml_backend *a = ml_active;
    int f = a == &ml_backend_freelist                     ? ML_FAST_FREELIST
            : a == &ml_backend_bump                       ? ML_FAST_BUMP
            : a == &ml_backend_arena && !ml_arena_limited ? ML_FAST_ARENA
                                                          : ML_FAST_NONE;
    __atomic_store_n(&ml_fast, f, __ATOMIC_RELAXED);
}

/* A block of n bytes from the thread's state, or NULL: the slow path's
 * job (n == 0 included). */
static inline __attribute__((always_inline)) void *ml_fast_malloc(size_t n)
{
    int f = ml_fast_mode();
    if (ML_LIKELY(f == ML_FAST_FREELIST)) {
        if (ML_FAST_SIZE(n))
            return ml_fl_malloc_fast(n);
    } else if (f == ML_FAST_BUMP) {
        size_t i = ml_chunk_fine_index(n);
        if (ML_CHUNK_FINE_INDEX_OK(i))
            return ml_chunk_malloc_fast(&ml_bump_tls, i, 0);
    } else if (f == ML_FAST_ARENA) {
        size_t i = ml_chunk_fine_index(n);
        if (ML_CHUNK_FINE_INDEX_OK(i))
            return ml_chunk_malloc_fast(&ml_arena_tls, i, 0);
    }
    return NULL;
}

/* A chunk block of n bytes (0 < n <= ML_CHUNK_FINE) read as zero: only
 * what the chunk used before is cleared. */
static inline void *ml_fast_chunk_zalloc(struct ml_chunk_tls *t, size_t n)
{
    unsigned c = (unsigned)ml_chunk_fine_index(n) - 1;
    void *p = ml_chunk_pop(t, c);
    if (p)
        return memset(p, 0, n);
    p = ml_chunk_carve_fine(t, c);
    if (p)
        ml_chunk_zero(t, p, n);
    return p;
}

/* calloc's: a zeroed block of n bytes, or NULL as ml_fast_malloc. */
static inline void *ml_fast_zalloc(size_t n)
{
    int f = ml_fast_mode();
    if (ML_LIKELY(f == ML_FAST_FREELIST)) {
        if (ML_FAST_SIZE(n)) {
            void *p = ml_fl_malloc_fast(n);
            return p ? memset(p, 0, n) : NULL;
        }
    } else if (f == ML_FAST_BUMP) {
        if (ML_CHUNK_FINE_INDEX_OK(ml_chunk_fine_index(n)))
            return ml_fast_chunk_zalloc(&ml_bump_tls, n);
    } else if (f == ML_FAST_ARENA) {
        if (ML_CHUNK_FINE_INDEX_OK(ml_chunk_fine_index(n)))
            return ml_fast_chunk_zalloc(&ml_arena_tls, n);
    }
    return NULL;
}

/* 1 when p was freed here; 0 leaves it to the slow path (NULL and
 * bootstrap blocks are never small objects of a backend).  bump and arena
 * finish every free: what their inline part cannot, their own slow part
 * does, called directly (it ignores NULL and pointers not theirs, such as
 * bootstrap blocks). */
static inline __attribute__((always_inline)) int ml_fast_free(void *p)
{
    int f = ml_fast_mode();
    if (ML_LIKELY(f == ML_FAST_FREELIST))
        return ml_fl_free_fast(p);
    if (f == ML_FAST_BUMP) {
        if (!ml_chunk_free_fast(&ml_bump_tls, p, ML_BUMP_CHUNK, 1, ml_bump_rollback))
            ml_bump_free_slow(p);
        return 1;
    }
    if (f == ML_FAST_ARENA) {
        if (!ml_chunk_free_fast(&ml_arena_tls, p, ML_ARENA_CHUNK, 1, ml_arena_rollback))
            ml_arena_free_slow(p);
        return 1;
    }
    return 0;
}

#endif
