/* tests/conformance/suite_main_exit.c: main leaks one 100-byte block and
 * ends with pthread_exit; the last thread's return ends the process.  The
 * report names that one leak and nothing else.  /proc/self is the main
 * thread's and reads as empty maps once it has exited: the exit scan then
 * had no roots and called stdout's buffer, ld.so's tables and every other
 * live block definitely lost. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *last(void *arg)
{
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL); /* main has exited by now (it does not matter if not) */
    printf("main exit: last thread done\n");
    return arg;
}

static void __attribute__((noinline)) drop(void)
{
    char *p = malloc(100);
    memset(p, 'x', 100);
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* drop's dead frame may still hold p: while main is still on its way out
 * (a loaded machine), its stack is scanned whole, dead frames included */
static void __attribute__((noinline)) scrub(void)
{
    volatile char junk[16384];
    for (unsigned i = 0; i < sizeof junk; i++)
        junk[i] = 0;
    __asm__ volatile("" ::: "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
                     "r15", "memory");
}

int main(void)
{
    pthread_t t;
    printf("main exit: started\n");
    if (pthread_create(&t, NULL, last, NULL) != 0)
        return 1;
    drop();
    scrub();
    pthread_exit(NULL);
}
