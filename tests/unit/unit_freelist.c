/* tests/unit/unit_freelist.c: the freelist backend's memory reuse, called
 * directly (no preload).
 *   - large_reuse: a 5-25 MiB buffer freed and asked for again in a loop is
 *     served from the freed mapping (its pages already resident, as mincore
 *     shows before the program touches them), not from a fresh mmap each
 *     time; a fresh mapping has no resident page.
 *   - large_calloc_zero: calloc served from a reused mapping reads zero
 *     everywhere, whether the mapping was cut to size, grown by mremap or
 *     taken as it was.
 *   - purge_decay: freed pages are not decommitted the moment a few MiB
 *     pile up (a program that frees and reallocates in waves would fault
 *     them in again), but are once they have stayed free for a while.
 *   - realloc_grow: buffers grown by realloc in small steps up to 1 MiB
 *     (a string builder) cost little more resident memory than their
 *     final size: past 64 KiB they move to their own mapping and grow by
 *     mremap, instead of being copied from size class to size class with
 *     every abandoned copy left resident.
 *   - realloc_cycle: 32 buffers grown by realloc to random lengths (most a
 *     few KiB, some up to 1 MiB), freed and started again, as
 *     bench/realloc.c does: the freed mappings kept for reuse stay within
 *     the peak of large bytes in use, so resident memory stays within
 *     1.8 times the peak of live bytes (2.04 times when 8 MiB were kept
 *     whatever the peak).
 *   - realloc_room: a buffer that realloc grows past 64 KiB takes the
 *     roomiest cached mapping (one a bigger buffer left, still resident)
 *     and grows inside it in place, contents intact, without faulting a
 *     page: realloc used to cut the mapping down to the size asked for
 *     whenever that was under half of it, on the way up too, so every
 *     later step faulted the same pages in afresh.
 *   - consumer_cache: a thread that only frees (the consumer of a
 *     pipeline) keeps at most one batch of a class in its cache, not two:
 *     the other thread gets all but those back for its next allocations
 *     (bench_prodcons's peak RSS 2580 -> 2324 KiB, glibc 1844).
 *   - nursery_pack: a short program's first objects, one of every class up
 *     to 4 KiB (26 KiB in all), lie in a handful of pages and fault in
 *     about as many, as glibc's heap packs them, instead of a span (a page
 *     or more) for each of the 28 classes; each is writable, keeps its
 *     contents through realloc, answers usable_size and is freed; memalign
 *     still gets an aligned block while such objects wait in the cache.
 *   - nursery_leave: a malloc/free loop on one class leaves the nursery's
 *     page (whose frees take the backend's slow path) within a few hundred
 *     rounds.
 * Timing: purge_decay only waits (sleeps of at least the decay period), it
 * never asserts that something happened quickly. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../../core/backend.h"
#include "../../core/options.h"

static const struct ml_backend *be;

static void setup(void)
{
    static struct ml_options opt;
    be = ml_backend_find("freelist");
    ck_assert_ptr_nonnull(be);
    ck_assert_int_eq(be->init(&opt), 0);
}

/* Resident pages of [p, p+n), page-aligned inward. */
static size_t resident_pages(const void *p, size_t n)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + ps - 1) & ~(ps - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(ps - 1);
    if (end <= a)
        return 0;
    size_t pages = (end - a) / ps;
    unsigned char *vec = calloc(pages, 1);
    ck_assert_ptr_nonnull(vec);
    ck_assert_int_eq(mincore((void *)a, end - a, vec), 0);
    size_t r = 0;
    for (size_t i = 0; i < pages; i++)
        r += vec[i] & 1;
    free(vec);
    return r;
}

/* How many whole pages [p, p+n) holds (those resident_pages looks at). */
static size_t whole_pages(const void *p, size_t n)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + ps - 1) & ~(ps - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(ps - 1);
    return end > a ? (end - a) / ps : 0;
}

/* Whether the page holding p is resident. */
static int page_resident(const void *p)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char v = 0;
    if (mincore((void *)((uintptr_t)p & ~(ps - 1)), 1, &v) != 0) {
        ck_assert_int_eq(errno, ENOMEM); /* unmapped: not resident either */
        return 0;
    }
    return v & 1;
}

