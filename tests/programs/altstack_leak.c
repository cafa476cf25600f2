/* Signal handlers that run on an alternate stack (sigaltstack,
 * SA_ONSTACK) and lose a small tree whose only pointers lie in their own
 * frames, dead once they return.  The main thread's signal stack is a
 * mapping of its own; a second thread's is a block from malloc, kept
 * reachable from a global, and that thread is still blocked in read() when
 * main exits.  The kernel's signal frame there also holds the registers the
 * signal interrupted.  valgrind makes what a handler leaves
 * below the stack pointer unaddressable and never reads it: the two roots
 * are definitely lost (2 x 120 bytes), their 8 children indirectly.  mallard
 * learns of each signal stack from the sigaltstack call it interposes. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lose_tree.h"

static void handler(int sig)
{
    (void)sig;
    lose_tree();
}

#define ALT_SIZE (64 << 10)
void *alt_block; /* not static: a store GCC may not drop */
static int ready[2], never[2];

static void *worker(void *arg)
{
    stack_t ss = {.ss_sp = alt_block, .ss_size = ALT_SIZE};
    char c = 'r';
    if (sigaltstack(&ss, NULL) != 0 || raise(SIGUSR2) != 0 || write(ready[1], &c, 1) != 1)
        perror("altstack_leak worker");
    if (read(never[0], &c, 1) < 0) /* blocked until the process exits */
        perror("altstack_leak worker");
    return arg;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    void *map = mmap(NULL, ALT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    alt_block = malloc(ALT_SIZE); /* @ALT */
    if (map == MAP_FAILED || !alt_block || sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGUSR2, &sa, NULL)) {
        perror("altstack_leak");
        return 1;
    }
    stack_t ss = {.ss_sp = map, .ss_size = ALT_SIZE};
    if (sigaltstack(&ss, NULL) != 0 || raise(SIGUSR1) != 0) {
        perror("altstack_leak");
        return 1;
    }
    pthread_t t;
    char c;
    if (pipe(ready) || pipe(never) || pthread_create(&t, NULL, worker, NULL) != 0 || read(ready[0], &c, 1) != 1) {
        perror("altstack_leak");
        return 1;
    }
    puts("handled 2");
    return 0;
}
