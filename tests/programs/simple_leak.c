/* A definite leak of 100 bytes from leak_one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "scrub.h"

__attribute__((noinline)) void leak_one(void)
{
    char *p = malloc(100); /* @LEAK */
    memset(p, 'x', 100);
    printf("%c\n", p[99]);
}

int main(void)
{
    leak_one();
    scrub_stack();
    if (getenv("ML_FIXTURE_SEGV")) /* for the fatal-signal case: a real fault */
        *(volatile int *)(uintptr_t)16 = 0;
    return 0;
}
