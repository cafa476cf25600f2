/* core/chunk.h: the chunk lifecycle and block reuse shared by the bump and
 * arena backends.
 *
 * Both backends carve blocks from a per-thread chunk by moving a pointer
 * kept in thread-local storage, keep the blocks a thread frees on its own
 * per-size-class free lists for reuse, and give a chunk back only as a
 * whole, once every block in it is freed.  What they share lives here, once,
 * as static inline helpers that each backend calls with its own constants
 * (chunk size, spare-list length, owner), so the compiler folds them into
 * the same code each file had on its own.
 *
 * A block is a 16-byte ml_chunk_blk header followed by the user's bytes.
 * Its usable size is always the size of its class (ml_chunk_class_size), so
 * any freed block of class c serves any later request of class c.  The
 * header's prev field links every block to the one carved before it in the
 * same chunk (the low 32 bits of that header's address, 0 for none: a chunk
 * is smaller than 4 GiB and aligned to its size, so those bits and the
 * chunk's address give the header back); that is what lets a free of the
 * most recent block roll the bump pointer back over every freed block right
 * below it.
 *
 * Block states (the header's state word):
 *   LIVE    handed out.
 *   LISTED  freed by a thread that owns the chunk (chunk->owner is its TLS
 *           state), waiting on that thread's free list for its class; the
 *           first 8 bytes of the block are the list's link.  A listed
 *           block still counts as live in its chunk's count: it belongs to
 *           the thread, which reuses it or, at exit, drains it.
 *   FREED   given back to its chunk's count: freed by another thread, or
 *           drained at thread exit.  Only a whole-chunk recycle or a
 *           rollback reuses that memory.
 * Why frees by other threads are not listed: a producer/consumer pair
 * would move every block onto the consumer's lists while the producer
 * kept carving fresh memory; counting them back to the chunk keeps that
 * pattern bounded, as the chunk count always did.
 *
 * The biased live count (the one subtle part):
 *   - While a thread owns a chunk, chunk->live holds ML_CHUNK_BIAS minus the
 *     frees made by other threads, and the owner counts its own carves minus
 *     its own rollbacks in t->count, with no atomic on its hot path.
 *     Live blocks (listed ones included) = t->count - (ML_CHUNK_BIAS - chunk->live).
 *   - When the owner retires the chunk (it is full, or the thread exits) it
 *     adds t->count - ML_CHUNK_BIAS, turning chunk->live into the true
 *     number of live blocks.  The bias is the owner's reference: the count
 *     cannot reach zero while the owner still bumps through the chunk, and
 *     whoever takes it to zero (the retiring owner, the last remote free, or
 *     a drain) releases it, exactly once.
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

/* Block states; the large blocks' BIG words are the backends' own. */
#define ML_CHUNK_LIVE 0xc4a11e0bu
#define ML_CHUNK_LISTED 0xc4157edbu
#define ML_CHUNK_FREED 0xc4f7ee0bu
#define ML_CHUNK_HDR 16

/* Size classes: 16-byte steps up to ML_CHUNK_FINE, then four per doubling
 * up to 1 MiB (at most 25% rounding).  Class c < 64 is (c + 1) * 16 bytes. */
#define ML_CHUNK_FINE 1024
#define ML_CHUNK_CLASSES 104
#define ML_CHUNK_CLASS_MAX ((size_t)1 << 20)

/* The first 64 bytes of every chunk. */
struct ml_chunk {
    uint64_t magic;
    int64_t live;          /* biased, see above; atomic */
    struct ml_chunk *next; /* spare list */
    size_t charged;        /* arena: budget still held by the blocks, set at retire */
    const void *owner;     /* the ml_chunk_tls of the thread that carves it; atomic */
    char pad[64 - 40];
};
#define ML_CHUNK_DATA (sizeof(struct ml_chunk))

/* 16 bytes before every chunk block. */
struct ml_chunk_blk {
    uint32_t size;  /* usable bytes: ml_chunk_class_size(cls) */
    uint32_t prev;  /* bytes back to the previous block's header; 0: first */
    uint32_t cls;   /* size class */
    uint32_t state; /* ML_CHUNK_LIVE, _LISTED or _FREED; atomic */
};

/* The first 8 bytes of a listed block.  The lists are singly linked, so
 * a push and a pop write one link; a rollback that meets a listed block
 * looks for it among the first ML_CHUNK_UNLINK_SCAN entries of its list
 * (in stack and FIFO order it is the head) and stops there when it is
 * deeper, leaving it listed. */
