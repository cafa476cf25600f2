/* tests/programs/stats_threads.c: the tracer's statistics over threads
 * (issue 10: each thread counts in a slot of its own and moves its share of
 * the live bytes into the process's figure 64 KiB at a time).  Four workers
 * churn blocks of many sizes, keep a third of them (reachable from kept[]),
 * leak one each, resize some, and hold 8 MiB each at the same moment; they
 * exit before main does.  Then one thread forks while another still holds
 * the unflushed part of its share; the child leaks one block and exits.
 * The reports' stats must add up: in the parent, allocs - frees the blocks
 * still live and current_bytes their bytes; in the child, the parent's
 * figures and the holder's two blocks and the child's leak; peak_bytes at
 * least the 32 MiB held at once in both. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scrub.h"

#define WORKERS 4
#define PER 3000
#define BIG (8u << 20)

static void *volatile kept[WORKERS][PER];

/* makes p escape, so that GCC at -O1 keeps a malloc whose block is never read */
static inline void sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

__attribute__((noinline)) static void leak(size_t n)
{
    char *p = malloc(n); /* @LEAK */
    p[0] = 1;
    sink(p);
}
static pthread_barrier_t held;

static void *worker(void *arg)
{
    int w = (int)(long)arg;
    void *mine[PER];
    for (int i = 0; i < PER; i++) {
        mine[i] = malloc(24 + (size_t)(i % 13) * 40 + (size_t)w);
        memset(mine[i], 1, 24);
    }
    for (int i = 0; i < PER; i++) {
        if (i % 3 == 0)
            kept[w][i] = mine[i];
        else if (i % 3 == 1)
            free(mine[i]);
        else
            free(realloc(mine[i], 700 + (size_t)i));
    }
    char *big = malloc(BIG);
    memset(big, 2, BIG);
    pthread_barrier_wait(&held); /* all four held at once */
    pthread_barrier_wait(&held);
    free(big);
    leak(1000 + (size_t)w);
    scrub_stack();
    return NULL;
}

static volatile int share_ready, forked;

/* keeps an unflushed share of the live bytes while another thread forks */
static void *holder(void *arg)
{
    (void)arg;
    void *volatile a = malloc(5000), *volatile b = malloc(7000);
    share_ready = 1;
    while (!forked)
        usleep(1000);
    free(a);
    free(b);
    return NULL;
}

static void *forker(void *arg)
{
    (void)arg;
    while (!share_ready)
        usleep(1000);
    pid_t pid = fork();
    if (pid == 0) {
        leak(333);
        scrub_stack();
        exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    forked = 1;
    return NULL;
}

int main(void)
{
    pthread_t th[WORKERS];
    pthread_barrier_init(&held, NULL, WORKERS);
    for (int w = 0; w < WORKERS; w++)
        pthread_create(&th[w], NULL, worker, (void *)(long)w);
    for (int w = 0; w < WORKERS; w++)
        pthread_join(th[w], NULL);
    pthread_t h, f;
    pthread_create(&h, NULL, holder, NULL);
    pthread_create(&f, NULL, forker, NULL);
    pthread_join(f, NULL);
    pthread_join(h, NULL);
    /* write, not stdio: a stdout buffer would be one more live block in
     * the parent than in the child */
    if (write(1, "done\n", 5) != 5)
        return 1;
    return 0;
}
