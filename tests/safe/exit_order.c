/* tests/safe/exit_order.c: output left in stdio's buffers at exit and one
 * leak.  stdout is a pipe or file here, so it is fully buffered and glibc
 * flushes it only after every exit handler has run; the leak report must
 * still come after it in a merged 2>&1 stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../programs/scrub.h"

__attribute__((noinline)) static void leak_one(void)
{
    char *p = malloc(4321);
    memset(p, 5, 4321);
    __asm__ volatile("" ::"r"(p) : "memory");
}

int main(void)
{
    leak_one();
    scrub_stack();
    printf("first line of the program\n");
    printf("last words, unflushed");
    fprintf(stderr, "a stderr line\n");
    printf(" until exit\n");
    return 0;
}
