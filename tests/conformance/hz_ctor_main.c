/* tests/conformance/hz_ctor_main.c: linked against hz_ctor_lib.so, whose
 * constructor made the first allocation before main (HAZARDS §1, §7).
 * Exits 0 when that allocation worked, came from mallard, and its block
 * survives being reallocated and freed now. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int hz_ctor_status;
extern char *hz_ctor_block;
extern const char *hz_ctor_calloc_from;

int main(int argc, char **argv)
{
    (void)argv;
    if (hz_ctor_status != 0) {
        fprintf(stderr, "hz_ctor_main: the constructor's allocations failed (status %d)\n", hz_ctor_status);
        return 1;
    }
    /* argc > 1: also require that calloc was mallard's (run under preload) */
    if (argc > 1 && (!hz_ctor_calloc_from || !strstr(hz_ctor_calloc_from, "libmallard.so"))) {
        fprintf(stderr, "hz_ctor_main: calloc in the constructor came from %s\n",
                hz_ctor_calloc_from ? hz_ctor_calloc_from : "?");
        return 2;
    }
    for (int i = 0; i < 119; i++)
        if (hz_ctor_block[i] != 'c') {
            fprintf(stderr, "hz_ctor_main: the constructor's block changed at byte %d\n", i);
            return 3;
        }
    char *r = realloc(hz_ctor_block, 100000);
    if (!r || strspn(r, "c") != 119) {
        fprintf(stderr, "hz_ctor_main: realloc of the constructor's block lost it\n");
        return 4;
    }
    free(r);
    printf("constructor block ok\n");
    return 0;
}
