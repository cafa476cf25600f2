/* tests/hostile/hostile.c: a program that treats mallard as an attacker or an
 * unlucky user would (issue 8).  argv[1] picks the mode; every mode leaks
 * exactly one 100-byte block from leak_one, keeps a 3-node list reachable
 * from a global, and writes "hostile: <mode> ok" to stdout without flushing
 * it (buffered output must survive the exit).
 *
 *   plain      nothing more
 *   nofile     RLIMIT_NOFILE lowered and every fd used before exit
 *   closefds   closes every fd, then opens argv[2] until it is fd 2 and one
 *              more (the report must not land in it)
 *   quick      ends with quick_exit(0)
 *   gcsegv     a thread keeps faulting on purpose (mprotect, fault, a
 *              SIGSEGV handler unprotects) while the process exits
 *   altstack   a 2 KiB sigaltstack, then a real SIGSEGV
 *   memalign   posix_memalign failure must set errno to ENOMEM
 *   forkheld   two fork children that _exit: one keeps its one block in a
 *              global, the other loses its block (leak_one)
 *   forkbss    a fork child keeps a block in a global, a second in the
 *              first, and _exits; it must take at most 4096 page faults,
 *              with 64 MiB of .bss never touched
 *   longname   the leak is made by a function with a 64-character name of
 *              a's (suppression patterns with many stars against it)
 *   other      the leak is made by other_leaker
 *   pressure   [MiB [restore]] lowers its own RLIMIT_AS to what it maps now
 *              plus MiB (default 24), then mallocs and frees from 2^18
 *              distinct stacks (mallard's stack depot outgrows the limit
 *              long before the program's own few blocks do), then keeps
 *              1000 blocks, reallocs half of them, checks every byte and
 *              frees them all; with "restore" the limit is raised again
 *              before exit (the report then has room), else the report is
 *              written under the limit
 *   tight      no leak at all: lowers RLIMIT_AS to what it maps now plus
 *              4 MiB, mallocs, checks and frees 1000 blocks and exits
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../programs/scrub.h"

struct node {
    struct node *next;
    char pad[24];
};
struct node *volatile keep;

static void *volatile held; /* forkheld: a fork child's block, held by a global */
char untouched[64 << 20]; /* forkbss: .bss no one touches (not static: never folded away) */

__attribute__((noinline)) static void leak_one(void)
{
    char *volatile p = malloc(100);
    memset(p, 'x', 100);
    p = NULL;
}

#define A8 aaaaaaaa
#define CAT(a, b) a##b
#define XCAT(a, b) CAT(a, b)
#define LONGNAME XCAT(XCAT(XCAT(XCAT(XCAT(XCAT(XCAT(A8, A8), A8), A8), A8), A8), A8), A8)
__attribute__((noinline)) void LONGNAME(void);
__attribute__((noinline)) void LONGNAME(void)
{
    char *volatile p = malloc(100);
    memset(p, 'y', 100);
    p = NULL;
}

__attribute__((noinline)) void other_leaker(void);
__attribute__((noinline)) void other_leaker(void)
{
    char *volatile p = malloc(100);
    memset(p, 'z', 100);
    p = NULL;
}

__attribute__((noinline)) static void build_list(void)
{
    for (int i = 0; i < 3; i++) {
        struct node *n = calloc(1, sizeof *n);
        n->next = keep;
        keep = n;
    }
}

/* ---- pressure ---------------------------------------------------------- */

static volatile unsigned long churn_sink;
static void churn(unsigned bits, int levels);

/* Four call sites that differ in their return addresses: each level of
 * churn's recursion adds two bits to the stack's shape. */
