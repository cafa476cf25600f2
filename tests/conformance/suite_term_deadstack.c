/* tests/conformance/suite_term_deadstack.c: a block whose only pointer
 * lies in a frame that has returned is lost, in the report a SIGTERM
 * writes as in the one exit writes.  mallard's SIGTERM handler writes the
 * report on a stack of its own, and the scan then read the whole of the
 * main thread's [stack] mapping, the dead part below sp included: the
 * stale copy 64 KiB down made the block "still reachable", and the report
 * named no leak. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A deep frame that keeps the only pointer to a block at its bottom, far
 * below anything the signal handler's frames will use, then returns. */
static void __attribute__((noinline)) deep_drop(void)
{
    volatile void *slots[8192];
    slots[0] = malloc(100);
    memset((void *)slots[0], 'x', 100);
    __asm__ volatile("" : : "r"(slots) : "memory");
}

int main(int argc, char **argv)
{
    (void)argv;
    deep_drop();
    printf("dead stack: %s\n", argc > 1 ? "exiting" : "raising SIGTERM");
    fflush(stdout);
    if (argc > 1)
        return 0;
    raise(SIGTERM);
    return 3;
}
