/* mallinfo2 as glibc's tst-mallinfo2 and tst-malloc-tcache-leak use it:
 * in-use bytes grow by at least what was allocated, and threads that
 * allocate, free and exit leave in-use bytes where they were (within 10%,
 * as the glibc test allows, plus 16 KiB: glibc itself grows by 2.5 KiB
 * here). */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *keep[64];

static void *worker(void *unused)
{
    (void)unused;
    void *p[32];
    for (int i = 0; i < 32; i++)
        p[i] = malloc((size_t)(i + 1) * 24);
    for (int i = 0; i < 32; i++)
        free(p[i]);
    return NULL;
}

static void *fresh[8];

int main(void)
{
    /* blocks of a size nothing asked for yet: whatever the allocator
     * carves them from was free before, so in-use bytes grow by them */
    struct mallinfo2 f0 = mallinfo2();
    for (int i = 0; i < 8; i++)
        fresh[i] = malloc(720);
    struct mallinfo2 f1 = mallinfo2();
    if (f1.uordblks < f0.uordblks + 8 * 720) {
        printf("FAIL: in use %zu before, %zu after allocating %d fresh bytes\n", f0.uordblks, f1.uordblks,
               8 * 720);
        return 1;
    }
    struct mallinfo2 a = mallinfo2();
    size_t total = 0;
    for (int i = 0; i < 64; i++) {
        keep[i] = malloc(300);
        total += 300;
    }
    struct mallinfo2 b = mallinfo2();
    if (b.uordblks < a.uordblks + total || b.uordblks == 0) {
        printf("FAIL: in use %zu before, %zu after allocating %zu bytes\n", a.uordblks, b.uordblks, total);
        return 1;
    }
    for (int i = 0; i < 2000; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0)
            return 2;
    }
    struct mallinfo2 c = mallinfo2();
    if (c.uordblks > b.uordblks + b.uordblks / 10 + 16384) {
        printf("FAIL: in use %zu before 2000 threads, %zu after\n", b.uordblks, c.uordblks);
        return 1;
    }
    printf("mallinfo ok\n");
    return 0;
}
