/* core/bump.c: the bump-pointer backend (MALLARD_BACKEND=bump).
 *
 * Algorithm: each thread owns one current chunk of ML_BUMP_CHUNK bytes,
 * aligned to its size, and carves blocks from it by moving a pointer kept in
 * thread-local storage.  A block is a 16-byte header (its usable size and a
 * state word) followed by the user's bytes.  free never reuses a block by
 * itself; a chunk is reused as a whole once every block in it is freed.
 *   - Live counting without an atomic on the hot path: while a thread owns a
 *     chunk, chunk->live holds BUMP_BIAS minus the frees made by other
 *     threads, and the owner counts its own allocations minus its own frees
 *     in t.count.  Live blocks = t.count - (BUMP_BIAS - chunk->live).  When
 *     the owner retires the chunk (it is full, or the thread exits) it adds
 *     t.count - BUMP_BIAS, turning chunk->live into the true number of live
 *     blocks.  The bias is the owner's reference: the count cannot reach zero
 *     while the owner still bumps through the chunk, and whoever takes it to
 *     zero (the retiring owner or the last free) recycles it, exactly once.
 *   - Freeing the most recent block hands its space back at once.
 *   - The owner notices when its current chunk empties (its own free brings
 *     the live count to zero, or it finds the chunk empty when it is full)
 *     and starts again from the beginning, so malloc/free pairs never leave
 *     the chunk.
 *   - Recycled chunks wait on a short global list under a spin lock; past
 *     BUMP_SPARE_MAX of them they are unmapped.
 *   - Requests above BUMP_SMALL_MAX (a quarter chunk) get their own mapping,
 *     owned by ML_OWNER_BUMP_LARGE and unmapped on free.
 * Chunk size: 1 MiB.  One surviving block pins its whole chunk, so smaller
 * chunks bound that waste; 1 MiB still spreads the mmap and the chunk lock
 * over thousands of small blocks, and aligning a 1 MiB mapping to its size
 * costs only 1 MiB of address space at map time.
 * Invariants: every block is 16-byte aligned and its header sits in the 16
 * bytes before it; p & ~(ML_BUMP_CHUNK - 1) is the chunk of every chunk
 * block; the owner map says ML_OWNER_BUMP for chunks, ML_OWNER_BUMP_LARGE
 * for large mappings, and pointers of anyone else are ignored unread.
 * Trade-off: no per-block reuse, so a program that keeps one block of every
 * thousand alive holds all the memory it ever allocated.  In exchange malloc
 * is an add and a compare, and free is a header check and a decrement.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "fmt.h"
#include "lock.h"
#include "os.h"

#define ML_BUMP_CHUNK ((size_t)1 << 20)
#define BUMP_SMALL_MAX (ML_BUMP_CHUNK / 4)
#define BUMP_SPARE_MAX 8
#define BUMP_BIAS ((int64_t)1 << 62)
#define BUMP_CHUNK_MAGIC 0x6d6c62756d706368ull
#define BUMP_LIVE 0xb0b0a11eu
#define BUMP_FREED 0xdeadb10cu
#define BUMP_BIG 0xb16b10c5u
#define BUMP_HDR 16

struct bump_chunk {
    uint64_t magic;
    int64_t live; /* see the header comment; atomic */
    struct bump_chunk *next;
    char pad[64 - 24];
};
#define BUMP_DATA (sizeof(struct bump_chunk))

/* 16 bytes before every chunk block. */
struct bump_hdr {
    uint32_t size; /* usable bytes, a multiple of 16 */
    uint32_t spare[2];
    uint32_t state; /* BUMP_LIVE or BUMP_FREED; atomic */
};

/* 32 bytes before every large block; state sits where bump_hdr has it. */
struct bump_big {
    uint64_t map_size; /* bytes mapped, from base */
    uint64_t offset;   /* block - base */
    uint32_t spare[3];
    uint32_t state; /* BUMP_BIG */
};
#define BUMP_BIG_HDR (sizeof(struct bump_big))

