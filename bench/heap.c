/* bench/heap.c: a long-lived heap under churn: peak RSS and RSS after.
 *
 * The fragmentation test (Wilson et al.'s "holes" pattern, the shape of a
 * long-running server): build a heap of OPS small objects, free seven in
 * eight at random so the survivors are scattered over every page, then
 * churn through blocks of other sizes (300..2000 bytes) that the freed
 * holes fit badly, and free the churn.  What is left live is one eighth of
 * the first heap.  An allocator that reuses and returns memory well ends
 * with RSS near that; one that fragments keeps the peak.
 *
 * Prints, besides ops and checksum: live_kb (bytes still allocated at the
 * end), rss_peak_kb (VmHWM) and rss_end_kb (VmRSS after the churn).
 *
 * Usage: bench_heap [OPS]   (default 400000 objects)
 */
#include "bench.h"

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, 1, 400000, "bench_heap [OPS]");
    size_t nobj = (size_t)ops;
    unsigned char **obj = bench_malloc(nobj * sizeof *obj);
    size_t *obj_size = bench_malloc(nobj * sizeof *obj_size);
    uint64_t rng = 0x68656170;
    uint64_t sum = 0;

    for (size_t i = 0; i < nobj; i++) {
        size_t size = 16 + (size_t)bench_rng_below(&rng, 241); /* 16..256 */
        obj[i] = bench_malloc(size);
        obj_size[i] = size;
        bench_block_fill(obj[i], size, bench_rng_next(&rng));
    }
    size_t live_bytes = 0;
    for (size_t i = 0; i < nobj; i++) {
        if (bench_rng_below(&rng, 8) != 0) {
            sum = bench_mix(sum, bench_block_check(obj[i], obj_size[i]));
            free(obj[i]);
            obj[i] = NULL;
        } else {
            live_bytes += obj_size[i];
        }
    }

    size_t nchurn = nobj / 16 + 1;
    unsigned char **churn = calloc(nchurn, sizeof *churn);
    size_t *churn_size = calloc(nchurn, sizeof *churn_size);
    if (!churn || !churn_size)
        bench_fail("calloc returned NULL");
    for (long i = 0; i < ops; i++) {
        size_t k = (size_t)bench_rng_below(&rng, nchurn);
        if (churn[k]) {
            sum = bench_mix(sum, bench_block_check(churn[k], churn_size[k]));
            free(churn[k]);
        }
        size_t size = 300 + (size_t)bench_rng_below(&rng, 1701);
        churn[k] = bench_malloc(size);
        churn_size[k] = size;
        bench_block_fill(churn[k], size, bench_rng_next(&rng));
    }
    for (size_t k = 0; k < nchurn; k++) {
        if (churn[k]) {
            sum = bench_mix(sum, bench_block_check(churn[k], churn_size[k]));
            free(churn[k]);
        }
    }
    free(churn);
    free(churn_size);

    long hwm_kb, rss_kb;
    bench_rss_kb(&hwm_kb, &rss_kb);

    for (size_t i = 0; i < nobj; i++) {
        if (obj[i]) {
            sum = bench_mix(sum, bench_block_check(obj[i], obj_size[i]));
            free(obj[i]);
        }
    }
    free(obj);
    free(obj_size);
    printf("bench=heap ops=%ld checksum=%016llx live_kb=%zu rss_peak_kb=%ld rss_end_kb=%ld\n", ops,
           (unsigned long long)sum, live_bytes >> 10, hwm_kb, rss_kb);
    return 0;
}
