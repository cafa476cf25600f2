/* core/arena.c: the arena backend (MALLARD_BACKEND=arena).
 *
 * Algorithm: region allocation.  Each thread bumps a pointer, kept in
 * thread-local storage, through its own ML_ARENA_CHUNK-byte chunk (aligned
 * to its size).  A block is a 16-byte header (usable size, distance back to
 * the previous block's header, state word) followed by the user's bytes.
 *   - free marks the block freed and never reuses it, with one exception:
 *     freeing the most recent block of the calling thread's current chunk
 *     rolls the bump pointer back over it and over every freed block right
 *     below it (the back links make this a walk), so stack-ordered and
 *     FIFO-ordered lifetimes give their memory straight back.  realloc of
 *     the most recent block grows or shrinks it in place.
 *   - A chunk whose blocks are all freed is released as a whole: it goes to
 *     a short list of spare chunks, or is unmapped past ARENA_SPARE_MAX.
 *     Live counting is the biased count of core/chunk.h, which holds the
 *     chunk lifecycle shared with bump.c; arena adds the rollback and the
 *     budget on top.
 *   - Live blocks are never unmapped before the process ends: later
 *     destructors may still read them.  Only fully-freed chunks and freed
 *     large blocks go back.
 *   - Requests above ARENA_SMALL_MAX get their own mapping, unmapped on free.
 *   - MALLARD_ARENA_LIMIT is a budget on the usable bytes (request rounded up
 *     to 16) of blocks handed out and not yet rolled back or released.  With
 *     a limit every block is charged on one shared atomic, so the limit is
 *     exact to the block; without one the hot path never touches it.
 * Chunk size: 4 MiB.  The arena reuses nothing below the bump pointer, so
 * its chunks are consumed quickly; big chunks keep mmap, page-table setup
 * and the spare-list lock rare.  The cost is up to 4 MiB held per thread and
 * per chunk pinned by one survivor.
 * Invariants: every block is 16-byte aligned; the 32-bit word just before a
 * block is its state (ARENA_LIVE / ARENA_FREED for chunk blocks, ARENA_BIG
 * for large ones); chunks and large mappings are both ML_OWNER_ARENA, so the
 * state word tells them apart, and pointers of anyone else are ignored.
 * Trade-off: allocation is an add and a compare, free a header check; in
 * exchange memory freed out of order is only recovered a whole chunk at a
 * time.
 */
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "chunk.h"
#include "fmt.h"
#include "options.h"
#include "os.h"

#define ML_ARENA_CHUNK ((size_t)4 << 20)
#define ARENA_SMALL_MAX (ML_ARENA_CHUNK / 4)
#define ARENA_SPARE_MAX 4
#define ARENA_CHUNK_MAGIC 0x6d6c6172656e6163ull
#define ARENA_LIVE 0xa7e4a11eu
#define ARENA_FREED 0xa7e4f7eeu
#define ARENA_BIG 0xa7e4b165u
#define ARENA_HDR 16

/* 16 bytes before every chunk block. */
struct ar_hdr {
    uint32_t size; /* usable bytes, a multiple of 16 */
    uint32_t prev; /* bytes back to the previous block's header; 0: first */
    uint32_t spare;
    uint32_t state; /* ARENA_LIVE or ARENA_FREED; atomic */
};

static struct {
    size_t limit; /* 0: no budget */
    struct ml_chunk_pool pool;
    int said_bad_free;
    char pad[64];
    size_t used; /* budget charged; atomic, own cache line */
} arena;

struct ar_tls {
    struct ml_chunk_tls c; /* c.last: the most recent block not rolled back */
    size_t charged;        /* usable bytes of blocks not rolled back */
};
static ML_TLS struct ar_tls at;

static inline struct ml_chunk *chunk_of(const void *p) { return ml_chunk_of(p, ML_ARENA_CHUNK); }

static inline struct ar_hdr *hdr_of(const void *p) { return (struct ar_hdr *)((uintptr_t)p - ARENA_HDR); }

static void ar_bad_free(const void *p) { ml_chunk_bad_free(&arena.said_bad_free, "arena", p); }

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

static void ar_retire(struct ar_tls *t)
{
    struct ml_chunk *c = ml_chunk_retire(&t->c, t->charged);
    t->charged = 0;
    if (c)
        ar_release(c);
}

