/* hz_usable_realloc: the bytes malloc_usable_size promised survive realloc.
 *
 * Programs such as redis (zmalloc, sds) ask malloc_usable_size how much a
 * block holds and use all of it.  realloc must then keep every one of
 * those bytes, not only the requested ones: a tracer that cleared the
 * backend's link words past the requested size broke redis's config
 * parser this way. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    int bad = 0;
    for (size_t n = 1; n <= 64; n++) {
        for (size_t grow = 1; grow <= 256; grow *= 4) {
            unsigned char *p = malloc(n);
            if (!p)
                return 2;
            size_t u = malloc_usable_size(p);
            if (u < n) {
                printf("malloc(%zu): usable size %zu\n", n, u);
                return 1;
            }
            memset(p, 0xab, u);
            size_t m = u + grow;
            unsigned char *q = realloc(p, m);
            if (!q)
                return 2;
            for (size_t i = 0; i < u; i++)
                if (q[i] != 0xab) {
                    if (bad++ < 5)
                        printf("malloc(%zu) usable %zu, realloc to %zu: byte %zu lost\n", n, u, m, i);
                    break;
                }
            free(q);
        }
    }
    if (bad)
        return 1;
    puts("usable realloc ok");
    return 0;
}
