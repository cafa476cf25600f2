/* tests/conformance/conformance.c: the malloc family as a program sees it.
 *
 * This program is NOT linked with mallard: ctest runs it once per backend
 * under LD_PRELOAD=libmallard.so MALLARD_BACKEND=<b>, and every case checks
 * glibc 2.36's observable behaviour (HAZARDS.md §17, §18) through the
 * exported symbols, exactly as an unmodified program would reach them.  The
 * first case proves the calls really land in libmallard.so, so a run where
 * the preload silently failed cannot pass.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Hides a value from the optimiser, so a huge constant size neither trips
 * -Walloc-size-larger-than nor lets the compiler fold the call away. */
static size_t opaque(size_t x)
{
    __asm__ volatile("" : "+r"(x));
    return x;
}

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static unsigned char pattern_byte(uintptr_t seed, size_t i) { return (unsigned char)(seed * 131u + i * 7u + (i >> 8)); }

/* Writes a pattern over [p, p+n) and reads it back; returns the index of
 * the first mismatch, or n. */
static size_t fill_check(void *p, size_t n, uintptr_t seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = pattern_byte(seed, i);
    for (size_t i = 0; i < n; i++)
        if (c[i] != pattern_byte(seed, i))
            return i;
    return n;
}

static size_t check_pattern(const void *p, size_t n, uintptr_t seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != pattern_byte(seed, i))
            return i;
    return n;
}

/* The common contract of every successful allocation: non-NULL, aligned,
 * usable size >= the request, and every usable byte writable. */
static void check_block(void *p, size_t size, size_t align, const char *what)
{
    ck_assert_msg(p != NULL, "%s(%zu) returned NULL", what, size);
    ck_assert_msg(aligned(p, 16), "%s(%zu) = %p is not 16-byte aligned", what, size, p);
    ck_assert_msg(aligned(p, align), "%s(%zu) = %p is not %zu-byte aligned", what, size, p, align);
    size_t us = malloc_usable_size(p);
    ck_assert_msg(us >= size, "%s(%zu): malloc_usable_size = %zu", what, size, us);
    size_t bad = fill_check(p, us, (uintptr_t)p);
    ck_assert_msg(bad == us, "%s(%zu): byte %zu of %zu usable did not hold", what, size, bad, us);
}

/* ---- on mallard at all ------------------------------------------------- */

static void check_from_mallard(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    ck_assert_msg(f != NULL, "dlsym(%s) failed", name);
    Dl_info info;
    ck_assert_msg(dladdr(f, &info) != 0, "dladdr(%s) failed", name);
    ck_assert_msg(info.dli_fname && strstr(info.dli_fname, "libmallard.so"), "%s resolves to %s, not libmallard.so",
                  name, info.dli_fname ? info.dli_fname : "?");
}