static struct {
    ml_mutex lock; /* guards spare and nspare */
    struct bump_chunk *spare;
    unsigned nspare;
    int said_bad_free;
} bump;

/* The calling thread's current chunk. */
struct bump_tls {
    char *cur, *end;          /* the free part of the chunk */
    struct bump_chunk *chunk; /* NULL: none yet, or retired */
    struct bump_hdr *last;    /* the most recent block, for realloc in place */
    char *clean;              /* [max(clean, cur), end) was never written */
    int64_t count;            /* own allocations - own frees in chunk */
    int attached;             /* ml_thread_attach called since thread_exit */
};
static ML_TLS struct bump_tls bt;

static inline size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static inline struct bump_chunk *chunk_of(const void *p)
{
    return (struct bump_chunk *)((uintptr_t)p & ~(ML_BUMP_CHUNK - 1));
}

static inline struct bump_hdr *hdr_of(const void *p) { return (struct bump_hdr *)((uintptr_t)p - BUMP_HDR); }

static inline struct bump_big *big_of(const void *p)
{
    return (struct bump_big *)((uintptr_t)p - BUMP_BIG_HDR);
}

static void bump_bad_free(const void *p)
{
    if (!__atomic_exchange_n(&bump.said_bad_free, 1, __ATOMIC_RELAXED))
        ml_say("bump: free of %p, which is not a live block; ignored (reported once)", p);
}

/* ---- chunks ----------------------------------------------------------- */

static void bump_recycle(struct bump_chunk *c)
{
    ml_mutex_lock(&bump.lock);
    if (bump.nspare < BUMP_SPARE_MAX) {
        c->next = bump.spare;
        bump.spare = c;
        bump.nspare++;
        c = NULL;
    }
    ml_mutex_unlock(&bump.lock);
    if (c)
        ml_os_unmap_user(c, ML_BUMP_CHUNK);
}

/* Gives the owner's reference up; the chunk is recycled now if it is empty,
 * otherwise by the free that empties it. */
static void bump_retire(struct bump_tls *t)
{
    struct bump_chunk *c = t->chunk;
    if (!c)
        return;
    t->chunk = NULL;
    t->cur = t->end = t->clean = NULL;
    t->last = NULL;
    int64_t left = __atomic_add_fetch(&c->live, t->count - BUMP_BIAS, __ATOMIC_ACQ_REL);
    t->count = 0;
    if (left == 0)
        bump_recycle(c);
}

/* Every block of the current chunk is free: start it over. */
static void bump_restart(struct bump_tls *t)
{
    if (t->cur > t->clean)
        t->clean = t->cur;
    t->cur = (char *)t->chunk + BUMP_DATA;
    t->last = NULL;
    t->count = 0;
    __atomic_store_n(&t->chunk->live, BUMP_BIAS, __ATOMIC_RELAXED);
}

static inline int bump_empty(const struct bump_tls *t)
{
    return t->count + __atomic_load_n(&t->chunk->live, __ATOMIC_ACQUIRE) == BUMP_BIAS;
}

/* Makes the current chunk one with room for any small request. */
static int bump_refill(struct bump_tls *t)
{
    if (t->chunk && bump_empty(t)) {
        bump_restart(t);
        return 0;
    }
    bump_retire(t);
    ml_mutex_lock(&bump.lock);
    struct bump_chunk *c = bump.spare;
    if (c) {
        bump.spare = c->next;
        bump.nspare--;
    }
    ml_mutex_unlock(&bump.lock);
    int fresh = !c;
    if (fresh) {
        c = ml_os_map_user(ML_BUMP_CHUNK, ML_BUMP_CHUNK, ML_OWNER_BUMP, 0);
        if (!c)
            return ENOMEM;
        c->magic = BUMP_CHUNK_MAGIC;
    }
    __atomic_store_n(&c->live, BUMP_BIAS, __ATOMIC_RELAXED);
    t->chunk = c;
    t->cur = (char *)c + BUMP_DATA;
    t->end = (char *)c + ML_BUMP_CHUNK;
    t->clean = fresh ? t->cur : t->end;
    t->last = NULL;
    t->count = 0;
    /* Last, with the state complete: pthread_setspecific may allocate. */
    if (!t->attached) {
        t->attached = 1;
        ml_thread_attach();
    }
    return 0;
}

