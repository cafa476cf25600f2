/* A worker thread leaks a block whose only copies lie in one of its own
 * returned frames, then waits while the main thread exits.  valgrind reads
 * a thread's stack from its stack pointer up, and its registers: 40 bytes
 * in 1 block definitely lost.  The argument says how the worker waits:
 *   futex  pthread_cond_wait (a futex wait without a timeout)
 *   read   read() on a pipe no one writes
 *   sleep  nanosleep (a call a signal handler would end with EINTR)
 *   spin   a loop that makes no system call
 *   reg    read() on a pipe, the block's address in r15 and nowhere else:
 *          reachable, 0 bytes lost
 *   live   read() on a pipe while the main thread asks mallard for a report
 *          of the live process (when preloaded), then writes one byte:
 *          the worker prints what its read returned ("read 1", not EINTR)
 *          and waits as futex does
 *   write  write() of 1 MiB to a pipe the main thread reads only after a
 *          report of the live process: the write, blocked with part of its
 *          buffer copied, must not be cut short ("wrote 1048576"; a
 *          signal with SA_RESTART ends it with what it copied, 65536)
 *   churn  no leak: with every signal blocked (so it cannot be held), the
 *          worker keeps replacing the blocks of a global table while the
 *          main thread exits; what it frees during the report is no leak
 *          (0 bytes lost)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *mode;
static int pfd[2];
static volatile int ready, printed;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* The only copies of the block: in this frame, dead once it returns. */
__attribute__((noinline)) static void hold(void)
{
    volatile char *copies[256];
    char *p = malloc(40); /* @DEADT */
    p[0] = 'd';
    for (int i = 0; i < 256; i++)
        copies[i] = p;
    __asm__ volatile("" : : "r"(copies) : "memory");
}

/* hold() under 8 KiB of frame: the worker's wait (its libc frames, and the
 * signal frame of a handler) stays above the copies */
__attribute__((noinline)) static void deep_hold(void)
{
    volatile char pad[8192];
    pad[0] = 0;
    hold();
    __asm__ volatile("" : : "r"(pad) : "memory");
}

__attribute__((noinline)) static void *leak_in_register(void) { return malloc(40); }

/* read(2) with the block's address in r15 only (rcx and r11 are the
 * syscall instruction's) */
__attribute__((noinline)) static long read_holding(void *p)
{
    register void *keep __asm__("r15") = p;
    char c;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_read), "D"((long)pfd[0]), "S"(&c), "d"(1L), "r"(keep)
                     : "rcx", "r11", "memory");
    return ret;
}

static char *volatile slots[64];

/* A futex wait without a timeout, for good: the worker's end in futex mode,
 * and after read, live and write have said what their call returned. */
static void wait_forever(void)
{
    pthread_mutex_lock(&mu);
    for (;;)
        pthread_cond_wait(&cv, &mu);
}

static void *worker(void *arg)
{
    (void)arg;
    if (!strcmp(mode, "churn")) {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
        for (unsigned i = 0;; i++) {
            char *old = slots[i % 64];
            char *p = malloc(100 + i % 500);
            p[0] = 1;
            slots[i % 64] = p;
            free(old);
            if (i == 1000)
                __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
        }
    }
    if (!strcmp(mode, "reg")) {
        void *p = leak_in_register();
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
        read_holding(p);
        return NULL;
    }
    deep_hold();
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    if (!strcmp(mode, "futex")) {
        wait_forever();
    } else if (!strcmp(mode, "read") || !strcmp(mode, "live")) {
        char c;
        ssize_t n = read(pfd[0], &c, 1);
        printf("read %zd%s\n", n, n < 0 && errno == EINTR ? " EINTR" : "");
        fflush(stdout);
        __atomic_store_n(&printed, 1, __ATOMIC_RELEASE);
        wait_forever();
    } else if (!strcmp(mode, "write")) {
        static char big[1 << 20];
        ssize_t n = write(pfd[1], big, sizeof big);
        printf("wrote %zd\n", n);
        fflush(stdout);
        __atomic_store_n(&printed, 1, __ATOMIC_RELEASE);
        wait_forever();
    } else if (!strcmp(mode, "sleep")) {
        for (;;)
            sleep(100);
    } else {
        for (;;)
            __asm__ volatile("" ::: "memory");
    }
    return NULL;
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "futex";
    if (pipe(pfd) != 0)
        return 2;
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return 3;
    while (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
        sched_yield();
    /* let the worker reach its wait */
    struct timespec ms50 = {0, 50 * 1000000L};
    nanosleep(&ms50, NULL);
    if (!strcmp(mode, "write")) {
        int (*report_now)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "mallard_report_now");
        if (report_now)
            report_now();
        /* read without blocking until the writer says how its write ended
         * (cut short, it would wait for bytes that never come) */
        static char sink[1 << 16];
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        while (!__atomic_load_n(&printed, __ATOMIC_ACQUIRE))
            if (read(pfd[0], sink, sizeof sink) < 0 && errno != EAGAIN)
                return 5;
    }
    if (!strcmp(mode, "live")) {
        int (*report_now)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "mallard_report_now");
        if (report_now)
            report_now();
        if (write(pfd[1], "x", 1) != 1)
            return 4;
        while (!__atomic_load_n(&printed, __ATOMIC_ACQUIRE))
            sched_yield();
    }
    printf("%s done\n", mode);
    return 0;
}
