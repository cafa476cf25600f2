/* tests/conformance/hz_oom.c: out of address space (HAZARDS §18).
 *
 * After start-up, lowers RLIMIT_AS to the current size plus a margin; then
 * every entry point, from the main thread and from four threads at once,
 * must fail a request that cannot fit with NULL and ENOMEM (posix_memalign:
 * a return of ENOMEM), leave a block that realloc failed to grow intact,
 * and go on serving small requests afterwards. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MARGIN ((size_t)256 << 20)
#define TOO_BIG ((size_t)2 << 30) /* eight times the margin */

static atomic_int failures;
static pthread_barrier_t start;

static size_t opaque(size_t x)
{
    __asm__ volatile("" : "+r"(x));
    return x;
}

/* Keeps -Wuse-after-free from treating a failed realloc as a free. */
static void *opaque_ptr(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

static void fail(const char *what, void *r, int err)
{
    fprintf(stderr, "hz_oom: %s returned %p with errno %d\n", what, r, err);
    atomic_fetch_add(&failures, 1);
}

#define EXPECT_ENOMEM(call)                                                                                           \
    do {                                                                                                              \
        errno = 0;                                                                                                    \
        void *r_ = (call);                                                                                            \
        if (r_ != NULL || errno != ENOMEM)                                                                            \
            fail(#call, r_, errno);                                                                                   \
        free(r_);                                                                                                     \
    } while (0)

static void small_work(int rounds)
{
    for (int r = 0; r < rounds; r++) {
        char *p[100];
        for (int i = 0; i < 100; i++) {
            size_t n = 1 + (size_t)(i * 37 + r) % 2000;
            p[i] = malloc(n);
            if (!p[i]) {
                fail("small malloc", NULL, errno);
                return;
            }
            memset(p[i], i, n);
        }
        for (int i = 0; i < 100; i++)
            free(p[i]);
    }
    char *m = malloc((size_t)1 << 20);
    if (!m)
        fail("1 MiB malloc", NULL, errno);
    else
        memset(m, 1, (size_t)1 << 20);
    free(m);
}

static void every_entry_point(void)
{
    size_t big = opaque(TOO_BIG), ps = (size_t)sysconf(_SC_PAGESIZE);
    EXPECT_ENOMEM(malloc(big));
    EXPECT_ENOMEM(calloc(1, big));
    EXPECT_ENOMEM(calloc(big / 4096, 4096));
    EXPECT_ENOMEM(realloc(NULL, big));
    EXPECT_ENOMEM(reallocarray(NULL, big / 16, 16));
    EXPECT_ENOMEM(memalign(64, big));
    EXPECT_ENOMEM(memalign((size_t)1 << 20, big));
    EXPECT_ENOMEM(aligned_alloc(4096, big));
    EXPECT_ENOMEM(valloc(big));
    EXPECT_ENOMEM(pvalloc(big));
    void *p = NULL;
    int rc = posix_memalign(&p, 64, big);
    if (rc != ENOMEM || p != NULL)
        fail("posix_memalign(64, big)", p, rc);
    rc = posix_memalign(&p, ps, big);
    if (rc != ENOMEM || p != NULL)
        fail("posix_memalign(page, big)", p, rc);

    /* growing a live block fails and leaves it as it was */
    char *live = malloc(5000);
    if (!live) {
        fail("malloc(5000)", NULL, errno);
        return;
    }
    memset(live, 'L', 5000);
    errno = 0;
    char *r = realloc(opaque_ptr(live), big);
    if (r != NULL || errno != ENOMEM)
        fail("realloc(live, big)", r, errno);
    errno = 0;
    r = reallocarray(opaque_ptr(live), big / 8, 8);
    if (r != NULL || errno != ENOMEM)
        fail("reallocarray(live, big)", r, errno);
    for (int i = 0; i < 5000; i++)
        if (live[i] != 'L') {
            fail("a failed realloc damaged the block", live, 0);
            break;
        }
    free(live);
}

static void *thread_main(void *arg)
{
    (void)arg;
    small_work(1); /* the thread's allocator state exists before the limit */
    pthread_barrier_wait(&start);
    pthread_barrier_wait(&start);
    for (int i = 0; i < 20; i++) {
        every_entry_point();
        small_work(2);
    }
    return NULL;
}

static size_t vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f || fscanf(f, "%lu", &pages) != 1)
        exit(3);
    fclose(f);
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

int main(void)
{
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    small_work(3);
    pthread_barrier_init(&start, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, thread_main, NULL) != 0)
            return 4;
    pthread_barrier_wait(&start);

    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = vm_bytes() + MARGIN;
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 5;

    every_entry_point();
    small_work(5);
    pthread_barrier_wait(&start);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    /* and once more, all alone, after the threads are gone */
    every_entry_point();
    small_work(5);
    if (atomic_load(&failures)) {
        fprintf(stderr, "hz_oom: %d failures\n", atomic_load(&failures));
        return 1;
    }
    puts("oom ok");
    return 0;
}