struct ml_chunk_link {
    struct ml_chunk_link *next;
};
#define ML_CHUNK_UNLINK_SCAN 8

/* Freed large mappings kept for reuse: at most this many, this many bytes
 * in all, each served only to a request of at least half its size. */
#define ML_CHUNK_BIGCACHE 8
#define ML_CHUNK_BIGCACHE_BYTES ((size_t)32 << 20)

/* The global part: spare chunks and cached large mappings. */
struct ml_chunk_pool {
    ml_mutex lock; /* guards everything below */
    struct ml_chunk *spare;
    unsigned nspare;
    unsigned nbig;                      /* cached mappings, oldest first */
    size_t big_bytes;                   /* their sizes summed */
    char *big_base[ML_CHUNK_BIGCACHE];  /* still registered to the backend */
    size_t big_size[ML_CHUNK_BIGCACHE]; /* bytes mapped */
};

/* The calling thread's current chunk and free lists.  The preload shim's
 * fused fast path (ml_chunk_malloc_fast, ml_chunk_free_fast) reads and
 * writes it inline, as the backend's own slots do. */
struct ml_chunk_tls {
    struct ml_chunk_link *free[ML_CHUNK_CLASSES]; /* LISTED blocks, LIFO; first, so the index folds */
    char *cur, *end;                              /* the free part of the chunk */
    struct ml_chunk *chunk;                       /* NULL: none yet, or retired */
    uintptr_t hi;                                 /* chunk | (chunk size - 1); 0 without a chunk */
    struct ml_chunk_blk *last;                    /* the most recent block not rolled back */
    char *clean;                                  /* [max(clean, cur), end) was never written */
    int64_t count;                                /* own carves - own rollbacks in chunk */
    int attached;                                 /* ml_backend_watch_thread called since thread_exit */
    size_t charged;                               /* arena with a budget: usable bytes not rolled back */
};

static inline size_t ml_chunk_round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* The class of a request of n bytes, 0 < n <= ML_CHUNK_CLASS_MAX. */
static inline unsigned ml_chunk_class(size_t n)
{
    if (n <= ML_CHUNK_FINE)
        return (unsigned)((n + 15) >> 4) - 1;
    size_t m = n - 1;
    unsigned b = 63 - (unsigned)__builtin_clzll(m); /* 2^b <= m < 2^(b+1), b >= 10 */
    return 64 + (b - 10) * 4 + (unsigned)((m >> (b - 2)) & 3);
}

static inline size_t ml_chunk_class_size(unsigned c)
{
    if (c < 64)
        return (size_t)(c + 1) << 4;
    unsigned b = 10 + (c - 64) / 4, k = (c - 64) % 4;
    return ((size_t)1 << b) + ((size_t)(k + 1) << (b - 2));
}

static inline struct ml_chunk *ml_chunk_of(const void *p, size_t chunk_size)
{
    return (struct ml_chunk *)((uintptr_t)p & ~(chunk_size - 1));
}

