/* tests/fail/fail.c: a program that tests its own allocation error paths
 * under MALLARD_FAIL, MALLARD_FAIL_RATE/SEED and MALLARD_LIMIT (run.sh).
 * Built without mallard, -fno-builtin; reaches it through LD_PRELOAD.
 *
 *   fail count N   N calls cycling through the malloc family; prints
 *                  "failures=K" then the indexes that failed; exit 1 when a
 *                  failure left errno other than ENOMEM.
 *   fail limit     MALLARD_LIMIT=1M: 200 blocks of 1000 bytes succeed, one
 *                  of 4 MiB fails, a realloc to 2 MiB fails keeping the block.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
{
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