START_TEST(test_runs_on_mallard)
{
    const char *be = getenv("MALLARD_BACKEND");
    ck_assert_msg(be && *be, "MALLARD_BACKEND is not set: run this suite through ctest");
    static const char *const names[] = {"malloc",  "free",   "calloc", "realloc", "reallocarray",       "posix_memalign",
                                        "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size", "cfree"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        check_from_mallard(names[i]);
    /* The program's own reference (through its GOT) must be mallard's too. */
    Dl_info info;
    ck_assert(dladdr((void *)(uintptr_t)&malloc, &info) != 0);
    ck_assert_msg(info.dli_fname && strstr(info.dli_fname, "libmallard.so"), "&malloc is in %s", info.dli_fname);
}
END_TEST

/* ---- sizes ------------------------------------------------------------- */

START_TEST(test_odd_sizes)
{
    /* every size up to 4 KiB, then a geometric walk of odd sizes to 3 MiB */
    void *keep[64] = {0};
    size_t k = 0;
    for (size_t s = 0; s <= 4096; s++) {
        void *p = malloc(s);
        check_block(p, s, 16, "malloc");
        /* keep some blocks alive so the next ones are not the same memory */
        if (s % 61 == 0) {
            free(keep[k % 64]);
            keep[k++ % 64] = p;
        } else {
            free(p);
        }
    }
    for (size_t s = 4097; s < ((size_t)3 << 20); s = s + s / 7 + 1 + (s & 1 ? 0 : 1)) {
        void *p = malloc(s);
        check_block(p, s, 16, "malloc");
        free(p);
    }
    for (size_t i = 0; i < 64; i++)
        free(keep[i]);
}
END_TEST

START_TEST(test_malloc_zero)
{
    enum { N = 256 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(0);
        ck_assert_msg(p[i] != NULL, "malloc(0) returned NULL");
        ck_assert(aligned(p[i], 16));
        int j = 0;
        while (j < i && p[j] != p[i])
            j++;
        ck_assert_msg(j == i, "malloc(0) returned %p twice while both live", p[i]);
    }
    for (int i = 0; i < N; i++)
        free(p[i]);
    /* the other ways to ask for zero bytes */
    void *q = calloc(0, 0);
    ck_assert(q != NULL);
    free(q);
    q = calloc(0, opaque(SIZE_MAX));
    ck_assert(q != NULL);
    free(q);
    q = realloc(NULL, 0);
    ck_assert(q != NULL);
    free(q);
    q = memalign(64, 0);
    ck_assert(q != NULL && aligned(q, 64));
    free(q);
    void *r = NULL;
    ck_assert_int_eq(posix_memalign(&r, 64, 0), 0);
    ck_assert(r != NULL && aligned(r, 64));
    free(r);
}
END_TEST

START_TEST(test_free_null)
{
    errno = 4321;
    free(NULL);
    /* cfree left glibc's API in 2.26; programs built earlier still call it */
    void (*cfree_fn)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    ck_assert(cfree_fn != NULL);
    cfree_fn(NULL);
    void *p = malloc(10);
    ck_assert(p != NULL);
    cfree_fn(p);
    ck_assert_int_eq(errno, 4321);
    ck_assert_uint_eq(malloc_usable_size(NULL), 0);
}
END_TEST

START_TEST(test_free_keeps_errno)
{
    static const size_t sizes[] = {1, 16, 100, 1000, 4096, 70000, 300000, (size_t)2 << 20, (size_t)9 << 20};
    for (int round = 0; round < 20; round++) {
        void *p[sizeof sizes / sizeof *sizes];
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            p[i] = malloc(sizes[i]);
            ck_assert(p[i] != NULL);
            memset(p[i], 1, sizes[i]);
        }
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            errno = 77;
            free(p[i]);
            ck_assert_msg(errno == 77, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
        }
        void *a = memalign(4096, 5000), *v = valloc(100), *pv = pvalloc(100);
        ck_assert(a && v && pv);
        errno = 78;
        free(a);
        free(v);
        free(pv);
        ck_assert_int_eq(errno, 78);
    }
    /* enough frees that a backend's purge/decommit path runs */
    enum { N = 4000 };
    static void *many[N];
    for (int i = 0; i < N; i++) {
        many[i] = malloc(4096 + (size_t)i * 8);
        ck_assert(many[i] != NULL);
        memset(many[i], 2, 4096);
    }
    for (int i = 0; i < N; i++) {
        errno = 79;
        free(many[i]);
        ck_assert_msg(errno == 79, "free #%d changed errno to %d", i, errno);
    }
}
END_TEST

/* ---- alignment --------------------------------------------------------- */

static void check_aligned_entry(size_t a, size_t s)
{
    char what[64];
    snprintf(what, sizeof what, "memalign(%zu, ...)", a);
    void *p = memalign(a, s);
    check_block(p, s, a, what);
    free(p);

    snprintf(what, sizeof what, "aligned_alloc(%zu, ...)", a);
    p = aligned_alloc(a, s);
    check_block(p, s, a, what);
    free(p);

    snprintf(what, sizeof what, "posix_memalign(%zu, ...)", a);
    p = NULL;
    int rc = posix_memalign(&p, a, s);
    ck_assert_msg(rc == 0, "posix_memalign(%zu, %zu) returned %d", a, s, rc);
    check_block(p, s, a, what);
    free(p);
}

START_TEST(test_alignments)
{
    for (size_t a = 8; a <= ((size_t)1 << 20); a <<= 1) {
        const size_t sizes[] = {1, 7, a - 1, a, a + 1, 3 * a + 5, 100, 4097};
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
            check_aligned_entry(a, sizes[i]);
    }
    /* several aligned blocks live at once must not overlap */
    void *live[20];
    for (int i = 0; i < 20; i++) {
        size_t a = (size_t)32 << (i % 12);
        live[i] = memalign(a, 100 + (size_t)i);
        ck_assert(live[i] && aligned(live[i], a));
        memset(live[i], i + 1, 100 + (size_t)i);
    }
    for (int i = 0; i < 20; i++) {
        const unsigned char *c = live[i];
        size_t j = 0;
        while (j < 100 + (size_t)i && c[j] == (unsigned char)(i + 1))
            j++;
        ck_assert_msg(j == 100 + (size_t)i, "aligned block %d was overwritten at byte %zu", i, j);
        free(live[i]);
    }
}
END_TEST