static void touch(unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i += 4096)
        p[i] = v;
    p[n - 1] = v;
}

START_TEST(large_reuse)
{
    uint64_t x = 12345;
    int fresh = 0;
    const int rounds = 40;
    unsigned char *keep = be->malloc((size_t)20 << 20); /* a second live buffer, as programs have */
    ck_assert_ptr_nonnull(keep);
    touch(keep, (size_t)20 << 20, 1);
    unsigned char *p = be->malloc((size_t)12 << 20);
    ck_assert_ptr_nonnull(p);
    touch(p, (size_t)12 << 20, 2);
    size_t had = (size_t)12 << 20;
    for (int i = 0; i < rounds; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = ((size_t)5 << 20) + (size_t)((x >> 33) % ((size_t)20 << 20));
        be->free(p);
        p = be->malloc(n);
        ck_assert_ptr_nonnull(p);
        /* the first page is resident only if the memory was reused; a
         * freed mapping under half the size asked for is left cached (it
         * would bring few pages), so only the other rounds count */
        if (resident_pages(p, 4096 * 4) == 0 && had >= n / 2)
            fresh++;
        touch(p, n, (unsigned char)i);
        had = n;
    }
    be->free(p);
    be->free(keep);
    /* Growing a smaller freed mapping maps the new part fresh, but its
     * start stays resident: nearly every round must reuse. */
    ck_assert_msg(fresh <= 2, "%d of %d large allocations got a fresh mapping", fresh, rounds);
}
END_TEST

/* Page faults of the process so far (minor and major). */
static long faults_now(void)
{
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_minflt + ru.ru_majflt;
}

/* mimalloc-bench's malloc-large: 20 live buffers of 5 to 25 MiB, each
 * replaced by a new one of a random size that is allocated before the old
 * one is freed.  The cache then held only the buffer freed last and grew or
 * cut it for every request: a fault for about a quarter of the pages the
 * program touched (384,903 for 1,519,524 pages).  Now a cached mapping under
 * half the size asked for is left for a later request, the cache keeps up to
 * half the peak of large bytes for several epochs, and faults stay under a
 * fifth of the pages touched (247,007). */
START_TEST(large_replace)
{
    enum { NB = 20, ROUNDS = 400 };
    unsigned char *buf[NB] = {0};
    uint64_t x = 42;
    size_t pages = 0;
    long before = faults_now();
    for (int i = 0; i < ROUNDS; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t k = (size_t)(x >> 60) % NB;
        size_t n = ((size_t)5 << 20) + (size_t)((x >> 20) % ((size_t)20 << 20));
        unsigned char *q = be->malloc(n);
        ck_assert_ptr_nonnull(q);
        touch(q, n, (unsigned char)i);
        pages += (n + 4095) / 4096;
        if (buf[k])
            be->free(buf[k]);
        buf[k] = q;
    }
    long faults = faults_now() - before;
    for (int k = 0; k < NB; k++)
        if (buf[k])
            be->free(buf[k]);
    printf("large_replace: %ld faults for %zu pages touched\n", faults, pages);
    ck_assert_msg((size_t)faults * 5 <= pages, "%ld page faults for %zu pages touched", faults, pages);
}
END_TEST

static void check_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 509)
        ck_assert_msg(p[i] == 0, "byte %zu of %zu is %d", i, n, p[i]);
    ck_assert_int_eq(p[n - 1], 0);
}

START_TEST(large_calloc_zero)
{
    static const size_t pairs[][2] = {
        {(size_t)24 << 20, (size_t)6 << 20},  /* cut to size */
        {(size_t)6 << 20, (size_t)20 << 20},  /* grown */
        {(size_t)10 << 20, (size_t)10 << 20}, /* as it was */
        {(size_t)9 << 20, (size_t)8 << 20},   /* a little smaller, kept whole */
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        unsigned char *p = be->malloc(pairs[k][0]);
        ck_assert_ptr_nonnull(p);
        memset(p, 0xa5, pairs[k][0]);
        be->free(p);
        unsigned char *q = be->zalloc(pairs[k][1]);
        ck_assert_ptr_nonnull(q);
        check_zero(q, pairs[k][1]);
        ck_assert_uint_ge(be->usable_size(q), pairs[k][1]);
        memset(q, 0x5a, pairs[k][1]);
        be->free(q);
    }
}
END_TEST

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

