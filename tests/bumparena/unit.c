/* tests/bumparena/unit.c: the bump and arena backends, linked directly.
 *
 * Each test case runs in its own process (Check's fork mode), initialises
 * one backend through its interface and drives it through the slots the
 * shim would call.  Loop tests run once per backend: _i indexes backends[].
 * Nothing here goes through the preload shim; tests.cmake runs real programs
 * under LD_PRELOAD for that.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../core/backend.h"
#include "../../core/lock.h"
#include "../../core/options.h"
#include "../../core/os.h"

#define MIB ((size_t)1 << 20)

static const struct ml_backend *const backends[] = {&ml_backend_bump, &ml_backend_arena};
static const struct ml_backend *be;

static void use_backend(const struct ml_backend *b, size_t arena_limit)
{
    struct ml_options o;
    ml_options_parse(&o, NULL, 0);
    o.arena_limit = arena_limit;
    be = b;
    ck_assert_int_eq(be->init(&o), 0);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Fills a block with bytes derived from tag, and checks them back. */
static void fill(void *p, size_t n, unsigned tag)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)(tag + i * 7);
}

static int intact(const void *p, size_t n, unsigned tag)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (unsigned char)(tag + i * 7))
            return 0;
    return 1;
}

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* ---- alignment and usable size ----------------------------------------- */

START_TEST(test_align_sizes)
{
    use_backend(backends[_i], 0);
    enum { MAXN = 4096 };
    static void *blk[MAXN];
    static size_t req[MAXN], use[MAXN];
    size_t n = 0;
    for (size_t s = 1; s <= MIB + 70001; s = s < 4096 ? s + 2 : (s + s / 8) | 1) {
        ck_assert_uint_lt(n, MAXN);
        void *p = be->malloc(s);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(aligned(p, 16), "size %zu gave %p", s, p);
        size_t u = be->usable_size(p);
        ck_assert_uint_ge(u, s);
        fill(p, u, (unsigned)n);
        blk[n] = p, req[n] = s, use[n] = u, n++;
    }
    /* Blocks written after p must not have overwritten it. */
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(intact(blk[i], use[i], (unsigned)i), "block %zu (size %zu) damaged", i, req[i]);
        ck_assert_uint_eq(be->usable_size(blk[i]), use[i]);
    }
    for (size_t i = 0; i < n; i++)
        be->free(blk[i]);
}
END_TEST

START_TEST(test_memalign)
{
    use_backend(backends[_i], 0);
    enum { MAXN = 256 };
    static void *blk[MAXN];
    static size_t use[MAXN];
    size_t n = 0;
    for (size_t a = 16; a <= MIB; a *= 2) {
        size_t sizes[] = {1, 17, a - 1, a, a + 1, 3 * a + 5, 100001};
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            void *p = be->memalign(a, sizes[k]);
            ck_assert_ptr_nonnull(p);
            ck_assert_msg(aligned(p, a), "memalign(%zu, %zu) gave %p", a, sizes[k], p);
            size_t u = be->usable_size(p);
            ck_assert_uint_ge(u, sizes[k]);
            fill(p, u, (unsigned)n);
            ck_assert_uint_lt(n, MAXN);
            blk[n] = p, use[n] = u, n++;
        }
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(intact(blk[i], use[i], (unsigned)i), "aligned block %zu damaged", i);
    /* Alignments far past the chunk size go to their own mapping. */
    for (size_t a = 2 * MIB; a <= ((size_t)1 << 27); a *= 8) {
        void *p = be->memalign(a, 3 * MIB + 1);
        ck_assert_ptr_nonnull(p);
        ck_assert(aligned(p, a));
        ck_assert_uint_ge(be->usable_size(p), 3 * MIB + 1);
        memset(p, 0x5a, 3 * MIB + 1);
        be->free(p);
    }
    for (size_t i = 0; i < n; i++)
        be->free(blk[i]);
}
END_TEST

/* ---- realloc ------------------------------------------------------------ */

static const size_t realloc_steps[] = {10,     33,     100,    1000,   5000,  70000, 262143,
                                       300000, 1500001, 3 * MIB, MIB - 3, 200000, 5000, 40, 7};