START_TEST(test_huge_alignments)
{
    /* HAZARDS §18: alignments of 2 MiB up to 2^27 */
    for (size_t a = (size_t)2 << 20; a <= ((size_t)1 << 27); a <<= 1) {
        /* the requested bytes only: a backend may legitimately report a
         * usable size of many MiB here, and writing it all is slow */
        char *p = memalign(a, 1);
        ck_assert_msg(p && aligned(p, a), "memalign(%zu, 1) = %p", a, (void *)p);
        ck_assert(malloc_usable_size(p) >= 1);
        p[0] = 1;
        char *q = aligned_alloc(a, 4096);
        ck_assert_msg(q && aligned(q, a), "aligned_alloc(%zu, 4096) = %p", a, (void *)q);
        ck_assert(malloc_usable_size(q) >= 4096);
        ck_assert(fill_check(q, 4096, a) == 4096);
        char *r = NULL;
        ck_assert_int_eq(posix_memalign((void **)&r, a, a / 2 + 3), 0);
        ck_assert(r && aligned(r, a));
        ck_assert(malloc_usable_size(r) >= a / 2 + 3);
        /* the first and the last pages of the request are writable */
        memset(r, 0x5a, 4096);
        memset(r + a / 2 + 3 - 4096, 0xa5, 4096);
        ck_assert(r[0] == 0x5a && r[a / 2 + 2] == (char)0xa5);
        free(q);
        free(p);
        free(r);
    }
}
END_TEST

START_TEST(test_glibc_memalign_edges)
{
    /* glibc 2.36 rounds a non-power-of-two alignment up to the next power
     * of two in memalign and aligned_alloc; an alignment below 16 acts as
     * malloc; an alignment above SIZE_MAX/2+1 fails with EINVAL. */
    void *p = memalign(24, 10);
    ck_assert(p && aligned(p, 32));
    free(p);
    p = aligned_alloc(48, 100);
    ck_assert(p && aligned(p, 64));
    free(p);
    p = memalign(0, 10);
    check_block(p, 10, 16, "memalign(0, 10)");
    free(p);
    p = memalign(1, 10);
    check_block(p, 10, 16, "memalign(1, 10)");
    free(p);
    p = memalign(3000, 1);
    ck_assert(p && aligned(p, 4096));
    free(p);
    errno = 0;
    p = memalign(opaque(SIZE_MAX / 2 + 2), 10);
    ck_assert(p == NULL);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_posix_memalign_einval)
{
    static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 96, 4097, (size_t)3 << 20, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *p = (void *)(uintptr_t)0x1234;
        errno = 55;
        int rc = posix_memalign(&p, opaque(bad[i]), 100);
        ck_assert_msg(rc == EINVAL, "posix_memalign(align %zu) returned %d, not EINVAL", bad[i], rc);
        ck_assert_msg(p == (void *)(uintptr_t)0x1234, "posix_memalign wrote *memptr on EINVAL");
        ck_assert_msg(errno == 55, "posix_memalign changed errno on EINVAL");
    }
    /* every power of two that is a multiple of sizeof(void *) is fine */
    for (size_t a = sizeof(void *); a <= 65536; a <<= 1) {
        void *p = NULL;
        errno = 56;
        ck_assert_int_eq(posix_memalign(&p, a, 33), 0);
        ck_assert_int_eq(errno, 56);
        check_block(p, 33, a, "posix_memalign");
        free(p);
    }
}
END_TEST

START_TEST(test_valloc_pvalloc)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t sizes[] = {1, 100, 4095, 4096, 4097, 10000, 65536, 300001, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t s = sizes[i];
        void *v = valloc(s);
        check_block(v, s, ps, "valloc");
        void *pv = pvalloc(s);
        size_t rounded = (s + ps - 1) & ~(ps - 1);
        /* pvalloc rounds the request up to whole pages */
        check_block(pv, rounded, ps, "pvalloc");
        free(v);
        free(pv);
    }
    void *z = pvalloc(0);
    ck_assert(z != NULL && aligned(z, ps));
    free(z);
    z = valloc(0);
    ck_assert(z != NULL && aligned(z, ps));
    free(z);
}
END_TEST

/* ---- failure paths ----------------------------------------------------- */

static const size_t huge_sizes[] = {
    SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, SIZE_MAX - (1 << 20), SIZE_MAX / 2 + 1, PTRDIFF_MAX,
    (size_t)1 << 48, ((size_t)1 << 47) + 17,
};
#define NHUGE (sizeof huge_sizes / sizeof *huge_sizes)

#define EXPECT_ENOMEM(call, desc, sz)                                                                                 \
    do {                                                                                                              \
        errno = 0;                                                                                                    \
        void *r_ = (call);                                                                                            \
        ck_assert_msg(r_ == NULL, "%s(%zu) returned %p, not NULL", desc, (size_t)(sz), r_);                           \
        ck_assert_msg(errno == ENOMEM, "%s(%zu) set errno %d, not ENOMEM", desc, (size_t)(sz), errno);                \
    } while (0)

