/* bench/bigset.c: a working set larger than a thread cache, in one class.
 *
 * The pattern of cfrac and espresso: a burst of a few thousand blocks of
 * the same few sizes is allocated, used and freed, then the next burst
 * comes.  A per-thread cache that keeps at most a hundred or so objects of
 * a class sends every object of every burst through the shared lists and
 * back; one that grows with the working set serves the bursts locally.
 *
 * Usage: bench_bigset [OPS]   (default 10000000 malloc+free pairs)
 */
#include "bench.h"

#define BIGSET_MAX 3000

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, 1, 10000000, "bench_bigset [OPS]");
    static unsigned char *live[BIGSET_MAX];
    static const size_t sizes[] = {24, 32, 48, 64};
    uint64_t rng = 0x626967736574;
    uint64_t sum = 0;
    long done = 0;

    while (done < ops) {
        size_t n = 500 + (size_t)bench_rng_below(&rng, BIGSET_MAX - 500);
        if ((long)n > ops - done)
            n = (size_t)(ops - done);
        size_t size = sizes[bench_rng_below(&rng, 4)];
        for (size_t i = 0; i < n; i++) {
            live[i] = bench_malloc(size);
            memcpy(live[i], &i, sizeof i);
            live[i][size - 1] = (unsigned char)i;
        }
        /* freed newest first half the time, oldest first otherwise */
        int lifo = (int)bench_rng_below(&rng, 2);
        for (size_t j = 0; j < n; j++) {
            size_t i = lifo ? n - 1 - j : j;
            size_t v;
            memcpy(&v, live[i], sizeof v);
            if (v != i || live[i][size - 1] != (unsigned char)i)
                bench_fail("a block's contents changed while it was live");
            sum = bench_mix(sum, v * size);
            free(live[i]);
        }
        done += (long)n;
    }
    printf("bench=bigset ops=%ld checksum=%016llx\n", ops, (unsigned long long)sum);
    return 0;
}
