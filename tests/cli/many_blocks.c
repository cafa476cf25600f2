/* tests/cli/many_blocks.c N STACKS [leak]: N live blocks from STACKS distinct
 * call stacks (recursion depths), half of them dropped with "leak".  At the
 * end of main it prints its own CPU time so far, so the test can tell the
 * report's share from the process's total. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void **keep;

__attribute__((noinline)) static void *deep(int d, size_t n)
{
    if (d == 0) /* filled, as a program fills what it allocates */
        return memset(malloc(n), 0x5a, n);
    void *p = deep(d - 1, n);
    __asm__ volatile("" ::: "memory");
    return p;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200000, k = argc > 2 ? atoi(argv[2]) : 1000, leak = argc > 3;
    keep = malloc(sizeof *keep * (size_t)n);
    for (int i = 0; i < n; i++)
        keep[i] = deep(i % k % 30 + (i % k) / 30 % 2, (size_t)(16 + i % k));
    if (leak)
        for (int i = 0; i < n; i += 2)
            keep[i] = 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%.6f\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    return 0;
}