/* Walks p through every step; when interleave, another block is allocated
 * after each step so p is never the most recent block and must move. */
static void realloc_walk(int interleave)
{
    size_t old = 10;
    void *p = be->malloc(old);
    ck_assert_ptr_nonnull(p);
    fill(p, old, 3);
    void *others[sizeof realloc_steps / sizeof realloc_steps[0]];
    for (size_t i = 1; i < sizeof realloc_steps / sizeof realloc_steps[0]; i++) {
        size_t s = realloc_steps[i];
        void *q = be->realloc(p, s);
        ck_assert_ptr_nonnull(q);
        ck_assert(aligned(q, 16));
        ck_assert_uint_ge(be->usable_size(q), s);
        ck_assert_msg(intact(q, old < s ? old : s, 3), "contents lost going %zu -> %zu", old, s);
        fill(q, s, 3);
        p = q, old = s;
        others[i] = interleave ? be->malloc(24) : NULL;
    }
    be->free(p);
    for (size_t i = 1; interleave && i < sizeof realloc_steps / sizeof realloc_steps[0]; i++)
        be->free(others[i]);
}

START_TEST(test_realloc)
{
    use_backend(backends[_i], 0);
    realloc_walk(0);
    realloc_walk(1);
    /* The most recent block grows and shrinks where it is. */
    void *p = be->malloc(100);
    ck_assert_ptr_eq(be->realloc(p, 4000), p);
    ck_assert_ptr_eq(be->realloc(p, 50), p);
    ck_assert_uint_ge(be->usable_size(p), 50);
    be->free(p);
}
END_TEST

START_TEST(test_zalloc)
{
    use_backend(backends[_i], 0);
    uint64_t seed = 88172645463325252ull;
    enum { N = 300 };
    void *blk[N];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            size_t s = 1 + rng_next(&seed) % 3000;
            blk[i] = be->zalloc(s);
            ck_assert_ptr_nonnull(blk[i]);
            const unsigned char *c = blk[i];
            for (size_t k = 0; k < s; k++)
                ck_assert_msg(!c[k], "round %d block %d byte %zu not zero", round, i, k);
            memset(blk[i], 0xab, be->usable_size(blk[i]));
        }
        /* Free in a shuffled order so memory comes back dirty and reused. */
        for (int i = N - 1; i > 0; i--) {
            int j = (int)(rng_next(&seed) % (uint64_t)(i + 1));
            void *t = blk[i];
            blk[i] = blk[j], blk[j] = t;
        }
        for (int i = 0; i < N; i++)
            be->free(blk[i]);
    }
    void *p = be->malloc(777);
    memset(p, 0xcd, 777);
    be->free(p);
    unsigned char *z = be->zalloc(777);
    for (size_t k = 0; k < 777; k++)
        ck_assert(!z[k]);
    unsigned char *big = be->zalloc(5 * MIB);
    ck_assert_ptr_nonnull(big);
    for (size_t k = 0; k < 5 * MIB; k += 4096)
        ck_assert(!big[k]);
    be->free(big);
    be->free(z);
}
END_TEST

/* ---- chunk recycling ------------------------------------------------------ */

#define RECYCLE_N 24000
static void *recycle_blk[RECYCLE_N];

static void *recycle_alloc(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 2654435761u + 1;
    for (int i = 0; i < RECYCLE_N; i++) {
        recycle_blk[i] = be->malloc(16 + rng_next(&seed) % 200);
        if (recycle_blk[i])
            memset(recycle_blk[i], 1, 16);
    }
    be->thread_exit();
    return NULL;
}

static void *recycle_free(void *arg)
{
    (void)arg;
    for (int i = 0; i < RECYCLE_N; i++)
        be->free(recycle_blk[i]);
    be->thread_exit();
    return NULL;
}

/* Distinct 1 MiB regions in a sorted set. */
static size_t region_add(uintptr_t *set, size_t n, size_t cap, uintptr_t r)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == r)
            return n;
    ck_assert_uint_lt(n, cap);
    set[n] = r;
    return n + 1;
}

