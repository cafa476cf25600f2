/* bench/livemem.c: the resident memory of a program holding N live blocks.
 *
 * Allocates N blocks of 31 bytes from one call site (one stack in the
 * stack depot), keeps the pointers in a mapping of its own (so the pointer
 * table is the same under every allocator), then reads its VmRSS.  bench/run
 * runs it with the tracer on and off: the difference over N is the tracer's
 * memory per live block beside the depot.  Frees everything before exit.
 *
 * Usage: bench_livemem [BLOCKS]   (default 1000000)
 * Prints: bench=livemem ops=N checksum=... rss_kb=K
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

static long rss_kb(void)
{
    static char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *s = strstr(buf, "VmRSS:");
    return s ? strtol(s + 6, NULL, 10) : -1;
}

__attribute__((noinline)) static unsigned char *site(void) { return bench_malloc(31); }

int main(int argc, char **argv)
{
    long blocks = bench_arg(argc, argv, 1, 1000000, "bench_livemem [BLOCKS]");
    unsigned char **live =
        mmap(NULL, (size_t)blocks * sizeof *live, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (live == MAP_FAILED) {
        perror("bench_livemem: mmap");
        return 1;
    }
    uint64_t rng = 0x6c6976656d656dull;
    uint64_t sum = 0;
    for (long i = 0; i < blocks; i++) {
        live[i] = site();
        bench_block_fill(live[i], 31, bench_rng_next(&rng));
    }
    long kb = rss_kb();
    for (long i = 0; i < blocks; i++) {
        sum = bench_mix(sum, bench_block_check(live[i], 31));
        free(live[i]);
    }
    munmap(live, (size_t)blocks * sizeof *live);
    if (kb <= 0) {
        fprintf(stderr, "bench_livemem: VmRSS cannot be read from /proc/self/status\n");
        return 1;
    }
    printf("bench=livemem ops=%ld checksum=%016llx rss_kb=%ld\n", blocks, (unsigned long long)sum, kb);
    return 0;
}
