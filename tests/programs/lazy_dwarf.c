/* tests/programs/lazy_dwarf.c: a definite leak made in main and a
 * reachable block made in a library whose DWARF is compressed; with "lose"
 * as its argument, also a definite leak made inside that library. */
#include <stdlib.h>
#include <string.h>

void lazy_keep(void);
char *lazy_lose(void);

static void *volatile sink;

int main(int argc, char **argv)
{
    lazy_keep();
    char *p = malloc(24);
    if (p)
        memset(p, 'm', 24);
    p = NULL;
    if (argc > 1 && !strcmp(argv[1], "lose"))
        sink = lazy_lose();
    sink = NULL;
    return 0;
}
