/* tests/conformance/hz_exit_main.c: pthread_exit from main while other
 * threads allocate (HAZARDS §5, rr#584).  The process ends, with status 0,
 * when the last thread returns; main's TLS destructors are not run on a
 * plain return, but they are on pthread_exit. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_key_t key;

static void dtor(void *v)
{
    if (strcmp(v, "main's block") != 0)
        _exit(20);
    free(v);
    free(malloc(100)); /* allocating at main's exit */
}

static void *worker(void *arg)
{
    usleep(20000); /* let main leave first */
    for (int i = 0; i < 20000; i++) {
        size_t n = 1 + (size_t)(i * 31 + (int)(uintptr_t)arg) % 5000;
        char *p = malloc(n);
        if (!p)
            _exit(21);
        memset(p, i, n);
        free(p);
    }
    return NULL;
}

int main(void)
{
    if (pthread_key_create(&key, dtor) != 0)
        return 2;
    pthread_setspecific(key, strdup("main's block"));
    for (uintptr_t i = 0; i < 4; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)i) != 0)
            return 3;
        pthread_detach(t);
    }
    pthread_exit(NULL);
}
