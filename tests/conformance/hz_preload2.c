/* tests/conformance/hz_preload2.c: a second preload library, as a user's
 * own interposer would be (HAZARDS §7).  It wraps fopen through
 * dlsym(RTLD_NEXT), resolved from its constructor (dlsym may calloc for its
 * error state), and allocates there before or after mallard is ready,
 * depending on where it sits in LD_PRELOAD. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static FILE *(*real_fopen)(const char *, const char *);
static char *hz2_name;

__attribute__((constructor)) static void hz2_init(void)
{
    hz2_name = calloc(1, 64);
    if (!hz2_name)
        _exit(93);
    strcpy(hz2_name, "hz_preload2");
    *(void **)&real_fopen = dlsym(RTLD_NEXT, "fopen");
    if (!real_fopen)
        _exit(94);
    /* a failed lookup makes dlerror allocate its message */
    if (dlsym(RTLD_NEXT, "hz_no_such_symbol") != NULL || dlerror() == NULL)
        _exit(95);
}

__attribute__((destructor)) static void hz2_fini(void)
{
    if (strcmp(hz2_name, "hz_preload2") != 0)
        _exit(96);
    free(hz2_name);
}

FILE *fopen(const char *path, const char *mode)
{
    char *copy = strdup(path);
    FILE *f = real_fopen(copy ? copy : path, mode);
    free(copy);
    return f;
}