START_TEST(test_huge_requests)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    char *live = malloc(1000);
    ck_assert(live != NULL);
    fill_check(live, 1000, 9);
    for (size_t i = 0; i < NHUGE; i++) {
        size_t s = opaque(huge_sizes[i]);
        EXPECT_ENOMEM(malloc(s), "malloc", s);
        EXPECT_ENOMEM(calloc(1, s), "calloc(1, n)", s);
        EXPECT_ENOMEM(calloc(s, 1), "calloc(n, 1)", s);
        EXPECT_ENOMEM(realloc(NULL, s), "realloc(NULL, n)", s);
        EXPECT_ENOMEM(realloc(live, s), "realloc(p, n)", s);
        ck_assert_msg(check_pattern(live, 1000, 9) == 1000, "failed realloc(p, %zu) damaged p", s);
        EXPECT_ENOMEM(reallocarray(live, 1, s), "reallocarray(p, 1, n)", s);
        EXPECT_ENOMEM(memalign(64, s), "memalign(64, n)", s);
        EXPECT_ENOMEM(memalign(ps, s), "memalign(page, n)", s);
        EXPECT_ENOMEM(memalign((size_t)1 << 20, s), "memalign(1 MiB, n)", s);
        EXPECT_ENOMEM(aligned_alloc(64, s), "aligned_alloc(64, n)", s);
        EXPECT_ENOMEM(valloc(s), "valloc", s);
        EXPECT_ENOMEM(pvalloc(s), "pvalloc", s);
        void *p = (void *)(uintptr_t)0x1234;
        int rc = posix_memalign(&p, 64, s);
        ck_assert_msg(rc == ENOMEM, "posix_memalign(64, %zu) returned %d, not ENOMEM", s, rc);
        ck_assert_msg(p == (void *)(uintptr_t)0x1234, "posix_memalign wrote *memptr on failure");
        rc = posix_memalign(&p, ps, s);
        ck_assert_msg(rc == ENOMEM, "posix_memalign(page, %zu) returned %d, not ENOMEM", s, rc);
    }
    ck_assert(check_pattern(live, 1000, 9) == 1000);
    /* still in working order */
    void *q = malloc(100);
    check_block(q, 100, 16, "malloc after failures");
    free(q);
    free(live);
}
END_TEST

START_TEST(test_overflow)
{
    static const size_t pairs[][2] = {
        {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX, SIZE_MAX},
        {SIZE_MAX, 2},         {65537, SIZE_MAX / 65536},
    };
    char *live = malloc(300);
    ck_assert(live != NULL);
    fill_check(live, 300, 4);
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        size_t n = opaque(pairs[i][0]), m = opaque(pairs[i][1]);
        EXPECT_ENOMEM(calloc(n, m), "calloc overflow", n);
        EXPECT_ENOMEM(reallocarray(NULL, n, m), "reallocarray(NULL) overflow", n);
        EXPECT_ENOMEM(reallocarray(live, n, m), "reallocarray(p) overflow", n);
        ck_assert_msg(check_pattern(live, 300, 4) == 300, "failed reallocarray damaged p");
    }
    /* a product that fits works */
    char *r = reallocarray(live, 100, 30);
    ck_assert(r != NULL);
    ck_assert(check_pattern(r, 300, 4) == 300);
    free(r);
}
END_TEST

/* ---- realloc ----------------------------------------------------------- */

static size_t vm_pages(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert(f != NULL);
    unsigned long size = 0;
    ck_assert(fscanf(f, "%lu", &size) == 1);
    fclose(f);
    return size;
}

START_TEST(test_realloc_null_and_zero)
{
    for (size_t s = 1; s < 70000; s = s * 3 + 1) {
        void *p = realloc(NULL, s);
        check_block(p, s, 16, "realloc(NULL, n)");
        errno = 91;
        void *r = realloc(p, 0);
        ck_assert_msg(r == NULL, "realloc(p, 0) returned %p, not NULL (glibc 2.36 frees)", r);
        ck_assert_int_eq(errno, 91);
    }
    /* realloc(p, 0) really frees: 4000 rounds of 256 KiB would need 1 GiB
     * of address space if it did not. */
    size_t before = vm_pages();
    for (int i = 0; i < 4000; i++) {
        void *p = malloc((size_t)256 << 10);
        ck_assert(p != NULL);
        ((volatile char *)p)[0] = 1;
        ck_assert(realloc(p, 0) == NULL);
    }
    size_t grown = (vm_pages() - before) * (size_t)sysconf(_SC_PAGESIZE);
    ck_assert_msg(grown < ((size_t)256 << 20), "realloc(p, 0) in a loop grew the address space by %zu bytes", grown);
}
END_TEST

