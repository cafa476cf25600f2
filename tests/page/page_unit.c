/* tests/page/page_unit.c: the page backend's slots, called directly.
 *
 * Linked against mallard_core, without the preload layer: the process's own
 * malloc stays glibc's, and each test drives ml_backend_page.  Check runs
 * every test in a forked child, so each one calls init with its own options
 * on fresh state.  A bad access is judged in a grandchild that must die of
 * SIGSEGV.  The fallback tests lower RLIMIT_AS or RLIMIT_DATA in that child
 * until the kernel refuses further guards.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/meta.h"
#include "core/os.h"
#include "core/options.h"
#include "tests/page/poke.h"

#define B (&ml_backend_page)

static size_t page;

static void start(int guard, int align1, size_t quarantine)
{
    struct ml_options o;
    memset(&o, 0, sizeof o);
    o.page_guard = guard;
    o.page_align = align1;
    o.page_quarantine = quarantine;
    ck_assert_int_eq(B->init(&o), 0);
    page = ml_os_page_size();
}

static uintptr_t up(uintptr_t n, uintptr_t a) { return (n + a - 1) & ~(a - 1); }

/* 1 if touching p (a locked no-op write) kills a child with SIGSEGV. */
static int faults_at(const void *p)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        ml_poke((void *)p);
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

/* ---- capturing what the backend says on stderr ------------------------ */

static int saved_err = -1;

static int capture_begin(void)
{
    char path[] = "/tmp/page_unit_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    saved_err = dup(2);
    dup2(fd, 2);
    return fd;
}

static void capture_end(int fd, char *buf, size_t cap)
{
    dup2(saved_err, 2);
    close(saved_err);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    fputs(buf, stderr); /* still shown, for whoever reads the log */
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- placement -------------------------------------------------------- */

static size_t odd_size(int i)
{
    static const size_t big[] = {4095,   4096,          4097,          65535,
                                 300001, (1 << 20) - 5, (1 << 20) + 3, (3 << 20) + 1};
    if (i < 100)
        return (size_t)i + 1;
    return big[i - 100];
}
#define ODD_SIZES 108

START_TEST(page_unit_after_layout)
{
    start(ML_GUARD_AFTER, 0, 64 << 20);
    for (int i = 0; i < ODD_SIZES; i++) {
        size_t n = odd_size(i);
        char *p = B->malloc(n);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(ml_os_owner(p), ML_OWNER_PAGE);
        ck_assert_uint_eq((uintptr_t)p % 16, 0);
        ck_assert_uint_eq(B->usable_size(p), n);
        /* the 16-rounded end is the guard page */
        ck_assert_uint_eq(((uintptr_t)p + up(n, 16)) % page, 0);
        memset(p, 0x5a, B->usable_size(p));
        if (n == 1 || n == 13 || n == 4096 || n == 4097 || n == (1 << 20) + 3) {
            ck_assert(faults_at(p + up(n, 16)));
            ck_assert(!faults_at(p + n - 1));
        }
        B->free(p);
    }
}
END_TEST

START_TEST(page_unit_byte_exact)
{
    start(ML_GUARD_AFTER, 1, 64 << 20);
    for (size_t n = 1; n <= 64; n++) {
        char *p = B->malloc(n);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(((uintptr_t)p + n) % page, 0);
        ck_assert_uint_eq(B->usable_size(p), n);
        memset(p, 1, n);
        if (n == 13)
            ck_assert(faults_at(p + 13));
        B->free(p);
    }
    /* memalign still honours the alignment; the slack is canary */
    char *p = B->memalign(64, 13);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    ck_assert_uint_eq(B->usable_size(p), 13);
    ck_assert(faults_at(p + 64));
    B->free(p);
}
END_TEST

START_TEST(page_unit_before_layout)
{
    start(ML_GUARD_BEFORE, 0, 64 << 20);
    for (int i = 0; i < ODD_SIZES; i++) {
        size_t n = odd_size(i);
        char *p = B->malloc(n);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % page, 0);
        ck_assert_uint_eq(B->usable_size(p), n);
        memset(p, 0x5a, n);
        if (n == 1 || n == 4097 || n == (3 << 20) + 1)
            ck_assert(faults_at(p - 1));
        B->free(p);
    }
}
END_TEST

