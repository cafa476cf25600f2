/* bench/launch.c: run one command and report its wall time and peak RSS.
 *
 * bench/run cannot take ru_maxrss from its own children: a child forked or
 * vforked from the Python runner starts with the runner's memory, and the
 * kernel carries that high-water mark across exec into the child's
 * ru_maxrss (17 MiB of Python on every result).  This launcher is small, so
 * the child it forks starts from a small image, and wait4 then gives the
 * peak RSS of the command and of every descendant it waited for.
 *
 * Usage: bench_launch RESULT_FILE [NAME=VALUE...] -- COMMAND [ARG...]
 * The NAME=VALUE pairs are set in the child only, so that an LD_PRELOADed
 * allocator or tracer is loaded into the command and not into the launcher.
 * Writes "<wall seconds> <maxrss KiB> <CPU seconds>" to RESULT_FILE (CPU
 * time is user + system of the command and its waited-for descendants: on
 * a shared machine it moves far less than wall time) and exits with the
 * command's status (128 + signal number if a signal ended it; 127 if it
 * could not be started).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int cmd = 2;
    while (cmd < argc && strcmp(argv[cmd], "--") != 0)
        cmd++;
    if (argc < 2 || cmd + 1 >= argc) {
        fprintf(stderr, "usage: bench_launch RESULT_FILE [NAME=VALUE...] -- COMMAND [ARG...]\n");
        return 64;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench_launch: fork");
        return 127;
    }
    if (pid == 0) {
        for (int i = 2; i < cmd; i++)
            if (putenv(argv[i]) != 0)
                _exit(127);
        execvp(argv[cmd + 1], argv + cmd + 1);
        fprintf(stderr, "bench_launch: cannot run %s: %s\n", argv[cmd + 1], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("bench_launch: wait4");
            return 127;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    FILE *f = fopen(argv[1], "w");
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
    if (!f || fprintf(f, "%.6f %ld %.6f\n", wall, ru.ru_maxrss, cpu) < 0 || fclose(f) != 0) {
        perror("bench_launch: result file");
        return 127;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
