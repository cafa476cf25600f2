/* tests/unwind/unwind_fix.c: C frames for test_unwind, built twice (-O0 and
 * -O2 -fomit-frame-pointer) under two prefixes, FIX(name). */
#include <alloca.h>
#include <setjmp.h>
#include <string.h>

#include "unwind_test.h"

#ifdef FIX_O0
#define FIX(n) o0_##n
#else
#define FIX(n) o2_##n
#endif

__attribute__((noinline)) static int FIX(leaf)(probe_fn probe, int tag)
{
    volatile int keep = tag;
    int r = probe(keep);
    return r + keep - tag;
}

/* alloca: an rbp-based CFA at -O2 */
__attribute__((noinline)) static int FIX(dynamic)(probe_fn probe, int n)
{
    char *buf = alloca((size_t)n + 16);
    memset(buf, n, (size_t)n + 16);
    return FIX(leaf)(probe, buf[n]) + (buf[0] != (char)n);
}

/* a 64-byte aligned local: stack realignment (a CFA expression) */
__attribute__((noinline)) static int FIX(aligned)(probe_fn probe, int n)
{
    char big[256] __attribute__((aligned(64)));
    memset(big, n, sizeof big);
    return FIX(leaf)(probe, big[n & 255]) + (((unsigned long)big & 63) != 0);
}

/* a call to a noreturn function as the function's last instruction: its
 * return address is the first byte past the caller's FDE */
static jmp_buf FIX(env);
__attribute__((noinline, noreturn)) static void FIX(dies)(probe_fn probe)
{
    probe(2);
    longjmp(FIX(env), 1);
}

__attribute__((noinline)) static void FIX(noret)(probe_fn probe) { FIX(dies)(probe); }

__attribute__((noinline)) static int FIX(noret_top)(probe_fn probe)
{
    if (setjmp(FIX(env)) == 0)
        FIX(noret)(probe);
    return 0;
}

__attribute__((noinline)) int FIX(recurse)(probe_fn probe, int depth, int kind)
{
    if (depth == 0)
        return kind == 0   ? FIX(leaf)(probe, 1)
               : kind == 1 ? FIX(dynamic)(probe, 40)
               : kind == 2 ? FIX(aligned)(probe, 3)
                           : FIX(noret_top)(probe);
    int r = FIX(recurse)(probe, depth - 1, kind);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
    return r;
}