/* _i: 0 guard after, 1 guard before */
START_TEST(page_unit_memalign)
{
    start(_i, 0, 64 << 20);
    static const size_t sizes[] = {1, 100, 4096, 70000, (3 << 20) + 5};
    for (unsigned shift = 4; shift <= 27; shift++) {
        size_t a = (size_t)1 << shift;
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            char *p = B->memalign(a, n);
            ck_assert_msg(p != NULL, "memalign(%zu, %zu)", a, n);
            ck_assert_uint_eq((uintptr_t)p % a, 0);
            ck_assert_uint_eq(B->usable_size(p), n);
            p[0] = 1;
            p[n - 1] = 2;
            if (n <= 70000)
                memset(p, 3, n);
            if (k == 1 && (shift == 4 || shift == 12 || shift == 20 || shift == 27)) {
                if (_i == ML_GUARD_AFTER)
                    ck_assert(faults_at((char *)up((uintptr_t)p + n, page)));
                else
                    ck_assert(faults_at(p - 1));
            }
            B->free(p);
        }
    }
}
END_TEST

START_TEST(page_unit_realloc_contents)
{
    start(ML_GUARD_AFTER, 0, 64 << 20);
    size_t n = 1;
    unsigned char *p = B->malloc(n);
    p[0] = 0;
    while (n < (3 << 20)) {
        size_t m = n * 3 / 2 + 7;
        unsigned char *q = B->realloc(p, m);
        ck_assert_ptr_nonnull(q);
        ck_assert_uint_eq(B->usable_size(q), m);
        for (size_t i = 0; i < n; i++)
            ck_assert_uint_eq(q[i], (unsigned char)(i * 7));
        for (size_t i = n; i < m; i++)
            q[i] = (unsigned char)(i * 7);
        if (n == 1 || m > (1 << 20)) /* the old block is gone for good */
            ck_assert(faults_at(p));
        p = q;
        n = m;
    }
    while (n > 1) {
        size_t m = n / 3;
        if (!m)
            m = 1;
        unsigned char *q = B->realloc(p, m);
        ck_assert_ptr_nonnull(q);
        ck_assert_uint_eq(B->usable_size(q), m);
        for (size_t i = 0; i < m; i++)
            ck_assert_uint_eq(q[i], (unsigned char)(i * 7));
        p = q;
        n = m;
    }
    B->free(p);
}
END_TEST

/* ---- free, quarantine and reuse --------------------------------------- */

START_TEST(page_unit_use_after_free)
{
    start(ML_GUARD_AFTER, 0, 64 << 20);
    char *p = B->malloc(3 * page);
    memset(p, 7, 3 * page);
    unsigned char vec[4];
    char *first = (char *)((uintptr_t)p & ~(page - 1));
    ck_assert_int_eq(mincore(first, 3 * page, vec), 0);
    ck_assert(vec[0] & vec[1] & vec[2] & 1);
    B->free(p);
    ck_assert(faults_at(p));
    ck_assert(faults_at(p + 2 * page));
    /* decommitted: the quarantine costs no RSS */
    ck_assert_int_eq(mincore(first, 3 * page, vec), 0);
    ck_assert(!((vec[0] | vec[1] | vec[2]) & 1));
    /* a thousand frees later it is still quarantined (64 MiB bound) */
    for (int i = 0; i < 1000; i++)
        B->free(B->malloc(100));
    ck_assert(faults_at(p));
}
END_TEST

START_TEST(page_unit_quarantine_bound)
{
    const size_t q = 64 << 10;
    start(ML_GUARD_AFTER, 0, q);
    /* page-sized blocks, so requested bytes and quarantined bytes agree */
    char *a = B->malloc(page);
    memset(a, 1, page);
    B->free(a);
    size_t freed_after = 0;
    int reused = 0;
    for (int i = 0; i < (int)(4 * q / page); i++) {
        char *b = B->malloc(page);
        ck_assert_ptr_nonnull(b);
        if (b == a) {
            reused = 1;
            B->free(b);
            break;
        }
        if (freed_after + page < q) /* well inside the bound: still guarded */
            ck_assert(faults_at(a));
        B->free(b);
        freed_after += page;
    }
    ck_assert_msg(reused, "a freed block was never evicted from a %zu-byte quarantine", q);
    ck_assert_msg(freed_after + page >= q && freed_after <= q + page,
                  "evicted after %zu bytes of later frees, bound %zu", freed_after, q);
}
END_TEST

