/* tests/fail/fail.c: a program that tests its own allocation error paths
 * under MALLARD_FAIL, MALLARD_FAIL_RATE/SEED and MALLARD_LIMIT (run.sh).
 * Built without mallard, -fno-builtin; reaches it through LD_PRELOAD.
 *
 *   fail count N   N calls cycling through the malloc family; prints
 *                  "failures=K" then the indexes that failed; exit 1 when a
 *                  failure left errno other than ENOMEM.
 *   fail limit     MALLARD_LIMIT=1M: 200 blocks of 1000 bytes succeed, one
 *                  of 4 MiB fails, a realloc to 2 MiB fails keeping the block.
 *   fail limitrace L   MALLARD_LIMIT=L: first finds how many 1000-byte
 *                  blocks the budget left holds (k, each costing c: 1000
 *                  with the tracer, its usable size without; the budget
 *                  left is under (k + 1) * c); then 8 threads malloc
 *                  and realloc 1000-byte blocks, each wanting 16 live at
 *                  once (twice what L allows for all), for 3 seconds at
 *                  most; the bytes the program holds at once, counted
 *                  between a successful return and the free, must stay
 *                  under (k + 1) * c.  Prints "limitrace ok" (exit 0), or
 *                  the excess (exit 3).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *keep[64];
static int bad_errno;

/* One call of the family, picked by i; 1 when it failed (errno checked). */
__attribute__((noinline)) static int alloc_here(int i)
{
    size_t n = 16 + (size_t)(i % 7) * 24;
    void *p = NULL;
    int slot = i % 64;
    errno = 0;
    switch (i % 5) {
    case 0:
        p = malloc(n);
        break;
    case 1:
        p = calloc(2, n);
        break;
    case 2:
        p = memalign(64, n);
        break;
    case 3: {
        int rc = posix_memalign(&p, 32, n);
        if (rc) {
            if (rc != ENOMEM || errno != ENOMEM)
                bad_errno = 1;
            return 1;
        }
        break;
    }
    case 4:
        p = realloc(keep[slot], n + 100);
        if (!p) {
            if (errno != ENOMEM)
                bad_errno = 1;
            return 1; /* keep[slot] stays valid */
        }
        keep[slot] = p;
        return 0;
    }
    if (!p) {
        if (errno != ENOMEM)
            bad_errno = 1;
        return 1;
    }
    free(keep[slot]);
    keep[slot] = p;
    return 0;
}

/* ---- limitrace ---------------------------------------------------------- */

#define RACE_THREADS 8
#define RACE_HOLD 16
#define RACE_SIZE 1000
static long race_held, race_max, race_failed, race_ok;
static pthread_barrier_t race_start;
static struct timespec race_end;

static int race_over(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > race_end.tv_sec || (now.tv_sec == race_end.tv_sec && now.tv_nsec >= race_end.tv_nsec);
}