START_TEST(test_realloc_contents)
{
    static const size_t steps[] = {1,      7,      16,     17,     100,    1000,     4095,      4096,      4097,
                                   65536,  100000, 262144, 262145, 500000, 1 << 20,  (1 << 20) + 1, 3 << 20,   5000000,
                                   3 << 20, 262145, 100000, 4097,  4096,   1000,     100,       17,        1};
    /* grow and shrink along the list, keeping the surviving prefix */
    char *p = NULL;
    size_t have = 0;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        size_t s = steps[i];
        char *q = realloc(p, s);
        ck_assert_msg(q != NULL, "realloc to %zu failed", s);
        ck_assert(aligned(q, 16));
        ck_assert(malloc_usable_size(q) >= s);
        size_t keep = have < s ? have : s;
        size_t bad = check_pattern(q, keep, 0x77);
        ck_assert_msg(bad == keep, "realloc %zu -> %zu lost byte %zu", have, s, bad);
        /* extend the pattern over the new tail */
        for (size_t j = keep; j < s; j++)
            q[j] = (char)pattern_byte(0x77, j);
        p = q;
        have = s;
    }
    free(p);

    /* a pseudo-random walk, with a second live block in between so that
     * in-place growth is not always possible */
    unsigned x = 12345;
    p = NULL;
    have = 0;
    for (int i = 0; i < 400; i++) {
        x = x * 1103515245u + 12345u;
        size_t s = 1 + (x >> 8) % (i % 10 == 9 ? (size_t)2 << 20 : 5000);
        void *other = malloc(s / 2 + 1);
        char *q = realloc(p, s);
        ck_assert(q != NULL && aligned(q, 16));
        size_t keep = have < s ? have : s;
        size_t bad = check_pattern(q, keep, 0x31);
        ck_assert_msg(bad == keep, "realloc walk step %d: %zu -> %zu lost byte %zu", i, have, s, bad);
        for (size_t j = keep; j < s; j++)
            q[j] = (char)pattern_byte(0x31, j);
        free(other);
        p = q;
        have = s;
    }
    free(p);

    /* realloc of an over-aligned block keeps its contents too */
    for (size_t a = 64; a <= 65536; a <<= 2) {
        char *m = memalign(a, 3000);
        ck_assert(m != NULL);
        fill_check(m, 3000, a);
        char *g = realloc(m, 200000);
        ck_assert(g != NULL);
        ck_assert(check_pattern(g, 3000, a) == 3000);
        char *sh = realloc(g, 100);
        ck_assert(sh != NULL);
        ck_assert(check_pattern(sh, 100, a) == 100);
        free(sh);
    }
}
END_TEST

/* ---- calloc ------------------------------------------------------------ */

/* Check's assertions report to the parent process on every call, so byte
 * loops find the first bad byte first and assert once. */
static void check_zero(const void *p, size_t n, const char *what, size_t s)
{
    const unsigned char *c = p;
    size_t i = 0;
    while (i < n && c[i] == 0)
        i++;
    ck_assert_msg(i == n, "%s(%zu): byte %zu is 0x%02x, not zero", what, s, i, i < n ? c[i] : 0);
}

START_TEST(test_calloc_zeroed)
{
    static const size_t sizes[] = {1, 8, 16, 24, 100, 1000, 4096, 10000, 65536, 100000, 300000, (size_t)2 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t s = sizes[i];
        for (int round = 0; round < 30; round++) {
            /* dirty a block of the same size, free it, then calloc */
            void *d[3];
            for (int k = 0; k < 3; k++) {
                d[k] = malloc(s);
                ck_assert(d[k] != NULL);
                memset(d[k], 0xa5, malloc_usable_size(d[k]));
            }
            for (int k = 2; k >= 0; k--)
                free(d[k]);
            void *z = round % 3 == 0 ? calloc(1, s) : round % 3 == 1 ? calloc(s, 1) : reallocarray(NULL, 1, s);
            if (round % 3 == 2) {
                /* reallocarray does not clear: use it only to recycle */
                free(z);
                z = calloc(s, 1);
            }
            ck_assert(z != NULL && aligned(z, 16));
            check_zero(z, s, "calloc", s);
            ck_assert(malloc_usable_size(z) >= s);
            memset(z, 0x5a, malloc_usable_size(z));
            free(z);
        }
    }
    /* element count times size, with reuse */
    for (int round = 0; round < 50; round++) {
        size_t n = 1 + (size_t)round * 13, m = 3 + (size_t)round % 7;
        char *d = malloc(n * m);
        memset(d, 0xff, n * m);
        free(d);
        char *z = calloc(n, m);
        ck_assert(z != NULL);
        check_zero(z, n * m, "calloc(n, m)", n * m);
        free(z);
    }
}
END_TEST