START_TEST(purge_decay)
{
    enum { N = 16384, SIZE = 1000 }; /* 16 MiB of one class */
    static unsigned char *blk[N];
    for (int i = 0; i < N; i++) {
        blk[i] = be->malloc(SIZE);
        ck_assert_ptr_nonnull(blk[i]);
        memset(blk[i], 7, SIZE);
    }
    for (int i = 0; i < N; i++)
        be->free(blk[i]);
    /* Right after the wave of frees most of those pages are still there,
     * ready for the next wave. */
    size_t before = 0;
    for (int i = 0; i < N; i += 64)
        before += page_resident(blk[i]);
    ck_assert_msg(before >= (N / 64) * 3 / 4, "only %zu of %d sampled blocks resident right after free", before,
                  N / 64);
    /* After they stayed free for more than two decay periods (and a free
     * gave the backend a chance to look), they are given back. */
    for (int round = 0; round < 3; round++) {
        sleep_ms(250);
        void *big = be->malloc((size_t)2 << 20);
        ck_assert_ptr_nonnull(big);
        be->free(big);
    }
    size_t after = 0;
    for (int i = 0; i < N; i += 64)
        after += page_resident(blk[i]);
    ck_assert_msg(after <= (N / 64) / 4, "%zu of %d sampled blocks still resident after the decay", after, N / 64);
}
END_TEST

/* The process's resident bytes (/proc/self/statm). */
static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    unsigned long size = 0, res = 0;
    ck_assert_int_eq(fscanf(f, "%lu %lu", &size, &res), 2);
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

START_TEST(realloc_grow)
{
    enum { NBUF = 8, STEP = 12 << 10, FINAL = 1 << 20 };
    unsigned char *buf[NBUF] = {0};
    size_t len[NBUF] = {0};
    size_t base = rss_bytes();
    for (size_t n = STEP; n <= FINAL; n += STEP)
        for (int k = 0; k < NBUF; k++) {
            unsigned char *q = be->realloc(buf[k] ? buf[k] : be->malloc(16), n);
            ck_assert_ptr_nonnull(q);
            if (len[k])
                ck_assert_msg(q[0] == (unsigned char)k && q[len[k] - 1] == (unsigned char)k,
                              "realloc lost the contents");
            memset(q + len[k], k, n - len[k]);
            buf[k] = q;
            len[k] = n;
        }
    size_t grown = rss_bytes() - base, live = (size_t)NBUF * len[0];
    for (int k = 0; k < NBUF; k++)
        be->free(buf[k]);
    ck_assert_msg(grown <= live + live / 2, "%zu KiB resident for %zu KiB of grown buffers", grown >> 10,
                  live >> 10);
}
END_TEST

START_TEST(realloc_cycle)
{
    enum { SLOTS = 32, OPS = 20000 };
    unsigned char *p[SLOTS] = {0};
    size_t len[SLOTS] = {0}, target[SLOTS] = {0};
    uint64_t x = 0x7265616c6c6f63;
    size_t live = 0, peak = 0;
    size_t base = rss_bytes();
    for (int i = 0; i < OPS; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        unsigned k = (unsigned)(x >> 59) % SLOTS;
        if (p[k] && len[k] >= target[k]) {
            ck_assert_int_eq(p[k][len[k] - 1], (unsigned char)k);
            be->free(p[k]);
            live -= len[k];
            p[k] = NULL;
        }
        if (!p[k]) {
            len[k] = 0;
            unsigned pick = (unsigned)(x >> 20) % 100, r = (unsigned)(x >> 30);
            target[k] = pick < 75 ? 64 + r % 4032 : pick < 95 ? 4096 + r % 61440 : 65536 + r % 983040;
        }
        size_t chunk = 1 + (size_t)(x >> 8) % (target[k] / 4 + 16);
        unsigned char *q = len[k] ? be->realloc(p[k], len[k] + chunk) : be->malloc(chunk);
        ck_assert_ptr_nonnull(q);
        memset(q + len[k], k, chunk);
        p[k] = q;
        len[k] += chunk;
        live += chunk;
        if (live > peak)
            peak = live;
    }
    size_t grown = rss_bytes() - base;
    for (int k = 0; k < SLOTS; k++)
        if (p[k])
            be->free(p[k]);
    ck_assert_msg(grown <= peak * 9 / 5, "%zu KiB resident for a peak of %zu KiB live", grown >> 10, peak >> 10);
}
END_TEST

