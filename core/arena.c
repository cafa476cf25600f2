/* core/arena.c: the arena backend (MALLARD_BACKEND=arena).
 *
 * Algorithm: region allocation with per-thread reuse.  Each thread bumps a
 * pointer, kept in thread-local storage, through its own ML_ARENA_CHUNK-byte
 * chunk (aligned to its size).  A block is the 16-byte header of
 * core/chunk.h (usable size, distance back to the previous block's header,
 * size class, state word) followed by the user's bytes, rounded up to its
 * size class.
 *   - Freeing the most recent block of the calling thread's current chunk
 *     rolls the bump pointer back over it and over every freed block right
 *     below it (the back links make this a walk), so stack-ordered and
 *     FIFO-ordered lifetimes give their memory straight back.  realloc of
 *     the most recent block grows or shrinks it in place.
 *   - Any other block freed by the thread that carves its chunk goes onto
 *     that thread's list for its class and serves the next request of that
 *     class (no splitting, no coalescing).  A block freed by another thread
 *     goes back to its chunk's count.
 *   - A chunk whose blocks are all freed is released as a whole: it goes to
 *     a short list of spare chunks, or is unmapped past ARENA_SPARE_MAX.
 *     Live counting is the biased count of core/chunk.h, which holds the
 *     chunk lifecycle shared with bump.c; arena adds the budget on top.
 *   - Live blocks are never unmapped before the process ends: later
 *     destructors may still read them.  Only fully-freed chunks and freed
 *     large blocks go back.
 *   - Requests above ARENA_SMALL_MAX get their own mapping, unmapped on free.
 *   - MALLARD_ARENA_LIMIT is a budget on the memory the arena holds for
 *     blocks: the usable bytes (request rounded up to its class) of blocks
 *     carved and not yet rolled back or released.  A block waiting on a free
 *     list is still held, and reusing it costs nothing.  With a limit every
 *     carve is charged on one shared atomic, so the limit is exact to the
 *     block; without one the hot path never touches it.
 * Chunk size: 4 MiB.  Big chunks keep mmap, page-table setup and the
 * spare-list lock rare.  The cost is up to 4 MiB held per thread and per
 * chunk pinned by one survivor.
 * Invariants: every block is 16-byte aligned; the 32-bit word just before a
 * block is its state (ML_CHUNK_LIVE / _LISTED / _FREED for chunk blocks,
 * ARENA_BIG for large ones); the owner map says ML_OWNER_ARENA for chunks
 * and ML_OWNER_ARENA_LARGE for large mappings, and pointers of anyone else
 * are ignored unread.
 * Trade-off: allocation is a pop or an add and a compare, free a header
 * check and a push; in exchange a freed block serves only its own class,
 * and memory freed by other threads is only recovered a whole chunk at a
 * time.  With no decorator and no budget the preload shim does malloc and
 * free of small blocks inline (chunk.h's fused fast path, on
 * ml_arena_tls), calling ml_arena_free_slow for the rest.
 */
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "chunk.h"
#include "fmt.h"
#include "options.h"
#include "os.h"

#define ARENA_SMALL_MAX (ML_ARENA_CHUNK / 4)
#define ARENA_SPARE_MAX 4
#define ARENA_CHUNK_MAGIC 0x6d6c6172656e6163ull
#define ARENA_BIG 0xa7e4b165u

static struct {
    size_t limit; /* 0: no budget */
    struct ml_chunk_pool pool;
    int said_bad_free;
    char pad[64];
    size_t used; /* budget charged; atomic, own cache line */
} arena;

/* The calling thread's chunk and lists; charged (the usable bytes of its
 * blocks not rolled back) is kept only under a budget.  Not static: the
 * preload shim's fused fast path (chunk.h) works on it inline. */
ML_TLS struct ml_chunk_tls ml_arena_tls ML_HIDDEN;
int ml_arena_limited ML_HIDDEN;

static inline struct ml_chunk *chunk_of(const void *p) { return ml_chunk_of(p, ML_ARENA_CHUNK); }

static inline struct ml_chunk_blk *hdr_of(const void *p) { return ml_chunk_blk_of(p); }

