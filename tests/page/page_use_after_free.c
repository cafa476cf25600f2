/* tests/page/page_use_after_free.c: writes into a block after freeing it.
 * The offset is 32: free-list links (freelist backend, glibc's tcache)
 * sit in the first 16 bytes.  A second live block of the same size keeps
 * the span or chunk mapped in allocators that release empty ones, and the
 * access leaves the byte as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poke.h"

int main(void)
{
    char *keep = malloc(144);
    char *p = malloc(144);
    if (!keep || !p)
        return 2;
    memset(p, 'a', 144);
    char *stale = ml_launder(p);
    free(p);
    ml_poke(stale + 32);
    free(keep);
    puts("survived");
    return 0;
}
