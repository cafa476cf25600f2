/* core/chunk.h: the chunk lifecycle shared by the bump and arena backends.
 *
 * Both backends carve blocks from a per-thread chunk by moving a pointer
 * kept in thread-local storage, and reuse a chunk only as a whole, once
 * every block in it is freed.  What they share lives here, once, as static
 * inline helpers that each backend calls with its own constants (chunk size,
 * spare-list length, owner), so the compiler folds them into the same code
 * each file had on its own.
 *
 * The biased live count (the one subtle part):
 *   - While a thread owns a chunk, chunk->live holds ML_CHUNK_BIAS minus the
 *     frees made by other threads, and the owner counts its own allocations
 *     minus its own frees in t->count, with no atomic on its hot path.
 *     Live blocks = t->count - (ML_CHUNK_BIAS - chunk->live).
 *   - When the owner retires the chunk (it is full, or the thread exits) it
 *     adds t->count - ML_CHUNK_BIAS, turning chunk->live into the true
 *     number of live blocks.  The bias is the owner's reference: the count
 *     cannot reach zero while the owner still bumps through the chunk, and
 *     whoever takes it to zero (the retiring owner or the last remote free)
 *     releases it, exactly once.
 *   - The owner may find its current chunk empty (t->count + chunk->live ==
 *     ML_CHUNK_BIAS) and restart it from the beginning; other threads never
 *     touch a chunk's blocks, only its count.
 * Released chunks wait on a short spare list under a lock; past the
 * backend's limit they are unmapped.  `clean` tracks the part of the chunk
 * never written since it was mapped, so zalloc clears only what was used.
 *
 * Blocks above a backend's small limit get a mapping of their own with a
 * 32-byte ml_chunk_big header before the block; its state word sits where
 * the chunk block header keeps its own, so the word just before any block
 * tells the two kinds apart.
 */
#ifndef ML_CORE_CHUNK_H
#define ML_CORE_CHUNK_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "fmt.h"
#include "lock.h"
#include "os.h"

#define ML_CHUNK_BIAS ((int64_t)1 << 62)

/* The first 64 bytes of every chunk. */
struct ml_chunk {
    uint64_t magic;
    int64_t live;          /* biased, see above; atomic */
    struct ml_chunk *next; /* spare list */
    size_t charged;        /* arena: budget still held by the blocks, set at retire */
    char pad[64 - 32];
};
#define ML_CHUNK_DATA (sizeof(struct ml_chunk))

/* The global part: spare chunks. */
struct ml_chunk_pool {
    ml_mutex lock; /* guards spare and nspare */
    struct ml_chunk *spare;
    unsigned nspare;
};

/* The calling thread's current chunk. */
struct ml_chunk_tls {
    char *cur, *end;        /* the free part of the chunk */
    struct ml_chunk *chunk; /* NULL: none yet, or retired */
    void *last;             /* the most recent block's header (backend's type) */
    char *clean;            /* [max(clean, cur), end) was never written */
    int64_t count;          /* own allocations - own frees in chunk */
    int attached;           /* ml_backend_watch_thread called since thread_exit */
};

/* 32 bytes before every large block. */
struct ml_chunk_big {
    uint64_t map_size; /* bytes mapped, from base */
    uint64_t offset;   /* block - base */
    uint64_t size;     /* usable bytes as the backend counts them */
    uint32_t spare;
    uint32_t state; /* the backend's BIG word */
};
#define ML_CHUNK_BIG_HDR (sizeof(struct ml_chunk_big))

static inline size_t ml_chunk_round16(size_t n) { return (n + 15) & ~(size_t)15; }

static inline struct ml_chunk *ml_chunk_of(const void *p, size_t chunk_size)
{
    return (struct ml_chunk *)((uintptr_t)p & ~(chunk_size - 1));
}

static inline struct ml_chunk_big *ml_chunk_big_of(const void *p)
{
    return (struct ml_chunk_big *)((uintptr_t)p - ML_CHUNK_BIG_HDR);
}

/* Says once per backend that p was not a live block. */
static inline void ml_chunk_bad_free(int *said, const char *name, const void *p)
{
    if (!__atomic_exchange_n(said, 1, __ATOMIC_RELAXED))
        ml_say("%s: free of %p, which is not a live block; ignored (reported once)", name, p);
}

/* The bump pointer moves below `clean`'s mark: remember how far it went. */
static inline void ml_chunk_mark(struct ml_chunk_tls *t)
{
    if (t->cur > t->clean)
        t->clean = t->cur;
}

/* A chunk whose count reached zero: onto the spare list, or unmapped. */
static inline void ml_chunk_recycle(struct ml_chunk_pool *pool, struct ml_chunk *c, size_t chunk_size,
                                    unsigned spare_max)
{
    ml_mutex_lock(&pool->lock);
    if (pool->nspare < spare_max) {
        c->next = pool->spare;
        pool->spare = c;
        pool->nspare++;
        c = NULL;
    }
    ml_mutex_unlock(&pool->lock);
    if (c)
        ml_os_unmap_user(c, chunk_size);
}

