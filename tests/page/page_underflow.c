/* tests/page/page_underflow.c: writes one byte before the start of a
 * block.  Most allocators keep a header there; the access leaves the byte
 * as it was, so only a guard page in front (MALLARD_PAGE_GUARD=before)
 * can object. */
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
    ml_poke(p - 1);
    free(p);
    puts("survived");
    return 0;
}
