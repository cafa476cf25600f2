/* tests/conformance/hz_dlopen_lib.c: allocates in its constructor and
 * frees in its destructor, so every dlopen/dlclose cycle allocates and
 * frees across the loader (HAZARDS §12). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *hz_block;

char *hz_dlopen_block(void);
char *hz_dlopen_block(void) { return hz_block; }

__attribute__((constructor)) static void hz_dlopen_ctor(void)
{
    hz_block = malloc(3000);
    if (!hz_block)
        _exit(97);
    memset(hz_block, 'd', 2999);
    hz_block[2999] = 0;
}

__attribute__((destructor)) static void hz_dlopen_dtor(void)
{
    if (strspn(hz_block, "d") != 2999)
        _exit(98);
    free(hz_block);
    hz_block = NULL;
}
