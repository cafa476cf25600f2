/* tests/unwind/unwind_lib.c: frames in a dlopen'ed library (-O2, no frame
 * pointer) for test_unwind. */
typedef int (*probe_fn)(int tag);
int lib_call(probe_fn probe, int depth);

__attribute__((noinline)) static int lib_inner(probe_fn probe, int n)
{
    volatile int v = n;
    return probe(v) + v - n;
}

__attribute__((noinline)) int lib_call(probe_fn probe, int depth)
{
    if (depth == 0)
        return lib_inner(probe, 7);
    int r = lib_call(probe, depth - 1);
    __asm__ volatile("" ::: "memory");
    return r;
}
