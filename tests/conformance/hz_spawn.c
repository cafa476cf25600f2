/* tests/conformance/hz_spawn.c: posix_spawn and vfork+execve from a
 * multithreaded parent that allocates all the while (HAZARDS §9).
 *
 * A CLONE_VFORK child shares the parent's memory and runs no atfork
 * handler, so an allocator that touches its state there corrupts the
 * parent.  Every child (itself preloaded, since the environment carries
 * LD_PRELOAD) must exit 0, and the parent's blocks must stay intact. */
#define _GNU_SOURCE
#include <spawn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static atomic_int stop, bad;

static void *churn(void *arg)
{
    unsigned x = (unsigned)(uintptr_t)arg * 7919u + 1;
    char *ring[32] = {0};
    size_t len[32] = {0};
    while (!atomic_load(&stop)) {
        for (int i = 0; i < 32; i++) {
            if (ring[i]) {
                for (size_t k = 0; k < len[i]; k++)
                    if (ring[i][k] != (char)(i + len[i]))
                        atomic_fetch_add(&bad, 1);
                free(ring[i]);
            }
            x = x * 1103515245u + 12345u;
            len[i] = 1 + (x >> 16) % 3000;
            ring[i] = malloc(len[i]);
            if (!ring[i]) {
                atomic_fetch_add(&bad, 1);
                continue;
            }
            memset(ring[i], (char)(i + len[i]), len[i]);
        }
    }
    for (int i = 0; i < 32; i++)
        free(ring[i]);
    return NULL;
}

static int wait_ok(pid_t pid, const char *what, int round)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) {
        fprintf(stderr, "hz_spawn: waitpid failed after %s #%d\n", what, round);
        return 0;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "hz_spawn: %s #%d: child status 0x%x\n", what, round, st);
        return 0;
    }
    return 1;
}

int main(void)
{
    enum { THREADS = 4, ROUNDS = 60 };
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, churn, (void *)i) != 0)
            return 10;
    char *argv_true[] = {(char *)"true", NULL};
    int ok = 1;
    for (int r = 0; r < ROUNDS && ok; r++) {
        pid_t pid;
        int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, argv_true, environ);
        if (rc != 0) {
            fprintf(stderr, "hz_spawn: posix_spawn #%d failed: %d\n", r, rc);
            return 11;
        }
        ok = wait_ok(pid, "posix_spawn", r);

        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        posix_spawn_file_actions_init(&fa); /* these allocate */
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
        posix_spawnattr_init(&at);
        rc = posix_spawnp(&pid, "true", &fa, &at, argv_true, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        if (rc != 0)
            return 12;
        ok = ok && wait_ok(pid, "posix_spawnp", r);

        pid = vfork();
        if (pid < 0)
            return 13;
        if (pid == 0) {
            execve("/bin/true", argv_true, environ);
            _exit(127);
        }
        ok = ok && wait_ok(pid, "vfork+execve", r);
    }
    /* popen goes through posix_spawn as well */
    for (int r = 0; r < 10 && ok; r++) {
        FILE *p = popen("echo popen-ok", "r");
        char line[64] = "";
        if (!p || !fgets(line, sizeof line, p) || strcmp(line, "popen-ok\n"))
            ok = 0;
        if (p && pclose(p) != 0)
            ok = 0;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    if (!ok)
        return 14;
    if (atomic_load(&bad)) {
        fprintf(stderr, "hz_spawn: %d damaged or failed blocks in the parent\n", atomic_load(&bad));
        return 15;
    }
    return 0;
}