/* One thread allocates ~3.5 MiB and exits, another frees it all; round
 * after round the same chunks must come back. */
START_TEST(test_recycle_cross_thread)
{
    use_backend(backends[_i], 0);
    enum { CAP = 4096 };
    static uintptr_t seen[CAP];
    size_t nseen = 0, after_first = 0;
    for (int round = 0; round < 30; round++) {
        pthread_t a, f;
        ck_assert_int_eq(pthread_create(&a, NULL, recycle_alloc, (void *)(uintptr_t)round), 0);
        pthread_join(a, NULL);
        for (int i = 0; i < RECYCLE_N; i++) {
            ck_assert_ptr_nonnull(recycle_blk[i]);
            nseen = region_add(seen, nseen, CAP, (uintptr_t)recycle_blk[i] >> 20);
        }
        ck_assert_int_eq(pthread_create(&f, NULL, recycle_free, NULL), 0);
        pthread_join(f, NULL);
        if (round == 0)
            after_first = nseen;
    }
    /* Process RSS would count thread stacks and sanitizer shadow too; the
     * addresses say directly that no chunk was mapped after the first round. */
    ck_assert_msg(nseen == after_first, "%zu regions after round 1, %zu after 30 rounds", after_first, nseen);
}
END_TEST

static void *free_list_of(void *arg)
{
    void **v = arg;
    for (int i = 0; v[i]; i++)
        be->free(v[i]);
    be->thread_exit();
    return NULL;
}

/* The owner keeps allocating while another thread frees everything: its
 * current chunk must be reused rather than left behind. */
START_TEST(test_recycle_owner_stays)
{
    use_backend(backends[_i], 0);
    enum { CAP = 64, N = 1000 };
    static void *v[N + 1];
    uintptr_t seen[CAP];
    size_t nseen = 0;
    for (int round = 0; round < 2000; round++) {
        for (int i = 0; i < N; i++) {
            v[i] = be->malloc(100);
            ck_assert_ptr_nonnull(v[i]);
            nseen = region_add(seen, nseen, CAP, (uintptr_t)v[i] >> 20);
        }
        v[N] = NULL;
        pthread_t f;
        ck_assert_int_eq(pthread_create(&f, NULL, free_list_of, v), 0);
        pthread_join(f, NULL);
    }
    /* 2000 rounds of 116 KiB is 230 MiB of allocation. */
    ck_assert_msg(nseen <= 8, "%zu distinct MiB regions used", nseen);
}
END_TEST

/* Alone, malloc/free pairs and stacks never leave the first chunk. */
START_TEST(test_recycle_same_thread)
{
    use_backend(backends[_i], 0);
    void *first = be->malloc(64);
    be->free(first);
    for (int i = 0; i < 1000000; i++) {
        void *p = be->malloc(64 + (size_t)(i % 7) * 16);
        ck_assert_ptr_eq(p, first);
        be->free(p);
    }
    void *stack[100];
    for (int r = 0; r < 1000; r++) {
        for (int i = 0; i < 100; i++)
            stack[i] = be->malloc(1000);
        for (int i = 99; i >= 0; i--)
            be->free(stack[i]);
    }
    ck_assert_ptr_eq(be->malloc(64), first);
}
END_TEST

/* One thread replaces random blocks of a fixed-size table, in random order
 * (cfrac, espresso and bench/churn have this shape): the memory the
 * backend maps must stay near the live set instead of growing with the
 * bytes allocated.  Before blocks were reused the backends mapped several
 * times the live set here (every chunk keeps a few survivors). */
