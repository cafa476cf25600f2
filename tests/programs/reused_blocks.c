/* Leaks in reused blocks: blocks come back from the allocator's free lists
 * with its link still in their first word.  The program writes only the
 * last byte of each, so a link left there would chain the leaks into one
 * definite block and nine indirect ones; valgrind reports 480 bytes in 10
 * blocks and 640 bytes in 10 blocks definitely lost, one group each. */
#include <stdio.h>
#include <stdlib.h>

#include "scrub.h"

/* Makes p escape, so that the compiler keeps the allocation and the stores
 * into it (at -O1 GCC drops a malloc whose block is never read). */
static inline void sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

#define CHURN 600

__attribute__((noinline)) static void churn(size_t align, size_t size)
{
    static void *p[CHURN];
    for (int i = 0; i < CHURN; i++)
        sink(p[i] = align ? aligned_alloc(align, size) : malloc(size));
    for (int i = 0; i < CHURN; i++)
        free(p[i]);
    for (int i = 0; i < CHURN; i++)
        p[i] = NULL;
}

__attribute__((noinline)) static void leak_plain(void)
{
    for (int i = 0; i < 10; i++) {
        char *p = malloc(48); /* @PLAIN */
        p[47] = 1;
        sink(p);
    }
}

__attribute__((noinline)) static void leak_aligned(void)
{
    for (int i = 0; i < 10; i++) {
        char *p = aligned_alloc(64, 64); /* @ALIGNED */
        p[63] = 1;
        sink(p);
    }
}

int main(void)
{
    churn(0, 48);
    leak_plain();
    churn(64, 64);
    leak_aligned();
    scrub_stack();
    puts("done");
    return 0;
}
