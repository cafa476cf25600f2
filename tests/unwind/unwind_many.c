/* tests/unwind/unwind_many.c: many_sites calls probe from 4096 call sites,
 * each its own return address, 32-byte aligned apart: enough to move the
 * recipe table through its generations (report/unwind.c). */
#include "unwind_test.h"

#define S1(i)                                                                                                \
    s += probe(i);                                                                                           \
    __asm__ volatile(".p2align 5" ::: "memory");
#define S4(i) S1(4 * (i)) S1(4 * (i) + 1) S1(4 * (i) + 2) S1(4 * (i) + 3)
#define S16(i) S4(4 * (i)) S4(4 * (i) + 1) S4(4 * (i) + 2) S4(4 * (i) + 3)
#define S64(i) S16(4 * (i)) S16(4 * (i) + 1) S16(4 * (i) + 2) S16(4 * (i) + 3)
#define S256(i) S64(4 * (i)) S64(4 * (i) + 1) S64(4 * (i) + 2) S64(4 * (i) + 3)
#define S1024(i) S256(4 * (i)) S256(4 * (i) + 1) S256(4 * (i) + 2) S256(4 * (i) + 3)

__attribute__((noinline)) int many_sites(probe_fn probe)
{
    int s = 0;
    S1024(0) S1024(1) S1024(2) S1024(3);
    return s;
}