START_TEST(test_recycle_churn)
{
    use_backend(backends[_i], 0);
    enum { N = 8192, OPS = 400000 };
    static void *blk[N];
    static size_t len[N];
    uint64_t seed = 12345;
    size_t live = 0, live_peak = 0;
    long base = ml_os_user_bytes(), mapped_peak = 0;
    for (int op = 0; op < OPS; op++) {
        size_t i = rng_next(&seed) % N;
        if (blk[i]) {
            ck_assert(intact(blk[i], 16, (unsigned)i));
            be->free(blk[i]);
            live -= len[i];
        }
        len[i] = 16 + rng_next(&seed) % 497; /* 16..512 */
        blk[i] = be->malloc(len[i]);
        ck_assert_ptr_nonnull(blk[i]);
        fill(blk[i], 16, (unsigned)i);
        memset((char *)blk[i] + 16, 0x5a, len[i] - 16); /* touched, as a program would */
        live += len[i];
        if (live > live_peak)
            live_peak = live;
        if (op % 1024 == 0 && ml_os_user_bytes() - base > mapped_peak)
            mapped_peak = ml_os_user_bytes() - base;
    }
    for (size_t i = 0; i < N; i++)
        be->free(blk[i]);
    /* Headers (16 bytes a block) and rounding to 16 add about 12% here; a
     * chunk being filled adds one chunk (4 MiB for arena). */
    size_t bound = 2 * live_peak + 4 * MIB;
    ck_assert_msg((size_t)mapped_peak <= bound, "%ld bytes mapped for a live peak of %zu (bound %zu)", mapped_peak,
                  live_peak, bound);
}
END_TEST

/* ---- arena: rollback and the budget -------------------------------------- */

START_TEST(test_arena_rollback)
{
    use_backend(&ml_backend_arena, 0);
    void *p = be->malloc(100);
    be->free(p);
    ck_assert_ptr_eq(be->malloc(100), p);
    void *a = be->malloc(64), *b = be->malloc(64), *c = be->malloc(64), *d = be->malloc(64);
    be->free(b); /* not the most recent: only marked */
    be->free(c);
    ck_assert_uint_eq(be->usable_size(a), 64);
    /* Freeing d walks back over c and b, which were freed before it. */
    be->free(d);
    ck_assert_ptr_eq(be->malloc(64), b);
    /* The padding in front of an aligned block comes back with it. */
    void *x = be->malloc(16);
    void *y = be->memalign(4096, 100);
    be->free(y);
    ck_assert_ptr_eq(be->malloc(16), (char *)x + 32);
}
END_TEST

/* A rollback that meets a listed block deep in its class's list (the
 * lists are singly linked: it looks at the first 8 entries) stops there
 * and leaves it listed, so every freed block still comes back.  Before the
 * lists lost their back links the walk went on down to the live block. */
START_TEST(test_rollback_deep)
{
    use_backend(backends[_i], 0);
    void *x = be->malloc(64);
    void *y[9];
    for (int i = 0; i < 9; i++)
        y[i] = be->malloc(64);
    void *z = be->malloc(64);
    be->free(y[8]); /* ends up ninth in the list of 64 */
    for (int i = 0; i < 8; i++)
        be->free(y[i]);
    be->free(z); /* the most recent: rolls back over z, stops at y[8] */
    ck_assert_ptr_eq(be->malloc(128), z);
    for (int i = 7; i >= 0; i--)
        ck_assert_ptr_eq(be->malloc(64), y[i]);
    ck_assert_ptr_eq(be->malloc(64), y[8]);
    void *fresh = be->malloc(64);
    ck_assert((char *)fresh > (char *)z);
    ck_assert_ptr_ne(x, fresh);
}
END_TEST

static void *fill_budget(void *arg)
{
    size_t *total = arg;
    void *p;
    while ((p = be->malloc(100)) != NULL)
        *total += be->usable_size(p);
    return NULL;
}