static __attribute__((noinline)) void ar_bad_free(const void *p)
{
    ml_chunk_bad_free(&arena.said_bad_free, "arena", p);
}

/* ---- the budget ------------------------------------------------------- */

static int ar_charge(size_t n)
{
    size_t used = __atomic_load_n(&arena.used, __ATOMIC_RELAXED);
    do {
        if (n > arena.limit - used)
            return 0;
    } while (
        !__atomic_compare_exchange_n(&arena.used, &used, used + n, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return 1;
}

static inline void ar_refund(size_t n)
{
    if (arena.limit && n)
        __atomic_sub_fetch(&arena.used, n, __ATOMIC_RELAXED);
}

/* ---- chunks ----------------------------------------------------------- */

static __attribute__((noinline)) void ar_release(struct ml_chunk *c)
{
    ar_refund(c->charged);
    ml_chunk_recycle(&arena.pool, c, ML_ARENA_CHUNK, ARENA_SPARE_MAX);
}

static void ar_retire(struct ml_chunk_tls *t)
{
    struct ml_chunk *c = ml_chunk_retire(t, t->charged);
    t->charged = 0;
    if (c)
        ar_release(c);
}

/* Makes the current chunk one with room for any small request. */
static int ar_refill(struct ml_chunk_tls *t)
{
    if (t->chunk && ml_chunk_empty(t)) {
        /* Everything was freed, some of it by other threads: start over. */
        ar_refund(t->charged);
        t->charged = 0;
        ml_chunk_restart(t);
        return 0;
    }
    ar_retire(t);
    t->charged = 0;
    return ml_chunk_take(&arena.pool, t, ML_ARENA_CHUNK, ARENA_CHUNK_MAGIC, ML_OWNER_ARENA);
}

/* h, the most recent block of the current chunk, is being freed by its
 * owner: roll back over it and the freed blocks under it, refunding them.
 * Out of line, so that free's common path (a push) stays a leaf; the
 * shim's fused free calls it too. */
__attribute__((noinline)) void ml_arena_rollback(struct ml_chunk_tls *t, struct ml_chunk_blk *h)
{
    size_t back = ml_chunk_rollback(t, h);
    t->charged -= back;
    ar_refund(back);
}

/* ---- large blocks ----------------------------------------------------- */

static __attribute__((noinline)) void *ar_big_alloc(size_t align, size_t size, int zero)
{
    if (size > ((size_t)1 << 46))
        return NULL;
    size_t n = ml_chunk_round16(size);
    if (arena.limit && !ar_charge(n))
        return NULL;
    void *p = ml_chunk_big_alloc(&arena.pool, align, n, ARENA_BIG, ML_OWNER_ARENA_LARGE, zero);
    if (!p)
        ar_refund(n);
    return p;
}

static __attribute__((noinline)) void ar_big_free(void *p, struct ml_chunk_big *b)
{
    ar_refund(b->size);
    ml_chunk_big_free(&arena.pool, p, b);
}

/* A block of a chunk the calling thread does not carve in: back to the
 * chunk's count. */
static __attribute__((noinline)) void ar_free_remote(struct ml_chunk *c, struct ml_chunk_blk *h)
{
    __atomic_store_n(&h->state, ML_CHUNK_FREED, __ATOMIC_RELEASE);
    if (ml_chunk_put_remote(c))
        ar_release(c);
}

/* An ARENA_LARGE pointer is one of ours if its header is in the same
 * mapping and says so. */
static struct ml_chunk_big *ar_big_check(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if ((a & 15) || ((a & (ML_OS_GRANULE - 1)) < ML_CHUNK_BIG_HDR &&
                     ml_os_owner((void *)(a - ML_CHUNK_BIG_HDR)) != ML_OWNER_ARENA_LARGE))
        return NULL;
    struct ml_chunk_big *b = ml_chunk_big_of(p);
    return b->state == ARENA_BIG ? b : NULL;
}

/* An ARENA pointer (in a chunk) is a block if it is aligned and past the
 * chunk's header: its block header is then readable. */
static inline int ar_chunk_ptr(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return !(a & 15) && (a & (ML_ARENA_CHUNK - 1)) >= ML_CHUNK_DATA + ML_CHUNK_HDR;
}

/* ---- the interface ---------------------------------------------------- */

static int ar_init(const struct ml_options *opt)
{
    ml_os_page_size();
    arena.limit = opt->arena_limit;
    ml_arena_limited = arena.limit != 0;
    return 0;
}

/* Takes a listed block of class c or carves one aligned to align (>= 16)
 * from the current chunk, charging the budget for a carve and refilling
 * the chunk when it is full.  The class size plus align fits in
 * ARENA_SMALL_MAX. */
static __attribute__((noinline)) void *ar_slow(size_t align, unsigned c)
{
    struct ml_chunk_tls *t = &ml_arena_tls;
    if (align <= 16) {
        void *p = ml_chunk_pop(t, c);
        if (p)
            return p;
    }
    size_t n = ml_chunk_class_size(c);
    if (arena.limit && !ar_charge(n))
        return NULL;
    for (int tries = 0; tries < 2; tries++) {
        void *p = ml_chunk_carve(t, align, c, n);
        if (p) {
            t->charged += n;
            return p;
        }
        if (ar_refill(t))
            break;
    }
    ar_refund(n);
    return NULL;
}

static void *ar_malloc(size_t size)
{
    struct ml_chunk_tls *t = &ml_arena_tls;
    if (ML_LIKELY(size <= ML_CHUNK_FINE)) {
        unsigned c = (unsigned)((size + 15) >> 4) - 1;
        if (ML_LIKELY(!arena.limit)) {
            void *p = ml_chunk_malloc_fast(t, ml_chunk_fine_index(size), 1);
            if (ML_LIKELY(p))
                return p;
        }
        return ar_slow(16, c);
    }
    if (size <= ARENA_SMALL_MAX)
        return ar_slow(16, ml_chunk_class(size));
    return ar_big_alloc(16, size, 0);
}

static void *ar_memalign(size_t align, size_t size)
{
    if (align <= 16)
        return ar_malloc(size);
    if (size <= ARENA_SMALL_MAX) {
        unsigned c = ml_chunk_class(size);
        if (align <= ARENA_SMALL_MAX - ml_chunk_class_size(c))
            return ar_slow(align, c);
    }
    return ar_big_alloc(align, size, 0);
}

static void *ar_zalloc(size_t size)
{
    if (size > ARENA_SMALL_MAX)
        return ar_big_alloc(16, size, 1);
    unsigned c = ml_chunk_class(size);
    void *p = ml_chunk_pop(&ml_arena_tls, c);
    if (p)
        return memset(p, 0, size);
    p = ar_slow(16, c);
    if (p)
        ml_chunk_zero(&ml_arena_tls, p, size);
    return p;
}

/* free past ml_chunk_free_fast: blocks of other chunks and large ones, and
 * pointers that are no live block.  The shim's fused free calls it
 * directly. */
__attribute__((noinline)) void ml_arena_free_slow(void *p)
{
    enum ml_owner owner = ml_os_owner(p);
    if (ML_LIKELY(owner == ML_OWNER_ARENA)) {
        if (ML_UNLIKELY(!ar_chunk_ptr(p)))
            return ar_bad_free(p);
        struct ml_chunk_blk *h = hdr_of(p);
        if (ML_UNLIKELY(__atomic_load_n(&h->state, __ATOMIC_RELAXED) != ML_CHUNK_LIVE))
            return ar_bad_free(p);
        struct ml_chunk *c = chunk_of(p);
        struct ml_chunk_tls *t = &ml_arena_tls;
        if (ML_LIKELY(__atomic_load_n(&c->owner, __ATOMIC_RELAXED) == t)) {
            if (h == t->last && c == t->chunk)
                ml_arena_rollback(t, h);
            else
                ml_chunk_push(t, h, p);
            return;
        }
        return ar_free_remote(c, h);
    }
    if (owner == ML_OWNER_ARENA_LARGE) {
        struct ml_chunk_big *b = ar_big_check(p);
        if (!b)
            return ar_bad_free(p);
        ar_big_free(p, b);
    }
}

static void ar_free(void *p)
{
    if (ML_LIKELY(ml_chunk_free_fast(&ml_arena_tls, p, ML_ARENA_CHUNK, !arena.limit, ml_arena_rollback)))
        return; /* a block of the current chunk */
    ml_arena_free_slow(p);
}

static size_t ar_usable_size(const void *p)
{
    enum ml_owner owner = ml_os_owner(p);
    if (owner == ML_OWNER_ARENA) {
        if (!ar_chunk_ptr(p))
            return 0;
        const struct ml_chunk_blk *h = hdr_of(p);
        return __atomic_load_n(&h->state, __ATOMIC_RELAXED) == ML_CHUNK_LIVE ? h->size : 0;
    }
    if (owner == ML_OWNER_ARENA_LARGE) {
        const struct ml_chunk_big *b = ar_big_check(p);
        return b ? b->size : 0;
    }
    return 0;
}

static void *ar_move(void *p, size_t old, size_t size)
{
    void *q = ar_malloc(size);
    if (!q)
        return NULL;
    memcpy(q, p, old < size ? old : size);
    ar_free(p);
    return q;
}

/* Resizes a block in place from old to n usable bytes, settling the budget;
 * 0 when the budget refuses. */
static int ar_resize_charge(size_t old, size_t n)
{
    if (n > old)
        return !arena.limit || ar_charge(n - old);
    ar_refund(old - n);
    return 1;
}

static void *ar_realloc(void *p, size_t size)
{
    size_t old = ar_usable_size(p);
    if (!old)
        return NULL; /* not a live block of ours */
    if (size > ((size_t)1 << 46))
        return NULL;
    if (ml_os_owner(p) == ML_OWNER_ARENA_LARGE) {
        /* Stay in the mapping unless that would waste more than half. */
        size_t n = ml_chunk_round16(size);
        struct ml_chunk_big *b = ml_chunk_big_of(p);
        size_t cap = b->map_size - b->offset;
        if (n <= cap && n > cap / 2) {
            if (!ar_resize_charge(b->size, n))
                return NULL;
            b->size = n;
            return p;
        }
        if (size > ARENA_SMALL_MAX && b->offset == ML_CHUNK_BIG_HDR) {
            size_t was = b->size;
            if (n > was && arena.limit && !ar_charge(n - was))
                return NULL;
            void *q = ml_chunk_big_resize(p, n, ML_OWNER_ARENA_LARGE);
            if (!q && n > was)
                ar_refund(n - was);
            if (q && n < was)
                ar_refund(was - n);
            return q;
        }
        return ar_move(p, old, size);
    }
    struct ml_chunk_tls *t = &ml_arena_tls;
    struct ml_chunk_blk *h = hdr_of(p);
    if (h == t->last && size <= ARENA_SMALL_MAX && chunk_of(p) == t->chunk) {
        unsigned c = ml_chunk_class(size);
        size_t n = ml_chunk_class_size(c);
        if (n <= (size_t)(t->end - (char *)p)) {
            if (!ar_resize_charge(h->size, n))
                return NULL;
            t->charged = t->charged - h->size + n;
            ml_chunk_mark(t);
            t->cur = (char *)p + n;
            h->size = (uint32_t)n;
            h->cls = c;
            return p;
        }
    }
    if (size <= old)
        return p;
    return ar_move(p, old, size);
}

static void ar_thread_exit(void)
{
    ar_retire(&ml_arena_tls);
    ml_chunk_drain(&ml_arena_tls, ML_ARENA_CHUNK, ar_release);
    ml_arena_tls.attached = 0;
}

static void ar_atfork(int phase) { ml_chunk_atfork(&arena.pool, phase); }

static size_t ar_free_bytes(void)
{
    return ml_chunk_pool_free_bytes(&arena.pool, ML_ARENA_CHUNK) + ml_chunk_tls_free_bytes(&ml_arena_tls);
}

const struct ml_backend ml_backend_arena = {
    .name = "arena",
    .init = ar_init,
    .malloc = ar_malloc,
    .zalloc = ar_zalloc,
    .memalign = ar_memalign,
    .free = ar_free,
    .realloc = ar_realloc,
    .usable_size = ar_usable_size,
    .free_bytes = ar_free_bytes,
    .thread_exit = ar_thread_exit,
    .atfork = ar_atfork,
};
