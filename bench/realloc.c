/* bench/realloc.c: buffers that grow by realloc.
 *
 * The string-builder / growing-vector pattern (glibc's bench-malloc-simple
 * does not cover it; mimalloc-bench's "alloc-test" and redis's sds do):
 * 32 buffers grow by appending chunks until each reaches its random target
 * length (mostly a few KiB, a tail up to 1 MiB), are checked, freed and
 * started again.  It measures in-place growth, copying and, for the big
 * ones, mremap.  Every chunk is filled with its own byte so a realloc that
 * loses or moves data wrongly is caught at the next append.
 *
 * Usage: bench_realloc [OPS]   (default 200000 appends)
 */
#include "bench.h"

#define RE_SLOTS 32

struct buffer {
    unsigned char *p;
    size_t len, target;
    unsigned char first, last; /* the fill bytes of the first and last chunk */
};

static size_t realloc_target(uint64_t *rng)
{
    uint64_t r = bench_rng_next(rng);
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 75)
        return 64 + (size_t)(r % 4032); /* up to 4 KiB */
    if (pick < 95)
        return 4096 + (size_t)(r % 61440); /* up to 64 KiB */
    return 65536 + (size_t)(r % 983040); /* up to 1 MiB */
}

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, 1, 200000, "bench_realloc [OPS]");
    static struct buffer buf[RE_SLOTS];
    uint64_t rng = 0x7265616c6c6f63;
    uint64_t sum = 0;

    for (long i = 0; i < ops; i++) {
        struct buffer *b = &buf[bench_rng_below(&rng, RE_SLOTS)];
        if (b->p && b->len >= b->target) {
            if (b->p[0] != b->first || b->p[b->len - 1] != b->last)
                bench_fail("a grown buffer lost its contents");
            sum = bench_mix(sum, b->len ^ ((uint64_t)b->p[b->len / 2] << 32));
            free(b->p);
            b->p = NULL;
        }
        if (!b->p) {
            b->len = 0;
            b->target = realloc_target(&rng);
        }
        /* Chunks of about an eighth of the target: a few dozen reallocs per
         * buffer, from a dozen bytes to a hundred KiB at a time. */
        size_t chunk = 1 + (size_t)bench_rng_below(&rng, b->target / 4 + 16);
        unsigned char fill = (unsigned char)bench_rng_next(&rng);
        unsigned char *q = realloc(b->p, b->len + chunk);
        if (!q)
            bench_fail("realloc returned NULL");
        if (b->len && (q[0] != b->first || q[b->len - 1] != b->last))
            bench_fail("realloc did not preserve the contents");
        memset(q + b->len, fill, chunk);
        if (!b->len)
            b->first = fill;
        b->last = fill;
        b->p = q;
        b->len += chunk;
    }
    for (size_t k = 0; k < RE_SLOTS; k++) {
        if (buf[k].p) {
            sum = bench_mix(sum, buf[k].len ^ ((uint64_t)buf[k].p[buf[k].len / 2] << 32));
            free(buf[k].p);
        }
    }
    printf("bench=realloc ops=%ld checksum=%016llx\n", ops, (unsigned long long)sum);
    return 0;
}