/* ---- large blocks ----------------------------------------------------- */

static void *bump_big_alloc(size_t align, size_t size)
{
    size_t offset = align > BUMP_BIG_HDR ? align : BUMP_BIG_HDR;
    if (size > ((size_t)1 << 46))
        return NULL;
    size_t map_size = (offset + size + ML_OS_GRANULE - 1) & ~(ML_OS_GRANULE - 1);
    char *base = ml_os_map_user(map_size, align, ML_OWNER_BUMP_LARGE, 0);
    if (!base)
        return NULL;
    struct bump_big *b = big_of(base + offset);
    b->map_size = map_size;
    b->offset = offset;
    b->state = BUMP_BIG;
    return base + offset;
}

/* A BUMP_LARGE pointer is one of ours if its header is in the same mapping
 * and says so. */
static struct bump_big *bump_big_check(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if ((a & 15) || ((a & (ML_OS_GRANULE - 1)) < BUMP_BIG_HDR &&
                     ml_os_owner((void *)(a - BUMP_BIG_HDR)) != ML_OWNER_BUMP_LARGE))
        return NULL;
    struct bump_big *b = big_of(p);
    return b->state == BUMP_BIG ? b : NULL;
}

static inline size_t bump_big_usable(const struct bump_big *b) { return b->map_size - b->offset; }

/* ---- the interface ---------------------------------------------------- */

static int bump_init(const struct ml_options *opt)
{
    (void)opt;
    ml_os_page_size();
    return 0;
}

/* Carves size bytes aligned to align (>= 16) from the current chunk.
 * size + align <= BUMP_SMALL_MAX. */
static void *bump_carve(size_t align, size_t size)
{
    struct bump_tls *t = &bt;
    size_t n = round16(size);
    for (int tries = 0; tries < 2; tries++) {
        uintptr_t p = ((uintptr_t)t->cur + BUMP_HDR + align - 1) & ~(uintptr_t)(align - 1);
        if (t->chunk && p + n <= (uintptr_t)t->end) {
            struct bump_hdr *h = hdr_of((void *)p);
            h->size = (uint32_t)n;
            __atomic_store_n(&h->state, BUMP_LIVE, __ATOMIC_RELAXED);
            t->cur = (char *)(p + n);
            t->last = h;
            t->count++;
            return (void *)p;
        }
        if (bump_refill(t))
            return NULL;
    }
    return NULL;
}

static void *bump_malloc(size_t size)
{
    struct bump_tls *t = &bt;
    if (ML_LIKELY(size <= BUMP_SMALL_MAX)) {
        size_t n = round16(size);
        if (ML_LIKELY((size_t)(t->end - t->cur) >= n + BUMP_HDR)) {
            struct bump_hdr *h = (struct bump_hdr *)t->cur;
            h->size = (uint32_t)n;
            __atomic_store_n(&h->state, BUMP_LIVE, __ATOMIC_RELAXED);
            t->cur += n + BUMP_HDR;
            t->last = h;
            t->count++;
            return h + 1;
        }
        return bump_carve(16, size);
    }
    return bump_big_alloc(16, size);
}

static void *bump_memalign(size_t align, size_t size)
{
    if (align <= 16)
        return bump_malloc(size);
    if (size <= BUMP_SMALL_MAX && align <= BUMP_SMALL_MAX - size)
        return bump_carve(align, size);
    return bump_big_alloc(align, size);
}

static void *bump_zalloc(size_t size)
{
    void *p = bump_malloc(size);
    if (!p || size > BUMP_SMALL_MAX)
        return p; /* a large block is a fresh mapping */
    /* p came from the current chunk: only the part below clean was used. */
    char *clean = bt.clean;
    if ((char *)p < clean)
        memset(p, 0, (size_t)(clean - (char *)p) < size ? (size_t)(clean - (char *)p) : size);
    return p;
}

