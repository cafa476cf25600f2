/* tests/trace/run_faults.c: the page faults a traced program pays while it
 * runs (run_faults.sh).  64 allocation sites, each in a function on a page
 * of code of its own, make 4 blocks each (256 live blocks, 64 stacks), the
 * way a short program's first allocations come from all over libc and the
 * program; the minor faults of that phase alone (after a first allocation
 * has started everything up) are printed: the tracer's share is the
 * traced count less the untraced one. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#define SITES 64
#define PER_SITE 4

static void *volatile kept[SITES * PER_SITE];
static volatile int n_kept;

/* site i on a page of its own, its call at an offset in the page of its
 * own too (nops ahead of it): return addresses as a program's are, not 64
 * at one offset in 64 pages in a row */
#define SITE(i)                                                                                              \
    __attribute__((noinline, aligned(4096))) static void site##i(int k)                                      \
    {                                                                                                        \
        __asm__ volatile(".skip (" #i " * 613) % 3500, 0x90");                                               \
        kept[n_kept++] = malloc(16 + 24 * (size_t)k + (i));                                                  \
    }
#define SITE8(j) SITE(j##0) SITE(j##1) SITE(j##2) SITE(j##3) SITE(j##4) SITE(j##5) SITE(j##6) SITE(j##7)
// clang-format off
SITE8(1) SITE8(2) SITE8(3) SITE8(4) SITE8(5) SITE8(6) SITE8(7) SITE8(8)
#define REF8(j) site##j##0, site##j##1, site##j##2, site##j##3, site##j##4, site##j##5, site##j##6, site##j##7
static void (*const sites[SITES])(int) = {REF8(1), REF8(2), REF8(3), REF8(4),
                                          REF8(5), REF8(6), REF8(7), REF8(8)};
// clang-format on

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

int main(void)
{
    free(malloc(1)); /* everything started */
    long before = minflt();
    for (int k = 0; k < PER_SITE; k++)
        for (int i = 0; i < SITES; i++)
            sites[i](k);
    long after = minflt();
    for (int i = 0; i < SITES * PER_SITE; i++)
        free(kept[i]);
    printf("faults=%ld\n", after - before);
    return 0;
}