/* ---- threads ----------------------------------------------------------- */

/* The page backend pays a system call or two and a global lock for every
 * block (that is its purpose), so the stress cases do a fifth of the work
 * there to stay within a few seconds; the checks are the same. */
static int work_divisor(void)
{
    const char *be = getenv("MALLARD_BACKEND");
    return be && !strcmp(be, "page") ? 5 : 1;
}

enum { SLOTS = 4096, THREADS = 4, OPS = 100000 };
static _Atomic(uintptr_t) slots[SLOTS];
static atomic_int thread_failures;

/* A block stores its size and seed in its first 16 bytes; the rest of it
 * carries the pattern, so corruption or a double hand-out shows up. */
struct hdr {
    size_t size;
    size_t seed;
};

static void *stamp(void *p, size_t size, size_t seed)
{
    struct hdr *h = p;
    h->size = size;
    h->seed = seed;
    unsigned char *c = p;
    for (size_t i = sizeof *h; i < size; i++)
        c[i] = pattern_byte(seed, i);
    return p;
}

static int verify(const void *p)
{
    const struct hdr *h = p;
    if (malloc_usable_size((void *)p) < h->size)
        return 0;
    const unsigned char *c = p;
    for (size_t i = sizeof *h; i < h->size; i++)
        if (c[i] != pattern_byte(h->seed, i))
            return 0;
    return 1;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t random_size(uint64_t *s)
{
    uint64_t r = rng_next(s);
    if (r % 1000 == 0)
        return 70000 + (r >> 12) % ((size_t)1 << 20); /* large, now and then */
    if (r % 100 < 2)
        return 4096 + (r >> 12) % 20000;
    return sizeof(struct hdr) + (r >> 12) % 600;
}

static void *random_alloc(uint64_t *s, size_t size)
{
    uint64_t r = rng_next(s) % 10;
    void *p;
    if (r < 6)
        p = malloc(size);
    else if (r < 8) {
        p = calloc(1, size);
        if (p) {
            const unsigned char *c = p;
            for (size_t i = 0; i < size; i++)
                if (c[i]) {
                    atomic_fetch_add(&thread_failures, 1);
                    break;
                }
        }
    } else if (r < 9)
        p = memalign((size_t)32 << (rng_next(s) % 6), size);
    else {
        void *q = NULL;
        if (posix_memalign(&q, 64, size) != 0)
            q = NULL;
        p = q;
    }
    if (!p || ((uintptr_t)p & 15))
        atomic_fetch_add(&thread_failures, 1);
    return p;
}

static void *stress_thread(void *arg)
{
    uint64_t s = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
    int ops = OPS / work_divisor();
    for (int op = 0; op < ops; op++) {
        size_t i = rng_next(&s) % SLOTS;
        uintptr_t old = atomic_exchange(&slots[i], 0);
        void *p = (void *)old;
        if (p && !verify(p)) {
            atomic_fetch_add(&thread_failures, 1);
            p = NULL;
        }
        uint64_t what = rng_next(&s) % 8;
        if (p && what < 4) {
            free(p); /* often another thread's block */
            continue;
        }
        if (p && what < 6) {
            size_t ns = random_size(&s);
            const struct hdr *h = p;
            size_t keep = h->size < ns ? h->size : ns, seed = h->seed;
            unsigned char *q = realloc(p, ns);
            if (!q) {
                atomic_fetch_add(&thread_failures, 1);
                continue;
            }
            for (size_t k = sizeof(struct hdr); k < keep; k++)
                if (q[k] != pattern_byte(seed, k)) {
                    atomic_fetch_add(&thread_failures, 1);
                    break;
                }
            p = stamp(q, ns, rng_next(&s));
        } else if (!p) {
            size_t ns = random_size(&s);
            p = random_alloc(&s, ns);
            if (!p)
                continue;
            stamp(p, ns, rng_next(&s));
        }
        uintptr_t displaced = atomic_exchange(&slots[i], (uintptr_t)p);
        if (displaced) {
            if (!verify((void *)displaced))
                atomic_fetch_add(&thread_failures, 1);
            free((void *)displaced);
        }
    }
    return NULL;
}

START_TEST(test_threads_cross_free)
{
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, stress_thread, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_msg(atomic_load(&thread_failures) == 0, "%d corrupted, misaligned or failed blocks",
                  atomic_load(&thread_failures));
    int left = 0;
    for (int i = 0; i < SLOTS; i++) {
        void *p = (void *)atomic_exchange(&slots[i], 0);
        if (p) {
            ck_assert_msg(verify(p), "slot %d corrupted after the threads ended", i);
            free(p);
            left++;
        }
    }
    ck_assert(left > 0);
}
END_TEST

/* ---- fork -------------------------------------------------------------- */

static atomic_int fork_stop;

static void *fork_churn(void *arg)
{
    uint64_t s = 0x12345 + (uintptr_t)arg;
    void *ring[64] = {0};
    while (!atomic_load(&fork_stop)) {
        for (int i = 0; i < 64; i++) {
            size_t n = random_size(&s);
            free(ring[i]);
            ring[i] = rng_next(&s) & 1 ? malloc(n) : calloc(1, n);
            if (ring[i])
                stamp(ring[i], n, (size_t)i);
            else
                atomic_fetch_add(&thread_failures, 1);
        }
        /* four busy threads on a small machine would starve the forks */
        sched_yield();
    }
    for (int i = 0; i < 64; i++) {
        if (ring[i] && !verify(ring[i]))
            atomic_fetch_add(&thread_failures, 1);
        free(ring[i]);
    }
    return NULL;
}

static void *child_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        free(malloc(1 + (size_t)i * 3));
    return malloc(64);
}