/* Makes the current chunk one with room for any small request. */
static int ar_refill(struct ar_tls *t)
{
    if (t->c.chunk && ml_chunk_empty(&t->c)) {
        /* Everything was freed, some of it by other threads: start over. */
        ar_refund(t->charged);
        t->charged = 0;
        ml_chunk_restart(&t->c);
        return 0;
    }
    ar_retire(t);
    t->charged = 0;
    return ml_chunk_take(&arena.pool, &t->c, ML_ARENA_CHUNK, ARENA_CHUNK_MAGIC, ML_OWNER_ARENA);
}

/* h, the most recent block of the current chunk, was just freed: move the
 * bump pointer below it and below every freed block under it. */
static void ar_rollback(struct ar_tls *t, struct ar_hdr *h)
{
    size_t back = 0;
    struct ar_hdr *prev;
    for (;;) {
        back += h->size;
        prev = h->prev ? (struct ar_hdr *)((char *)h - h->prev) : NULL;
        if (!prev || __atomic_load_n(&prev->state, __ATOMIC_ACQUIRE) != ARENA_FREED)
            break;
        h = prev;
    }
    ml_chunk_mark(&t->c);
    t->c.cur = prev ? (char *)(prev + 1) + prev->size : (char *)t->c.chunk + ML_CHUNK_DATA;
    t->c.last = prev;
    t->charged -= back;
    ar_refund(back);
}

/* ---- large blocks ----------------------------------------------------- */

static void *ar_big_alloc(size_t align, size_t size)
{
    if (size > ((size_t)1 << 46))
        return NULL;
    size_t n = ml_chunk_round16(size);
    if (arena.limit && !ar_charge(n))
        return NULL;
    void *p = ml_chunk_big_alloc(align, n, ARENA_BIG, ML_OWNER_ARENA);
    if (!p)
        ar_refund(n);
    return p;
}

static void ar_big_free(void *p, struct ml_chunk_big *b)
{
    ar_refund(b->size);
    ml_chunk_big_unmap(p, b);
}

/* The state word of p when p may be one of our blocks (it is then readable),
 * else NULL.  Chunk blocks are further checked by ar_chunk_check. */
static uint32_t *ar_state_word(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (ml_os_owner(p) != ML_OWNER_ARENA || (a & 15))
        return NULL;
    if ((a & (ML_OS_GRANULE - 1)) < ML_CHUNK_BIG_HDR &&
        ml_os_owner((void *)(a - ML_CHUNK_BIG_HDR)) != ML_OWNER_ARENA)
        return NULL;
    return (uint32_t *)(a - sizeof(uint32_t));
}

/* A pointer whose state word reads ARENA_LIVE or ARENA_FREED could still
 * sit in a large mapping by chance: make sure its chunk is a chunk. */
static inline int ar_chunk_check(const void *p)
{
    struct ml_chunk *c = chunk_of(p);
    return (uintptr_t)p - (uintptr_t)c >= ML_CHUNK_DATA + ARENA_HDR && ml_os_owner(c) == ML_OWNER_ARENA &&
           c->magic == ARENA_CHUNK_MAGIC;
}

/* ---- the interface ---------------------------------------------------- */

static int ar_init(const struct ml_options *opt)
{
    ml_os_page_size();
    arena.limit = opt->arena_limit;
    return 0;
}

/* Carves size bytes aligned to align (>= 16) from the current chunk,
 * charging the budget.  size + align <= ARENA_SMALL_MAX. */
static void *ar_carve(size_t align, size_t size)
{
    struct ar_tls *t = &at;
    size_t n = ml_chunk_round16(size);
    if (arena.limit && !ar_charge(n))
        return NULL;
    for (int tries = 0; tries < 2; tries++) {
        uintptr_t p = ((uintptr_t)t->c.cur + ARENA_HDR + align - 1) & ~(uintptr_t)(align - 1);
        if (t->c.chunk && p + n <= (uintptr_t)t->c.end) {
            struct ar_hdr *h = hdr_of((void *)p);
            h->size = (uint32_t)n;
            h->prev = t->c.last ? (uint32_t)((char *)h - (char *)t->c.last) : 0;
            __atomic_store_n(&h->state, ARENA_LIVE, __ATOMIC_RELAXED);
            t->c.cur = (char *)(p + n);
            t->c.last = h;
            t->c.count++;
            t->charged += n;
            return (void *)p;
        }
        if (ar_refill(t))
            break;
    }
    ar_refund(n);
    return NULL;
}

