/* tests/conformance/hz_rpath.c: dlopen("libhzrpath.so") must search this
 * program's RUNPATH ($ORIGIN/rpath) even with mallard's dlopen in front:
 * ld.so picks the RUNPATH from dlopen's return address. */
#include <dlfcn.h>
#include <stdio.h>

int main(void)
{
    void *h = dlopen("libhzrpath.so", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "hz_rpath: %s\n", dlerror());
        return 1;
    }
    int (*f)(void) = (int (*)(void))dlsym(h, "hz_rpath_answer");
    if (!f || f() != 42)
        return 2;
    dlclose(h);
    puts("rpath ok");
    return 0;
}
