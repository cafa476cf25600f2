/* tests/safe/clean.c: a clean program (frees everything) that prints to
 * both streams, unflushed at exit. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *p = malloc(100);
    printf("out %d\n", p != NULL);
    fprintf(stderr, "err\n");
    free(p);
    printf("tail");
    return 0;
}
