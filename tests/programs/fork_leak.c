/* Parent and child leak different blocks: two reports. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "scrub.h"

__attribute__((noinline)) static void leak(size_t n) { ((char *)malloc(n))[0] = 1; /* @FORKLEAK */ }

int main(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        leak(222);
        scrub_stack();
        exit(0);
    }
    leak(111);
    scrub_stack();
    int st;
    waitpid(pid, &st, 0);
    printf("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
