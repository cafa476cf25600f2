/* tests/conformance/suite_stats_cancel.c: malloc_stats is not a
 * cancellation point (glibc's tst-malloc-stats-cancellation, bug 22830): a
 * thread with a cancel pending writes all of its output before the next
 * cancellation point ends it.  mallard wrote through write(3), a
 * cancellation point, so the thread died before any of it was written. */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_barrier_t gate;

static void *run(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&gate);
    malloc_stats();
    /* the cancellation point that ends the thread */
    write(2, "after\n", 6);
    return NULL;
}

int main(void)
{
    int saved = dup(2), p[2];
    if (saved < 0 || pipe(p) != 0 || dup2(p[1], 2) < 0)
        return 2;
    close(p[1]);
    pthread_t t;
    pthread_barrier_init(&gate, NULL, 2);
    if (pthread_create(&t, NULL, run, NULL) != 0)
        return 2;
    pthread_cancel(t);
    pthread_barrier_wait(&gate);
    void *rv;
    pthread_join(t, &rv);
    dup2(saved, 2);
    char buf[8192];
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    if (rv != PTHREAD_CANCELED || !strstr(buf, "max mmap bytes") || strstr(buf, "after")) {
        fprintf(stderr, "stats cancel: cancelled %d, output <%s>\n", rv == PTHREAD_CANCELED, buf);
        return 1;
    }
    printf("stats cancel ok\n");
    return 0;
}