/* Runs in the child of a threaded parent; 0 when the allocator works. */
static int child_work(void)
{
    void *p[200];
    uint64_t s = 77;
    for (int i = 0; i < 200; i++) {
        size_t n = random_size(&s);
        p[i] = malloc(n);
        if (!p[i])
            return 1;
        stamp(p[i], n, (size_t)i);
    }
    for (int i = 0; i < 200; i += 2) {
        void *q = realloc(p[i], 5000);
        if (!q)
            return 2;
        stamp(q, 5000, 9);
        p[i] = q;
    }
    for (int i = 0; i < 200; i++) {
        if (!verify(p[i]))
            return 3;
        free(p[i]);
    }
    char *d = strdup("child");
    if (!d || strcmp(d, "child"))
        return 4;
    free(d);
    /* the child's own threads work too */
    pthread_t t;
    void *r = NULL;
    if (pthread_create(&t, NULL, child_thread, NULL) || pthread_join(t, &r) || !r)
        return 5;
    free(r);
    return 0;
}

START_TEST(test_fork_threaded)
{
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fork_churn, (void *)i), 0);
    int rounds = 50 / work_divisor();
    for (int round = 0; round < rounds; round++) {
        usleep(1000);
        pid_t pid = fork();
        ck_assert_msg(pid >= 0, "fork failed");
        if (pid == 0) {
            alarm(20); /* a deadlocked child dies of SIGALRM, visible below */
            _exit(child_work());
        }
        int st = 0;
        ck_assert(waitpid(pid, &st, 0) == pid);
        ck_assert_msg(WIFEXITED(st), "fork round %d: child died of signal %d%s", round, WTERMSIG(st),
                      WTERMSIG(st) == SIGALRM ? " (deadlock)" : "");
        ck_assert_msg(WEXITSTATUS(st) == 0, "fork round %d: child failed step %d", round, WEXITSTATUS(st));
    }
    atomic_store(&fork_stop, 1);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_int_eq(atomic_load(&thread_failures), 0);
}
END_TEST

/* ---- thread exit ------------------------------------------------------- */

/* __cxa_thread_atexit_impl is what a C++ thread_local destructor uses; it
 * allocates itself (redhook#15), and its destructors run before the
 * pthread_key ones, after the thread's last ordinary allocation. */
extern int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso_symbol);
extern void *__dso_handle;

static pthread_key_t key_a, key_b;
static atomic_int dtor_a_runs, dtor_b_runs, tl_dtor_runs, dtor_failures;
static __thread char *tl_block;

static void dtor_a(void *v)
{
    /* frees the thread's block, then allocates and frees at thread exit */
    if (!verify(v))
        atomic_fetch_add(&dtor_failures, 1);
    free(v);
    void *p = malloc(200);
    void *q = calloc(10, 10);
    if (!p || !q)
        atomic_fetch_add(&dtor_failures, 1);
    else {
        stamp(p, 200, 1);
        if (!verify(p))
            atomic_fetch_add(&dtor_failures, 1);
    }
    free(p);
    free(q);
    atomic_fetch_add(&dtor_a_runs, 1);
}

static void dtor_b(void *v)
{
    /* a destructor that re-arms itself once: glibc runs it again */
    char *s = strdup("second round");
    if (!s)
        atomic_fetch_add(&dtor_failures, 1);
    free(s);
    if (v == (void *)1)
        pthread_setspecific(key_b, (void *)2);
    atomic_fetch_add(&dtor_b_runs, 1);
}

static void tl_dtor(void *obj)
{
    (void)obj;
    if (!tl_block || !verify(tl_block))
        atomic_fetch_add(&dtor_failures, 1);
    free(tl_block);
    tl_block = NULL;
    void *p = malloc(5000);
    if (!p)
        atomic_fetch_add(&dtor_failures, 1);
    else
        memset(p, 1, 5000);
    free(p);
    atomic_fetch_add(&tl_dtor_runs, 1);
}

