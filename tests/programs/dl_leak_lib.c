/* A library that leaks; the program dlclose's it before exit. */
#include <stdlib.h>

__attribute__((noinline)) void *lib_leak(void)
{
    char *p = malloc(333); /* @LIBLEAK */
    p[0] = 1;
    return NULL;
}