START_TEST(test_arena_limit)
{
    const size_t limit = MIB;
    use_backend(&ml_backend_arena, limit);
    enum { MAXN = 2000 };
    static void *blk[MAXN];
    size_t n = 0, sum = 0;
    for (;;) {
        void *p = be->malloc(1000);
        if (!p)
            break;
        ck_assert_uint_lt(n, MAXN);
        blk[n++] = p;
        sum += be->usable_size(p);
    }
    size_t one = be->usable_size(blk[0]);
    ck_assert_uint_le(sum, limit);
    ck_assert_msg(sum + one > limit, "stopped at %zu of %zu with %zu-byte blocks", sum, limit, one);
    /* Freeing the most recent block gives its budget back, once. */
    be->free(blk[n - 1]);
    ck_assert_ptr_eq(be->malloc(1000), blk[n - 1]);
    ck_assert_ptr_null(be->malloc(1000));
    /* What is left fits exactly, then nothing does. */
    size_t left = limit - sum;
    void *rest = NULL;
    if (left) {
        rest = be->malloc(left);
        ck_assert_ptr_nonnull(rest);
    }
    ck_assert_ptr_null(be->malloc(1));
    ck_assert_ptr_null(be->zalloc(1));
    ck_assert_ptr_null(be->memalign(64, 1));
    ck_assert_ptr_null(be->malloc(2 * MIB));
    /* A refused realloc leaves the block alone. */
    void *top = rest ? rest : blk[n - 1];
    size_t top_use = be->usable_size(top);
    fill(top, top_use, 9);
    ck_assert_ptr_null(be->realloc(top, top_use + 16));
    ck_assert(intact(top, top_use, 9));
    /* A freed block that is not the most recent still holds its budget. */
    be->free(blk[0]);
    ck_assert_ptr_null(be->malloc(16));
    /* Shrinking the most recent block in place releases the difference. */
    if (top_use >= 32) {
        ck_assert_ptr_eq(be->realloc(top, 16), top);
        ck_assert_ptr_nonnull(be->malloc(top_use - 16));
        ck_assert_ptr_null(be->malloc(1));
    }
}
END_TEST

START_TEST(test_arena_limit_all_back)
{
    const size_t limit = 3 * MIB;
    use_backend(&ml_backend_arena, limit);
    static void *blk[8000];
    size_t n = 0;
    while ((blk[n] = be->malloc(500)) != NULL)
        n++;
    ck_assert_uint_eq(n, limit / 512);
    /* Oldest first: the last free rolls back over all of them. */
    for (size_t i = 0; i < n; i++)
        be->free(blk[i]);
    void *all[3];
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(all[i] = be->malloc(MIB));
    ck_assert_ptr_null(be->malloc(1));
    for (int i = 2; i >= 0; i--)
        be->free(all[i]);
    /* A large block is charged and refunded too. */
    void *big = be->malloc(2 * MIB);
    ck_assert_ptr_nonnull(big);
    ck_assert_ptr_null(be->malloc(MIB + 1));
    ck_assert_ptr_nonnull(be->malloc(MIB));
    ck_assert_ptr_null(be->malloc(1));
    be->free(big);
    ck_assert_ptr_nonnull(be->malloc(2 * MIB));
}
END_TEST

