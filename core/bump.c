/* core/bump.c: the bump-pointer backend (MALLARD_BACKEND=bump).
 *
 * Algorithm: each thread owns one current chunk of ML_BUMP_CHUNK bytes,
 * aligned to its size, and carves blocks from it by moving a pointer kept in
 * thread-local storage.  A block is the 16-byte header of core/chunk.h
 * followed by the user's bytes, rounded up to its size class.
 *   - A block freed by the thread that carves its chunk goes onto that
 *     thread's LIFO list for its class, and the next request of that class
 *     takes it back: a malloc/free churn reuses its own memory, so the heap
 *     stays near the live set instead of growing with every allocation.
 *   - Freeing the most recent block rolls the bump pointer back over it and
 *     over every freed block right below it, so stack-ordered lifetimes give
 *     their memory straight back to the pointer.
 *   - A block freed by another thread goes back to its chunk's count (the
 *     biased count of core/chunk.h, which holds the chunk lifecycle shared
 *     with arena.c); a chunk is reused as a whole once every block in it is
 *     freed, and the owner restarts its current chunk when it finds it empty.
 *   - Recycled chunks wait on a short global list under a spin lock; past
 *     BUMP_SPARE_MAX of them they are unmapped.
 *   - Requests above BUMP_SMALL_MAX (a quarter chunk) get their own mapping,
 *     owned by ML_OWNER_BUMP_LARGE, resized by mremap and unmapped on free.
 * Chunk size: 1 MiB.  A thread's free lists keep a chunk pinned, so smaller
 * chunks bound what one thread's leftovers hold; 1 MiB still spreads the
 * mmap and the chunk lock over thousands of small blocks, and aligning a
 * 1 MiB mapping to its size costs only 1 MiB of address space at map time.
 * Invariants: every block is 16-byte aligned and its header sits in the 16
 * bytes before it; p & ~(ML_BUMP_CHUNK - 1) is the chunk of every chunk
 * block; the owner map says ML_OWNER_BUMP for chunks, ML_OWNER_BUMP_LARGE
 * for large mappings, and pointers of anyone else are ignored unread.
 * Trade-off: no splitting or coalescing.  A freed block serves only its own
 * class, so a program that frees a million 32-byte blocks and then asks for
 * 64-byte ones keeps both sets of memory; freed blocks live in the thread's
 * lists until it exits.  In exchange malloc is a list pop or an add and a
 * compare, and free is a header check and a push.  With no decorator the
 * preload shim does both inline for small blocks of the thread's current
 * chunk (chunk.h's fused fast path, on ml_bump_tls), calling
 * ml_bump_free_slow for the rest.
 */
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "chunk.h"
#include "os.h"

#define BUMP_SMALL_MAX (ML_BUMP_CHUNK / 4)
#define BUMP_SPARE_MAX 8
#define BUMP_CHUNK_MAGIC 0x6d6c62756d706368ull
#define BUMP_BIG 0xb16b10c5u

static struct {
    struct ml_chunk_pool pool;
    int said_bad_free;
} bump;

/* Not static: the preload shim's fused fast path (chunk.h) works on it
 * inline. */
ML_TLS struct ml_chunk_tls ml_bump_tls ML_HIDDEN;

static inline struct ml_chunk *chunk_of(const void *p) { return ml_chunk_of(p, ML_BUMP_CHUNK); }

static inline struct ml_chunk_blk *hdr_of(const void *p) { return ml_chunk_blk_of(p); }

static __attribute__((noinline)) void bump_bad_free(const void *p)
{
    ml_chunk_bad_free(&bump.said_bad_free, "bump", p);
}

/* Out of line, so that free's common path (a push) stays a leaf with few
 * registers to save; the shim's fused free calls it too. */
__attribute__((noinline)) void ml_bump_rollback(struct ml_chunk_tls *t, struct ml_chunk_blk *h)
{
    ml_chunk_rollback(t, h);
}

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