static void *ar_malloc(size_t size)
{
    struct ar_tls *t = &at;
    if (ML_LIKELY(size <= ARENA_SMALL_MAX)) {
        size_t n = ml_chunk_round16(size);
        if (ML_LIKELY((size_t)(t->c.end - t->c.cur) >= n + ARENA_HDR && !arena.limit)) {
            struct ar_hdr *h = (struct ar_hdr *)t->c.cur;
            h->size = (uint32_t)n;
            h->prev = t->c.last ? (uint32_t)((char *)h - (char *)t->c.last) : 0;
            __atomic_store_n(&h->state, ARENA_LIVE, __ATOMIC_RELAXED);
            t->c.cur += n + ARENA_HDR;
            t->c.last = h;
            t->c.count++;
            t->charged += n;
            return h + 1;
        }
        return ar_carve(16, size);
    }
    return ar_big_alloc(16, size);
}

static void *ar_memalign(size_t align, size_t size)
{
    if (align <= 16)
        return ar_malloc(size);
    if (size <= ARENA_SMALL_MAX && align <= ARENA_SMALL_MAX - size)
        return ar_carve(align, size);
    return ar_big_alloc(align, size);
}

static void *ar_zalloc(size_t size)
{
    void *p = ar_malloc(size);
    if (!p || size > ARENA_SMALL_MAX)
        return p; /* a large block is a fresh mapping */
    ml_chunk_zero(&at.c, p, size);
    return p;
}

static void ar_free(void *p)
{
    uint32_t *state = ar_state_word(p);
    if (ML_UNLIKELY(!state))
        return; /* not ours */
    uint32_t s = __atomic_load_n(state, __ATOMIC_RELAXED);
    if (ML_UNLIKELY(s != ARENA_LIVE)) {
        if (s == ARENA_BIG)
            return ar_big_free(p, ml_chunk_big_of(p));
        return ar_bad_free(p);
    }
    if (ML_UNLIKELY(!ar_chunk_check(p)))
        return ar_bad_free(p);
    struct ar_hdr *h = hdr_of(p);
    struct ml_chunk *c = chunk_of(p);
    struct ar_tls *t = &at;
    __atomic_store_n(&h->state, ARENA_FREED, __ATOMIC_RELEASE);
    if (c == t->c.chunk) {
        t->c.count--;
        if (h == t->c.last)
            ar_rollback(t, h);
        return;
    }
    if (ml_chunk_put_remote(c))
        ar_release(c);
}

static size_t ar_usable_size(const void *p)
{
    uint32_t *state = ar_state_word(p);
    if (!state)
        return 0;
    uint32_t s = __atomic_load_n(state, __ATOMIC_RELAXED);
    if (s == ARENA_BIG)
        return ml_chunk_big_of(p)->size;
    if (s == ARENA_LIVE && ar_chunk_check(p))
        return hdr_of(p)->size;
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
    size_t n = ml_chunk_round16(size);
    if (__atomic_load_n(ar_state_word(p), __ATOMIC_RELAXED) == ARENA_BIG) {
        /* Stay in the mapping unless that would waste more than half. */
        struct ml_chunk_big *b = ml_chunk_big_of(p);
        size_t cap = b->map_size - b->offset;
        if (n <= cap && n > cap / 2) {
            if (!ar_resize_charge(b->size, n))
                return NULL;
            b->size = n;
            return p;
        }
        return ar_move(p, old, size);
    }
    struct ar_tls *t = &at;
    struct ar_hdr *h = hdr_of(p);
    if (h == t->c.last && size <= ARENA_SMALL_MAX && n <= (size_t)(t->c.end - (char *)p)) {
        if (!ar_resize_charge(h->size, n))
            return NULL;
        t->charged = t->charged - h->size + n;
        ml_chunk_mark(&t->c);
        t->c.cur = (char *)p + n;
        h->size = (uint32_t)n;
        return p;
    }
    if (size <= old)
        return p;
    return ar_move(p, old, size);
}

static void ar_thread_exit(void)
{
    ar_retire(&at);
    at.c.attached = 0;
}

static void ar_atfork(int phase) { ml_chunk_atfork(&arena.pool, phase); }

const struct ml_backend ml_backend_arena = {
    .name = "arena",
    .init = ar_init,
    .malloc = ar_malloc,
    .zalloc = ar_zalloc,
    .memalign = ar_memalign,
    .free = ar_free,
    .realloc = ar_realloc,
    .usable_size = ar_usable_size,
    .thread_exit = ar_thread_exit,
    .atfork = ar_atfork,
};
