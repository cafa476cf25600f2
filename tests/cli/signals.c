/* tests/cli/signals.c [handler]: leaks 123 bytes, says "ready", then waits
 * (up to 30 s) for a signal.  With "handler" it installs its own SIGTERM
 * handler and exits normally when it runs.  SIGUSR2 deliveries are
 * counted by reading MALLARD's live reports, not here. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scrub.h"

static void *volatile sink;
static volatile sig_atomic_t got;
static void on_term(int s)
{
    (void)s;
    got = 1;
}

__attribute__((noinline)) static void leak(size_t n) { sink = memset(malloc(n), 1, n), sink = 0; }

int main(int argc, char **argv)
{
    leak(123);
    scrub_stack();
    if (argc > 1 && !strcmp(argv[1], "handler"))
        signal(SIGTERM, on_term);
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 3000 && !got; i++) {
        usleep(10000);
        if (argc > 1 && !strcmp(argv[1], "churn")) /* allocate while waiting */
            free(malloc(64));
    }
    printf("got %d\n", (int)got);
    return 0;
}
