/* Threads that run on stacks the program took from malloc
 * (pthread_attr_setstack, as coroutine and green-thread libraries do).
 * Each loses a small tree whose only pointers lie in its own frames, dead
 * once it returns.  The first stack stays reachable from a global; the
 * second is dropped after the join.  valgrind makes what a thread leaves
 * below its stack pointer unaddressable and so never reads those frames,
 * not even when it reads the block that holds them: the two roots are
 * definitely lost (2 x 120 bytes) with their 8 children indirectly, and so
 * is the dropped stack (196608 bytes). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lose_tree.h"

static void *worker(void *arg)
{
    lose_tree();
    return arg;
}

void *kept_stack; /* not static: a store GCC may not drop */

static int run_on(void *stack, size_t size)
{
    pthread_attr_t a;
    pthread_t t;
    if (pthread_attr_init(&a) || pthread_attr_setstack(&a, stack, size) || pthread_create(&t, &a, worker, NULL) ||
        pthread_join(t, NULL))
        return -1;
    pthread_attr_destroy(&a);
    return 0;
}

int main(void)
{
    kept_stack = malloc(256 << 10); /* @KEPT */
    void *dropped = malloc(192 << 10); /* @DROPPED */
    if (!kept_stack || !dropped || run_on(kept_stack, 256 << 10) || run_on(dropped, 192 << 10)) {
        perror("heap_stack");
        return 1;
    }
    sink(dropped);
    dropped = NULL;
    puts("ran 2");
    return 0;
}
