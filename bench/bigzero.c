/* bench/bigzero.c: large zeroed buffers replaced in a loop.
 *
 * The pattern of mimalloc-bench's "malloc-large" with calloc: a few live
 * buffers of 5 to 25 MiB; each step drops one and asks for a fresh zeroed
 * buffer of a new random size in its place, then writes one byte per page
 * as a program filling it would.  An allocator that unmaps freed buffers
 * pays mmap, a page fault per page and munmap every step; one that keeps
 * them must clear what it hands out again (the program checks that it
 * reads zero), and one that keeps too many shows it in peak RSS.
 *
 * Usage: bench_bigzero [OPS]   (default 400 buffers)
 */
#include "bench.h"

#define BZ_SLOTS 4
#define BZ_MIN ((size_t)5 << 20)
#define BZ_SPAN ((size_t)20 << 20)

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, 1, 400, "bench_bigzero [OPS]");
    static unsigned char *slot[BZ_SLOTS];
    static size_t slot_size[BZ_SLOTS];
    uint64_t rng = 0x6269677a65726f;
    uint64_t sum = 0;

    for (long i = 0; i < ops + BZ_SLOTS; i++) {
        size_t k = (size_t)(i < ops ? bench_rng_below(&rng, BZ_SLOTS) : (uint64_t)(i - ops));
        if (slot[k]) {
            unsigned char *p = slot[k];
            size_t n = slot_size[k];
            if (p[0] != p[n - 1] || p[(n / 3) & ~(size_t)4095] != p[0])
                bench_fail("a large block's contents changed while it was live");
            sum = bench_mix(sum, n ^ p[0]);
            free(p);
            slot[k] = NULL;
        }
        if (i >= ops)
            continue;
        size_t size = BZ_MIN + (size_t)bench_rng_below(&rng, BZ_SPAN);
        unsigned char *p = calloc(1, size);
        if (!p)
            bench_fail("calloc returned NULL");
        size_t probe = (size_t)bench_rng_below(&rng, size);
        if (p[0] || p[size - 1] || p[probe] || p[size / 2])
            bench_fail("calloc returned memory that is not zeroed");
        unsigned char fill = (unsigned char)(i | 1);
        for (size_t off = 0; off < size; off += 4096)
            p[off] = fill;
        p[size - 1] = fill;
        p[(size / 3) & ~(size_t)4095] = fill;
        slot[k] = p;
        slot_size[k] = size;
    }
    printf("bench=bigzero ops=%ld checksum=%016llx\n", ops, (unsigned long long)sum);
    return 0;
}
