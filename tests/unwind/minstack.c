/* tests/unwind/minstack.c: a thread with the smallest stack glibc allows
 * (PTHREAD_STACK_MIN) must still start under the preload: mallard's static
 * TLS comes out of every thread's stack, so the capture's per-thread memo
 * must not live there (with it, pthread_create failed with EINVAL).  The
 * thread itself does not allocate: mallard's first malloc on a thread needs
 * more stack than PTHREAD_STACK_MIN leaves after its 9 KiB of static TLS
 * (that crashes before and after this test was written; see notes). */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void *body(void *arg) { return arg; }

int main(void)
{
    for (int round = 0; round < 3; round++) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        if (pthread_attr_setstacksize(&at, PTHREAD_STACK_MIN) != 0)
            return 2;
        pthread_t t;
        int rc = pthread_create(&t, &at, body, NULL);
        if (rc != 0) {
            fprintf(stderr, "pthread_create with a %ld-byte stack: %s\n", (long)PTHREAD_STACK_MIN,
                    strerror(rc));
            return 1;
        }
        pthread_join(t, NULL);
        pthread_attr_destroy(&at);
    }
    puts("minstack ok");
    return 0;
}
