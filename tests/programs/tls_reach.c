/* A block held only by a live thread's TLS when the process exits:
 * reachable, no leak. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static __thread char *mine;
static int ready[2];

static void *worker(void *arg)
{
    (void)arg;
    mine = malloc(48); /* @TLS */
    mine[0] = 't';
    char c = 1;
    if (write(ready[1], &c, 1) != 1)
        abort();
    for (;;)
        pause();
    return NULL;
}

int main(void)
{
    if (pipe(ready) != 0)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    char c;
    if (read(ready[0], &c, 1) != 1)
        return 1;
    puts("thread ready");
    exit(0);
}
