/* A pointer hidden by XOR is no reference: the block is a definite leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "scrub.h"

uintptr_t hidden;

__attribute__((noinline)) static void hide(void)
{
    char *p = malloc(72); /* @HIDE */
    p[0] = 'h';
    hidden = (uintptr_t)p ^ 0x5a5a5a5a5a5a5a5aull;
}

int main(void)
{
    hide();
    scrub_stack();
    printf("%d\n", hidden != 0);
    return 0;
}
