/* tests/soak/soak.c: everything at once, for SOAK_SECONDS (default 20):
 * worker threads doing malloc/calloc/realloc/free with checked contents,
 * signals whose handler allocates, fork with and without exec, a
 * dlopen/dlclose loop, and short threads that allocate and exit under the
 * load.  Ends with a line of counts; exits 1 on any corruption, or when the
 * RSS of the second half grew past twice the first half's plus 64 MiB
 * (freed memory must be reused, not leaked to the kernel's count).
 *
 *   soak LIB_PATH [SECONDS]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 3
#define SLOTS 512

static volatile int stop;
static unsigned long ops[WORKERS], forks, execs, sigs, dlopens, threads_made;
static volatile sig_atomic_t handler_runs;
static int corrupt;
static const char *lib_path;

static uint64_t xs(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void *worker(void *arg)
{
    size_t id = (size_t)arg;
    unsigned char *p[SLOTS] = {0};
    size_t n[SLOTS] = {0};
    uint64_t x = 0x9e3779b97f4a7c15ull * (id + 1);
    while (!stop) {
        uint64_t r = xs(&x);
        size_t k = r % SLOTS, sz = 1 + (r >> 20) % ((r >> 50) % 16 ? 512 : 65536);
        if (p[k]) {
            if (p[k][0] != (unsigned char)k || p[k][n[k] - 1] != (unsigned char)k)
                __atomic_store_n(&corrupt, 1, __ATOMIC_RELAXED);
            if ((r >> 8) % 4 == 0) {
                unsigned char *q = realloc(p[k], sz);
                if (q) {
                    p[k] = q;
                    n[k] = sz;
                    memset(q, (int)k, sz);
                }
            } else {
                free(p[k]);
                p[k] = NULL;
            }
        } else {
            p[k] = (r >> 9) % 3 ? malloc(sz) : calloc(1, sz);
            if (p[k]) {
                n[k] = sz;
                memset(p[k], (int)k, sz);
            }
        }
        ops[id]++;
    }
    for (size_t k = 0; k < SLOTS; k++)
        free(p[k]);
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
    /* not async-signal-safe by POSIX, done by real programs anyway (HAZARDS §4) */
    void *a = malloc(64);
    free(a);
    handler_runs++;
}

static void *short_thread(void *arg)
{
    (void)arg;
    void *v[16];
    for (int i = 0; i < 16; i++)
        v[i] = malloc(32 + (size_t)i * 100);
    for (int i = 0; i < 15; i++)
        free(v[i]);
    free(v[15]);
    return NULL;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    lib_path = argc > 1 ? argv[1] : NULL;
    double secs = argc > 2 ? atof(argv[2]) : 20;
    signal(SIGUSR1, on_usr1);
    pthread_t w[WORKERS];
    for (size_t i = 0; i < WORKERS; i++)
        pthread_create(&w[i], NULL, worker, (void *)i);
    double t0 = now(), half = t0 + secs / 2, end = t0 + secs;
    long rss_half = 0;
    unsigned long round = 0;
    while (now() < end) {
        round++;
        /* signals to the whole process: any thread may take them */
        kill(getpid(), SIGUSR1);
        sigs++;
        /* fork, with and without exec */
        pid_t c = fork();
        if (c == 0) {
            if (round % 2) {
                execl("/bin/true", "true", (char *)NULL);
                _exit(127);
            }
            void *a = malloc(100);
            free(a);
            _exit(0);
        }
        if (c > 0) {
            int st;
            waitpid(c, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                corrupt = 2;
            forks++;
            execs += round % 2;
        }
        /* dlopen/dlclose */
        if (lib_path) {
            void *h = dlopen(lib_path, RTLD_NOW);
            if (!h) {
                fprintf(stderr, "soak: dlopen: %s\n", dlerror());
                return 1;
            }
            int (*touch)(void) = (int (*)(void))dlsym(h, "soak_lib_touch");
            if (!touch || touch() != 1)
                corrupt = 3;
            dlclose(h);
            dlopens++;
        }
        /* threads that exit under the load */
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, short_thread, NULL);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        threads_made += 4;
        if (!rss_half && now() >= half)
            rss_half = rss_kib();
    }
    stop = 1;
    for (size_t i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    long rss_end = rss_kib();
    unsigned long total = 0;
    for (size_t i = 0; i < WORKERS; i++)
        total += ops[i];
    printf("soak: %.0f s, %lu malloc-family operations, %lu forks (%lu exec), %lu signals (%d handled), "
           "%lu dlopen/dlclose, %lu short threads; RSS %ld KiB at half time, %ld KiB at the end\n",
           now() - t0, total, forks, execs, sigs, (int)handler_runs, dlopens, threads_made, rss_half, rss_end);
    if (corrupt) {
        printf("soak: FAILED (corruption %d)\n", corrupt);
        return 1;
    }
    if (rss_half && rss_end > 2 * rss_half + 64 * 1024) {
        printf("soak: FAILED (RSS grew from %ld to %ld KiB)\n", rss_half, rss_end);
        return 1;
    }
    return 0;
}