START_TEST(page_unit_zalloc_reuse)
{
    start(ML_GUARD_AFTER, 0, 0); /* no quarantine: slots come straight back */
    unsigned char *p = B->malloc(5000);
    memset(p, 0xff, 5000);
    B->free(p);
    ck_assert(faults_at(p));
    unsigned char *z = B->zalloc(5000);
    ck_assert_ptr_eq(z, p);
    for (size_t i = 0; i < 5000; i++)
        ck_assert_uint_eq(z[i], 0);
    B->free(z);
}
END_TEST

START_TEST(page_unit_foreign)
{
    start(ML_GUARD_AFTER, 0, 64 << 20);
    char buf[512];
    int fd = capture_begin();
    int local = 5;
    B->free(&local);
    ck_assert_uint_eq(B->usable_size(&local), 0);
    ck_assert_ptr_null(B->realloc(&local, 10));
    ck_assert_int_eq(local, 5);

    char *g = malloc(32); /* glibc's */
    strcpy(g, "glibc");
    B->free(g);
    ck_assert_uint_eq(B->usable_size(g), 0);
    ck_assert_str_eq(g, "glibc");
    free(g);

    void *m = ml_meta_alloc(32);
    B->free(m);
    ck_assert_uint_eq(B->usable_size(m), 0);
    ml_meta_free(m);

    B->free((void *)16);
    B->free((void *)-16);
    capture_end(fd, buf, sizeof buf);
    ck_assert_str_eq(buf, ""); /* pointers that are not ours: silence */

    fd = capture_begin();
    char *p = B->malloc(100);
    memset(p, 9, 100);
    B->free(p + 16);                                     /* interior */
    B->free((char *)up((uintptr_t)p + 100, page));       /* the guard page */
    B->free((char *)up((uintptr_t)p, page) + 20 * page); /* never carved */
    ck_assert_uint_eq(B->usable_size(p + 16), 0);
    ck_assert_ptr_null(B->realloc(p + 16, 10));
    ck_assert_uint_eq(B->usable_size(p), 100);
    p[99] = 1;
    B->free(p);
    B->free(p); /* double */
    capture_end(fd, buf, sizeof buf);
    ck_assert_int_eq(count(buf, "not the start of a live block"), 3);
    ck_assert_int_eq(count(buf, "double free"), 1);
}
END_TEST

START_TEST(page_unit_canary)
{
    char buf[1024], want[128];
    start(ML_GUARD_AFTER, 0, 64 << 20);
    int fd = capture_begin();
    char *p = B->malloc(13);
    char *q = B->malloc(100);
    char *r = B->malloc(100);
    ((volatile char *)ml_launder(p))[13] = 0; /* in the 16-byte slack */
    ((volatile char *)ml_launder(q))[-5] = 0; /* before the start, same page */
    memset(r, 1, 100);                        /* clean */
    B->free(p);
    B->free(q);
    B->free(r);
    capture_end(fd, buf, sizeof buf);
    ck_assert_int_eq(count(buf, "were overwritten"), 2);
    snprintf(want, sizeof want, "block %p (13 bytes)", (void *)p);
    ck_assert_msg(strstr(buf, want), "no line naming '%s' in: %s", want, buf);
    snprintf(want, sizeof want, "block %p (100 bytes)", (void *)q);
    ck_assert_msg(strstr(buf, want), "no line naming '%s' in: %s", want, buf);
}
END_TEST

/* ---- refusals --------------------------------------------------------- */

static size_t status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    size_t kb = 0, fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            kb = strtoull(line + fl + 1, NULL, 10);
    fclose(f);
    ck_assert_uint_gt(kb, 0);
    return kb;
}

/* Allocates n blocks of size under a lowered limit; all must succeed,
 * guarded first, then (after exactly one message) unguarded for good. */
