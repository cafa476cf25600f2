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
 *     Live counting is that of core/bump.c: the owner counts its own
 *     allocations and frees in TLS, other threads decrement chunk->live,
 *     which carries ARENA_BIAS as the owner's reference until the owner
 *     retires the chunk (it is full, or the thread exits).
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
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "fmt.h"
#include "options.h"
#include "lock.h"
#include "os.h"

#define ML_ARENA_CHUNK ((size_t)4 << 20)
#define ARENA_SMALL_MAX (ML_ARENA_CHUNK / 4)
#define ARENA_SPARE_MAX 4
#define ARENA_BIAS ((int64_t)1 << 62)
#define ARENA_CHUNK_MAGIC 0x6d6c6172656e6163ull
#define ARENA_LIVE 0xa7e4a11eu
#define ARENA_FREED 0xa7e4f7eeu
#define ARENA_BIG 0xa7e4b165u
#define ARENA_HDR 16

struct ar_chunk {
    uint64_t magic;
    int64_t live;          /* see core/bump.c; atomic */
    struct ar_chunk *next; /* spare list */
    size_t charged;        /* budget still held by the blocks, set at retire */
    char pad[64 - 32];
};
#define ARENA_DATA (sizeof(struct ar_chunk))

/* 16 bytes before every chunk block. */
struct ar_hdr {
    uint32_t size; /* usable bytes, a multiple of 16 */
    uint32_t prev; /* bytes back to the previous block's header; 0: first */
    uint32_t spare;
    uint32_t state; /* ARENA_LIVE or ARENA_FREED; atomic */
};

/* 32 bytes before every large block; state sits where ar_hdr has it. */
struct ar_big {
    uint64_t map_size; /* bytes mapped, from base */
    uint64_t offset;   /* block - base */
    uint64_t size;     /* usable (and charged) bytes */
    uint32_t spare;
    uint32_t state; /* ARENA_BIG */
};
#define ARENA_BIG_HDR (sizeof(struct ar_big))

static struct {
    size_t limit;  /* 0: no budget */
    ml_mutex lock; /* guards spare and nspare */
    struct ar_chunk *spare;
    unsigned nspare;
    int said_bad_free;
    char pad[64];
    size_t used; /* budget charged; atomic, own cache line */
} arena;

struct ar_tls {
    char *cur, *end;        /* the free part of the chunk */
    struct ar_chunk *chunk; /* NULL: none yet, or retired */
    struct ar_hdr *last;    /* the most recent block not rolled back */
    char *clean;            /* [max(clean, cur), end) was never written */
    int64_t count;          /* own allocations - own frees in chunk */
    size_t charged;         /* usable bytes of blocks not rolled back */
    int attached;           /* ml_thread_attach called since thread_exit */
};
static ML_TLS struct ar_tls at;

static inline size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static inline struct ar_chunk *chunk_of(const void *p)
{
    return (struct ar_chunk *)((uintptr_t)p & ~(ML_ARENA_CHUNK - 1));
}

static inline struct ar_hdr *hdr_of(const void *p) { return (struct ar_hdr *)((uintptr_t)p - ARENA_HDR); }

static inline struct ar_big *big_of(const void *p) { return (struct ar_big *)((uintptr_t)p - ARENA_BIG_HDR); }

