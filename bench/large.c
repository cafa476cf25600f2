/* bench/large.c: large blocks, 256 KiB to 4 MiB.
 *
 * The pattern of programs that allocate I/O buffers, images or matrices in
 * a loop (mimalloc-bench's "big" sizes; glibc's mmap threshold sits at
 * 128 KiB, so every block here is mmap territory for it).  A window of 8
 * live blocks; each step frees one and allocates a block of a new random
 * size, by malloc or (one in four) calloc, and touches one byte per page as
 * a program using it would.  Allocators that cache freed mappings save the
 * mmap/munmap and the page faults; ones that cache too much show it in RSS.
 *
 * Usage: bench_large [OPS]   (default 20000 blocks)
 */
#include "bench.h"

#define LARGE_SLOTS 8
#define LARGE_MIN (256u << 10)
#define LARGE_SPAN ((4u << 20) - LARGE_MIN)

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, 1, 20000, "bench_large [OPS]");
    static unsigned char *slot[LARGE_SLOTS];
    static size_t slot_size[LARGE_SLOTS];
    uint64_t rng = 0x6c61726765;
    uint64_t sum = 0;

    for (long i = 0; i < ops + LARGE_SLOTS; i++) {
        size_t k = (size_t)(i % LARGE_SLOTS);
        if (slot[k]) {
            unsigned char *p = slot[k];
            size_t n = slot_size[k];
            if (p[0] != p[n - 1] || p[n / 2 & ~(size_t)4095] != p[0])
                bench_fail("a large block's contents changed while it was live");
            sum = bench_mix(sum, n ^ p[0]);
            free(p);
            slot[k] = NULL;
        }
        if (i >= ops)
            continue;
        size_t size = LARGE_MIN + (size_t)bench_rng_below(&rng, LARGE_SPAN);
        unsigned char *p;
        if (bench_rng_below(&rng, 4) == 0) {
            p = calloc(1, size);
            if (!p)
                bench_fail("calloc returned NULL");
            if (p[0] || p[size - 1] || p[size / 2])
                bench_fail("calloc returned memory that is not zeroed");
        } else {
            p = bench_malloc(size);
        }
        unsigned char fill = (unsigned char)(i | 1);
        for (size_t off = 0; off < size; off += 4096)
            p[off] = fill;
        p[size - 1] = fill;
        p[size / 2 & ~(size_t)4095] = fill;
        slot[k] = p;
        slot_size[k] = size;
    }
    printf("bench=large ops=%ld checksum=%016llx\n", ops, (unsigned long long)sum);
    return 0;
}