START_TEST(test_arena_limit_threads)
{
    const size_t limit = 4 * MIB;
    use_backend(&ml_backend_arena, limit);
    pthread_t t[4];
    size_t total[4] = {0};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fill_budget, &total[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    size_t sum = total[0] + total[1] + total[2] + total[3];
    ck_assert_uint_le(sum, limit);
    ck_assert_msg(sum > limit - 112, "the threads stopped at %zu of %zu", sum, limit);
}
END_TEST

/* ---- threads ---------------------------------------------------------------- */

#define SLOTS 4096
#define OPS 100000
struct slot {
    void *p;
    size_t size;
    unsigned tag;
};
static struct slot *slots; /* each entry swapped whole under its spin lock */
static ml_mutex slot_lock[SLOTS];

static size_t random_size(uint64_t *seed)
{
    uint64_t r = rng_next(seed);
    if (r % 2000 == 0)
        return 250000 + r % (2 * MIB); /* both sides of the large thresholds */
    if (r % 50 == 0)
        return 1 + r % 65536;
    return 1 + r % 512;
}

static int check_and_free(struct slot *s)
{
    int bad = !intact(s->p, s->size, s->tag) || be->usable_size(s->p) < s->size;
    be->free(s->p);
    return bad;
}

static void *churn(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 7;
    long bad = 0;
    for (int op = 0; op < OPS; op++) {
        uint64_t r = rng_next(&seed);
        size_t i = r % SLOTS;
        unsigned kind = (unsigned)(r >> 20) % 10;
        struct slot mine = {0}, theirs;
        if (kind < 5 || kind == 9) {
            mine.size = random_size(&seed);
            mine.tag = (unsigned)(r >> 40);
            if (kind == 9)
                mine.p = be->memalign((size_t)16 << (r >> 50) % 9, mine.size);
            else if (kind == 4)
                mine.p = be->zalloc(mine.size);
            else
                mine.p = be->malloc(mine.size);
            if (!mine.p) {
                bad++;
                continue;
            }
            if (kind == 4)
                for (size_t k = 0; k < mine.size; k++)
                    bad += ((unsigned char *)mine.p)[k] != 0;
            fill(mine.p, mine.size, mine.tag);
        }
        ml_mutex_lock(&slot_lock[i]);
        theirs = slots[i];
        if (kind == 5 || kind == 6) { /* realloc the block in place in the slot */
            if (theirs.p) {
                size_t ns = random_size(&seed);
                bad += !intact(theirs.p, theirs.size, theirs.tag);
                void *q = be->realloc(theirs.p, ns);
                if (!q) {
                    bad++;
                } else {
                    bad += !intact(q, theirs.size < ns ? theirs.size : ns, theirs.tag);
                    fill(q, ns, theirs.tag);
                    slots[i].p = q;
                    slots[i].size = ns;
                }
            }
            ml_mutex_unlock(&slot_lock[i]);
            continue;
        }
        slots[i] = mine; /* a new block, or empty for kinds 7 and 8 */
        ml_mutex_unlock(&slot_lock[i]);
        if (theirs.p)
            bad += check_and_free(&theirs);
    }
    be->thread_exit();
    return (void *)bad;
}

START_TEST(test_threads)
{
    use_backend(backends[_i], 0);
    static struct slot table[SLOTS];
    slots = table;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)), 0);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    ck_assert_int_eq(bad, 0);
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i].p)
            ck_assert_int_eq(check_and_free(&slots[i]), 0);
}
END_TEST

/* ---- foreign pointers, thread exit, fork ------------------------------------ */

START_TEST(test_foreign)
{
    use_backend(backends[_i], 0);
    static char in_data[64] __attribute__((aligned(16)));
    char on_stack[64] __attribute__((aligned(16)));
    char *from_glibc = malloc(100);
    strcpy(from_glibc, "glibc's");
    char *mapped = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(mapped, MAP_FAILED);
    void *foreign[] = {in_data, on_stack, from_glibc, mapped, mapped + 16, (void *)16, (void *)~(uintptr_t)15};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        be->free(foreign[i]);
        ck_assert_uint_eq(be->usable_size(foreign[i]), 0);
        ck_assert_ptr_null(be->realloc(foreign[i], 10));
    }
    ck_assert_str_eq(from_glibc, "glibc's");
    free(from_glibc);
    munmap(mapped, 1 << 16);

    /* Interior pointers and a second free of our own blocks are ignored. */
    char *p = be->zalloc(256);
    char *q = be->malloc(32);
    be->free(p + 32);
    be->free(p + 8);
    ck_assert_uint_eq(be->usable_size(p + 32), 0);
    ck_assert_uint_ge(be->usable_size(p), 256);
    be->free(p);
    be->free(p);
    ck_assert_uint_eq(be->usable_size(p), 0);
    char *big = be->malloc(3 * MIB);
    be->free(big + 4096);
    ck_assert_uint_ge(be->usable_size(big), 3 * MIB);
    be->free(big);
    /* Still sound afterwards. */
    void *r = be->malloc(32);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_ne(r, q);
    be->free(q);
    be->free(r);
}
END_TEST

static void *exit_then_alloc(void *arg)
{
    uintptr_t *region = arg; /* 6 entries */
    long bad = 0;
    for (int round = 0; round < 3; round++) {
        char *p = be->malloc(40);
        fill(p, 40, 1);
        be->thread_exit();
        char *q = be->malloc(4000); /* a destructor allocating after the hook */
        region[2 * round] = (uintptr_t)p >> 20;
        region[2 * round + 1] = (uintptr_t)q >> 20;
        bad += !p || !q || !intact(p, 40, 1);
        memset(q, 2, 4000);
        be->free(p);
        be->free(q);
        be->thread_exit();
    }
    return (void *)bad;
}