static inline struct ml_chunk_blk *ml_chunk_blk_of(const void *p)
{
    return (struct ml_chunk_blk *)((uintptr_t)p - ML_CHUNK_HDR);
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

/* ---- free lists --------------------------------------------------------- */

/* The head of class c's list, or NULL. */
static inline void *ml_chunk_pop(struct ml_chunk_tls *t, unsigned c)
{
    struct ml_chunk_link *l = t->free[c];
    if (!l)
        return NULL;
    t->free[c] = l->next;
    /* No stale link for the leak scan to read as a pointer (HAZARDS 20). */
    l->next = NULL;
    __atomic_store_n(&ml_chunk_blk_of(l)->state, ML_CHUNK_LIVE, __ATOMIC_RELAXED);
    return l;
}

/* p, a live block of a chunk t owns, goes onto its class's list. */
static inline void ml_chunk_push(struct ml_chunk_tls *t, struct ml_chunk_blk *h, void *p)
{
    struct ml_chunk_link *l = p;
    l->next = t->free[h->cls];
    t->free[h->cls] = l;
    __atomic_store_n(&h->state, ML_CHUNK_LISTED, __ATOMIC_RELAXED);
}

/* Takes the listed block h off its class's list: 1, or 0 when it is not
 * among the list's first ML_CHUNK_UNLINK_SCAN entries (it stays listed). */
static inline int ml_chunk_unlink(struct ml_chunk_tls *t, struct ml_chunk_blk *h)
{
    struct ml_chunk_link *l = (struct ml_chunk_link *)(h + 1), **pp = &t->free[h->cls];
    for (int i = 0; i < ML_CHUNK_UNLINK_SCAN && *pp; i++, pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            l->next = NULL;
            return 1;
        }
    return 0;
}

/* The header carved before h in the current chunk, or NULL: h is first. */
static inline struct ml_chunk_blk *ml_chunk_prev(const struct ml_chunk_tls *t, const struct ml_chunk_blk *h)
{
    uint32_t lo = h->prev;
    if (!lo)
        return NULL;
    return (struct ml_chunk_blk *)((char *)t->chunk + (uint32_t)(lo - (uint32_t)(uintptr_t)t->chunk));
}

/* ---- carving and rolling back -------------------------------------------- */

/* Carves a block of class c (n = its size) aligned to align (>= 16) from
 * the current chunk, or NULL when it does not fit. */
static inline void *ml_chunk_carve(struct ml_chunk_tls *t, size_t align, unsigned c, size_t n)
{
    uintptr_t p = ((uintptr_t)t->cur + ML_CHUNK_HDR + align - 1) & ~(uintptr_t)(align - 1);
    if (!t->chunk || p + n > (uintptr_t)t->end)
        return NULL;
    struct ml_chunk_blk *h = ml_chunk_blk_of((void *)p);
    h->size = (uint32_t)n;
    h->prev = (uint32_t)(uintptr_t)t->last;
    h->cls = c;
    __atomic_store_n(&h->state, ML_CHUNK_LIVE, __ATOMIC_RELAXED);
    t->cur = (char *)(p + n);
    t->last = h;
    t->count++;
    return (void *)p;
}

/* The fast path's carve: a block of fine class c (16-byte aligned, n =
 * (c + 1) * 16 bytes) from the current chunk's tail, or NULL when it does
 * not fit (no chunk: cur == end). */
static inline void *ml_chunk_carve_fine(struct ml_chunk_tls *t, unsigned c)
{
    size_t n = (size_t)(c + 1) << 4;
    if (ML_UNLIKELY((size_t)(t->end - t->cur) < n + ML_CHUNK_HDR))
        return NULL;
    struct ml_chunk_blk *h = (struct ml_chunk_blk *)t->cur;
    h->size = (uint32_t)n;
    h->prev = (uint32_t)(uintptr_t)t->last;
    h->cls = c;
    __atomic_store_n(&h->state, ML_CHUNK_LIVE, __ATOMIC_RELAXED);
    t->cur += n + ML_CHUNK_HDR;
    t->last = h;
    t->count++;
    return h + 1;
}

/* h, the most recent block of the current chunk, is being freed by its
 * owner: move the bump pointer below it and below every freed block under
 * it (listed ones leave their lists; one deeper than ML_CHUNK_UNLINK_SCAN
 * in its list stops the walk).  Returns the usable bytes rolled back. */
static inline size_t ml_chunk_rollback(struct ml_chunk_tls *t, struct ml_chunk_blk *h)
{
    size_t back = h->size;
    __atomic_store_n(&h->state, ML_CHUNK_FREED, __ATOMIC_RELAXED);
    t->count--;
    struct ml_chunk_blk *prev;
    for (;;) {
        prev = ml_chunk_prev(t, h);
        if (!prev)
            break;
        uint32_t s = __atomic_load_n(&prev->state, __ATOMIC_ACQUIRE);
        if (s == ML_CHUNK_LISTED) {
            if (!ml_chunk_unlink(t, prev))
                break;
            __atomic_store_n(&prev->state, ML_CHUNK_FREED, __ATOMIC_RELAXED);
            t->count--;
        } else if (s != ML_CHUNK_FREED) {
            break;
        }
        back += prev->size;
        h = prev;
    }
    ml_chunk_mark(t);
    t->cur = prev ? (char *)(prev + 1) + prev->size : (char *)t->chunk + ML_CHUNK_DATA;
    t->last = prev;
    return back;
}

/* ---- the fused fast path ----------------------------------------------- */

/* For the preload shim (preload/fast.h), when the active backend is bare
 * bump, or bare arena without a budget: malloc and free of small blocks
 * done inline on the thread's state, with no indirect call and no owner
 * map lookup.  What these cannot finish they leave untouched, and the
 * backend's own slots then do the whole job. */

/* The two backends' chunk sizes (their header comments say why). */
#define ML_BUMP_CHUNK ((size_t)1 << 20)
#define ML_ARENA_CHUNK ((size_t)4 << 20)

/* The two backends' thread state (bump.c, arena.c) and their rollbacks,
 * which also refund arena's budget. */
extern ML_TLS struct ml_chunk_tls ml_bump_tls ML_HIDDEN;
extern ML_TLS struct ml_chunk_tls ml_arena_tls ML_HIDDEN;
extern int ml_arena_limited ML_HIDDEN; /* MALLARD_ARENA_LIMIT set: no fused path */
void ml_bump_rollback(struct ml_chunk_tls *t, struct ml_chunk_blk *h) ML_HIDDEN;
void ml_arena_rollback(struct ml_chunk_tls *t, struct ml_chunk_blk *h) ML_HIDDEN;
/* Their free slots past ml_chunk_free_fast: any pointer but NULL, ignoring
 * what is not theirs. */
void ml_bump_free_slow(void *p) ML_HIDDEN;
void ml_arena_free_slow(void *p) ML_HIDDEN;

/* (n + 15) / 16 for a request of n bytes: class + 1 when it is 1 to
 * ML_CHUNK_FINE / 16, the fast path's sizes (a wrapped n + 15 gives 0). */
static inline size_t ml_chunk_fine_index(size_t n) { return (n + 15) >> 4; }
#define ML_CHUNK_FINE_INDEX_OK(i) ML_LIKELY((i)-1 < ML_CHUNK_FINE / 16)

/* ML_CHUNK_FINE_INDEX_OK(i).  A listed block of class i - 1, or one carved
 * from the current chunk's tail; NULL when neither is at hand.  clear (a
 * constant) 0 leaves a reused block's stale link in place: for the shim's
 * fused path, which runs with no tracer and so no leak scan to misread it
 * (HAZARDS 20); the backends' slots, which a tracer may wrap, pass 1. */
static inline void *ml_chunk_malloc_fast(struct ml_chunk_tls *t, size_t i, int clear)
{
    struct ml_chunk_link *l = t->free[i - 1];
    if (ML_LIKELY(l)) {
        t->free[i - 1] = l->next;
        if (clear)
            l->next = NULL;
        __atomic_store_n(&ml_chunk_blk_of(l)->state, ML_CHUNK_LIVE, __ATOMIC_RELAXED);
        return l;
    }
    return ml_chunk_carve_fine(t, (unsigned)(i - 1));
}

/* Frees p and returns 1 when p is a live block of the calling thread's
 * current chunk (chunk_size: the backend's): it goes onto its class's list
 * or, the most recent block, is rolled back: inline when the block below
 * it is live and quick (a constant) says no budget is to be refunded,
 * else by rollback(t, h), out of line.  Anything else returns 0 untouched:
 * NULL, another chunk's or mapping's block, a pointer that is no block. */
static inline int ml_chunk_free_fast(struct ml_chunk_tls *t, void *p, size_t chunk_size, int quick,
                                     void (*rollback)(struct ml_chunk_tls *, struct ml_chunk_blk *))
{
    uintptr_t a = (uintptr_t)p;
    /* p is in (chunk, chunk + chunk_size]: its header is in the chunk.  One
     * at an aligned offset below ML_CHUNK_DATA + ML_CHUNK_HDR finds its
     * state word in struct ml_chunk (magic's high half, charged's high
     * half, pad), never ML_CHUNK_LIVE: the slow path then says it is no
     * block. */
    if (ML_UNLIKELY(((a - 1) | (chunk_size - 1)) != t->hi || (a & 15)))
        return 0;
    struct ml_chunk_blk *h = ml_chunk_blk_of(p);
    if (ML_UNLIKELY(__atomic_load_n(&h->state, __ATOMIC_RELAXED) != ML_CHUNK_LIVE))
        return 0;
    if (ML_LIKELY(h != t->last)) {
        ml_chunk_push(t, h, p);
        return 1;
    }
    /* Stack order: one step of ml_chunk_rollback, when it is the only one. */
    struct ml_chunk_blk *prev = ml_chunk_prev(t, h);
    if (quick && prev && __atomic_load_n(&prev->state, __ATOMIC_RELAXED) == ML_CHUNK_LIVE) {
        __atomic_store_n(&h->state, ML_CHUNK_FREED, __ATOMIC_RELAXED);
        t->count--;
        ml_chunk_mark(t);
        t->cur = (char *)(prev + 1) + prev->size;
        t->last = prev;
        return 1;
    }
    rollback(t, h);
    return 1;
}

/* ---- chunks ------------------------------------------------------------- */

/* Bytes mapped but holding no block: spare chunks and cached large
 * mappings (mallinfo's free bytes). */
static inline size_t ml_chunk_pool_free_bytes(struct ml_chunk_pool *pool, size_t chunk_size)
{
    ml_mutex_lock(&pool->lock);
    size_t n = (size_t)pool->nspare * chunk_size + pool->big_bytes;
    ml_mutex_unlock(&pool->lock);
    return n;
}

/* The calling thread's share of free bytes: its current chunk's untouched
 * tail and the blocks on its free lists (other threads' are counted as in
 * use, as glibc counts other threads' tcaches). */
static inline size_t ml_chunk_tls_free_bytes(const struct ml_chunk_tls *t)
{
    size_t n = t->chunk && t->end > t->cur ? (size_t)(t->end - t->cur) : 0;
    for (unsigned c = 0; c < ML_CHUNK_CLASSES; c++)
        for (const struct ml_chunk_link *l = t->free[c]; l; l = l->next)
            n += ml_chunk_class_size(c);
    return n;
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
    t->hi = 0;
    t->cur = t->end = t->clean = NULL;
    t->last = NULL;
    int64_t left = __atomic_add_fetch(&c->live, t->count - ML_CHUNK_BIAS, __ATOMIC_ACQ_REL);
    t->count = 0;
    return left == 0 ? c : NULL;
}

/* A block given back to c's count by a thread that does not carve in c:
 * 1 when it was the last block and the caller must release c. */
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
    __atomic_store_n(&c->owner, (const void *)t, __ATOMIC_RELAXED);
    t->chunk = c;
    t->hi = (uintptr_t)c | (chunk_size - 1);
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

/* Thread exit, after the current chunk is retired: every listed block goes
 * back to its chunk's count.  Calls release(chunk) for each chunk that
 * empties. */
static inline void ml_chunk_drain(struct ml_chunk_tls *t, size_t chunk_size,
                                  void (*release)(struct ml_chunk *))
{
    for (unsigned c = 0; c < ML_CHUNK_CLASSES; c++) {
        struct ml_chunk_link *l = t->free[c];
        t->free[c] = NULL;
        while (l) {
            struct ml_chunk_link *next = l->next;
            __atomic_store_n(&ml_chunk_blk_of(l)->state, ML_CHUNK_FREED, __ATOMIC_RELEASE);
            struct ml_chunk *ch = ml_chunk_of(l, chunk_size);
            if (ml_chunk_put_remote(ch))
                release(ch);
            l = next;
        }
    }
}

/* Clears the first size bytes of p, just carved from t's chunk, where the
 * chunk was written before. */
static inline void ml_chunk_zero(const struct ml_chunk_tls *t, void *p, size_t size)
{
    char *clean = t->clean;
    if ((char *)p < clean)
        memset(p, 0, (size_t)(clean - (char *)p) < size ? (size_t)(clean - (char *)p) : size);
}

/* 32 bytes before every large block. */
struct ml_chunk_big {
    uint64_t map_size; /* bytes mapped, from base */
    uint64_t offset;   /* block - base */
    uint64_t size;     /* usable bytes as the backend counts them */
    uint32_t spare;
    uint32_t state; /* the backend's BIG word */
};
#define ML_CHUNK_BIG_HDR (sizeof(struct ml_chunk_big))

static inline struct ml_chunk_big *ml_chunk_big_of(const void *p)
{
    return (struct ml_chunk_big *)((uintptr_t)p - ML_CHUNK_BIG_HDR);
}

/* A cached mapping of at least map_size bytes and at most twice that,
 * removed from the cache, or NULL.  *got is its size. */
static inline char *ml_chunk_big_reuse(struct ml_chunk_pool *pool, size_t map_size, size_t *got)
{
    char *base = NULL;
    ml_mutex_lock(&pool->lock);
    unsigned best = ML_CHUNK_BIGCACHE;
    for (unsigned i = 0; i < pool->nbig; i++)
        if (pool->big_size[i] >= map_size && pool->big_size[i] / 2 <= map_size &&
            (best == ML_CHUNK_BIGCACHE || pool->big_size[i] < pool->big_size[best]))
            best = i;
    if (best < ML_CHUNK_BIGCACHE) {
        base = pool->big_base[best];
        *got = pool->big_size[best];
        pool->big_bytes -= *got;
        __atomic_store_n(&pool->nbig, pool->nbig - 1, __ATOMIC_RELAXED); /* peeked without the lock */
        for (unsigned i = best; i < pool->nbig; i++) {
            pool->big_base[i] = pool->big_base[i + 1];
            pool->big_size[i] = pool->big_size[i + 1];
        }
    }
    ml_mutex_unlock(&pool->lock);
    return base;
}

/* A mapping of its own for a large block, from the cache when one fits
 * (its bytes then cleared when zero); NULL when the kernel refuses. */
static inline void *ml_chunk_big_alloc(struct ml_chunk_pool *pool, size_t align, size_t usable,
                                       uint32_t state, enum ml_owner owner, int zero)
{
    size_t offset = align > ML_CHUNK_BIG_HDR ? align : ML_CHUNK_BIG_HDR;
    size_t map_size = (offset + usable + ML_OS_GRANULE - 1) & ~(ML_OS_GRANULE - 1);
    char *base = NULL;
    if (align <= ML_OS_GRANULE &&
        __atomic_load_n(&pool->nbig, __ATOMIC_RELAXED)) /* a peek; the lock decides */
        base = ml_chunk_big_reuse(pool, map_size, &map_size);
    if (base) {
        if (zero)
            memset(base + offset, 0, usable);
    } else {
        base = ml_os_map_user(map_size, align, owner, 0);
        if (!base)
            return NULL;
    }
    struct ml_chunk_big *b = ml_chunk_big_of(base + offset);
    b->map_size = map_size;
    b->offset = offset;
    b->size = usable;
    __atomic_store_n(&b->state, state, __ATOMIC_RELAXED);
    return base + offset;
}

/* Gives the mapping of the large block p back: into the cache, evicting
 * the oldest entries past its limits, or unmapped. */
static inline void ml_chunk_big_free(struct ml_chunk_pool *pool, void *p, struct ml_chunk_big *b)
{
    char *base = (char *)p - b->offset;
    size_t size = b->map_size;
    __atomic_store_n(&b->state, 0, __ATOMIC_RELAXED); /* a second free finds no block */
    char *out[ML_CHUNK_BIGCACHE + 1];
    size_t out_size[ML_CHUNK_BIGCACHE + 1];
    unsigned nout = 0;
    if (size > ML_CHUNK_BIGCACHE_BYTES / 2) {
        out[nout] = base;
        out_size[nout++] = size;
    } else {
        ml_mutex_lock(&pool->lock);
        while (pool->nbig &&
               (pool->nbig == ML_CHUNK_BIGCACHE || pool->big_bytes + size > ML_CHUNK_BIGCACHE_BYTES)) {
            out[nout] = pool->big_base[0];
            out_size[nout++] = pool->big_size[0];
            pool->big_bytes -= pool->big_size[0];
            __atomic_store_n(&pool->nbig, pool->nbig - 1, __ATOMIC_RELAXED);
            for (unsigned i = 0; i < pool->nbig; i++) {
                pool->big_base[i] = pool->big_base[i + 1];
                pool->big_size[i] = pool->big_size[i + 1];
            }
        }
        pool->big_base[pool->nbig] = base;
        pool->big_size[pool->nbig] = size;
        __atomic_store_n(&pool->nbig, pool->nbig + 1, __ATOMIC_RELAXED);
        pool->big_bytes += size;
        ml_mutex_unlock(&pool->lock);
    }
    for (unsigned i = 0; i < nout; i++)
        ml_os_unmap_user(out[i], out_size[i]);
}

/* Resizes the large block p (from ml_chunk_big_alloc with align <= 16) to
 * usable bytes by remapping, without copying.  Returns the block, maybe
 * moved, or NULL with p intact. */
static inline void *ml_chunk_big_resize(void *p, size_t usable, enum ml_owner owner)
{
    struct ml_chunk_big *b = ml_chunk_big_of(p);
    size_t offset = b->offset;
    size_t map_size = (offset + usable + ML_OS_GRANULE - 1) & ~(ML_OS_GRANULE - 1);
    char *base = ml_os_remap_user((char *)p - offset, b->map_size, map_size, owner);
    if (!base)
        return NULL;
    b = ml_chunk_big_of(base + offset);
    b->map_size = map_size;
    b->size = usable;
    return base + offset;
}

/* atfork for the pool's lock. */
static inline void ml_chunk_atfork(struct ml_chunk_pool *pool, int phase)
{
    ml_lock_atfork(&pool->lock, phase);
}

#endif
