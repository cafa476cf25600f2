/* tests/soak/soak_lib.c: dlopen'd and dlclose'd in a loop by soak.c; it
 * allocates in its constructor and frees in its destructor. */
#include <stdlib.h>
#include <string.h>

static char *block;

__attribute__((constructor)) static void soak_lib_init(void)
{
    block = malloc(1000);
    if (block)
        memset(block, 1, 1000);
}

__attribute__((destructor)) static void soak_lib_fini(void) { free(block); }

int soak_lib_touch(void);
int soak_lib_touch(void) { return block ? block[999] : -1; }
