/* Frees of pointers mallard never returned: an interior pointer and a stack
 * address, and a realloc of a freed block.  None of them reaches the
 * allocator; the program keeps running. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void free_interior(char *p) { free(p + 8); /* @INTERIOR */ }
__attribute__((noinline)) void free_stack(void)
{
    char local[16];
    local[0] = 0;
    free(local); /* @STACK */
}
__attribute__((noinline)) void *realloc_freed(char *p) { return realloc(p, 200); /* @REALLOC */ }

int main(void)
{
    char *p = malloc(64);
    free_interior(p);
    free_stack();
    free(p);
    void *q = realloc_freed(p);
    printf("%s\n", q ? "realloc returned a block" : "realloc refused");
    return 0;
}
