/* tests/safe/sig_malloc.c: a signal handler that mallocs, reallocs and
 * frees while the thread it interrupted is in the middle of malloc or free
 * (not async-signal-safe, but real programs do it).  A helper thread sends SIGUSR1 to the main thread as fast as it can for
 * argv[1] milliseconds (default 1500) while the main thread allocates and
 * frees.  Prints "signals ok" when at least one handler ran. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t handled;
static volatile int stop;
static pthread_t main_thread;
#define KEPT 8
static void *kept[KEPT];
#define POOL 200000
static void *pool[POOL]; /* made by the main thread, freed by the handler */
static volatile unsigned long pool_next;

/* Allocates, reallocs and frees, and frees eight of the blocks the main
 * thread made beforehand: mallard must look each of them up in its tables
 * while the interrupted frame may hold one of their locks.  (glibc's own
 * malloc can deadlock on this program too: it is run under mallard with
 * the tracer on only.) */
static void on_usr1(int sig)
{
    (void)sig;
    char *p = malloc(40 + handled % 200);
    if (p)
        memset(p, 7, 40);
    char *q = realloc(p, 300);
    unsigned i = (unsigned)handled % KEPT;
    free(kept[i]);
    kept[i] = q ? q : p;
    for (int k = 0; k < 8 && pool_next < POOL; k++)
        free(pool[pool_next++]);
    handled++;
}

static void *sender(void *arg)
{
    (void)arg;
    while (!stop)
        pthread_kill(main_thread, SIGUSR1);
    return NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    int ms = argc > 1 ? atoi(argv[1]) : 1500;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    main_thread = pthread_self();
    for (int i = 0; i < POOL; i++)
        pool[i] = malloc(16 + i % 64);
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    void *slots[32] = {0};
    unsigned long seed = 1;
    double end = now_ms() + ms;
    while (now_ms() < end) {
        for (int k = 0; k < 1000; k++) {
            seed = seed * 6364136223846793005ul + 1;
            unsigned i = (unsigned)(seed >> 59);
            free(slots[i]);
            slots[i] = (seed >> 40) & 1 ? malloc((seed >> 20) % 5000 + 1) : calloc(1, (seed >> 20) % 300 + 1);
            if ((seed >> 45) % 7 == 0)
                slots[i] = realloc(slots[i], (seed >> 30) % 9000 + 1);
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    for (int i = 0; i < 32; i++)
        free(slots[i]);
    for (int i = 0; i < KEPT; i++)
        free(kept[i]);
    for (unsigned long i = pool_next; i < POOL; i++)
        free(pool[i]);
    printf("signals %s\n", handled > 0 ? "ok" : "none");
    return 0;
}