static void race_hold(long n)
{
    long cur = __atomic_add_fetch(&race_held, n, __ATOMIC_SEQ_CST);
    long max = __atomic_load_n(&race_max, __ATOMIC_RELAXED);
    while (cur > max && !__atomic_compare_exchange_n(&race_max, &max, cur, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static void *race_thread(void *arg)
{
    (void)arg;
    char *mine[RACE_HOLD] = {0};
    pthread_barrier_wait(&race_start);
    for (int round = 0; round < 20000 && !race_over(); round++) {
        for (int i = 0; i < RACE_HOLD; i++) {
            if (mine[i])
                continue;
            /* half of them grow from a small block by realloc */
            char *p = malloc(i % 2 ? RACE_SIZE : 8);
            if (p && i % 2 == 0) {
                race_hold(8);
                char *q = realloc(p, RACE_SIZE);
                if (q) {
                    race_hold(RACE_SIZE - 8);
                    p = q;
                } else {
                    __atomic_sub_fetch(&race_held, 8, __ATOMIC_SEQ_CST);
                    free(p);
                    p = NULL;
                }
            } else if (p) {
                race_hold(RACE_SIZE);
            }
            if (!p) {
                __atomic_add_fetch(&race_failed, 1, __ATOMIC_RELAXED);
                continue;
            }
            __atomic_add_fetch(&race_ok, 1, __ATOMIC_RELAXED);
            memset(p, i, RACE_SIZE);
            mine[i] = p;
        }
        for (int i = round % 2; i < RACE_HOLD; i += 2) {
            if (!mine[i])
                continue;
            __atomic_sub_fetch(&race_held, RACE_SIZE, __ATOMIC_SEQ_CST);
            free(mine[i]);
            mine[i] = NULL;
        }
    }
    for (int i = 0; i < RACE_HOLD; i++)
        if (mine[i]) {
            __atomic_sub_fetch(&race_held, RACE_SIZE, __ATOMIC_SEQ_CST);
            free(mine[i]);
        }
    return NULL;
}

static int limitrace(long limit)
{
    /* Ballast first: whatever the process took before main (a sanitizer
     * build's runtimes take tens of KiB), the race gets the same room, 72
     * blocks (8 of them for the threads' own start-up), not what happens
     * to be left. */
    static void *ballast[8192];
    long nb = 0;
    while (nb < 8192 && (ballast[nb] = malloc(RACE_SIZE)))
        nb++;
    if (nb == 8192 || nb < 80) {
        printf("limitrace: %ld ballast blocks of %d bytes under a limit of %ld\n", nb, RACE_SIZE, limit);
        return 3;
    }
    for (int i = 0; i < 72; i++)
        free(ballast[--nb]);
    pthread_t th[RACE_THREADS];
    pthread_barrier_init(&race_start, NULL, RACE_THREADS + 1);
    for (int i = 0; i < RACE_THREADS; i++)
        if (pthread_create(&th[i], NULL, race_thread, NULL) != 0)
            return 4;
    /* what the budget still holds, the threads waiting */
    static void *probe[4096];
    long k = 0, most = limit / RACE_SIZE + 2;
    if (most > 4096)
        return 4;
    while (k < most && (probe[k] = malloc(RACE_SIZE)))
        k++;
    if (k == most || !k) {
        printf("limitrace: %ld blocks of %d bytes under a limit of %ld\n", k, RACE_SIZE, limit);
        return 3;
    }
    /* a block costs the budget its requested size with the tracer, its
     * usable size without (MALLARD_TRACE=0) */
    const char *trace = getenv("MALLARD_TRACE");
    long c = trace && !strcmp(trace, "0") ? (long)malloc_usable_size(probe[0]) : RACE_SIZE;
    if (c < RACE_SIZE)
        c = RACE_SIZE;
    long bound = (k + 1) * c;
    for (long i = 0; i < k; i++)
        free(probe[i]);
    clock_gettime(CLOCK_MONOTONIC, &race_end);
    race_end.tv_sec += 3;
    pthread_barrier_wait(&race_start);
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(th[i], NULL);
    if (race_max >= bound) {
        printf("limitrace: %ld bytes held at once; the budget left held %ld blocks of %ld bytes\n", race_max, k,
               c);
        return 3;
    }
    if (!race_failed || !race_ok) {
        printf("limitrace: %ld succeeded, %ld failed: the limit was never reached\n", race_ok, race_failed);
        return 3;
    }
    while (nb)
        free(ballast[--nb]);
    printf("limitrace ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "limitrace"))
        return limitrace(atol(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "count")) {
        int n = atoi(argv[2]);
        static int failed[100000];
        int k = 0;
        for (int i = 0; i < n && i < 100000; i++) {
            if (alloc_here(i))
                failed[k++] = i;
        }
        for (int i = 0; i < 64; i++)
            free(keep[i]);
        printf("failures=%d\n", k);
        for (int i = 0; i < k; i++)
            printf("%d\n", failed[i]);
        return bad_errno;
    }
    if (argc >= 2 && !strcmp(argv[1], "limit")) {
        void *small[200];
        for (int i = 0; i < 200; i++) {
            small[i] = malloc(1000);
            if (!small[i]) {
                printf("small %d failed\n", i);
                return 1;
            }
        }
        errno = 0;
        void *big = malloc(4 << 20);
        if (big || errno != ENOMEM) {
            printf("big: %p errno %d\n", big, errno);
            return 1;
        }
        errno = 0;
        void *r = realloc(small[0], 2 << 20);
        if (r || errno != ENOMEM) {
            printf("realloc: %p errno %d\n", r, errno);
            return 1;
        }
        memset(small[0], 1, 1000);
        for (int i = 0; i < 200; i++)
            free(small[i]);
        big = malloc(512 << 10); /* under budget again once freed */
        if (!big) {
            printf("after free: 512K failed\n");
            return 1;
        }
        free(big);
        printf("limit ok\n");
        return 0;
    }
    return 2;
}
