/* tests/unwind/minstack.c [alloc]: a thread with the smallest stack glibc
 * allows (PTHREAD_STACK_MIN) must still start under the preload: mallard's
 * static TLS comes out of every thread's stack, so the capture's per-thread
 * memo must not live there (with it, pthread_create failed with EINVAL).
 * With "alloc" the thread also allocates, frees and reallocates: with the
 * trace layer's 4 KiB quarantine FIFO in static TLS too (9 KiB in all),
 * the thread's first malloc overflowed what was left of its stack
 * (SIGSEGV, traced or not). */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int allocate;

static void *body(void *arg)
{
    if (!allocate)
        return arg;
    void *keep[8];
    for (int i = 0; i < 8; i++) {
        keep[i] = malloc(16 + 40 * (size_t)i);
        if (!keep[i])
            return NULL;
        memset(keep[i], i, 16);
    }
    for (int i = 0; i < 8; i++) {
        void *q = realloc(keep[i], 300);
        if (!q)
            return NULL;
        free(q);
    }
    return arg;
}

int main(int argc, char **argv)
{
    allocate = argc > 1 && !strcmp(argv[1], "alloc");
    for (int round = 0; round < 3; round++) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        if (pthread_attr_setstacksize(&at, PTHREAD_STACK_MIN) != 0)
            return 2;
        pthread_t t;
        int rc = pthread_create(&t, &at, body, &allocate);
        if (rc != 0) {
            fprintf(stderr, "pthread_create with a %ld-byte stack: %s\n", (long)PTHREAD_STACK_MIN,
                    strerror(rc));
            return 1;
        }
        void *ret = NULL;
        pthread_join(t, &ret);
        if (allocate && ret != &allocate)
            return 3;
        pthread_attr_destroy(&at);
    }
    puts("minstack ok");
    return 0;
}
