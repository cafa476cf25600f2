/* tests/conformance/hz_static.c: built with -static, where LD_PRELOAD can
 * have no effect (HAZARDS §15).  The test runs it with and without the
 * preload and compares the output, which depends on allocations working. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    unsigned long sum = 0;
    for (int i = 1; i <= 2000; i++) {
        unsigned char *p = malloc((size_t)i * 13);
        if (!p)
            return 1;
        memset(p, i & 0xff, (size_t)i * 13);
        sum += p[(size_t)i * 13 - 1] + (unsigned)i;
        free(p);
    }
    char *s = strdup("static binary");
    printf("%s: checksum %lu\n", s, sum);
    free(s);
    return 0;
}
