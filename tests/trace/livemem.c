/* tests/trace/livemem.c: the memory a program holding N live blocks uses.
 *
 * Allocates N blocks of 31 bytes from one call site (one stack in the
 * depot), keeps them in a mapping of its own (so the pointer table is the
 * same with and without the tracer), then prints VmRSS.  Run with the
 * tracer on and off (livemem.py), the difference over N is the tracer's
 * bytes per live block beside the stack depot.
 *
 * Usage: livemem N [SMAPS_COPY]   (copies /proc/self/smaps there too)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

__attribute__((noinline)) static void *site(void) { return malloc(31); }

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    if (n <= 0) {
        fprintf(stderr, "usage: livemem N\n");
        return 64;
    }
    void **live = mmap(NULL, (size_t)n * sizeof *live, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (live == MAP_FAILED)
        return 1;
    for (long i = 0; i < n; i++) {
        live[i] = site();
        if (!live[i])
            return 1;
        memset(live[i], (int)i, 31);
    }
    long kb = rss_kb();
    if (argc > 2) {
        static char buf[1 << 16];
        int in = open("/proc/self/smaps", O_RDONLY);
        int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ssize_t r;
        while (in >= 0 && out >= 0 && (r = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)r) != r)
                break;
        close(in);
        close(out);
    }
    for (long i = 0; i < n; i++)
        free(live[i]);
    printf("blocks=%ld rss_kb=%ld\n", n, kb);
    return kb > 0 ? 0 : 1;
}
