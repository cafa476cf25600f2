/* bench/waves.c: free and reallocate in waves.
 *
 * The pattern of mimalloc-bench's "mstress": a large set of small blocks
 * is built up, then most of it is freed at once (a random run of 50 to 90
 * percent of the table, blocks that were allocated together) and built up
 * again, round after round.  Every wave hands whole spans back
 * to the page heap and takes them again moments later, so an allocator that
 * decommits free pages as soon as a few MiB pile up pays madvise and fresh
 * page faults each round for no lower peak.
 *
 * Usage: bench_waves [OPS]   (default 4000000 allocations)
 */
#include "bench.h"

#define WAVES_LIVE 100000

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, 1, 4000000, "bench_waves [OPS]");
    static unsigned char *slot[WAVES_LIVE];
    static size_t slot_size[WAVES_LIVE];
    uint64_t rng = 0x7761766573;
    uint64_t sum = 0;
    long done = 0;

    while (done < ops) {
        for (size_t k = 0; k < WAVES_LIVE && done < ops; k++) {
            if (slot[k])
                continue;
            size_t size = bench_small_size(&rng);
            slot[k] = bench_malloc(size);
            slot_size[k] = size;
            bench_block_fill(slot[k], size, bench_rng_next(&rng));
            done++;
        }
        size_t len = WAVES_LIVE / 2 + (size_t)bench_rng_below(&rng, WAVES_LIVE * 2 / 5);
        size_t start = (size_t)bench_rng_below(&rng, WAVES_LIVE);
        for (size_t j = 0; j < len; j++) {
            size_t k = (start + j) % WAVES_LIVE;
            if (slot[k]) {
                sum = bench_mix(sum, bench_block_check(slot[k], slot_size[k]) ^ slot_size[k]);
                free(slot[k]);
                slot[k] = NULL;
            }
        }
    }
    for (size_t k = 0; k < WAVES_LIVE; k++)
        if (slot[k]) {
            sum = bench_mix(sum, bench_block_check(slot[k], slot_size[k]) ^ slot_size[k]);
            free(slot[k]);
        }
    printf("bench=waves ops=%ld checksum=%016llx\n", ops, (unsigned long long)sum);
    return 0;
}
