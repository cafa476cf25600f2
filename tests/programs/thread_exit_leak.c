/* Threads that each leak and exit, one after another, so glibc hands the
 * next one the stack block the last one left in its cache.  Each worker's
 * copies of its blocks lie in its own frames, which are dead once it
 * returns: valgrind reads a thread's stack only while the thread runs, so
 * all of them are definitely lost (5 x (77 + 40) = 585 bytes in 10
 * blocks).  mallard learns that a thread has ended from the pthread key
 * destructor it registers when the thread first allocates; a backend that
 * keeps no per-thread state of its own (system) must not leave the thread
 * registered as live, or its dead stack is read whole at exit. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* The only copies of the blocks: in this frame, dead once it returns. */
__attribute__((noinline)) static void lose(void)
{
    volatile char *copies[64];
    char *z = calloc(1, 77); /* @ZEROED */
    char *p = malloc(40);    /* @PLAIN */
    memset(p, 0x5a, 40);
    for (int i = 0; i < 32; i++) {
        copies[i] = z;
        copies[32 + i] = p;
    }
    sink((void *)copies);
}

static void *worker(void *arg)
{
    lose();
    return arg;
}

int main(void)
{
    for (int i = 0; i < 5; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0) {
            perror("thread_exit_leak");
            return 1;
        }
    }
    puts("joined 5");
    return 0;
}