/* Threads that free everything they allocate, then exit: each one's chunk
 * is empty when retired and must go straight back for the next thread. */
START_TEST(test_thread_exit)
{
    use_backend(backends[_i], 0);
    enum { CAP = 700 };
    static uintptr_t seen[CAP];
    size_t nseen = 0;
    for (int i = 0; i < 100; i++) {
        pthread_t t;
        void *r;
        uintptr_t region[6];
        ck_assert_int_eq(pthread_create(&t, NULL, exit_then_alloc, region), 0);
        pthread_join(t, &r);
        ck_assert_int_eq((long)r, 0);
        for (int k = 0; k < 6; k++)
            nseen = region_add(seen, nseen, CAP, region[k]);
    }
    ck_assert_msg(nseen <= 8, "100 threads in turn used %zu distinct MiB regions", nseen);
}
END_TEST

static int fork_stop;

static void *fork_busy(void *arg)
{
    uint64_t seed = (uintptr_t)arg + 99;
    void *keep[64] = {0};
    while (!__atomic_load_n(&fork_stop, __ATOMIC_RELAXED)) {
        size_t i = rng_next(&seed) % 64;
        be->free(keep[i]);
        keep[i] = be->malloc(1 + rng_next(&seed) % 3000);
    }
    for (int i = 0; i < 64; i++)
        be->free(keep[i]);
    be->thread_exit();
    return NULL;
}

START_TEST(test_fork)
{
    use_backend(backends[_i], 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fork_busy, (void *)(uintptr_t)i), 0);
    for (int k = 0; k < 30; k++) {
        be->atfork(ML_FORK_PREPARE);
        pid_t pid = fork();
        if (pid == 0) {
            be->atfork(ML_FORK_CHILD);
            for (int i = 0; i < 3000; i++) {
                void *p = be->malloc(1 + (size_t)i * 37 % 300000);
                if (!p)
                    _exit(2);
                memset(p, 1, 8);
                be->free(p);
            }
            _exit(0);
        }
        be->atfork(ML_FORK_PARENT);
        ck_assert_int_gt(pid, 0);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %#x", k, status);
    }
    __atomic_store_n(&fork_stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}
END_TEST

/* ---- the suite ------------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name, int timeout)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("bumparena");
    TCase *tc = tcase(s, "align", 60);
    tcase_add_loop_test(tc, test_align_sizes, 0, 2);
    tcase_add_loop_test(tc, test_memalign, 0, 2);
    tc = tcase(s, "realloc", 60);
    tcase_add_loop_test(tc, test_realloc, 0, 2);
    tcase_add_loop_test(tc, test_zalloc, 0, 2);
    tc = tcase(s, "recycle", 120);
    tcase_add_loop_test(tc, test_recycle_cross_thread, 0, 2);
    tcase_add_loop_test(tc, test_recycle_owner_stays, 0, 2);
    tcase_add_loop_test(tc, test_recycle_same_thread, 0, 2);
    tcase_add_loop_test(tc, test_recycle_churn, 0, 2);
    tc = tcase(s, "arena", 60);
    tcase_add_test(tc, test_arena_rollback);
    tcase_add_loop_test(tc, test_rollback_deep, 0, 2);
    tcase_add_test(tc, test_arena_limit);
    tcase_add_test(tc, test_arena_limit_all_back);
    tcase_add_test(tc, test_arena_limit_threads);
    tc = tcase(s, "threads", 300);
    tcase_add_loop_test(tc, test_threads, 0, 2);
    tc = tcase(s, "lifecycle", 120);
    tcase_add_loop_test(tc, test_foreign, 0, 2);
    tcase_add_loop_test(tc, test_thread_exit, 0, 2);
    tcase_add_loop_test(tc, test_fork, 0, 2);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
