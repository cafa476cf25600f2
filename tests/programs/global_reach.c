/* A block still referenced from a global at exit: reachable, no leak. */
#include <stdio.h>
#include <stdlib.h>

char *keep;

int main(void)
{
    keep = malloc(64); /* @KEEP */
    keep[0] = 'k';
    puts("kept");
    return 0;
}