#define STEP(x)                                                                                              \
    __attribute__((noinline)) static void step_##x(unsigned bits, int levels)                               \
    {                                                                                                        \
        churn(bits, levels);                                                                                 \
        churn_sink += 1u + (unsigned)(#x[0] - 'a');                                                          \
    }
STEP(a)
STEP(b)
STEP(c)
STEP(d)

__attribute__((noinline)) static void churn(unsigned bits, int levels)
{
    if (!levels) {
        char *volatile p = malloc(24);
        p[0] = (char)bits;
        churn_sink += (unsigned char)p[0];
        free(p);
        return;
    }
    static void (*const steps[4])(unsigned, int) = {step_a, step_b, step_c, step_d};
    steps[bits & 3](bits >> 2, levels - 1);
    churn_sink++;
}

/* Bytes mapped now: the first field of /proc/self/statm, in pages. */
static long mapped_now(void)
{
    char buf[64] = {0};
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? atol(buf) * sysconf(_SC_PAGESIZE) : -1;
}

static int pressure(long mib, int restore)
{
    struct rlimit old, rl;
    long now = mapped_now();
    if (now < 0 || getrlimit(RLIMIT_AS, &old) != 0)
        return 30;
    rl = old;
    rl.rlim_cur = (rlim_t)now + ((rlim_t)mib << 20);
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 31;
    for (unsigned i = 0; i < 1u << 18; i++)
        churn(i, 9);
    enum { N = 1000 };
    static unsigned char *blk[N];
    for (unsigned i = 0; i < N; i++) {
        size_t n = 16 + i % 64;
        if (!(blk[i] = malloc(n)))
            return 32;
        memset(blk[i], (int)(i & 0xff), n);
    }
    for (unsigned i = 0; i < N; i += 2) {
        size_t n = 16 + i % 64;
        unsigned char *q = realloc(blk[i], 2 * n);
        if (!q)
            return 33;
        for (size_t k = 0; k < n; k++)
            if (q[k] != (i & 0xff))
                return 34;
        memset(q + n, (int)(i & 0xff), n);
        blk[i] = q;
    }
    for (unsigned i = 0; i < N; i++) {
        size_t n = (16 + i % 64) * (i % 2 ? 1 : 2);
        for (size_t k = 0; k < n; k++)
            if (blk[i][k] != (i & 0xff))
                return 35;
        free(blk[i]);
    }
    if (restore && setrlimit(RLIMIT_AS, &old) != 0)
        return 36;
    return 0;
}

/* ---- gcsegv ------------------------------------------------------------ */

static char *gc_region;
static size_t gc_size;
static volatile unsigned long gc_faults;

static void gc_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char *a = si->si_addr;
    if (a >= gc_region && a < gc_region + gc_size) {
        mprotect(gc_region, gc_size, PROT_READ | PROT_WRITE);
        gc_faults++;
        return;
    }
    signal(sig, SIG_DFL); /* a real fault: die of it */
}

/* Blocks replaced while the exit scan reads them: under the page backend
 * a freed block turns PROT_NONE, so the scan faults on them too. */
static char *volatile gc_slots[64];

static void *gc_thread(void *arg)
{
    (void)arg;
    for (unsigned i = 0;; i++) {
        mprotect(gc_region, gc_size, PROT_NONE);
        gc_region[0]++; /* faults, the handler unprotects, the store retries */
        char *old = gc_slots[i % 64];
        char *p = malloc(200 + i % 4000);
        p[0] = 1;
        gc_slots[i % 64] = p;
        free(old);
    }
    return NULL;
}

