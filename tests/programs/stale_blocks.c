/* Leaks whose only pointers lie in memory handed out again.  A block that
 * held the last pointer to a child is freed, the child leaks; the memory
 * comes back to a new block that the program keeps but does not write where
 * the pointer was.  memcheck ignores those bytes (never written since the
 * allocation: undefined), so every child is definitely lost; a scan that
 * reads them finds the old pointers.  Three ways to get the memory back:
 * malloc of the same size, aligned_alloc, and realloc growing a smaller
 * block into it (the bytes past its old size).  valgrind --leak-check=full:
 * 24,000, 32,000 and 40,000 bytes in 1,000 blocks each definitely lost,
 * nothing indirectly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"

#define N 1000   /* leaks per way */
#define CHURN 40 /* rounds of N: past the tracer's quarantine of freed blocks */

static inline void sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* The blocks the program keeps: reachable from here. */
static void *keep_plain[N], *keep_aligned[N], *keep_grown[N];

__attribute__((noinline)) static void *child_plain(void)
{
    char *c = malloc(24); /* @PLAIN */
    memset(c, 'p', 24);
    return c;
}

__attribute__((noinline)) static void *child_aligned(void)
{
    char *c = malloc(32); /* @ALIGNED */
    memset(c, 'a', 32);
    return c;
}

__attribute__((noinline)) static void *child_grown(void)
{
    char *c = malloc(40); /* @GROWN */
    memset(c, 'g', 40);
    return c;
}

/* Parents of size bytes (aligned to align, or plain when 0) each holding
 * a pointer at offset at; the last N of them get a child, then all are
 * freed.  The earlier rounds only push the last ones' memory past the
 * quarantine. */
__attribute__((noinline)) static void lose(size_t align, size_t size, size_t at, void *(*child)(void))
{
    static void *p[N];
    for (int round = 0; round < CHURN; round++) {
        for (int i = 0; i < N; i++) {
            p[i] = align ? aligned_alloc(align, size) : malloc(size);
            memset(p[i], 0, size);
            if (round == CHURN - 1)
                *(void **)((char *)p[i] + at) = child();
            sink(p[i]);
        }
        for (int i = 0; i < N; i++)
            free(p[i]);
    }
    memset(p, 0, sizeof p);
}

int main(void)
{
    /* 64-byte parents, the pointer at 32: new 64-byte blocks written only
     * in their first 8 bytes */
    lose(0, 64, 32, child_plain);
    for (int i = 0; i < N; i++) {
        keep_plain[i] = malloc(64);
        *(long *)keep_plain[i] = i;
    }
    lose(64, 128, 96, child_aligned);
    for (int i = 0; i < N; i++) {
        keep_aligned[i] = aligned_alloc(64, 128);
        *(long *)keep_aligned[i] = i;
    }
    /* 200-byte parents, the pointer at 160; 100-byte blocks, written
     * whole, grown to 200 */
    lose(0, 200, 160, child_grown);
    for (int i = 0; i < N; i++) {
        keep_grown[i] = malloc(100);
        memset(keep_grown[i], 'k', 100);
    }
    for (int i = 0; i < N; i++)
        keep_grown[i] = realloc(keep_grown[i], 200);
    scrub_stack();
    long sum = 0;
    for (int i = 0; i < N; i++)
        sum += *(long *)keep_plain[i] + *(long *)keep_aligned[i] + ((char *)keep_grown[i])[99];
    printf("%ld\n", sum);
    return 0;
}
