/* Leak from a dlopen'ed library that is dlclose'd before exit. */
#include <dlfcn.h>
#include <stdio.h>
#include "scrub.h"

int main(int argc, char **argv)
{
    (void)argc;
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    void *(*f)(void) = (void *(*)(void))dlsym(h, "lib_leak");
    f();
    scrub_stack();
    dlclose(h);
    puts("closed");
    return 0;
}
