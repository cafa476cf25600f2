/* tests/conformance/hz_deep_lib.c: loaded with RTLD_DEEPBIND, so its own
 * references to malloc and free bind to libc before the global scope,
 * while libc's strdup still allocates through the preloaded malloc
 * (HAZARDS §12, gperftools#1148). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

int hz_deep_run(void *from_main);
int hz_deep_run(void *from_main)
{
    for (int i = 0; i < 100; i++) {
        char *s = strdup("x");
        if (!s || strcmp(s, "x"))
            return 1;
        free(s);
    }
    free(from_main);
    char *m = malloc(64);
    if (!m)
        return 2;
    memset(m, 1, 64);
    free(m);
    return 0;
}
