/* bench/threads.c: N threads, each allocating and freeing privately.
 *
 * The thread-scaling test (mimalloc-bench's "xmalloc-test" without the
 * hand-off, glibc's bench-malloc-thread): a fixed total of operations is
 * split among N threads, each running the churn pattern on its own table
 * with its own generator.  An allocator that scales keeps the wall time
 * near total/min(N, cores); one with a global lock does not.  The checksum
 * is the sum of the per-thread checksums, so it does not depend on the
 * schedule.
 *
 * Usage: bench_threads [OPS [THREADS]]   (default 1000000 ops, 2 threads)
 */
#include <pthread.h>

#include "bench.h"

#define THREADS_SLOTS 2048
#define THREADS_MAX 256

struct worker {
    pthread_t id;
    long ops;
    uint64_t seed;
    uint64_t sum;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    unsigned char **slot = calloc(THREADS_SLOTS, sizeof *slot);
    size_t *slot_size = calloc(THREADS_SLOTS, sizeof *slot_size);
    if (!slot || !slot_size)
        bench_fail("calloc returned NULL");
    uint64_t rng = w->seed;
    uint64_t sum = 0;
    for (long i = 0; i < w->ops; i++) {
        size_t k = (size_t)bench_rng_below(&rng, THREADS_SLOTS);
        if (slot[k]) {
            sum = bench_mix(sum, bench_block_check(slot[k], slot_size[k]) ^ slot_size[k]);
            free(slot[k]);
        }
        size_t size = bench_small_size(&rng);
        slot[k] = bench_malloc(size);
        slot_size[k] = size;
        bench_block_fill(slot[k], size, bench_rng_next(&rng));
    }
    for (size_t k = 0; k < THREADS_SLOTS; k++) {
        if (slot[k]) {
            sum = bench_mix(sum, bench_block_check(slot[k], slot_size[k]) ^ slot_size[k]);
            free(slot[k]);
        }
    }
    free(slot);
    free(slot_size);
    w->sum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage = "bench_threads [OPS [THREADS]]";
    long ops = bench_arg(argc, argv, 1, 1000000, usage);
    long nthreads = bench_arg(argc, argv, 2, 2, usage);
    if (nthreads > THREADS_MAX)
        bench_fail("at most 256 threads");
    static struct worker w[THREADS_MAX];
    for (long t = 0; t < nthreads; t++) {
        /* The remainder goes to the first threads so the total is exact. */
        w[t].ops = ops / nthreads + (t < ops % nthreads);
        w[t].seed = 0x74687265616473u + (uint64_t)t * 0x1000193u;
        if (pthread_create(&w[t].id, NULL, worker_run, &w[t]) != 0)
            bench_fail("pthread_create failed");
    }
    uint64_t sum = 0;
    for (long t = 0; t < nthreads; t++) {
        pthread_join(w[t].id, NULL);
        sum += w[t].sum;
    }
    printf("bench=threads ops=%ld checksum=%016llx threads=%ld\n", ops, (unsigned long long)sum, nthreads);
    return 0;
}
