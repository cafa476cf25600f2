/* tests/conformance/hz_sigfork.c: fork from a signal handler while the
 * (single) main thread is inside malloc and free (HAZARDS §4, the idea of
 * glibc's tst-mallocfork2).  A helper process sends SIGUSR1 as fast as it
 * can; the handler forks a child that _exits at once and reaps it.  The
 * main loop churns blocks up to 70000 bytes until 300 signals arrived; the
 * handler stops the sender and the loop lets it go again, so the loop always
 * makes progress.  A deadlock trips the alarm. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static pid_t sender;

static void on_usr1(int sig)
{
    (void)sig;
    /* Hold the sender until the main loop has run again, or the handler
     * (a fork and a wait) could take all the time there is. */
    if (sender > 0)
        kill(sender, SIGSTOP);
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        static const char msg[] = "hz_sigfork: child failed\n";
        if (write(2, msg, sizeof msg - 1) < 0)
            _exit(3);
        _exit(2);
    }
    got++;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "hz_sigfork: stuck (deadlock?)\n";
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(5);
    kill(sender, SIGKILL);
    _exit(4);
}

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGALRM, on_alarm);
    alarm(60);
    pid_t parent = getpid();
    sender = fork();
    if (sender == 0) {
        for (;;) {
            if (kill(parent, SIGUSR1) != 0)
                _exit(0);
            sched_yield();
        }
    }
    enum { N = 1009 };
    static void *slot[N];
    unsigned seed = 1;
    while (got < 300) {
        kill(sender, SIGCONT);
        int k = rand_r(&seed) % N;
        free(slot[k]);
        slot[k] = malloc((size_t)(rand_r(&seed) % 70000));
        if (!slot[k] && errno != 0)
            return 1;
    }
    signal(SIGUSR1, SIG_IGN);
    kill(sender, SIGKILL);
    waitpid(sender, NULL, 0);
    for (int k = 0; k < N; k++)
        free(slot[k]);
    puts("sigfork ok");
    return 0;
}
