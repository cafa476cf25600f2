/* tests/conformance/suite_glibc_top.c: the last block a program allocates
 * and then drops is a definite leak under every backend.  Under the system
 * backend glibc's main_arena.top points at the header of the top chunk,
 * which starts inside that block's last usable word when the requested
 * size fills the chunk (100 bytes of a 112-byte chunk): the exit scan took
 * glibc's bookkeeping for a program pointer and called the block still
 * reachable (a leak lost in any program that prints and then leaks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void __attribute__((noinline)) drop(void)
{
    char *p = malloc(100);
    memset(p, 'x', 100);
    __asm__ volatile("" : : "r"(p) : "memory");
}

int main(void)
{
    printf("glibc top: first output\n");
    fflush(stdout);
    drop();
    printf("glibc top ok\n");
    return 0;
}