enum { CC_N = 1000, CC_SIZE = 64, CC_BATCH = 64 }; /* 16 KiB of 64-byte objects a batch */
static void *cc_block[CC_N];
static pthread_barrier_t cc_freed, cc_done;

static void *cc_consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < CC_N; i++)
        be->free(cc_block[i]);
    pthread_barrier_wait(&cc_freed);
    pthread_barrier_wait(&cc_done); /* alive (its cache unflushed) until the producer looked */
    return NULL;
}

static int cc_cmp(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(consumer_cache)
{
    for (int i = 0; i < CC_N; i++) {
        cc_block[i] = be->malloc(CC_SIZE);
        ck_assert_ptr_nonnull(cc_block[i]);
    }
    uintptr_t freed[CC_N];
    for (int i = 0; i < CC_N; i++)
        freed[i] = (uintptr_t)cc_block[i];
    qsort(freed, CC_N, sizeof freed[0], cc_cmp);
    ck_assert_int_eq(pthread_barrier_init(&cc_freed, NULL, 2), 0);
    ck_assert_int_eq(pthread_barrier_init(&cc_done, NULL, 2), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, cc_consumer, NULL), 0);
    pthread_barrier_wait(&cc_freed);
    static void *again[2 * CC_N];
    int reused = 0;
    for (int i = 0; i < 2 * CC_N; i++) {
        again[i] = be->malloc(CC_SIZE);
        ck_assert_ptr_nonnull(again[i]);
        uintptr_t a = (uintptr_t)again[i];
        reused += bsearch(&a, freed, CC_N, sizeof freed[0], cc_cmp) != NULL;
    }
    pthread_barrier_wait(&cc_done);
    pthread_join(t, NULL);
    for (int i = 0; i < 2 * CC_N; i++)
        be->free(again[i]);
    ck_assert_msg(reused >= CC_N - CC_BATCH, "%d of %d blocks freed by the consumer came back (%d held in its cache)",
                  reused, CC_N, CC_N - reused);
}
END_TEST

/* The sizes of the freelist's classes up to 4 KiB. */
static size_t class_sizes(size_t *out)
{
    size_t k = 0;
    for (size_t n = 16; n <= 128; n += 16)
        out[k++] = n;
    for (size_t p = 128; p < 4096; p *= 2)
        for (size_t i = 1; i <= 4; i++)
            out[k++] = p + i * (p / 4);
    return k;
}

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(nursery_pack)
{
    size_t sizes[64], n = class_sizes(sizes), total = 0;
    ck_assert_int_eq(n, 28);
    unsigned char *blk[64];
    uintptr_t pages[64];
    long before = faults_now();
    for (size_t i = 0; i < n; i++) {
        blk[i] = be->malloc(sizes[i]);
        ck_assert_ptr_nonnull(blk[i]);
        ck_assert_uint_eq((uintptr_t)blk[i] % 16, 0);
        ck_assert_uint_ge(be->usable_size(blk[i]), sizes[i]);
        memset(blk[i], (int)i + 1, sizes[i]);
        pages[i] = (uintptr_t)blk[i] >> 12;
        total += sizes[i];
    }
    long faults = faults_now() - before;
    qsort(pages, n, sizeof pages[0], cmp_uptr);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        distinct += !i || pages[i] != pages[i - 1];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < sizes[i]; j += 1 + j % 13)
            ck_assert_msg(blk[i][j] == (unsigned char)(i + 1), "block %zu overwritten at %zu", i, j);
    /* 26 KiB is 7 pages: 8 pages and 16 faults (the tables included); a span
     * per class took 28 pages and 99 faults */
    ck_assert_msg(distinct <= total / 4096 + 3, "%zu classes (%zu bytes) spread over %zu pages", n, total, distinct);
    ck_assert_msg(faults <= (long)(total / 4096) + 12, "%ld page faults for %zu bytes in %zu classes", faults, total, n);

    /* realloc within and out of the class keeps the contents */
    unsigned char *r = be->realloc(blk[2], 40);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r[0], 3);
    ck_assert_int_eq(r[39], 3);
    r = be->realloc(r, 3000);
    ck_assert_ptr_nonnull(r);
    for (size_t j = 0; j < sizes[2]; j++)
        ck_assert_int_eq(r[j], 3);
    blk[2] = r;
    /* freed, they wait in the cache; an aligned request must not get one
     * that is only 16-byte aligned */
    for (size_t i = 0; i < n; i++)
        be->free(blk[i]);
    for (size_t a = 32; a <= 4096; a *= 2) {
        void *q = be->memalign(a, a);
        ck_assert_ptr_nonnull(q);
        ck_assert_msg((uintptr_t)q % a == 0, "memalign(%zu) gave %p", a, q);
        be->free(q);
    }
}
END_TEST

