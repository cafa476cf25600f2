/* tests/trace/fork_inherit.c: which blocks a fork child reports as its own.
 *
 * The parent leaks 111 bytes and forks; the child frees a block it
 * inherited, allocates its own in its place, leaks 222 bytes and forks a
 * grandchild that leaks 333.  Each process's report must hold exactly its
 * own leak: blocks allocated before a process forked belong to its
 * parent's report, whichever way the child tells them apart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *keep; /* a reachable block, replaced by the child */

__attribute__((noinline)) static void leak(size_t n)
{
    char *p = malloc(n);
    memset(p, 1, n);
    __asm__ volatile("" ::"r"(p) : "memory");
}

__attribute__((noinline)) static void scrub(void)
{
    volatile char pad[4096];
    memset((char *)pad, 0, sizeof pad);
}

static void wait_for(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        exit(3);
}

int main(void)
{
    keep = malloc(64);
    leak(111);
    scrub();
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        return 2;
    if (child == 0) {
        free(keep);
        keep = malloc(64);
        for (int i = 0; i < 100; i++) /* blocks of the child's own, freed */
            free(malloc(32));
        leak(222);
        scrub();
        pid_t grand = fork();
        if (grand < 0)
            exit(2);
        if (grand == 0) {
            leak(333);
            scrub();
            exit(0);
        }
        wait_for(grand);
        exit(0);
    }
    wait_for(child);
    printf("done\n");
    return 0;
}
