/* core/bump.c: the bump-pointer backend (MALLARD_BACKEND=bump).
 *
 * Algorithm: each thread owns one current chunk of ML_BUMP_CHUNK bytes,
 * aligned to its size, and carves blocks from it by moving a pointer kept in
 * thread-local storage.  A block is a 16-byte header (its usable size and a
 * state word) followed by the user's bytes.  free never reuses a block by
 * itself; a chunk is reused as a whole once every block in it is freed.
 *   - Live counting without an atomic on the hot path: the biased count of
 *     core/chunk.h, which holds the chunk lifecycle shared with arena.c.
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
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "chunk.h"
#include "os.h"

#define ML_BUMP_CHUNK ((size_t)1 << 20)
#define BUMP_SMALL_MAX (ML_BUMP_CHUNK / 4)
#define BUMP_SPARE_MAX 8
#define BUMP_CHUNK_MAGIC 0x6d6c62756d706368ull
#define BUMP_LIVE 0xb0b0a11eu
#define BUMP_FREED 0xdeadb10cu
#define BUMP_BIG 0xb16b10c5u
#define BUMP_HDR 16

/* 16 bytes before every chunk block. */
struct bump_hdr {
    uint32_t size; /* usable bytes, a multiple of 16 */
    uint32_t spare[2];
    uint32_t state; /* BUMP_LIVE or BUMP_FREED; atomic */
};

static struct {
    struct ml_chunk_pool pool;
    int said_bad_free;
} bump;

static ML_TLS struct ml_chunk_tls bt;

static inline struct ml_chunk *chunk_of(const void *p) { return ml_chunk_of(p, ML_BUMP_CHUNK); }

static inline struct bump_hdr *hdr_of(const void *p) { return (struct bump_hdr *)((uintptr_t)p - BUMP_HDR); }

static void bump_bad_free(const void *p) { ml_chunk_bad_free(&bump.said_bad_free, "bump", p); }

/* ---- chunks ----------------------------------------------------------- */

static __attribute__((noinline)) void bump_recycle(struct ml_chunk *c)
{
    ml_chunk_recycle(&bump.pool, c, ML_BUMP_CHUNK, BUMP_SPARE_MAX);
}

static void bump_retire(struct ml_chunk_tls *t)
{
    struct ml_chunk *c = ml_chunk_retire(t, 0);
    if (c)
        bump_recycle(c);
}

/* Makes the current chunk one with room for any small request. */
static int bump_refill(struct ml_chunk_tls *t)
{
    if (t->chunk && ml_chunk_empty(t)) {
        ml_chunk_restart(t);
        return 0;
    }
    bump_retire(t);
    return ml_chunk_take(&bump.pool, t, ML_BUMP_CHUNK, BUMP_CHUNK_MAGIC, ML_OWNER_BUMP);
}

/* ---- large blocks ----------------------------------------------------- */

static void *bump_big_alloc(size_t align, size_t size)
{
    if (size > ((size_t)1 << 46))
        return NULL;
    return ml_chunk_big_alloc(align, size, BUMP_BIG, ML_OWNER_BUMP_LARGE);
}

/* A BUMP_LARGE pointer is one of ours if its header is in the same mapping
 * and says so. */
static struct ml_chunk_big *bump_big_check(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if ((a & 15) || ((a & (ML_OS_GRANULE - 1)) < ML_CHUNK_BIG_HDR &&
                     ml_os_owner((void *)(a - ML_CHUNK_BIG_HDR)) != ML_OWNER_BUMP_LARGE))
        return NULL;
    struct ml_chunk_big *b = ml_chunk_big_of(p);
    return b->state == BUMP_BIG ? b : NULL;
}

static inline size_t bump_big_usable(const struct ml_chunk_big *b) { return b->map_size - b->offset; }

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
    struct ml_chunk_tls *t = &bt;
    size_t n = ml_chunk_round16(size);
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
    struct ml_chunk_tls *t = &bt;
    if (ML_LIKELY(size <= BUMP_SMALL_MAX)) {
        size_t n = ml_chunk_round16(size);
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
    ml_chunk_zero(&bt, p, size);
    return p;
}

static void bump_free(void *p)
{
    enum ml_owner owner = ml_os_owner(p);
    if (ML_LIKELY(owner == ML_OWNER_BUMP)) {
        if (ML_UNLIKELY(((uintptr_t)p & 15) ||
                        ((uintptr_t)p & (ML_BUMP_CHUNK - 1)) < ML_CHUNK_DATA + BUMP_HDR))
            return bump_bad_free(p);
        struct bump_hdr *h = hdr_of(p);
        if (ML_UNLIKELY(__atomic_load_n(&h->state, __ATOMIC_RELAXED) != BUMP_LIVE))
            return bump_bad_free(p);
        __atomic_store_n(&h->state, BUMP_FREED, __ATOMIC_RELEASE);
        struct ml_chunk *c = chunk_of(p);
        struct ml_chunk_tls *t = &bt;
        if (c == t->chunk) {
            t->count--;
            if (h == t->last) { /* stack order: hand the space back */
                ml_chunk_mark(t);
                t->cur = (char *)h;
                t->last = NULL;
            }
            if (ml_chunk_empty(t))
                ml_chunk_restart(t);
            return;
        }
        if (ml_chunk_put_remote(c))
            bump_recycle(c);
        return;
    }
    if (owner == ML_OWNER_BUMP_LARGE) {
        struct ml_chunk_big *b = bump_big_check(p);
        if (!b)
            return bump_bad_free(p);
        ml_chunk_big_unmap(p, b);
    }
}

static size_t bump_usable_size(const void *p)
{
    enum ml_owner owner = ml_os_owner(p);
    if (owner == ML_OWNER_BUMP) {
        if (((uintptr_t)p & 15) || ((uintptr_t)p & (ML_BUMP_CHUNK - 1)) < ML_CHUNK_DATA + BUMP_HDR)
            return 0;
        const struct bump_hdr *h = hdr_of(p);
        return __atomic_load_n(&h->state, __ATOMIC_RELAXED) == BUMP_LIVE ? h->size : 0;
    }
    if (owner == ML_OWNER_BUMP_LARGE) {
        const struct ml_chunk_big *b = bump_big_check(p);
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
    struct ml_chunk_tls *t = &bt;
    struct bump_hdr *h = hdr_of(p);
    if (h == t->last && size <= BUMP_SMALL_MAX && ml_chunk_round16(size) <= (size_t)(t->end - (char *)p)) {
        size_t n = ml_chunk_round16(size);
        ml_chunk_mark(t);
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

static void bump_atfork(int phase) { ml_chunk_atfork(&bump.pool, phase); }

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