/* A block of a chunk the calling thread does not carve in: back to the
 * chunk's count. */
static __attribute__((noinline)) void bump_free_remote(struct ml_chunk *c, struct ml_chunk_blk *h)
{
    __atomic_store_n(&h->state, ML_CHUNK_FREED, __ATOMIC_RELEASE);
    if (ml_chunk_put_remote(c))
        bump_recycle(c);
}

/* ---- large blocks ----------------------------------------------------- */

static __attribute__((noinline)) void *bump_big_alloc(size_t align, size_t size, int zero)
{
    if (size > ((size_t)1 << 46))
        return NULL;
    return ml_chunk_big_alloc(&bump.pool, align, size, BUMP_BIG, ML_OWNER_BUMP_LARGE, zero);
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

static __attribute__((noinline)) void bump_big_free(void *p)
{
    struct ml_chunk_big *b = bump_big_check(p);
    if (!b)
        return bump_bad_free(p);
    ml_chunk_big_free(&bump.pool, p, b);
}

static inline size_t bump_big_usable(const struct ml_chunk_big *b) { return b->map_size - b->offset; }

/* ---- the interface ---------------------------------------------------- */

static int bump_init(const struct ml_options *opt)
{
    (void)opt;
    ml_os_page_size();
    return 0;
}

/* Takes a listed block of class c or carves one aligned to align (>= 16)
 * from the current chunk, refilling it when it is full.  The class size
 * plus align fits in BUMP_SMALL_MAX. */
static __attribute__((noinline)) void *bump_slow(size_t align, unsigned c)
{
    struct ml_chunk_tls *t = &ml_bump_tls;
    if (align <= 16) {
        void *p = ml_chunk_pop(t, c);
        if (p)
            return p;
    }
    size_t n = ml_chunk_class_size(c);
    for (int tries = 0; tries < 2; tries++) {
        void *p = ml_chunk_carve(t, align, c, n);
        if (p)
            return p;
        if (bump_refill(t))
            return NULL;
    }
    return NULL;
}

static void *bump_malloc(size_t size)
{
    struct ml_chunk_tls *t = &ml_bump_tls;
    if (ML_LIKELY(size <= ML_CHUNK_FINE)) {
        void *p = ml_chunk_malloc_fast(t, ml_chunk_fine_index(size), 1);
        if (ML_LIKELY(p))
            return p;
        return bump_slow(16, (unsigned)((size + 15) >> 4) - 1);
    }
    if (size <= BUMP_SMALL_MAX)
        return bump_slow(16, ml_chunk_class(size));
    return bump_big_alloc(16, size, 0);
}

static void *bump_memalign(size_t align, size_t size)
{
    if (align <= 16)
        return bump_malloc(size);
    if (size <= BUMP_SMALL_MAX) {
        unsigned c = ml_chunk_class(size);
        if (align <= BUMP_SMALL_MAX - ml_chunk_class_size(c))
            return bump_slow(align, c);
    }
    return bump_big_alloc(align, size, 0);
}

static void *bump_zalloc(size_t size)
{
    if (size > BUMP_SMALL_MAX)
        return bump_big_alloc(16, size, 1);
    struct ml_chunk_tls *t = &ml_bump_tls;
    unsigned c = ml_chunk_class(size);
    void *p = ml_chunk_pop(t, c);
    if (p)
        return memset(p, 0, size);
    p = bump_slow(16, c);
    /* p came from the current chunk: only the part below clean was used. */
    if (p)
        ml_chunk_zero(t, p, size);
    return p;
}

/* free past ml_chunk_free_fast: blocks of other chunks and large ones, and
 * pointers that are no live block.  The shim's fused free calls it
 * directly. */
__attribute__((noinline)) void ml_bump_free_slow(void *p)
{
    enum ml_owner owner = ml_os_owner(p);
    if (ML_LIKELY(owner == ML_OWNER_BUMP)) {
        if (ML_UNLIKELY(((uintptr_t)p & 15) ||
                        ((uintptr_t)p & (ML_BUMP_CHUNK - 1)) < ML_CHUNK_DATA + ML_CHUNK_HDR))
            return bump_bad_free(p);
        struct ml_chunk_blk *h = hdr_of(p);
        if (ML_UNLIKELY(__atomic_load_n(&h->state, __ATOMIC_RELAXED) != ML_CHUNK_LIVE))
            return bump_bad_free(p);
        struct ml_chunk *c = chunk_of(p);
        struct ml_chunk_tls *t = &ml_bump_tls;
        if (ML_LIKELY(__atomic_load_n(&c->owner, __ATOMIC_RELAXED) == t)) {
            if (h == t->last && c == t->chunk)
                ml_bump_rollback(t, h); /* stack order: hand the space back */
            else
                ml_chunk_push(t, h, p);
            return;
        }
        return bump_free_remote(c, h);
    }
    if (owner == ML_OWNER_BUMP_LARGE)
        bump_big_free(p);
}

static void bump_free(void *p)
{
    if (ML_LIKELY(ml_chunk_free_fast(&ml_bump_tls, p, ML_BUMP_CHUNK, 1, ml_bump_rollback)))
        return; /* a block of the current chunk */
    ml_bump_free_slow(p);
}

static size_t bump_usable_size(const void *p)
{
    enum ml_owner owner = ml_os_owner(p);
    if (owner == ML_OWNER_BUMP) {
        if (((uintptr_t)p & 15) || ((uintptr_t)p & (ML_BUMP_CHUNK - 1)) < ML_CHUNK_DATA + ML_CHUNK_HDR)
            return 0;
        const struct ml_chunk_blk *h = hdr_of(p);
        return __atomic_load_n(&h->state, __ATOMIC_RELAXED) == ML_CHUNK_LIVE ? h->size : 0;
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
        struct ml_chunk_big *b = ml_chunk_big_of(p);
        if (size > BUMP_SMALL_MAX && b->offset == ML_CHUNK_BIG_HDR) {
            if (size > ((size_t)1 << 46))
                return NULL;
            return ml_chunk_big_resize(p, size, ML_OWNER_BUMP_LARGE);
        }
        return bump_move(p, old, size);
    }
    struct ml_chunk_tls *t = &ml_bump_tls;
    struct ml_chunk_blk *h = hdr_of(p);
    if (h == t->last && size <= BUMP_SMALL_MAX && chunk_of(p) == t->chunk) {
        unsigned c = ml_chunk_class(size);
        size_t n = ml_chunk_class_size(c);
        if (n <= (size_t)(t->end - (char *)p)) {
            ml_chunk_mark(t);
            t->cur = (char *)p + n;
            h->size = (uint32_t)n;
            h->cls = c;
            return p;
        }
    }
    if (size <= old)
        return p;
    return bump_move(p, old, size);
}

static void bump_thread_exit(void)
{
    bump_retire(&ml_bump_tls);
    ml_chunk_drain(&ml_bump_tls, ML_BUMP_CHUNK, bump_recycle);
    ml_bump_tls.attached = 0;
}

static void bump_atfork(int phase) { ml_chunk_atfork(&bump.pool, phase); }

static size_t bump_free_bytes(void)
{
    return ml_chunk_pool_free_bytes(&bump.pool, ML_BUMP_CHUNK) + ml_chunk_tls_free_bytes(&ml_bump_tls);
}

const struct ml_backend ml_backend_bump = {
    .name = "bump",
    .init = bump_init,
    .malloc = bump_malloc,
    .zalloc = bump_zalloc,
    .memalign = bump_memalign,
    .free = bump_free,
    .realloc = bump_realloc,
    .usable_size = bump_usable_size,
    .free_bytes = bump_free_bytes,
    .thread_exit = bump_thread_exit,
    .atfork = bump_atfork,
};