static void *short_thread(void *arg)
{
    size_t n = 20 + (uintptr_t)arg % 300;
    pthread_setspecific(key_a, stamp(malloc(n), n, (uintptr_t)arg));
    pthread_setspecific(key_b, (void *)1);
    tl_block = stamp(malloc(n * 3), n * 3, 5);
    if (__cxa_thread_atexit_impl(tl_dtor, &tl_block, __dso_handle) != 0)
        atomic_fetch_add(&dtor_failures, 1);
    return NULL;
}

START_TEST(test_thread_exit_destructors)
{
    ck_assert_int_eq(pthread_key_create(&key_a, dtor_a), 0);
    ck_assert_int_eq(pthread_key_create(&key_b, dtor_b), 0);
    enum { TOTAL = 1000, BATCH = 4 };
    for (uintptr_t i = 0; i < TOTAL; i += BATCH) {
        pthread_t t[BATCH];
        for (uintptr_t j = 0; j < BATCH; j++)
            ck_assert_int_eq(pthread_create(&t[j], NULL, short_thread, (void *)(i + j)), 0);
        for (int j = 0; j < BATCH; j++)
            ck_assert_int_eq(pthread_join(t[j], NULL), 0);
    }
    ck_assert_int_eq(atomic_load(&dtor_failures), 0);
    ck_assert_int_eq(atomic_load(&dtor_a_runs), TOTAL);
    ck_assert_int_eq(atomic_load(&dtor_b_runs), 2 * TOTAL);
    ck_assert_int_eq(atomic_load(&tl_dtor_runs), TOTAL);
}
END_TEST

/* pthread_exit from below the thread's start function, with a block of the
 * frame it unwinds still allocated. */
static char *unwound[64];

__attribute__((noinline)) static void exit_from_callee(char *keep, size_t i)
{
    char *tmp = malloc(100);
    if (tmp)
        memset(tmp, 1, 100);
    unwound[i % 64] = tmp; /* still reachable, freed by the test */
    pthread_exit(keep);
}

static void *exiting_thread(void *arg)
{
    pthread_setspecific(key_a, stamp(malloc(333), 333, 3));
    char *keep = stamp(malloc(1000 + (uintptr_t)arg), 1000 + (uintptr_t)arg, 42);
    exit_from_callee(keep, (uintptr_t)arg);
    return NULL;
}

START_TEST(test_pthread_exit)
{
    ck_assert_int_eq(pthread_key_create(&key_a, dtor_a), 0);
    for (uintptr_t i = 0; i < 50; i++) {
        pthread_t t;
        void *r = NULL;
        ck_assert_int_eq(pthread_create(&t, NULL, exiting_thread, (void *)i), 0);
        ck_assert_int_eq(pthread_join(t, &r), 0);
        ck_assert(r != NULL);
        ck_assert_msg(verify(r), "block returned through pthread_exit is damaged");
        free(r);
        ck_assert(unwound[i] != NULL);
        free(unwound[i]);
    }
    ck_assert_int_eq(atomic_load(&dtor_a_runs), 50);
    ck_assert_int_eq(atomic_load(&dtor_failures), 0);
}
END_TEST

static Suite *conformance_suite(void)
{
    Suite *s = suite_create("conformance");
    TCase *basic = tcase_create("basic");
    tcase_set_timeout(basic, 30);
    tcase_add_test(basic, test_runs_on_mallard);
    tcase_add_test(basic, test_odd_sizes);
    tcase_add_test(basic, test_malloc_zero);
    tcase_add_test(basic, test_free_null);
    tcase_add_test(basic, test_free_keeps_errno);
    tcase_add_test(basic, test_alignments);
    tcase_add_test(basic, test_huge_alignments);
    tcase_add_test(basic, test_glibc_memalign_edges);
    tcase_add_test(basic, test_posix_memalign_einval);
    tcase_add_test(basic, test_valloc_pvalloc);
    tcase_add_test(basic, test_huge_requests);
    tcase_add_test(basic, test_overflow);
    tcase_add_test(basic, test_realloc_null_and_zero);
    tcase_add_test(basic, test_realloc_contents);
    tcase_add_test(basic, test_calloc_zeroed);
    suite_add_tcase(s, basic);

    TCase *threads = tcase_create("threads");
    tcase_set_timeout(threads, 30);
    tcase_add_test(threads, test_threads_cross_free);
    tcase_add_test(threads, test_fork_threaded);
    tcase_add_test(threads, test_thread_exit_destructors);
    tcase_add_test(threads, test_pthread_exit);
    suite_add_tcase(s, threads);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conformance_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
