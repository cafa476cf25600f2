/* A double free: the report names the allocation, the first free and the
 * second free. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) char *make(void) { return malloc(32); /* @ALLOC */ }
__attribute__((noinline)) void first(char *p) { free(p); /* @FREE1 */ }
__attribute__((noinline)) void second(char *p) { free(p); /* @FREE2 */ }

int main(void)
{
    char *p = make();
    first(p);
    second(p);
    puts("still running");
    return 0;
}
