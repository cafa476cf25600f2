/* tests/conformance/hz_dlopen.c: dlopen/dlclose cycles and RTLD_DEEPBIND
 * (HAZARDS §12).
 *   hz_dlopen loop LIB      1000 dlopen/dlclose of a library that mallocs
 *                           in its constructor and frees in its destructor
 *   hz_dlopen deepbind LIB  dlopen(RTLD_DEEPBIND) a library that frees a
 *                           strdup result and a block from this program */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int loop(const char *lib)
{
    for (int i = 0; i < 1000; i++) {
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "hz_dlopen: cycle %d: %s\n", i, dlerror());
            return 3;
        }
        char *(*block)(void);
        *(void **)&block = dlsym(h, "hz_dlopen_block");
        if (!block || !block() || strspn(block(), "d") != 2999) {
            fprintf(stderr, "hz_dlopen: cycle %d: the constructor's block is wrong\n", i);
            return 4;
        }
        if (i % 10 == 0 && (dlopen("libmallard-hazard-missing.so", RTLD_NOW) != NULL || !dlerror()))
            return 5;
        if (dlclose(h) != 0) {
            fprintf(stderr, "hz_dlopen: dlclose: %s\n", dlerror());
            return 6;
        }
    }
    return 0;
}

static int deepbind(const char *lib)
{
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) {
        fprintf(stderr, "hz_dlopen: %s\n", dlerror());
        return 3;
    }
    int (*run)(void *);
    *(void **)&run = dlsym(h, "hz_deep_run");
    if (!run)
        return 4;
    char *mine = malloc(100);
    if (!mine)
        return 5;
    memset(mine, 'm', 100);
    int rc = run(mine);
    if (rc != 0) {
        fprintf(stderr, "hz_dlopen: the deepbind library failed step %d\n", rc);
        return 6;
    }
    dlclose(h);
    /* the allocator still works afterwards */
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(16 + (size_t)i);
        if (!p)
            return 7;
        memset(p, 1, 16 + (size_t)i);
        free(p);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int rc = !strcmp(argv[1], "loop") ? loop(argv[2]) : !strcmp(argv[1], "deepbind") ? deepbind(argv[2]) : 2;
    if (rc == 0)
        printf("%s ok\n", argv[1]);
    return rc;
}