static void refusal_run(int resource, const char *field, size_t headroom, int n, size_t size)
{
    start(ML_GUARD_AFTER, 0, 64 << 20);
    void *warm = B->malloc(size); /* the class reservation and its table */
    ck_assert_ptr_nonnull(warm);
    char buf[4096];
    int fd = capture_begin();
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = status_kb(field) * 1024 + headroom;
    ck_assert_int_eq(setrlimit(resource, &rl), 0);

    void **blocks = calloc((size_t)n, sizeof *blocks);
    int guarded = 0, unguarded = 0;
    for (int i = 0; i < n; i++) {
        blocks[i] = B->malloc(size);
        ck_assert_msg(blocks[i] != NULL, "block %d of %d: NULL", i, n);
        memset(blocks[i], i & 0xff, size);
        if (ml_os_owner(blocks[i]) == ML_OWNER_PAGE) {
            ck_assert_msg(!unguarded, "a guarded block after the fallback began");
            guarded++;
        } else {
            unguarded++;
        }
    }
    for (int i = 0; i < n; i++) {
        ck_assert_uint_eq(*(unsigned char *)blocks[i], (unsigned char)(i & 0xff));
        ck_assert_uint_ge(B->usable_size(blocks[i]), size);
        void *q = B->realloc(blocks[i], size + 1);
        ck_assert_ptr_nonnull(q);
        ck_assert_uint_eq(*(unsigned char *)q, (unsigned char)(i & 0xff));
        B->free(q);
    }
    /* really out of memory is still NULL */
    ck_assert_ptr_null(B->malloc((size_t)1 << 44));
    ck_assert_ptr_null(B->memalign((size_t)1 << 20, (size_t)1 << 44));
    capture_end(fd, buf, sizeof buf);
    free(blocks);
    B->free(warm);
    ck_assert_int_gt(guarded, 0);
    ck_assert_int_gt(unguarded, 0);
    ck_assert_int_eq(count(buf, "mallard: "), 1);
    ck_assert_int_eq(count(buf, "unguarded from now on"), 1);
}

/* A new 32 MiB reservation no longer fits; the freelist still does. */
START_TEST(page_unit_fallback_rlimit_as)
{
    refusal_run(RLIMIT_AS, "VmSize", 24 << 20, 6000, 100);
}
END_TEST

/* Opening data pages (mprotect to read-write) is refused. */
START_TEST(page_unit_fallback_rlimit_data)
{
    refusal_run(RLIMIT_DATA, "VmData", 2 << 20, 2000, 100);
}
END_TEST

/* Sizes no machine can back fail as they do with glibc, and that is out
 * of memory, not a refused guard: the backend stays guarded and quiet. */
START_TEST(page_unit_huge)
{
    start(ML_GUARD_AFTER, 0, 64 << 20);
    char buf[512];
    int fd = capture_begin();
    for (unsigned shift = 40; shift <= 46; shift += 3) {
        ck_assert_ptr_null(B->malloc((size_t)1 << shift));
        ck_assert_ptr_null(B->zalloc((size_t)1 << shift));
        ck_assert_ptr_null(B->memalign((size_t)1 << 27, (size_t)1 << shift));
    }
    ck_assert_ptr_null(B->malloc(SIZE_MAX - 2 * page));
    void *p = B->malloc(100);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(B->realloc(p, (size_t)1 << 44));
    ck_assert_uint_eq(B->usable_size(p), 100); /* intact after the failed realloc */
    ck_assert_int_eq(ml_os_owner(p), ML_OWNER_PAGE);
    B->free(p);
    capture_end(fd, buf, sizeof buf);
    ck_assert_str_eq(buf, "");
}
END_TEST

/* ---- threads and fork ------------------------------------------------- */

#define SLOTS 32
static void *shared[SLOTS];

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void check_fill(const unsigned char *p)
{
    size_t n = B->usable_size(p);
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i += 97)
        ck_assert_uint_eq(p[i], (unsigned char)n);
}

static void *fill(unsigned char *p)
{
    size_t n = B->usable_size(p);
    memset(p, (unsigned char)n, n);
    return p;
}

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *mine[SLOTS] = {0};
    for (int op = 0; op < 20000; op++) {
        unsigned r = next_rand(&seed);
        unsigned k = r % SLOTS;
        size_t n = (r >> 5) % 64 == 0 ? 100000 + r % 100000 : 1 + (r >> 7) % 5000;
        switch ((r >> 3) % 4) {
        case 0:
            if (mine[k])
                check_fill(mine[k]), B->free(mine[k]);
            mine[k] = B->malloc(n);
            ck_assert_ptr_nonnull(mine[k]);
            fill(mine[k]);
            break;
        case 1:
            if (mine[k]) {
                check_fill(mine[k]);
                mine[k] = B->realloc(mine[k], n);
                ck_assert_ptr_nonnull(mine[k]);
                fill(mine[k]);
            }
            break;
        case 2: /* hand a block to whichever thread comes next */
            mine[k] = __atomic_exchange_n(&shared[k], mine[k], __ATOMIC_ACQ_REL);
            break;
        default:
            if (mine[k]) {
                check_fill(mine[k]);
                B->free(mine[k]);
                mine[k] = NULL;
            }
        }
    }
    for (int k = 0; k < SLOTS; k++)
        if (mine[k])
            check_fill(mine[k]), B->free(mine[k]);
    return NULL;
}

