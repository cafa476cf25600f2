/* tests/page/page_exact13.c: touches byte 13 of a 13-byte block.
 * Every 16-aligning allocator has room for it, and it lies in the page
 * backend's canary slack unless MALLARD_PAGE_ALIGN=1 puts the guard right
 * there.  With the argument "scribble" it really changes the byte (only
 * the page backend's canary check should notice); otherwise the access
 * leaves it as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poke.h"

int main(int argc, char **argv)
{
    char *p = malloc(13);
    if (!p)
        return 2;
    memset(p, 'a', 13);
    if (argc > 1 && !strcmp(argv[1], "scribble"))
        *((volatile char *)ml_launder(p) + 13) = 'x';
    else
        ml_poke(p + 13);
    free(p);
    puts("survived");
    return 0;
}
