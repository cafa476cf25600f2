/* tests/unit/unit_blocks.c: the live-block table (report/blocks.c), called
 * directly (no preload).  The table only stores addresses, so the records
 * here name pages nothing is mapped at.
 *
 *   - spread: one record on each of 256 consecutive pages takes 256
 *     shards, each with a lock of its own.  With shards picked by a hash of
 *     the page, 256 pages met in about 160 of them, and threads working in
 *     pages of their own met on the same locks: traced bench_threads on two
 *     CPUs spent half again the CPU time it spent on one.
 *   - threads_fork: four threads insert, free, look up and remove records
 *     in pages of their own, each checking every answer against what it did,
 *     while the main thread forks over and over with ml_blocks_atfork's
 *     phases around each fork; each child, alone now, must find the records
 *     the parent's threads had at the fork (the table is whole, no lock is
 *     held) and give new shards their first tables.  Run under TSan too.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../core/lock.h"
#include "../../report/blocks.h"
#include "../../report/busy.h"

/* What blocks.c takes from the rest of the trace layer. */
ML_TLS int ml_tr_busy;

int ml_trace_holds(uint32_t hold, uintptr_t addr)
{
    (void)hold;
    (void)addr;
    return 1; /* every freed record is still held */
}

static int failed;

static void fail(const char *what)
{
    printf("FAIL: %s\n", what);
    fflush(stdout);
    failed = 1;
}

void ml_tr_degrade(const char *what)
{
    (void)what;
    fail("the block table could not grow");
}

#define PAGE 4096ul
#define WINDOW (4096ul * PAGE) /* the pages that take consecutive shards */
#define BASE 0x500000000000ul  /* a window's start */

static void spread(void)
{
    unsigned before = ml_blocks_shards_used();
    for (unsigned i = 0; i < 256; i++)
        if (ml_blocks_insert(BASE + i * PAGE + 64, 32, 1, 0, i + 1, 0) != 0)
            fail("spread: insert");
    unsigned used = ml_blocks_shards_used() - before;
    printf("spread: 256 pages took %u shards\n", used);
    if (used != 256)
        fail("spread: one window's pages do not have shards of their own");
    struct ml_block_rec r;
    for (unsigned i = 0; i < 256; i++)
        if (ml_blocks_remove(BASE + i * PAGE + 64, &r) != 0 || r.size != 32 || r.seq != i + 1)
            fail("spread: record lost");
}

#define THREADS 4
#define SLOTS 2048
#define THREAD_PAGES 512

struct worker {
    pthread_t id;
    uintptr_t base;
    uint64_t rng;
    unsigned long ops;
};

static int stop;

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Slot k's block: 16 bytes apart on the thread's pages. */
static uintptr_t slot_addr(const struct worker *w, unsigned k)
{
    return w->base + (k % THREAD_PAGES) * PAGE + (k / THREAD_PAGES) * 64;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    static __thread uint8_t state[SLOTS]; /* 0 none, 1 live, 2 freed */
    struct ml_block_rec r;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        unsigned k = (unsigned)(next(&w->rng) % SLOTS);
        uintptr_t a = slot_addr(w, k);
        switch (state[k]) {
        case 0:
            if (ml_blocks_insert(a, k + 1, 7, 0, k + 1, 0) != 0)
                fail("threads: insert");
            state[k] = 1;
            break;
        case 1:
            if (next(&w->rng) & 1) {
                if (ml_blocks_lookup(a, &r) != 0 || r.size != k + 1 || r.state != ML_BLOCK_LIVE)
                    fail("threads: live record not found");
            } else {
                if (ml_blocks_free(a, 9, 0, NULL, &r) != 1 || r.size != k + 1)
                    fail("threads: free of a live record");
                state[k] = 2;
            }
            break;
        default:
            if (ml_blocks_free(a, 9, 0, NULL, &r) != 0 || r.free_stack != 9)
                fail("threads: a freed record is not seen as freed");
            if (ml_blocks_remove(a, NULL) != 0)
                fail("threads: remove of a freed record");
            state[k] = 0;
            break;
        }
        w->ops++;
    }
    return NULL;
}

/* In the child: the records the main thread made before the threads ran,
 * and first tables for shards no one used. */
static int child_checks(void)
{
    struct ml_block_rec r;
    for (unsigned i = 0; i < 64; i++)
        if (ml_blocks_lookup(BASE + 3 * WINDOW + i * PAGE, &r) != 0 || r.size != i + 1)
            return 1;
    for (unsigned i = 0; i < 256; i++) {
        uintptr_t a = BASE + 9 * WINDOW + (uintptr_t)getpid() % 64 * PAGE * 32 + i * PAGE;
        if (ml_blocks_insert(a, 8, 1, 0, 1, 0) != 0 || ml_blocks_lookup(a, &r) != 0)
            return 1;
    }
    return 0;
}

static void threads_fork(void)
{
    for (unsigned i = 0; i < 64; i++)
        ml_blocks_insert(BASE + 3 * WINDOW + i * PAGE, i + 1, 1, 0, 1, 0);
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.base = BASE + (uintptr_t)(4 + i) * WINDOW + (uintptr_t)i * 977 * PAGE,
                               .rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)};
        if (pthread_create(&w[i].id, NULL, work, &w[i]) != 0)
            fail("threads: pthread_create");
    }
    int forks = 0;
    for (; forks < 40; forks++) {
        usleep(2000);
        ml_blocks_atfork(ML_FORK_PREPARE);
        pid_t pid = fork();
        if (pid == 0) {
            ml_blocks_atfork(ML_FORK_CHILD);
            alarm(20);
            _exit(child_checks());
        }
        ml_blocks_atfork(ML_FORK_PARENT);
        if (pid < 0) {
            fail("threads: fork");
            break;
        }
        int st = 0;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fail("threads: the fork child did not find the table whole (or hung)");
            break;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    unsigned long ops = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(w[i].id, NULL);
        ops += w[i].ops;
    }
    printf("threads: %lu operations, %d forks, %u shards used\n", ops, forks, ml_blocks_shards_used());
}

int main(void)
{
    alarm(120);
    spread();
    threads_fork();
    if (!failed)
        printf("blocks ok\n");
    return failed;
}
