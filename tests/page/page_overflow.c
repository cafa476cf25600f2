/* tests/page/page_overflow.c: writes one byte past the end of a block.
 * 144 is a multiple of 16 that sits below its size class in the freelist
 * backend (160) and below glibc's usable size (152), and the access leaves
 * the byte as it was, so only a guard page can object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poke.h"

int main(void)
{
    char *p = malloc(144);
    if (!p)
        return 2;
    memset(p, 'a', 144);
    ml_poke(p + 144);
    free(p);
    puts("survived");
    return 0;
}
