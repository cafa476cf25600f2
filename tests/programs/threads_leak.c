/* Four threads each leak one block of a different size; blocks freed in an
 * atexit handler and in a destructor are not leaks. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *freed_at_exit, *freed_in_dtor;

__attribute__((noinline)) static void *leaker(void *arg)
{
    size_t n = (size_t)arg;
    char *p = malloc(n); /* @THREAD */
    p[0] = 1;
    return NULL;
}

static void at_exit(void) { free(freed_at_exit); }
__attribute__((destructor)) static void dtor(void) { free(freed_in_dtor); }

int main(void)
{
    freed_at_exit = malloc(500);
    freed_in_dtor = malloc(600);
    atexit(at_exit);
    pthread_t t[4];
    for (size_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, leaker, (void *)(1000 + 100 * i));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    puts("joined");
    return 0;
}
