/* tests/safe/fork_deadlock.c: the pattern of glibc's tst-malloc-fork-deadlock
 * (bug 19431).  One thread reads lines with getline (it holds the FILE's
 * lock while it reallocs the line buffer), one flushes every stream with
 * fflush(NULL) and opens and closes files (it holds the stdio list lock
 * and waits for each FILE's lock), others malloc and free, and the main
 * thread forks in a loop.  An allocator whose fork handler takes its locks
 * before fork takes the list lock hangs.  Runs for argv[1] milliseconds
 * (default 1500); prints "forks N" where N > 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static char text[1 << 16];

static void *reader(void *arg)
{
    (void)arg;
    while (!stop) {
        FILE *f = fmemopen(text, sizeof text - 1, "r");
        if (!f)
            continue;
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            free(line); /* every line makes getline allocate again, under the FILE lock */
            line = NULL;
            cap = 0;
        }
        free(line);
        fclose(f);
    }
    return NULL;
}

static void *flusher(void *arg)
{
    (void)arg;
    while (!stop) {
        fflush(NULL);
        FILE *f = fopen("/dev/null", "w");
        if (f) {
            fprintf(f, "%d\n", 42);
            fclose(f);
        }
    }
    return NULL;
}

static void *churn(void *arg)
{
    size_t seed = (size_t)arg;
    void *keep[64] = {0};
    while (!stop) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned i = (unsigned)(seed >> 58);
        free(keep[i]);
        keep[i] = malloc((seed >> 33) % 3000 + 1);
    }
    for (int i = 0; i < 64; i++)
        free(keep[i]);
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
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = i % 97 == 96 ? '\n' : 'a' + (char)(i % 26);
    pthread_t t[5];
    pthread_create(&t[0], NULL, reader, NULL);
    pthread_create(&t[1], NULL, reader, NULL);
    pthread_create(&t[2], NULL, flusher, NULL);
    pthread_create(&t[3], NULL, churn, (void *)1);
    pthread_create(&t[4], NULL, churn, (void *)2);
    long forks = 0;
    double end = now_ms() + ms;
    while (now_ms() < end) {
        pid_t pid = fork();
        if (pid == 0) {
            void *p = malloc(100);
            free(p);
            _exit(0);
        }
        if (pid < 0)
            break;
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 1;
        forks++;
    }
    stop = 1;
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    printf("forks %s\n", forks > 0 ? "ok" : "none");
    return 0;
}
