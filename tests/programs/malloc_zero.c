/* malloc(0) leaked: valgrind reports 0 bytes in 1 block definitely lost
 * (and the kept one as 0 bytes still reachable). */
#include <stdio.h>
#include <stdlib.h>

#include "scrub.h"

void *kept_zero;

__attribute__((noinline)) static void leak_zero(void)
{
    void *volatile p = malloc(0); /* @ZERO */
    (void)p;
}

int main(void)
{
    kept_zero = malloc(0); /* @KEPTZERO */
    leak_zero();
    scrub_stack();
    puts("zero");
    return 0;
}
