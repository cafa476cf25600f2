/* tests/procstart/nofde.c: built without unwind tables, so that no frame of
 * this program has an FDE: the own unwinder cannot walk its stacks and
 * stack.c loads libunwind for them, on demand, from inside malloc.  A
 * 24-byte block leaks from inner(), called by outer(), called by main. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static char *inner(void)
{
    char *p = malloc(24); /* @NOFDE */
    memset(p, 3, 24);
    return p;
}

__attribute__((noinline)) static void outer(void)
{
    char *p = inner();
    __asm__ volatile("" ::"r"(p) : "memory");
}

int main(void)
{
    outer();
    printf("nofde ok\n");
    return 0;
}
