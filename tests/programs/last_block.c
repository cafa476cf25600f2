/* The program's most recent allocation, lost.  A bump or arena backend
 * keeps a pointer to the last block it handed out (to grow or free it in
 * place) in its thread-local state; that pointer is mallard's, not the
 * program's, and must not keep the block reachable.  valgrind: 5000 bytes
 * in 1 block and 64 bytes in 1 block definitely lost. */
#include <stdio.h>
#include <stdlib.h>

#include "scrub.h"

static inline void sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

__attribute__((noinline)) static void grow_and_drop(void)
{
    char *p = malloc(10);
    sink(p);
    p = realloc(p, 5000); /* @GROWN */
    sink(p);
}

__attribute__((noinline)) static void last_one(void)
{
    char *p = malloc(64); /* @LAST */
    p[0] = 1;
    sink(p);
}

int main(void)
{
    puts("start"); /* stdout's buffer first, so the leaks are the last blocks */
    grow_and_drop();
    last_one();
    scrub_stack();
    return 0;
}