START_TEST(page_unit_threads)
{
    start(ML_GUARD_AFTER, 0, 1 << 20);
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker, (void *)(i * 7919 + 1)), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int k = 0; k < SLOTS; k++)
        if (shared[k])
            check_fill(shared[k]), B->free(shared[k]);
}
END_TEST

/* Many short threads, each taking the lock a few dozen times while others
 * sleep on it (the pattern of ld.so allocating TLS for 200 short threads):
 * a lock that loses a wake-up leaves one thread asleep for ever. */
static void *short_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        /* some blocks get reservations of their own: long holds, so
         * waiters give up spinning and sleep */
        char *p = B->malloc(i % 5 ? 1 + (size_t)i * 37 : (2 << 20) + (size_t)i);
        ck_assert_ptr_nonnull(p);
        p[0] = 1;
        B->free(p);
    }
    return NULL;
}

START_TEST(page_unit_short_threads)
{
    start(ML_GUARD_AFTER, 0, 1 << 20);
    for (int round = 0; round < 400; round++) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, short_worker, NULL), 0);
        for (int i = 0; i < 8; i++)
            pthread_join(t[i], NULL);
    }
}
END_TEST

static int stop;

static void *churn(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        B->free(fill(B->malloc(3000)));
    return NULL;
}

START_TEST(page_unit_fork)
{
    start(ML_GUARD_AFTER, 0, 1 << 20);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, churn, NULL), 0);
    for (int i = 0; i < 20; i++) {
        B->atfork(ML_FORK_PREPARE);
        ml_meta_atfork(ML_FORK_PREPARE);
        pid_t pid = fork();
        if (pid == 0) {
            ml_meta_atfork(ML_FORK_CHILD);
            B->atfork(ML_FORK_CHILD);
            void *p = B->malloc(5000);
            int ok = p && B->usable_size(p) == 5000;
            B->free(p);
            _exit(ok ? 0 : 1);
        }
        ml_meta_atfork(ML_FORK_PARENT);
        B->atfork(ML_FORK_PARENT);
        ck_assert_int_gt(pid, 0);
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("page");
    TCase *tc = tcase_create("page");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, page_unit_after_layout);
    tcase_add_test(tc, page_unit_byte_exact);
    tcase_add_test(tc, page_unit_before_layout);
    tcase_add_loop_test(tc, page_unit_memalign, ML_GUARD_AFTER, ML_GUARD_BEFORE + 1);
    tcase_add_test(tc, page_unit_realloc_contents);
    tcase_add_test(tc, page_unit_use_after_free);
    tcase_add_test(tc, page_unit_quarantine_bound);
    tcase_add_test(tc, page_unit_zalloc_reuse);
    tcase_add_test(tc, page_unit_foreign);
    tcase_add_test(tc, page_unit_canary);
    tcase_add_test(tc, page_unit_fallback_rlimit_as);
    tcase_add_test(tc, page_unit_fallback_rlimit_data);
    tcase_add_test(tc, page_unit_huge);
    suite_add_tcase(s, tc);
    /* a case of its own, so a TSan build can run just these:
     * CK_RUN_CASE=threads ./page_unit (and short_threads) */
    TCase *tt = tcase_create("threads");
    tcase_set_timeout(tt, 120);
    tcase_add_test(tt, page_unit_threads);
    tcase_add_test(tt, page_unit_fork);
    suite_add_tcase(s, tt);
    /* a hang here is a lost wake-up: fail in a minute, not in hours */
    TCase *ts = tcase_create("short_threads");
    tcase_set_timeout(ts, 60);
    tcase_add_test(ts, page_unit_short_threads);
    suite_add_tcase(s, ts);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
