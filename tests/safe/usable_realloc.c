/* tests/safe/usable_realloc.c: a program may use every byte that
 * malloc_usable_size reports (redis's sds strings do), so realloc must
 * carry all of them over, for small blocks too.  Prints "usable ok". */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    int bad = 0;
    for (size_t n = 1; n <= 64; n++) {
        for (size_t grow = 1; grow <= 300; grow += 37) {
            unsigned char *p = malloc(n);
            size_t u = malloc_usable_size(p);
            if (u < n)
                bad++;
            for (size_t i = 0; i < u; i++)
                p[i] = (unsigned char)(i * 7 + n);
            unsigned char *q = realloc(p, u + grow);
            if (!q)
                return 1;
            for (size_t i = 0; i < u; i++)
                if (q[i] != (unsigned char)(i * 7 + n)) {
                    if (!bad)
                        fprintf(stderr, "malloc(%zu): usable %zu, byte %zu lost by realloc(%zu)\n", n, u, i,
                                u + grow);
                    bad++;
                    break;
                }
            free(q);
        }
    }
    printf("usable %s\n", bad ? "LOST" : "ok");
    return 0;
}
