/* bench/churn.c: single-thread churn of small random sizes.
 *
 * The pattern of mimalloc-bench's "mstress"/"cache-scratch" family reduced
 * to one thread: a table of live blocks in which every operation frees a
 * random victim and puts a fresh block of a random small size in its place.
 * The live set stays constant while addresses and size classes keep mixing,
 * which is what a thread cache and its refill path are tuned for.
 *
 * Usage: bench_churn [OPS]   (default 1000000 free+malloc pairs)
 */
#include "bench.h"

#define CHURN_SLOTS 8192

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, 1, 1000000, "bench_churn [OPS]");
    static unsigned char *slot[CHURN_SLOTS];
    static size_t slot_size[CHURN_SLOTS];
    uint64_t rng = 0x636875726e;
    uint64_t sum = 0;

    for (long i = 0; i < ops; i++) {
        size_t k = (size_t)bench_rng_below(&rng, CHURN_SLOTS);
        if (slot[k]) {
            sum = bench_mix(sum, bench_block_check(slot[k], slot_size[k]) ^ slot_size[k]);
            free(slot[k]);
        }
        size_t size = bench_small_size(&rng);
        slot[k] = bench_malloc(size);
        slot_size[k] = size;
        bench_block_fill(slot[k], size, bench_rng_next(&rng));
    }
    for (size_t k = 0; k < CHURN_SLOTS; k++) {
        if (slot[k]) {
            sum = bench_mix(sum, bench_block_check(slot[k], slot_size[k]) ^ slot_size[k]);
            free(slot[k]);
        }
    }
    printf("bench=churn ops=%ld checksum=%016llx\n", ops, (unsigned long long)sum);
    return 0;
}
