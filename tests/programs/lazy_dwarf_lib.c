/* tests/programs/lazy_dwarf_lib.c: built with compressed DWARF (-gz), as
 * Debian's libc6-dbg ships libc's.  One block it keeps (still reachable),
 * one it loses (a definite leak whose frame 0 is here). */
#include <stdlib.h>
#include <string.h>

static char *kept;

void lazy_keep(void)
{
    kept = malloc(48);
    if (kept)
        memset(kept, 'k', 48);
}

char *lazy_lose(void)
{
    char *p = malloc(40);
    if (p)
        memset(p, 'l', 40);
    return p;
}
