/* tests/conformance/suite_term_altstack.c: a program that gives its thread
 * a 2 KiB alternate signal stack (MINSIGSTKSZ) and a SIGSEGV handler on it
 * still dies of SIGTERM, with the report.  mallard's SIGTERM handler asked
 * for the alternate stack and wrote the report there: it overflowed the
 * 2 KiB, and the process ended by SIGSEGV (status 139, no report, or the
 * report and then 139) instead of SIGTERM (143). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char alt[2048];
static void *volatile keep; /* a global keeps this one: still reachable */


static void on_segv(int sig)
{
    (void)sig;
    _exit(99);
}

static void __attribute__((noinline)) drop(void)
{
    char *p = malloc(100);
    memset(p, 'x', 100);
    __asm__ volatile("" : : "r"(p) : "memory");
}

int main(void)
{
    keep = malloc(64);
    drop();
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    printf("term altstack: raising SIGTERM\n");
    fflush(stdout);
    raise(SIGTERM);
    return 3;
}