static void bump_free(void *p)
{
    enum ml_owner owner = ml_os_owner(p);
    if (ML_LIKELY(owner == ML_OWNER_BUMP)) {
        if (ML_UNLIKELY(((uintptr_t)p & 15) || ((uintptr_t)p & (ML_BUMP_CHUNK - 1)) < BUMP_DATA + BUMP_HDR))
            return bump_bad_free(p);
        struct bump_hdr *h = hdr_of(p);
        if (ML_UNLIKELY(__atomic_load_n(&h->state, __ATOMIC_RELAXED) != BUMP_LIVE))
            return bump_bad_free(p);
        __atomic_store_n(&h->state, BUMP_FREED, __ATOMIC_RELEASE);
        struct bump_chunk *c = chunk_of(p);
        struct bump_tls *t = &bt;
        if (c == t->chunk) {
            t->count--;
            if (h == t->last) { /* stack order: hand the space back */
                if (t->cur > t->clean)
                    t->clean = t->cur;
                t->cur = (char *)h;
                t->last = NULL;
            }
            if (bump_empty(t))
                bump_restart(t);
            return;
        }
        if (__atomic_sub_fetch(&c->live, 1, __ATOMIC_ACQ_REL) == 0)
            bump_recycle(c);
        return;
    }
    if (owner == ML_OWNER_BUMP_LARGE) {
        struct bump_big *b = bump_big_check(p);
        if (!b)
            return bump_bad_free(p);
        ml_os_unmap_user((char *)p - b->offset, b->map_size);
    }
}

static size_t bump_usable_size(const void *p)
{
    enum ml_owner owner = ml_os_owner(p);
    if (owner == ML_OWNER_BUMP) {
        if (((uintptr_t)p & 15) || ((uintptr_t)p & (ML_BUMP_CHUNK - 1)) < BUMP_DATA + BUMP_HDR)
            return 0;
        const struct bump_hdr *h = hdr_of(p);
        return __atomic_load_n(&h->state, __ATOMIC_RELAXED) == BUMP_LIVE ? h->size : 0;
    }
    if (owner == ML_OWNER_BUMP_LARGE) {
        const struct bump_big *b = bump_big_check(p);
        return b ? bump_big_usable(b) : 0;
    }
    return 0;
}

static void *bump_move(void *p, size_t old, size_t size)
{
    void *q = bump_malloc(size);
    if (!q)
        return NULL;
    memcpy(q, p, old < size ? old : size);
    bump_free(p);
    return q;
}

static void *bump_realloc(void *p, size_t size)
{
    size_t old = bump_usable_size(p);
    if (!old)
        return NULL; /* not a live block of ours */
    if (ml_os_owner(p) == ML_OWNER_BUMP_LARGE) {
        /* Stay in the mapping unless that would waste more than half. */
        if (size <= old && size > old / 2)
            return p;
        return bump_move(p, old, size);
    }
    struct bump_tls *t = &bt;
    struct bump_hdr *h = hdr_of(p);
    if (h == t->last && size <= BUMP_SMALL_MAX && round16(size) <= (size_t)(t->end - (char *)p)) {
        size_t n = round16(size);
        if (t->cur > t->clean)
            t->clean = t->cur;
        t->cur = (char *)p + n;
        h->size = (uint32_t)n;
        return p;
    }
    if (size <= old)
        return p;
    return bump_move(p, old, size);
}

static void bump_thread_exit(void)
{
    bump_retire(&bt);
    bt.attached = 0;
}

static void bump_atfork(int phase) { ml_lock_atfork(&bump.lock, phase); }

const struct ml_backend ml_backend_bump = {
    .name = "bump",
    .init = bump_init,
    .malloc = bump_malloc,
    .zalloc = bump_zalloc,
    .memalign = bump_memalign,
    .free = bump_free,
    .realloc = bump_realloc,
    .usable_size = bump_usable_size,
    .thread_exit = bump_thread_exit,
    .atfork = bump_atfork,
};
