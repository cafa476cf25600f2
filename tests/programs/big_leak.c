/* A 100 MiB leak. */
#include <stdio.h>
#include <stdlib.h>
#include "scrub.h"

__attribute__((noinline)) static void leak(void)
{
    char *p = malloc((size_t)100 << 20); /* @BIG */
    p[0] = 1;
}

int main(void)
{
    leak();
    scrub_stack();
    puts("big");
    return 0;
}