static void gc_start(void)
{
    gc_size = (size_t)sysconf(_SC_PAGESIZE);
    gc_region = mmap(NULL, gc_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = gc_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    /* freed blocks: under the page backend, PROT_NONE pages for the scan to fault on */
    void *v[256];
    for (int i = 0; i < 256; i++)
        v[i] = malloc(64 + (size_t)i * 32);
    for (int i = 0; i < 256; i++)
        free(v[i]);
    pthread_t t;
    pthread_create(&t, NULL, gc_thread, NULL);
    while (gc_faults < 100)
        sched_yield();
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "plain";
    if (!strcmp(mode, "tight")) {
        long now = mapped_now();
        struct rlimit rl;
        if (now < 0 || getrlimit(RLIMIT_AS, &rl) != 0)
            return 30;
        rl.rlim_cur = (rlim_t)now + ((rlim_t)4 << 20);
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            return 31;
        static char *blk[1000];
        for (int i = 0; i < 1000; i++)
            if (!(blk[i] = malloc(100)))
                return 32;
            else
                memset(blk[i], i, 100);
        for (int i = 0; i < 1000; i++) {
            if (blk[i][99] != (char)i)
                return 33;
            free(blk[i]);
        }
        printf("hostile: tight ok\n");
        return 0;
    }
    build_list();
    if (!strcmp(mode, "longname"))
        LONGNAME();
    else if (!strcmp(mode, "other"))
        other_leaker();
    else
        leak_one();
    scrub_stack();
    printf("hostile: %s ok\n", mode); /* stays in stdio's buffer when stdout is not a tty */

    if (!strcmp(mode, "nofile")) {
        struct rlimit rl = {16, 16};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return 10;
        while (open("/dev/null", O_RDONLY) >= 0)
            ;
        if (errno != EMFILE)
            return 11;
    } else if (!strcmp(mode, "closefds")) {
        if (argc < 3)
            return 12;
        for (int fd = 0; fd < 1024; fd++)
            if (fd != 1)
                close(fd);
        int fd;
        while ((fd = open(argv[2], O_WRONLY | O_APPEND)) >= 0 && fd < 3)
            ;
        if (fd < 0)
            return 13;
        /* also reuse every number mallard may have kept a copy under */
        for (int i = 0; i < 200; i++)
            if (open(argv[2], O_WRONLY | O_APPEND) < 0)
                break;
        if (write(2, "data\n", 5) != 5)
            return 14;
    } else if (!strcmp(mode, "quick")) {
        fflush(stdout); /* quick_exit does not flush stdio */
        quick_exit(0);
    } else if (!strcmp(mode, "gcsegv")) {
        gc_start();
    } else if (!strcmp(mode, "altstack")) {
        fflush(stdout);
        static char small[2048] __attribute__((aligned(16)));
        stack_t ss = {.ss_sp = small, .ss_size = sizeof small, .ss_flags = 0};
        if (sigaltstack(&ss, NULL) != 0)
            return 15;
        *(volatile int *)(uintptr_t)16 = 0;
    } else if (!strcmp(mode, "memalign")) {
        void *p = NULL;
        errno = 0;
        int rc = posix_memalign(&p, 64, SIZE_MAX - 4096);
        printf("posix_memalign: rc %s, errno %s\n", rc == ENOMEM ? "ENOMEM" : "other",
               errno == ENOMEM ? "ENOMEM" : "unchanged");
        errno = 0;
        rc = posix_memalign(&p, 24, 16);
        printf("posix_memalign bad alignment: rc %s, errno %s\n", rc == EINVAL ? "EINVAL" : "other",
               errno == 0 ? "unchanged" : "set");
    } else if (!strcmp(mode, "forkheld")) {
        /* two fork children: one whose only block of its own a global
         * holds, one that loses its block (leak_one); both _exit */
        fflush(stdout);
        pid_t a = fork();
        if (a == 0) {
            held = malloc(40);
            _exit(0);
        }
        if (a < 0 || waitpid(a, NULL, 0) != a)
            return 16;
        pid_t b = fork();
        if (b == 0) {
            leak_one();
            scrub_stack();
            _exit(0);
        }
        if (b < 0 || waitpid(b, NULL, 0) != b)
            return 17;
    } else if (!strcmp(mode, "forkbss")) {
        /* a fork child whose block a global holds, and a second block
         * only the first does, in a program with 64 MiB of .bss never
         * touched: its report must not read those pages (a read maps
         * each: a fault), though no root holds the second directly */
        fflush(stdout);
        pid_t a = fork();
        if (a == 0) {
            void **p = malloc(40);
            *p = malloc(24);
            held = p;
            _exit(((volatile char *)untouched)[12345]);
        }
        int st = 0;
        struct rusage ru;
        if (a < 0 || wait4(a, &st, 0, &ru) != a || !WIFEXITED(st) || WEXITSTATUS(st))
            return 18;
        if (ru.ru_minflt > 4096) {
            fprintf(stderr, "hostile: the fork child took %ld page faults\n", ru.ru_minflt);
            return 19;
        }
    } else if (!strcmp(mode, "pressure")) {
        return pressure(argc > 2 ? atol(argv[2]) : 24, argc > 3 && !strcmp(argv[3], "restore"));
    } else if (strcmp(mode, "plain") && strcmp(mode, "longname") && strcmp(mode, "other")) {
        return 2;
    }
    return 0;
}
