/* tests/safe/getattr_thread.c: threads whose first act is
 * pthread_getattr_np(pthread_self()), as Ruby, JVMs and GCs do.  glibc
 * holds the thread's internal lock while it reallocs the affinity mask
 * inside that call, so the thread's first allocation happens under that
 * lock; an allocator that calls back into pthread_getattr_np there hangs.
 * Prints the number of threads whose stack held their own frame. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *worker(void *arg)
{
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    int ok = 0;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &addr, &size);
        pthread_attr_destroy(&a);
        char *here = (char *)&a;
        ok = here >= (char *)addr && here < (char *)addr + size;
    }
    char *p = malloc(100 + (size_t)(long)arg);
    memset(p, 1, 100);
    free(p);
    return (void *)(long)ok;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20;
    int good = 0;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        void *r;
        if (pthread_create(&t, NULL, worker, (void *)(long)i) != 0)
            return 1;
        pthread_join(t, &r);
        good += (int)(long)r;
    }
    printf("threads %d stacks ok %d\n", n, good);
    return 0;
}