/* Gives the owner's reference up, recording charged in the chunk.  Returns
 * the chunk when it is empty now (the caller releases it), else NULL: the
 * free that empties it will. */
static inline struct ml_chunk *ml_chunk_retire(struct ml_chunk_tls *t, size_t charged)
{
    struct ml_chunk *c = t->chunk;
    if (!c)
        return NULL;
    c->charged = charged; /* published by the add below */
    t->chunk = NULL;
    t->cur = t->end = t->clean = NULL;
    t->last = NULL;
    int64_t left = __atomic_add_fetch(&c->live, t->count - ML_CHUNK_BIAS, __ATOMIC_ACQ_REL);
    t->count = 0;
    return left == 0 ? c : NULL;
}

/* A free by a thread that does not own c: 1 when it was the last block and
 * the caller must release c. */
static inline int ml_chunk_put_remote(struct ml_chunk *c)
{
    return __atomic_sub_fetch(&c->live, 1, __ATOMIC_ACQ_REL) == 0;
}

/* Every block of the current chunk is free. */
static inline int ml_chunk_empty(const struct ml_chunk_tls *t)
{
    return t->count + __atomic_load_n(&t->chunk->live, __ATOMIC_ACQUIRE) == ML_CHUNK_BIAS;
}

/* Every block of the current chunk is free: start it over. */
static inline void ml_chunk_restart(struct ml_chunk_tls *t)
{
    ml_chunk_mark(t);
    t->cur = (char *)t->chunk + ML_CHUNK_DATA;
    t->last = NULL;
    t->count = 0;
    __atomic_store_n(&t->chunk->live, ML_CHUNK_BIAS, __ATOMIC_RELAXED);
}

/* Makes a spare or fresh chunk the current one; the old one must be
 * retired.  Returns 0 or ENOMEM. */
static inline int ml_chunk_take(struct ml_chunk_pool *pool, struct ml_chunk_tls *t, size_t chunk_size,
                                uint64_t magic, enum ml_owner owner)
{
    ml_mutex_lock(&pool->lock);
    struct ml_chunk *c = pool->spare;
    if (c) {
        pool->spare = c->next;
        pool->nspare--;
    }
    ml_mutex_unlock(&pool->lock);
    int fresh = !c;
    if (fresh) {
        c = ml_os_map_user(chunk_size, chunk_size, owner, 0);
        if (!c)
            return ENOMEM;
        c->magic = magic;
    }
    __atomic_store_n(&c->live, ML_CHUNK_BIAS, __ATOMIC_RELAXED);
    c->charged = 0;
    t->chunk = c;
    t->cur = (char *)c + ML_CHUNK_DATA;
    t->end = (char *)c + chunk_size;
    t->clean = fresh ? t->cur : t->end;
    t->last = NULL;
    t->count = 0;
    /* Last, with the state complete: pthread_setspecific may allocate. */
    if (!t->attached) {
        t->attached = 1;
        ml_backend_watch_thread();
    }
    return 0;
}

/* Clears the first size bytes of p, just carved from t's chunk, where the
 * chunk was written before. */
static inline void ml_chunk_zero(const struct ml_chunk_tls *t, void *p, size_t size)
{
    char *clean = t->clean;
    if ((char *)p < clean)
        memset(p, 0, (size_t)(clean - (char *)p) < size ? (size_t)(clean - (char *)p) : size);
}

/* A mapping of its own for a large block; NULL when the kernel refuses. */
static inline void *ml_chunk_big_alloc(size_t align, size_t usable, uint32_t state, enum ml_owner owner)
{
    size_t offset = align > ML_CHUNK_BIG_HDR ? align : ML_CHUNK_BIG_HDR;
    size_t map_size = (offset + usable + ML_OS_GRANULE - 1) & ~(ML_OS_GRANULE - 1);
    char *base = ml_os_map_user(map_size, align, owner, 0);
    if (!base)
        return NULL;
    struct ml_chunk_big *b = ml_chunk_big_of(base + offset);
    b->map_size = map_size;
    b->offset = offset;
    b->size = usable;
    __atomic_store_n(&b->state, state, __ATOMIC_RELAXED);
    return base + offset;
}

static inline void ml_chunk_big_unmap(void *p, const struct ml_chunk_big *b)
{
    ml_os_unmap_user((char *)p - b->offset, b->map_size);
}

/* atfork for the pool's lock. */
static inline void ml_chunk_atfork(struct ml_chunk_pool *pool, int phase)
{
    ml_lock_atfork(&pool->lock, phase);
}

#endif
