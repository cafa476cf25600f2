/* bench/prodcons.c: a producer/consumer pipeline that frees across threads.
 *
 * The pattern of mimalloc-bench's "xmalloc-test" and Larson's server model:
 * a producer allocates and fills blocks, hands them to a consumer through a
 * bounded queue, and the consumer checks and frees them.  Every free is a
 * remote free, which a thread-caching allocator must route back (or not)
 * to the owning heap; allocators that let freed memory pile up in the
 * consumer's cache show it as RSS.  Blocks travel in batches of 64 so the
 * queue's mutex is not what gets measured.
 *
 * Usage: bench_prodcons [OPS [PAIRS]]   (default 1000000 blocks, 1 pair)
 */
#include <pthread.h>

#include "bench.h"

#define PC_BATCH 64
#define PC_RING 16
#define PC_PAIRS_MAX 64

struct batch {
    int n;
    unsigned char *block[PC_BATCH];
};

struct pair {
    pthread_t producer, consumer;
    long ops;
    uint64_t seed;
    uint64_t sum;
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    unsigned head, tail; /* ring[tail % PC_RING] is the oldest batch */
    int done;
    struct batch ring[PC_RING];
};

static void *producer_run(void *arg)
{
    struct pair *q = arg;
    uint64_t rng = q->seed;
    struct batch b = {0};
    for (long i = 0; i < q->ops; i++) {
        size_t size = bench_small_size(&rng);
        unsigned char *p = bench_malloc(size);
        bench_block_fill(p, size, bench_rng_next(&rng));
        /* The size rides in bytes 8..15 so the consumer can check the end
         * (a 16-byte block is all tag and size). */
        uint64_t sz = size;
        memcpy(p + 8, &sz, sizeof sz);
        b.block[b.n++] = p;
        if (b.n == PC_BATCH || i == q->ops - 1) {
            pthread_mutex_lock(&q->lock);
            while (q->head - q->tail == PC_RING)
                pthread_cond_wait(&q->not_full, &q->lock);
            q->ring[q->head++ % PC_RING] = b;
            pthread_cond_signal(&q->not_empty);
            pthread_mutex_unlock(&q->lock);
            b.n = 0;
        }
    }
    pthread_mutex_lock(&q->lock);
    q->done = 1;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

static void *consumer_run(void *arg)
{
    struct pair *q = arg;
    uint64_t sum = 0;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (q->head == q->tail && !q->done)
            pthread_cond_wait(&q->not_empty, &q->lock);
        if (q->head == q->tail) {
            pthread_mutex_unlock(&q->lock);
            break;
        }
        struct batch b = q->ring[q->tail++ % PC_RING];
        pthread_cond_signal(&q->not_full);
        pthread_mutex_unlock(&q->lock);
        for (int i = 0; i < b.n; i++) {
            unsigned char *p = b.block[i];
            uint64_t tag, sz;
            memcpy(&tag, p, sizeof tag);
            memcpy(&sz, p + 8, sizeof sz);
            if (sz < 16 || sz > 1024 || (sz > 16 && p[sz - 1] != (unsigned char)(tag & 0xff)))
                bench_fail("a block's contents changed on its way between threads");
            sum = bench_mix(sum, tag ^ sz);
            free(p);
        }
    }
    q->sum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage = "bench_prodcons [OPS [PAIRS]]";
    long ops = bench_arg(argc, argv, 1, 1000000, usage);
    long npairs = bench_arg(argc, argv, 2, 1, usage);
    if (npairs > PC_PAIRS_MAX)
        bench_fail("at most 64 pairs");
    static struct pair pairs[PC_PAIRS_MAX];
    for (long i = 0; i < npairs; i++) {
        struct pair *q = &pairs[i];
        q->ops = ops / npairs + (i < ops % npairs);
        q->seed = 0x70726f64u + (uint64_t)i * 0x1000193u;
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->not_full, NULL);
        pthread_cond_init(&q->not_empty, NULL);
        if (pthread_create(&q->consumer, NULL, consumer_run, q) != 0 ||
            pthread_create(&q->producer, NULL, producer_run, q) != 0)
            bench_fail("pthread_create failed");
    }
    uint64_t sum = 0;
    for (long i = 0; i < npairs; i++) {
        pthread_join(pairs[i].producer, NULL);
        pthread_join(pairs[i].consumer, NULL);
        sum += pairs[i].sum;
    }
    printf("bench=prodcons ops=%ld checksum=%016llx pairs=%ld\n", ops, (unsigned long long)sum, npairs);
    return 0;
}
