/* bench/exitlive.c: a program that exits with a million blocks live.
 *
 * The "build a big structure and exit without freeing it" pattern of
 * compilers and batch tools, and the worst case for a leak tracer's exit
 * work: every block must be scanned, classified and, for the lost ones,
 * grouped and reported.  N blocks come from four call sites (four stacks);
 * the pointer table stays reachable from a global, but every other entry is
 * overwritten before exit, so half the blocks are definite leaks.  The
 * difference between a traced and an untraced run is the tracer's cost,
 * the exit report included.
 *
 * Usage: bench_exitlive [BLOCKS]   (default 1000000)
 */
#include "bench.h"

static unsigned char **live_table;

/* Four distinct allocation sites, kept out of line so each has its own stack. */
__attribute__((noinline)) static unsigned char *site_a(size_t n) { return bench_malloc(n); }
__attribute__((noinline)) static unsigned char *site_b(size_t n) { return bench_malloc(n); }
__attribute__((noinline)) static unsigned char *site_c(size_t n) { return bench_malloc(n + 8); }
__attribute__((noinline)) static unsigned char *site_d(size_t n) { return bench_malloc(n + 16); }

int main(int argc, char **argv)
{
    long blocks = bench_arg(argc, argv, 1, 1000000, "bench_exitlive [BLOCKS]");
    unsigned char *(*const site[4])(size_t) = {site_a, site_b, site_c, site_d};
    live_table = bench_malloc((size_t)blocks * sizeof *live_table);
    uint64_t rng = 0x657869746c697665;
    uint64_t sum = 0;
    for (long i = 0; i < blocks; i++) {
        size_t size = 16 + (size_t)bench_rng_below(&rng, 113); /* 16..128 */
        unsigned char *p = site[i & 3](size);
        bench_block_fill(p, size, bench_rng_next(&rng));
        live_table[i] = p;
    }
    for (long i = 0; i < blocks; i++) {
        uint64_t tag;
        memcpy(&tag, live_table[i], sizeof tag);
        sum = bench_mix(sum, tag);
        if (i & 1)
            live_table[i] = NULL; /* lost: a definite leak from here on */
    }
    printf("bench=exitlive ops=%ld checksum=%016llx\n", blocks, (unsigned long long)sum);
    return 0;
}
