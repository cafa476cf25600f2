/* bench/bench.h: what every benchmark workload shares.
 *
 * The workloads must give every allocator exactly the same sequence of
 * requests, so randomness comes from a fixed-seed splitmix64 generator
 * rather than rand() (whose sequence is libc's business).  Each program
 * prints one result line on stdout,
 *     bench=<name> ops=<n> checksum=<16 hex digits>[ key=<decimal>...]
 * and exits 0.  The checksum is computed from the contents of the blocks
 * as they are freed, so an allocator that hands out overlapping blocks or
 * loses data changes it (bench/run compares it across contenders), and the
 * cheap pattern checks in bench_block_check stop the program at once with
 * exit status 2.
 */
#ifndef ML_BENCH_H
#define ML_BENCH_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* splitmix64: one word of state, full period, good enough to pick sizes. */
static inline uint64_t bench_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static inline uint64_t bench_rng_below(uint64_t *state, uint64_t n) { return bench_rng_next(state) % n; }

/* Order-dependent mixing for one thread's stream of values. */
static inline uint64_t bench_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h * 0x100000001b3u;
}

/* The size mix of small-object programs: most requests are tiny, a tail
 * reaches 1 KiB.  Never below 16, so a block can hold its tag and size. */
static inline size_t bench_small_size(uint64_t *rng)
{
    uint64_t r = bench_rng_next(rng);
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 60)
        return 16 + (size_t)(r % 49); /* 16..64 */
    if (pick < 90)
        return 65 + (size_t)(r % 192); /* 65..256 */
    return 257 + (size_t)(r % 768);    /* 257..1024 */
}

/* A block stamped with its tag in the first 8 bytes and the tag's low byte
 * everywhere else: programs write the memory they ask for, and a block that
 * overlaps another shows up as a wrong fill byte. */
static inline void bench_block_fill(unsigned char *p, size_t size, uint64_t tag)
{
    memcpy(p, &tag, sizeof tag);
    memset(p + sizeof tag, (int)(tag & 0xff), size - sizeof tag);
}

static inline void bench_fail(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(2);
}

/* Checks the stamp left by bench_block_fill and returns the tag. */
static inline uint64_t bench_block_check(const unsigned char *p, size_t size)
{
    uint64_t tag;
    memcpy(&tag, p, sizeof tag);
    if (p[size - 1] != (unsigned char)(tag & 0xff) || p[sizeof tag + (size - sizeof tag) / 2] != p[size - 1])
        bench_fail("a block's contents changed while it was live");
    return tag;
}

static inline void *bench_malloc(size_t size)
{
    void *p = malloc(size);
    if (!p)
        bench_fail("malloc returned NULL");
    return p;
}

/* argv[i] as a positive count, or def when absent.  Anything else is a
 * usage error (exit 64), so a typo never silently benchmarks nothing. */
static inline long bench_arg(int argc, char **argv, int i, long def, const char *usage)
{
    if (argc <= i)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*argv[i] == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "usage: %s\n", usage);
        exit(64);
    }
    return v;
}

/* VmHWM (peak resident set) and VmRSS in KiB from /proc/self/status, read
 * with open/read so that measuring does not itself allocate. */
static inline void bench_rss_kb(long *hwm_kb, long *rss_kb)
{
    char buf[4096];
    *hwm_kb = *rss_kb = -1;
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    const char *s = strstr(buf, "VmHWM:");
    if (s)
        *hwm_kb = strtol(s + 6, NULL, 10);
    s = strstr(buf, "VmRSS:");
    if (s)
        *rss_kb = strtol(s + 6, NULL, 10);
}

#endif