static void ar_bad_free(const void *p)
{
    if (!__atomic_exchange_n(&arena.said_bad_free, 1, __ATOMIC_RELAXED))
        ml_say("arena: free of %p, which is not a live block; ignored (reported once)", p);
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

static void ar_release(struct ar_chunk *c)
{
    ar_refund(c->charged);
    ml_mutex_lock(&arena.lock);
    if (arena.nspare < ARENA_SPARE_MAX) {
        c->next = arena.spare;
        arena.spare = c;
        arena.nspare++;
        c = NULL;
    }
    ml_mutex_unlock(&arena.lock);
    if (c)
        ml_os_unmap_user(c, ML_ARENA_CHUNK);
}

static void ar_retire(struct ar_tls *t)
{
    struct ar_chunk *c = t->chunk;
    if (!c)
        return;
    c->charged = t->charged; /* published by the release below */
    t->chunk = NULL;
    t->cur = t->end = t->clean = NULL;
    t->last = NULL;
    t->charged = 0;
    int64_t left = __atomic_add_fetch(&c->live, t->count - ARENA_BIAS, __ATOMIC_ACQ_REL);
    t->count = 0;
    if (left == 0)
        ar_release(c);
}

static inline int ar_empty(const struct ar_tls *t)
{
    return t->count + __atomic_load_n(&t->chunk->live, __ATOMIC_ACQUIRE) == ARENA_BIAS;
}

/* Makes the current chunk one with room for any small request. */
static int ar_refill(struct ar_tls *t)
{
    if (t->chunk && ar_empty(t)) {
        /* Everything was freed, some of it by other threads: start over. */
        ar_refund(t->charged);
        t->charged = 0;
        if (t->cur > t->clean)
            t->clean = t->cur;
        t->cur = (char *)t->chunk + ARENA_DATA;
        t->last = NULL;
        t->count = 0;
        __atomic_store_n(&t->chunk->live, ARENA_BIAS, __ATOMIC_RELAXED);
        return 0;
    }
    ar_retire(t);
    ml_mutex_lock(&arena.lock);
    struct ar_chunk *c = arena.spare;
    if (c) {
        arena.spare = c->next;
        arena.nspare--;
    }
    ml_mutex_unlock(&arena.lock);
    int fresh = !c;
    if (fresh) {
        c = ml_os_map_user(ML_ARENA_CHUNK, ML_ARENA_CHUNK, ML_OWNER_ARENA, 0);
        if (!c)
            return ENOMEM;
        c->magic = ARENA_CHUNK_MAGIC;
    }
    __atomic_store_n(&c->live, ARENA_BIAS, __ATOMIC_RELAXED);
    c->charged = 0;
    t->chunk = c;
    t->cur = (char *)c + ARENA_DATA;
    t->end = (char *)c + ML_ARENA_CHUNK;
    t->clean = fresh ? t->cur : t->end;
    t->last = NULL;
    t->count = 0;
    t->charged = 0;
    /* Last, with the state complete: pthread_setspecific may allocate. */
    if (!t->attached) {
        t->attached = 1;
        ml_thread_attach();
    }
    return 0;
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
    if (t->cur > t->clean)
        t->clean = t->cur;
    t->cur = prev ? (char *)(prev + 1) + prev->size : (char *)t->chunk + ARENA_DATA;
    t->last = prev;
    t->charged -= back;
    ar_refund(back);
}

/* ---- large blocks ----------------------------------------------------- */

static void *ar_big_alloc(size_t align, size_t size)
{
    size_t offset = align > ARENA_BIG_HDR ? align : ARENA_BIG_HDR;
    if (size > ((size_t)1 << 46))
        return NULL;
    size_t n = round16(size);
    if (arena.limit && !ar_charge(n))
        return NULL;
    size_t map_size = (offset + n + ML_OS_GRANULE - 1) & ~(ML_OS_GRANULE - 1);
    char *base = ml_os_map_user(map_size, align, ML_OWNER_ARENA, 0);
    if (!base) {
        ar_refund(n);
        return NULL;
    }
    struct ar_big *b = big_of(base + offset);
    b->map_size = map_size;
    b->offset = offset;
    b->size = n;
    __atomic_store_n(&b->state, ARENA_BIG, __ATOMIC_RELAXED);
    return base + offset;
}

static void ar_big_free(void *p, struct ar_big *b)
{
    ar_refund(b->size);
    ml_os_unmap_user((char *)p - b->offset, b->map_size);
}

/* The state word of p when p may be one of our blocks (it is then readable),
 * else NULL.  Chunk blocks are further checked by ar_chunk_check. */
static uint32_t *ar_state_word(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (ml_os_owner(p) != ML_OWNER_ARENA || (a & 15))
        return NULL;
    if ((a & (ML_OS_GRANULE - 1)) < ARENA_BIG_HDR &&
        ml_os_owner((void *)(a - ARENA_BIG_HDR)) != ML_OWNER_ARENA)
        return NULL;
    return (uint32_t *)(a - sizeof(uint32_t));
}

/* A pointer whose state word reads ARENA_LIVE or ARENA_FREED could still
 * sit in a large mapping by chance: make sure its chunk is a chunk. */
static inline int ar_chunk_check(const void *p)
{
    struct ar_chunk *c = chunk_of(p);
    return (uintptr_t)p - (uintptr_t)c >= ARENA_DATA + ARENA_HDR && ml_os_owner(c) == ML_OWNER_ARENA &&
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
    size_t n = round16(size);
    if (arena.limit && !ar_charge(n))
        return NULL;
    for (int tries = 0; tries < 2; tries++) {
        uintptr_t p = ((uintptr_t)t->cur + ARENA_HDR + align - 1) & ~(uintptr_t)(align - 1);
        if (t->chunk && p + n <= (uintptr_t)t->end) {
            struct ar_hdr *h = hdr_of((void *)p);
            h->size = (uint32_t)n;
            h->prev = t->last ? (uint32_t)((char *)h - (char *)t->last) : 0;
            __atomic_store_n(&h->state, ARENA_LIVE, __ATOMIC_RELAXED);
            t->cur = (char *)(p + n);
            t->last = h;
            t->count++;
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
        size_t n = round16(size);
        if (ML_LIKELY((size_t)(t->end - t->cur) >= n + ARENA_HDR && !arena.limit)) {
            struct ar_hdr *h = (struct ar_hdr *)t->cur;
            h->size = (uint32_t)n;
            h->prev = t->last ? (uint32_t)((char *)h - (char *)t->last) : 0;
            __atomic_store_n(&h->state, ARENA_LIVE, __ATOMIC_RELAXED);
            t->cur += n + ARENA_HDR;
            t->last = h;
            t->count++;
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
    char *clean = at.clean;
    if ((char *)p < clean)
        memset(p, 0, (size_t)(clean - (char *)p) < size ? (size_t)(clean - (char *)p) : size);
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
            return ar_big_free(p, big_of(p));
        return ar_bad_free(p);
    }
    if (ML_UNLIKELY(!ar_chunk_check(p)))
        return ar_bad_free(p);
    struct ar_hdr *h = hdr_of(p);
    struct ar_chunk *c = chunk_of(p);
    struct ar_tls *t = &at;
    __atomic_store_n(&h->state, ARENA_FREED, __ATOMIC_RELEASE);
    if (c == t->chunk) {
        t->count--;
        if (h == t->last)
            ar_rollback(t, h);
        return;
    }
    if (__atomic_sub_fetch(&c->live, 1, __ATOMIC_ACQ_REL) == 0)
        ar_release(c);
}

static size_t ar_usable_size(const void *p)
{
    uint32_t *state = ar_state_word(p);
    if (!state)
        return 0;
    uint32_t s = __atomic_load_n(state, __ATOMIC_RELAXED);
    if (s == ARENA_BIG)
        return big_of(p)->size;
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
    size_t n = round16(size);
    if (__atomic_load_n(ar_state_word(p), __ATOMIC_RELAXED) == ARENA_BIG) {
        /* Stay in the mapping unless that would waste more than half. */
        struct ar_big *b = big_of(p);
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
    if (h == t->last && size <= ARENA_SMALL_MAX && n <= (size_t)(t->end - (char *)p)) {
        if (!ar_resize_charge(h->size, n))
            return NULL;
        t->charged = t->charged - h->size + n;
        if (t->cur > t->clean)
            t->clean = t->cur;
        t->cur = (char *)p + n;
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
    at.attached = 0;
}

static void ar_atfork(int phase) { ml_lock_atfork(&arena.lock, phase); }

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
