/* tests/conformance/hz_ctor_lib.c: a DT_NEEDED library whose constructor
 * makes the process's first allocation (HAZARDS §1, §7).
 *
 * Its constructor runs before libmallard.so's own, so mallard must
 * initialise lazily from inside this calloc.  It also registers an atexit
 * handler (which allocates: __new_exitfn) and keeps a block that the
 * program checks and frees later. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hz_ctor_status = -1;      /* 0 once the constructor's checks passed */
char *hz_ctor_block;          /* calloc'd in the constructor, freed by main */
const char *hz_ctor_calloc_from; /* the object calloc resolved to */
int hz_ctor_atexit_ran;

static void hz_ctor_at_exit(void)
{
    /* allocation during exit handlers must still work */
    char *p = malloc(4000);
    if (!p)
        _exit(90);
    memset(p, 7, 4000);
    free(p);
    char *d = strdup("at exit");
    if (!d || strcmp(d, "at exit"))
        _exit(91);
    free(d);
    hz_ctor_atexit_ran = 1;
}

__attribute__((constructor(101))) static void hz_ctor_first(void)
{
    /* the very first allocation of the process, and it is a calloc */
    char *z = calloc(3, 40);
    if (!z || ((uintptr_t)z & 15))
        return;
    for (int i = 0; i < 120; i++)
        if (z[i])
            return;
    memset(z, 'c', 119);
    z[119] = 0;
    hz_ctor_block = z;

    void *m = malloc(100);
    if (!m)
        return;
    memset(m, 1, 100);
    free(m);
    void *big = malloc((size_t)2 << 20);
    if (!big)
        return;
    memset(big, 2, (size_t)2 << 20);
    free(big);
    if (atexit(hz_ctor_at_exit) != 0)
        return;

    Dl_info info;
    if (dladdr((void *)(uintptr_t)&calloc, &info) && info.dli_fname)
        hz_ctor_calloc_from = info.dli_fname;
    hz_ctor_status = 0;
}
