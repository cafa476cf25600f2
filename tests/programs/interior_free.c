/* free and realloc of a pointer 16 bytes inside a 96-byte calloc block:
 * the report names the block and its allocation stack.  -O1 -g. */
#include <stdio.h>
#include <stdlib.h>

static char *volatile keep;

__attribute__((noinline)) static char *make(void) { return calloc(1, 96); /* @CALLOC */ }
__attribute__((noinline)) static void free_inside(char *p) { free(p + 16); /* @FREEIN */ }
__attribute__((noinline)) static void *realloc_inside(char *p) { return realloc(p + 16, 200); /* @REALLOCIN */ }

int main(void)
{
    keep = make();
    free_inside(keep);
    void *q = realloc_inside(keep);
    printf("%s\n", q ? "realloc moved it" : "realloc refused");
    free(keep);
    return 0;
}