START_TEST(nursery_leave)
{
    void *first = be->malloc(48);
    ck_assert_ptr_nonnull(first);
    be->free(first);
    void *p = NULL;
    for (int i = 0; i < 500; i++) {
        p = be->malloc(48);
        ck_assert_ptr_nonnull(p);
        be->free(p);
    }
    /* the nursery lies in a segment's first 64 KiB, its header page */
    ck_assert_msg(((uintptr_t)p & ((4u << 20) - 1)) >= (64u << 10), "still in the nursery after 500 rounds: %p", p);
}
END_TEST

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + i / 4096 + 3); }

START_TEST(realloc_room)
{
    /* A buffer grown to 1 MiB and freed: its mapping is cached, resident. */
    unsigned char *a = be->malloc(16);
    ck_assert_ptr_nonnull(a);
    for (size_t n = 64 << 10; n <= (1 << 20); n += 64 << 10) {
        a = be->realloc(a, n);
        ck_assert_ptr_nonnull(a);
        touch(a, n, 0x5a);
    }
    be->free(a);

    size_t len = 70 << 10;
    unsigned char *b = be->realloc(be->malloc(16), len);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < len; i++)
        b[i] = pattern(i);
    size_t room = be->usable_size(b);
    ck_assert_msg(room >= ((size_t)256 << 10), "the growing buffer got %zu KiB of room", room >> 10);
    size_t fresh = 0, moved = 0;
    for (size_t n = 100 << 10; n + (64 << 10) <= room; n += 50 << 10) {
        unsigned char *q = be->realloc(b, n);
        ck_assert_ptr_nonnull(q);
        moved += q != b;
        b = q;
        for (size_t i = 0; i < len; i += 1 + i % 61)
            ck_assert_msg(b[i] == pattern(i), "byte %zu lost growing to %zu KiB", i, n >> 10);
        ck_assert_int_eq(b[len - 1], pattern(len - 1));
        ck_assert_msg(be->usable_size(b) >= room, "growing to %zu KiB cut the room to %zu KiB", n >> 10,
                      be->usable_size(b) >> 10);
        fresh += whole_pages(b + len, n - len) - resident_pages(b + len, n - len);
        for (size_t i = len; i < n; i++)
            b[i] = pattern(i);
        len = n;
    }
    for (size_t i = 0; i < len; i++)
        ck_assert_msg(b[i] == pattern(i), "byte %zu lost", i);
    be->free(b);
    ck_assert_msg(moved == 0 && fresh == 0, "growing inside the room moved the buffer %zu times, %zu fresh pages",
                  moved, fresh);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("freelist reuse");
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {{"large_reuse", large_reuse}, {"large_calloc_zero", large_calloc_zero}, {"purge_decay", purge_decay},
                   {"realloc_grow", realloc_grow},
                   {"realloc_cycle", realloc_cycle},
                   {"realloc_room", realloc_room},
                   {"consumer_cache", consumer_cache},
                   {"large_replace", large_replace},
                   {"nursery_pack", nursery_pack},
                   {"nursery_leave", nursery_leave}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_unchecked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
