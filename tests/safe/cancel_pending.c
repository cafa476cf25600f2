/* tests/safe/cancel_pending.c: a thread is cancelled (deferred) before it
 * starts allocating; glibc's malloc family is no cancellation point, so the
 * thread must get through every call and die only at its usleep.  Built
 * without unwind tables, so that the trace layer's stack capture cannot use
 * its caching unwinder and falls back to libunwind, which checks addresses
 * with read(2), a cancellation point. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_barrier_t gate;
static int reached;

static void *run(void *unused)
{
    (void)unused;
    pthread_barrier_wait(&gate);
    static void *keep[2000];
    for (int i = 0; i < 2000; i++)
        keep[i] = malloc((size_t)(i * 37) % 70000 + 1);
    for (int i = 0; i < 2000; i += 2)
        free(keep[i]);
    for (int i = 0; i < 2000; i += 2)
        keep[i] = realloc(keep[i + 1], 5000);
    for (int i = 0; i < 2000; i += 2)
        free(keep[i]);
    char *s = strdup("x");
    free(s);
    void *m = memalign(4096, 100000);
    free(m);
    reached = 1;
    usleep(1000); /* the cancellation point */
    return NULL;
}

int main(void)
{
    for (int r = 0; r < 20; r++) {
        pthread_t t;
        pthread_barrier_init(&gate, NULL, 2);
        reached = 0;
        pthread_create(&t, NULL, run, NULL);
        pthread_cancel(t);
        pthread_barrier_wait(&gate);
        void *rv;
        pthread_join(t, &rv);
        if (rv != PTHREAD_CANCELED || !reached) {
            printf("round %d: cancelled %d, allocations finished %d\n", r, rv == PTHREAD_CANCELED, reached);
            return 1;
        }
        pthread_barrier_destroy(&gate);
    }
    printf("cancel pending ok\n");
    return 0;
}
