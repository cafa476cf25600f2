/* tests/trace/stale_free.c: frees of blocks whose records are freed.
 *
 * A freed block waits in its thread's quarantine with its record marked
 * freed; when the quarantine lets it go, the record is stale and must read
 * as no record at all (report/blocks.c).  So a second free of a block still
 * held is a double free naming its block, and one of a block let go is an
 * invalid free naming none, whichever thread freed it first, and a realloc
 * likewise.  Blocks made again at the addresses let go are valid.
 * stale_free.sh checks the report's error lines, the same as before holds
 * (they were three table operations per block then).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define N 300 /* more than a quarantine's 256 cells */

static void *blocks[N];
static void *held_by_thread, *gone_with_thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;

static void wait_stage(int s)
{
    pthread_mutex_lock(&mu);
    while (stage < s)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void set_stage(int s)
{
    pthread_mutex_lock(&mu);
    stage = s;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void *freer(void *arg)
{
    (void)arg;
    free(held_by_thread); /* held in this thread's quarantine until it exits */
    set_stage(1);
    wait_stage(2);
    return NULL;
}

static void *short_lived(void *arg)
{
    (void)arg;
    free(malloc(24));
    free(gone_with_thread); /* freed by a thread that has ended by the second free */
    return NULL;
}

int main(void)
{
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(64);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    free(blocks[N - 1]);                   /* double free: still held */
    free(blocks[0]);                       /* invalid free: let go */
    void *r = realloc(blocks[N - 2], 100); /* invalid realloc of a held block */
    void *s = realloc(blocks[1], 100);     /* invalid realloc, let go */

    /* new blocks at the addresses let go are live and valid */
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(64);
    for (int i = 0; i < N; i++)
        free(blocks[i]);

    /* across threads */
    held_by_thread = malloc(48);
    gone_with_thread = malloc(40);
    pthread_t a, b;
    pthread_create(&a, NULL, freer, NULL);
    wait_stage(1);
    free(held_by_thread); /* double free: held by the other thread */
    set_stage(2);
    pthread_join(a, NULL);
    pthread_create(&b, NULL, short_lived, NULL);
    pthread_join(b, NULL);
    free(gone_with_thread); /* a double free, as the table before holds did */
    printf("stale_free done %d %d\n", r == NULL, s == NULL);
    return 0;
}
