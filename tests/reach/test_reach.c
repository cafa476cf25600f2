/* tests/reach/test_reach.c: the reachability scan (report/reach.c) and the
 * thread registry (report/threads.c), linked directly, not preloaded.
 *
 * The hard part is the test's own bookkeeping: a copy of a block's
 * address anywhere in a root keeps it reachable.  So
 *   - blocks come from a fresh mapping of the test's own, never from
 *     glibc's malloc: a malloc'd block may reuse the address of something
 *     Check freed in the parent process, and a stale copy of that address
 *     in Check's data or stack frames would hold the block (it did);
 *   - the table of blocks lives in the meta heap, which is never a root;
 *   - blocks are made, linked and looked at only inside noinline helpers,
 *     whose frames are dead (below the stack pointer) once they return,
 *     and the stack below is zeroed (stack_clobber) before each scan;
 *   - every "reachable" check comes with a control, the same block once
 *     the root is cleared, which must then be lost: that proves the root
 *     named was the one that held it.
 */
#define _GNU_SOURCE
#include "../../core/meta.h"
#include "../../report/report.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

/* freeze.c asks a thread it stops whether it is inside the trace layer,
 * which this suite does not link: no thread here ever is. */
int ml_trace_guard_enter(void) { return 0; }
void ml_trace_guard_leave(int was) { (void)was; }


/* ---- bookkeeping in the meta heap ------------------------------------- */

struct set {
    void **p;
    size_t *size;
    uint8_t *kind; /* enum ml_kind, per block, after classify */
    size_t n, cap;
    struct ml_live *live;
    char *arena;
    size_t arena_used;
};

static struct set *S;

static void set_new(size_t cap)
{
    S = ml_meta_alloc(sizeof *S);
    ck_assert_ptr_nonnull(S);
    S->p = ml_meta_alloc(cap * sizeof *S->p);
    S->size = ml_meta_alloc(cap * sizeof *S->size);
    S->kind = ml_meta_alloc(cap);
    S->live = ml_meta_alloc(cap * sizeof *S->live);
    ck_assert(S->p && S->size && S->kind && S->live);
    S->cap = cap;
}

/* A bump heap no one has used before: 16-byte aligned blocks with a
 * 16-byte gap after each, so a pointer one past a block's end is in no
 * block.  The classifier does not care who made the blocks. */
#define ARENA_SIZE ((size_t)256 << 20)

static NOINLINE void *arena_alloc(size_t size)
{
    if (!S->arena) {
        /* S is in the meta heap: a global holding the base would hold
         * the first block */
        S->arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                        -1, 0);
        ck_assert(S->arena != MAP_FAILED);
        S->arena_used = 0;
    }
    size_t step = ((size + 15) & ~(size_t)15) + 16;
    if (S->arena_used + step > ARENA_SIZE)
        ck_abort_msg("test arena full");
    void *p = S->arena + S->arena_used;
    S->arena_used += step;
    return p;
}

/* Allocates a zeroed block; returns its index, never its address. */
static NOINLINE size_t blk_new(size_t size)
{
    /* no ck_assert on paths run a million times: each one that passes
     * costs Check a write to its message file */
    if (S->n == S->cap)
        ck_abort_msg("block table full");
    void *p = arena_alloc(size);
    memset(p, 0, size);
    S->p[S->n] = p;
    S->size[S->n] = size;
    return S->n++;
}

/* Stores the address of block j (plus off) at byte offset at of block i. */
static NOINLINE void blk_link(size_t i, size_t at, size_t j, size_t off)
{
    *(uintptr_t *)((char *)S->p[i] + at) = (uintptr_t)S->p[j] + off;
}

static NOINLINE void blk_store(void *volatile *slot, size_t i) { *slot = S->p[i]; }

static NOINLINE void blk_store_word(volatile uintptr_t *slot, size_t i, size_t off, uintptr_t xor_key)
{
    *slot = ((uintptr_t)S->p[i] + off) ^ xor_key;
}

/* Zeroes the stack below the caller: whatever the helpers left there. */
static NOINLINE void stack_clobber(void)
{
    char buf[128 << 10];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

static int live_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const struct ml_live *)a)->addr, y = ((const struct ml_live *)b)->addr;
    return x < y ? -1 : x > y;
}

static NOINLINE void live_build(void)
{
    for (size_t i = 0; i < S->n; i++)
        S->live[i] = (struct ml_live){.addr = (uintptr_t)S->p[i], .size = S->size[i], .seq = (uint32_t)(i + 1)};
    /* in place: glibc's qsort may merge through a malloc'd buffer, which
     * would leave the block addresses in the heap, a root */
    static const size_t gaps[] = {9841, 3280, 1093, 364, 121, 40, 13, 4, 1};
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++)
        for (size_t i = gaps[g]; i < S->n; i++) {
            struct ml_live v = S->live[i];
            size_t j = i;
            for (; j >= gaps[g] && S->live[j - gaps[g]].addr > v.addr; j -= gaps[g])
                S->live[j] = S->live[j - gaps[g]];
            S->live[j] = v;
        }
}

static NOINLINE void live_collect(void)
{
    for (size_t i = 0; i < S->n; i++) {
        struct ml_live key = {.addr = (uintptr_t)S->p[i]};
        struct ml_live *hit = bsearch(&key, S->live, S->n, sizeof key, live_cmp);
        if (!hit)
            ck_abort_msg("block %zu missing from the live array", i);
        S->kind[i] = hit->kind;
    }
}

static NOINLINE void scan_below(const struct ml_range *skip, size_t nskip)
{
    live_build();
    stack_clobber();
    ml_reach_classify(S->live, S->n, skip, nskip, NULL);
    live_collect();
}

/* Classifies every block of S; the results land in S->kind.  Inlined, so
 * the zeroing starts right below the test's own frame: scan_below's frame
 * has padding slots where an earlier helper's temporaries would survive. */
static inline __attribute__((always_inline)) void scan(const struct ml_range *skip, size_t nskip)
{
    stack_clobber();
    scan_below(skip, nskip);
}

static void blk_free_all(void)
{
    if (S->arena)
        munmap(S->arena, ARENA_SIZE);
    S->arena = NULL;
    S->n = 0;
}

static const char *kind_name(int k)
{
    return k == ML_KIND_DEFINITE    ? "definite"
           : k == ML_KIND_INDIRECT  ? "indirect"
           : k == ML_KIND_REACHABLE ? "reachable"
                                    : "?";
}

#define ck_kind(i, k)                                                                                        \
    ck_assert_msg(S->kind[i] == (k), "block %zu: %s, expected %s", (size_t)(i), kind_name(S->kind[i]),       \
                  kind_name(k))

static void setup(void)
{
    ml_threads_attach();
    set_new(64);
}

static void teardown(void) { blk_free_all(); }

/* ---- roots in the program's data -------------------------------------- */

static void *volatile g_root;
static volatile uintptr_t g_word;
static void *volatile g_skip_area[4];

START_TEST(reach_global_root)
{
    size_t a = blk_new(48), control = blk_new(48);
    blk_store(&g_root, a);
    scan(NULL, 0);
    ck_kind(a, ML_KIND_REACHABLE);
    ck_kind(control, ML_KIND_DEFINITE);
    g_root = NULL;
    scan(NULL, 0);
    ck_kind(a, ML_KIND_DEFINITE);
}
END_TEST

START_TEST(reach_global_chain)
{
    /* g_root -> a -> b -> c: reachability is transitive */
    size_t a = blk_new(32), b = blk_new(32), c = blk_new(32);
    blk_link(a, 8, b, 0);
    blk_link(b, 16, c, 0);
    blk_store(&g_root, a);
    scan(NULL, 0);
    ck_kind(a, ML_KIND_REACHABLE);
    ck_kind(b, ML_KIND_REACHABLE);
    ck_kind(c, ML_KIND_REACHABLE);
    g_root = NULL;
    scan(NULL, 0);
    ck_kind(a, ML_KIND_DEFINITE);
    ck_kind(b, ML_KIND_INDIRECT);
    ck_kind(c, ML_KIND_INDIRECT);
}
END_TEST

START_TEST(reach_list_dropped)
{
    size_t n[10];
    for (int i = 0; i < 10; i++)
        n[i] = blk_new(32);
    for (int i = 0; i < 9; i++)
        blk_link(n[i], 0, n[i + 1], 0);
    scan(NULL, 0);
    ck_kind(n[0], ML_KIND_DEFINITE);
    for (int i = 1; i < 10; i++)
        ck_kind(n[i], ML_KIND_INDIRECT);
}
END_TEST

START_TEST(reach_list_dropped_head_last)
{
    /* The head has the highest address: every lower node is first taken
     * as a clique leader, then demoted once a later leader reaches it. */
    size_t n[10];
    for (int i = 0; i < 10; i++)
        n[i] = blk_new(32);
    for (int i = 9; i > 0; i--)
        blk_link(n[i], 0, n[i - 1], 0);
    scan(NULL, 0);
    ck_kind(n[9], ML_KIND_DEFINITE);
    int definite = 0;
    for (int i = 0; i < 10; i++)
        definite += S->kind[n[i]] == ML_KIND_DEFINITE;
    ck_assert_int_eq(definite, 1);
}
END_TEST

START_TEST(reach_list_rooted_midway)
{
    /* a global holds node 5: 5..9 reachable, 0 definite, 1..4 indirect */
    size_t n[10];
    for (int i = 0; i < 10; i++)
        n[i] = blk_new(32);
    for (int i = 0; i < 9; i++)
        blk_link(n[i], 0, n[i + 1], 0);
    blk_store(&g_root, n[5]);
    scan(NULL, 0);
    g_root = NULL;
    ck_kind(n[0], ML_KIND_DEFINITE);
    for (int i = 1; i < 5; i++)
        ck_kind(n[i], ML_KIND_INDIRECT);
    for (int i = 5; i < 10; i++)
        ck_kind(n[i], ML_KIND_REACHABLE);
}
END_TEST

START_TEST(reach_cycle_dropped)
{
    size_t a = blk_new(24), b = blk_new(24);
    blk_link(a, 0, b, 0);
    blk_link(b, 0, a, 0);
    scan(NULL, 0);
    size_t lo = S->p[a] < S->p[b] ? a : b, hi = lo == a ? b : a;
    ck_kind(lo, ML_KIND_DEFINITE);
    ck_kind(hi, ML_KIND_INDIRECT);
}
END_TEST

START_TEST(reach_fanout_dropped)
{
    /* a dropped array of 40 pointers: 1 definite, 40 indirect */
    size_t arr = blk_new(40 * sizeof(void *));
    size_t e[40];
    for (int i = 0; i < 40; i++) {
        e[i] = blk_new(16);
        blk_link(arr, (size_t)i * sizeof(void *), e[i], 0);
    }
    scan(NULL, 0);
    ck_kind(arr, ML_KIND_DEFINITE);
    for (int i = 0; i < 40; i++)
        ck_kind(e[i], ML_KIND_INDIRECT);
}
END_TEST

START_TEST(reach_xor_hidden)
{
    const uintptr_t key = (uintptr_t)0x5a5a5a5a5a5a5a5aull;
    size_t a = blk_new(64);
    blk_store_word(&g_word, a, 0, key);
    scan(NULL, 0);
    ck_kind(a, ML_KIND_DEFINITE);
    g_word ^= key; /* control: the plain pointer keeps it */
    scan(NULL, 0);
    g_word = 0;
    ck_kind(a, ML_KIND_REACHABLE);
}
END_TEST

START_TEST(reach_interior_pointer)
{
    size_t a = blk_new(64), end = blk_new(24), zero = blk_new(0);
    blk_store_word(&g_word, a, 8, 0);
    blk_store(&g_skip_area[0], zero); /* a size-0 block is held by its address */
    blk_store_word((volatile uintptr_t *)&g_skip_area[1], end, 24, 0); /* one past the end: not held */
    scan(NULL, 0);
    g_word = 0;
    g_skip_area[0] = g_skip_area[1] = NULL;
    ck_kind(a, ML_KIND_REACHABLE);
    ck_kind(zero, ML_KIND_REACHABLE);
    ck_kind(end, ML_KIND_DEFINITE);
}
END_TEST

START_TEST(reach_skip_range)
{
    size_t a = blk_new(40);
    blk_store(&g_skip_area[2], a);
    struct ml_range skip[2] = {
        {(uintptr_t)&g_skip_area[3], (uintptr_t)&g_skip_area[4]}, /* unsorted, on purpose */
        {(uintptr_t)&g_skip_area[0], (uintptr_t)&g_skip_area[3]},
    };
    scan(skip, 2);
    ck_kind(a, ML_KIND_DEFINITE);
    scan(NULL, 0); /* control */
    g_skip_area[2] = NULL;
    ck_kind(a, ML_KIND_REACHABLE);
}
END_TEST

START_TEST(reach_meta_heap_not_root)
{
    size_t a = blk_new(40);
    void *volatile *slot = ml_meta_alloc(64);
    ck_assert_ptr_nonnull((void *)slot);
    blk_store(&slot[3], a);
    scan(NULL, 0);
    ck_kind(a, ML_KIND_DEFINITE);
    ml_meta_free((void *)slot);
}
END_TEST

START_TEST(reach_anonymous_mapping)
{
    /* memory a program manages itself (Python's arenas): a root, and a
     * PROT_NONE page in the middle must not crash the scan */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(m != MAP_FAILED);
    ck_assert_int_eq(mprotect(m + page, page, PROT_NONE), 0);
    size_t a = blk_new(40), b = blk_new(40);
    blk_store((void *volatile *)(m + 2 * page + 64), a);
    scan(NULL, 0);
    ck_kind(a, ML_KIND_REACHABLE);
    ck_kind(b, ML_KIND_DEFINITE);
    memset(m + 2 * page, 0, page);
    scan(NULL, 0);
    ck_kind(a, ML_KIND_DEFINITE);
    munmap(m, 3 * page);
}
END_TEST

/* Two pages of a one-page file: the second is mapped readable, and reading
 * it raises SIGBUS. */
static char *map_past_eof(size_t page)
{
    int fd = memfd_create("reach-test", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)page), 0);
    char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert(m != MAP_FAILED);
    close(fd);
    return m;
}

START_TEST(reach_block_faults)
{
    /* A block whose second page lies past the end of its file: maps says
     * readable, reading it raises SIGBUS.  The scan must survive, keep
     * what the first page held, and go on. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = map_past_eof(page);
    size_t x = blk_new(32), y = blk_new(32), control = blk_new(32);
    blk_link(x, 8, y, 0);
    /* the faulting block goes in the table by hand, after the others */
    S->p[S->n] = m;
    S->size[S->n] = 2 * page;
    size_t b = S->n++;
    blk_store((void *volatile *)(m + 128), x);
    blk_store(&g_root, b);
    scan(NULL, 0);
    g_root = NULL;
    ck_kind(b, ML_KIND_REACHABLE);
    ck_kind(x, ML_KIND_REACHABLE);
    ck_kind(y, ML_KIND_REACHABLE);
    ck_kind(control, ML_KIND_DEFINITE);
    /* again with the signals blocked, as in a fatal signal's handler */
    sigset_t faults, old;
    sigemptyset(&faults);
    sigaddset(&faults, SIGSEGV);
    sigaddset(&faults, SIGBUS);
    pthread_sigmask(SIG_BLOCK, &faults, &old);
    blk_store(&g_root, b);
    scan(NULL, 0);
    g_root = NULL;
    sigset_t after;
    pthread_sigmask(SIG_SETMASK, &old, &after);
    ck_assert(sigismember(&after, SIGBUS)); /* the mask is given back */
    ck_kind(y, ML_KIND_REACHABLE);
    munmap(m, 2 * page);
}
END_TEST

START_TEST(reach_small_block_faults)
{
    /* A 64-byte block on a page past the end of its file (reading it
     * raises SIGBUS), read under the jump buffer the work-stack drain and
     * the pointed walk set once for many small blocks: the scan survives
     * the fault and classifies the blocks after it as before. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = map_past_eof(page);
    size_t x = blk_new(32), y = blk_new(32), a = blk_new(32), b = blk_new(32);
    blk_link(x, 8, y, 0);
    blk_link(a, 0, b, 0);
    /* 8 bytes off 16: no glibc chunk header is looked for below it (that
     * read, before the guard is up, would fault) */
    S->p[S->n] = m + page + 72;
    S->size[S->n] = 64;
    size_t bad = S->n++;
    /* rooted: drained (a fault among small blocks), then x and y */
    static void *volatile roots[2];
    blk_store(&roots[0], bad);
    blk_store(&roots[1], x);
    scan(NULL, 0);
    ck_kind(bad, ML_KIND_REACHABLE);
    ck_kind(x, ML_KIND_REACHABLE);
    ck_kind(y, ML_KIND_REACHABLE);
    ck_kind(a, ML_KIND_DEFINITE);
    ck_kind(b, ML_KIND_INDIRECT);
    /* lost: the pointed walk and the clique walk fault on it */
    roots[0] = roots[1] = NULL;
    scan(NULL, 0);
    ck_kind(bad, ML_KIND_DEFINITE);
    ck_kind(x, ML_KIND_DEFINITE);
    ck_kind(y, ML_KIND_INDIRECT);
    ck_kind(a, ML_KIND_DEFINITE);
    ck_kind(b, ML_KIND_INDIRECT);
    munmap(m, 2 * page);
}
END_TEST

START_TEST(reach_block_unreadable)
{
    /* a PROT_NONE block is never read, and nothing crashes */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(m != MAP_FAILED);
    size_t a = blk_new(32);
    S->p[S->n] = m;
    S->size[S->n] = 64;
    size_t b = S->n++;
    blk_store(&g_root, b);
    scan(NULL, 0);
    g_root = NULL;
    ck_kind(b, ML_KIND_REACHABLE);
    ck_kind(a, ML_KIND_DEFINITE);
    munmap(m, page);
}
END_TEST

/* ---- roots in the scanning thread ------------------------------------- */

static __thread void *volatile t_slot;

START_TEST(reach_own_local)
{
    void *volatile local = NULL;
    size_t a = blk_new(40), control = blk_new(40);
    blk_store(&local, a);
    scan(NULL, 0);
    ck_kind(a, ML_KIND_REACHABLE);
    ck_kind(control, ML_KIND_DEFINITE);
    local = NULL;
    scan(NULL, 0);
    ck_kind(a, ML_KIND_DEFINITE);
}
END_TEST

START_TEST(reach_own_tls)
{
    /* the main thread's static TLS: a mapping ld.so made, not a segment */
    size_t a = blk_new(40);
    blk_store(&t_slot, a);
    scan(NULL, 0);
    ck_kind(a, ML_KIND_REACHABLE);
    t_slot = NULL;
    scan(NULL, 0);
    ck_kind(a, ML_KIND_DEFINITE);
}
END_TEST

/* ---- roots in other threads ------------------------------------------- */

enum holder_how { HOLD_STACK, HOLD_TLS, HOLD_DEAD_KEPT };

struct holder {
    pthread_barrier_t bar;
    enum holder_how how;
    size_t blk;
    int detach; /* after the first scan: ml_threads_detach */
    int keep;   /* after the first scan: leave the root in place */
};

/* A 16 KiB frame with the pointer at its bottom, far below the thread's
 * TLS; it is dead once this returns. */
static NOINLINE void holder_deep(size_t i)
{
    void *volatile deep[2048];
    for (size_t k = 0; k < 2048; k++)
        deep[k] = NULL;
    blk_store(&deep[0], i);
    __asm__ volatile("" : : "r"(deep) : "memory");
}

static NOINLINE void holder_frame(struct holder *h)
{
    void *volatile local = NULL;
    if (h->how == HOLD_STACK)
        blk_store(&local, h->blk);
    else if (h->how == HOLD_TLS)
        blk_store(&t_slot, h->blk);
    else
        holder_deep(h->blk);
    /* Leave no copy below the stack pointer either, where a scan that does
     * not stop this thread reads (HOLD_DEAD_KEPT leaves the one in
     * holder_deep's dead frame on purpose).  (The suite links with -z now:
     * a lazy PLT resolution would save every register, the block's address
     * in rax included, a few KiB down this stack.) */
    if (h->how != HOLD_DEAD_KEPT)
        stack_clobber();
    pthread_barrier_wait(&h->bar); /* 1: the main thread scans */
    pthread_barrier_wait(&h->bar); /* 2 */
    if (!h->keep) {
        local = NULL;
        t_slot = NULL;
    }
    if (h->detach)
        ml_threads_detach();
    pthread_barrier_wait(&h->bar); /* 3: the main thread scans again */
    pthread_barrier_wait(&h->bar); /* 4 */
}

static void *holder_main(void *arg)
{
    ml_threads_attach();
    holder_frame(arg);
    return NULL;
}

/* Runs a holder thread; kinds of h->blk at barrier 1 and 3. */
static void holder_run(enum holder_how how, int detach, int *first, int *second)
{
    struct holder *h = ml_meta_alloc(sizeof *h);
    ck_assert_ptr_nonnull(h);
    h->how = how;
    h->detach = detach;
    h->blk = blk_new(56);
    size_t control = blk_new(56);
    pthread_barrier_init(&h->bar, NULL, 2);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, holder_main, h), 0);
    pthread_barrier_wait(&h->bar);
    scan(NULL, 0);
    *first = S->kind[h->blk];
    ck_kind(control, ML_KIND_DEFINITE);
    pthread_barrier_wait(&h->bar);
    pthread_barrier_wait(&h->bar);
    scan(NULL, 0);
    *second = S->kind[h->blk];
    pthread_barrier_wait(&h->bar);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&h->bar);
    ml_meta_free(h);
}

START_TEST(reach_other_thread_stack)
{
    int first, second;
    holder_run(HOLD_STACK, 0, &first, &second);
    ck_assert_str_eq(kind_name(first), "reachable");
    ck_assert_str_eq(kind_name(second), "definite");
}
END_TEST

START_TEST(reach_other_thread_tls)
{
    int first, second;
    holder_run(HOLD_TLS, 0, &first, &second);
    ck_assert_str_eq(kind_name(first), "reachable");
    ck_assert_str_eq(kind_name(second), "definite");
}
END_TEST

START_TEST(reach_detached_thread_stack)
{
    /* A stale pointer deep in a live thread's stack, below its stack
     * pointer, keeps nothing: the thread waits in pthread_barrier_wait (a
     * futex wait, restarted unseen after a handler), so freeze.c holds it
     * and the scan starts at its stack pointer (the whole stack block was
     * read before, and the block was reachable).  Once the thread has
     * detached its stack is no longer a root at all. */
    int first, second;
    holder_run(HOLD_DEAD_KEPT, 1, &first, &second);
    ck_assert_str_eq(kind_name(first), "definite");
    ck_assert_str_eq(kind_name(second), "definite");
}
END_TEST

START_TEST(reach_detached_thread_tls)
{
    /* glibc keeps an exited thread's TLS and descriptor in its stack
     * cache, and frees what its DTV holds only on reuse: still a root */
    struct holder *h = ml_meta_alloc(sizeof *h);
    ck_assert_ptr_nonnull(h);
    h->how = HOLD_TLS;
    h->detach = 1;
    h->keep = 1;
    h->blk = blk_new(56);
    pthread_barrier_init(&h->bar, NULL, 2);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, holder_main, h), 0);
    pthread_barrier_wait(&h->bar);
    pthread_barrier_wait(&h->bar);
    pthread_barrier_wait(&h->bar); /* detached, t_slot still set */
    scan(NULL, 0);
    ck_kind(h->blk, ML_KIND_REACHABLE);
    pthread_barrier_wait(&h->bar);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&h->bar);
    ml_meta_free(h);
}
END_TEST

START_TEST(reach_threads_after_fork)
{
    struct holder *h = ml_meta_alloc(sizeof *h);
    ck_assert_ptr_nonnull(h);
    h->how = HOLD_STACK;
    h->blk = blk_new(56);
    pthread_barrier_init(&h->bar, NULL, 2);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, holder_main, h), 0);
    pthread_barrier_wait(&h->bar);
    /* not on the stack: a thread's block ends where the next mapping, the
     * test's arena, begins, so hi is the first block's address */
    struct ml_thread_root *th = ml_meta_alloc(8 * sizeof *th);
    ck_assert_ptr_nonnull(th);
    size_t before = ml_threads_list(th, 8);
    pid_t pid = fork();
    if (pid == 0) {
        ml_threads_after_fork();
        size_t n = ml_threads_list(th, 8);
        int live = 0, self = 0;
        for (size_t i = 0; i < n && i < 8; i++) {
            live += !th[i].gone;
            self += !th[i].gone && th[i].tp == (uintptr_t)pthread_self();
        }
        /* the holder's stack is a dead copy here: not a root */
        scan(NULL, 0);
        _exit((n != before) | (live != 1) << 1 | (self != 1) << 2 |
              (S->kind[h->blk] != ML_KIND_DEFINITE) << 3);
    }
    ck_assert_int_gt(pid, 0);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    pthread_barrier_wait(&h->bar);
    pthread_barrier_wait(&h->bar);
    pthread_barrier_wait(&h->bar);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&h->bar);
    ml_meta_free(h);
    ml_meta_free(th);
    ck_assert_int_ge(before, 2);
    /* bits: 1 count changed, 2 not one live thread, 4 caller not it, 8 the
     * dead thread's stack still a root */
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: status %#x", status);
}
END_TEST

/* ---- every word of a block is read ------------------------------------ */

START_TEST(reach_every_word)
{
    /* a 13-word block holds 13 blocks, one at each word (eight words a
     * step, then a tail): each is reachable while the holder is rooted,
     * indirect once it is dropped */
    S = NULL;
    set_new(64);
    size_t holder = blk_new(13 * 8), held[13];
    for (size_t k = 0; k < 13; k++) {
        held[k] = blk_new(16);
        blk_link(holder, 8 * k, held[k], 0);
    }
    blk_store(&g_root, holder);
    scan(NULL, 0);
    g_root = NULL;
    for (size_t k = 0; k < 13; k++)
        ck_kind(held[k], ML_KIND_REACHABLE);
    scan(NULL, 0);
    ck_kind(holder, ML_KIND_DEFINITE);
    for (size_t k = 0; k < 13; k++)
        ck_kind(held[k], ML_KIND_INDIRECT);
}
END_TEST

START_TEST(reach_every_tail_word)
{
    /* holders of 1 to 16 words, each word holding a block of its own:
     * every position of the eight-word steps and of the 1..7-word tail
     * read by masked loads finds its block; a word past the holder's end
     * is not read */
    S = NULL;
    set_new(256);
    size_t holder[16], held[16][16], after[16];
    for (size_t w = 1; w <= 16; w++) {
        holder[w - 1] = blk_new(8 * w);
        for (size_t k = 0; k < w; k++) {
            held[w - 1][k] = blk_new(16);
            blk_link(holder[w - 1], 8 * k, held[w - 1][k], 0);
        }
        after[w - 1] = blk_new(16);
        /* in the gap the arena leaves after each block: not the holder's */
        blk_link(holder[w - 1], 8 * w, after[w - 1], 0);
    }
    scan(NULL, 0);
    for (size_t w = 1; w <= 16; w++) {
        ck_kind(holder[w - 1], ML_KIND_DEFINITE);
        for (size_t k = 0; k < w; k++)
            ck_kind(held[w - 1][k], ML_KIND_INDIRECT);
        ck_kind(after[w - 1], ML_KIND_DEFINITE);
    }
}
END_TEST

START_TEST(reach_tail_at_page_end)
{
    /* holders of 1 to 15 words ending where an inaccessible page begins:
     * reading their tails reads nothing past their ends (it would fault,
     * and the blocks they hold would be lost from view) */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 30 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(m != MAP_FAILED);
    S = NULL;
    set_new(256);
    size_t holder[15], held[15][15];
    for (size_t w = 1; w <= 15; w++) {
        char *pg = m + 2 * (w - 1) * page;
        ck_assert_int_eq(mprotect(pg + page, page, PROT_NONE), 0);
        S->p[S->n] = pg + page - 8 * w;
        S->size[S->n] = 8 * w;
        holder[w - 1] = S->n++;
        for (size_t k = 0; k < w; k++) {
            held[w - 1][k] = blk_new(16);
            blk_link(holder[w - 1], 8 * k, held[w - 1][k], 0);
        }
    }
    scan(NULL, 0);
    for (size_t w = 1; w <= 15; w++) {
        ck_kind(holder[w - 1], ML_KIND_DEFINITE);
        for (size_t k = 0; k < w; k++)
            ck_kind(held[w - 1][k], ML_KIND_INDIRECT);
    }
    munmap(m, 30 * page);
}
END_TEST

/* ---- a report that counts some blocks only (a fork child's) ---------- */

/* Classifies every block of S with ml_reach_classify_own, blocks whose
 * theirs[] is set not counted (the fork parent's). */
static NOINLINE void scan_own_below(const uint8_t *theirs)
{
    live_build();
    /* live[] is in address order now; seq - 1 is the block's index */
    uint8_t *by_pos = ml_meta_alloc(S->n + 1);
    ck_assert_ptr_nonnull(by_pos);
    for (size_t k = 0; k < S->n; k++)
        by_pos[k] = theirs[S->live[k].seq - 1];
    stack_clobber();
    ml_reach_classify_own(S->live, S->n, NULL, 0, NULL, by_pos);
    ml_meta_free(by_pos);
    live_collect();
}

static inline __attribute__((always_inline)) void scan_own(const uint8_t *theirs)
{
    stack_clobber();
    scan_own_below(theirs);
}

/* The same with an exit frame (a report at exit, _exit or exec): its
 * registers are roots, and its stack from sp up, sp this helper's frame.
 * A report counting at most 16 blocks then first looks for a direct
 * pointer to each (reach.c, quick_all_held). */
static NOINLINE void scan_own_exit_below(const uint8_t *theirs, const struct ml_range *skip, size_t nskip,
                                         uintptr_t reg)
{
    live_build();
    uint8_t *by_pos = ml_meta_alloc(S->n + 1);
    ck_assert_ptr_nonnull(by_pos);
    for (size_t k = 0; k < S->n; k++)
        by_pos[k] = theirs[S->live[k].seq - 1];
    struct ml_exit_frame ef = {.sp = (uintptr_t)__builtin_frame_address(0), .regs = {reg, 0, 0, 0, 0, 0}};
    reg = 0;
    stack_clobber();
    ml_reach_classify_own(S->live, S->n, skip, nskip, &ef, by_pos);
    ef.regs[0] = 0;
    ml_meta_free(by_pos);
    live_collect();
}

static inline __attribute__((always_inline)) void scan_own_exit(const uint8_t *theirs, const struct ml_range *skip,
                                                                size_t nskip, uintptr_t reg)
{
    stack_clobber();
    scan_own_exit_below(theirs, skip, nskip, reg);
}

static NOINLINE uintptr_t blk_addr_xor(size_t i) { return (uintptr_t)S->p[i] ^ 0x5a5a5a5a5a5a5a5aull; }

START_TEST(reach_own_quick)
{
    /* the child's blocks: g is held by a global, r by an exit register
     * only, k only from a skip range, i only through g; the parent's t is
     * lost and not counted.  Held directly, g and r need no scan; k and i
     * take the full one, which must still find k lost and i reachable */
    size_t g = blk_new(24), r = blk_new(40), k = blk_new(16), i = blk_new(8), t = blk_new(32);
    uint8_t theirs[5] = {0};
    theirs[t] = 1;
    struct ml_range skip[1] = {{(uintptr_t)&g_skip_area[0], (uintptr_t)&g_skip_area[4]}};
    blk_store(&g_root, g);
    blk_store(&g_skip_area[1], k);
    blk_link(g, 8, i, 0);
    uintptr_t key = 0x5a5a5a5a5a5a5a5aull;
    scan_own_exit(theirs, skip, 1, blk_addr_xor(r) ^ key);
    ck_kind(g, ML_KIND_REACHABLE);
    ck_kind(r, ML_KIND_REACHABLE);
    ck_kind(i, ML_KIND_REACHABLE);
    ck_kind(k, ML_KIND_DEFINITE);
    /* only g and r counted: the direct pass alone; then r's register gone */
    theirs[k] = theirs[i] = 1;
    scan_own_exit(theirs, skip, 1, blk_addr_xor(r) ^ key);
    ck_kind(g, ML_KIND_REACHABLE);
    ck_kind(r, ML_KIND_REACHABLE);
    scan_own_exit(theirs, skip, 1, 0);
    ck_kind(g, ML_KIND_REACHABLE);
    ck_kind(r, ML_KIND_DEFINITE);
    /* only k counted, held from the skip range alone: lost */
    theirs[g] = theirs[r] = 1;
    theirs[k] = 0;
    scan_own_exit(theirs, skip, 1, 0);
    ck_kind(k, ML_KIND_DEFINITE);
    scan_own_exit(theirs, NULL, 0, 0); /* control: without the skip range, held */
    ck_kind(k, ML_KIND_REACHABLE);
    g_root = NULL;
    g_skip_area[1] = NULL;
}
END_TEST

START_TEST(reach_own_through_theirs)
{
    /* g_root -> t (the parent's) -> a (the child's): a is reachable only
     * through a block the report does not count; once t is dropped, a is
     * t's indirect block, as the full classification says */
    size_t t = blk_new(32), a = blk_new(32), u = blk_new(32);
    blk_link(t, 8, a, 0);
    uint8_t theirs[3] = {0};
    theirs[t] = theirs[u] = 1;
    blk_store(&g_root, t);
    scan_own(theirs);
    ck_kind(a, ML_KIND_REACHABLE);
    g_root = NULL;
    scan_own(theirs);
    ck_kind(a, ML_KIND_INDIRECT);
    ck_kind(t, ML_KIND_DEFINITE);
    ck_kind(u, ML_KIND_DEFINITE);
}
END_TEST

START_TEST(reach_own_found_early)
{
    /* the child's two blocks are rooted in a global and its stack while
     * the parent's lost list and lost singletons stay unread: the child's
     * are reachable; then the child's own lost list is classified in full
     * (head definite, the rest indirect) and so is its lost singleton */
    size_t mine = blk_new(24), list[5], single[4], lone = blk_new(16);
    for (int i = 0; i < 5; i++)
        list[i] = blk_new(16);
    for (int i = 0; i < 4; i++)
        single[i] = blk_new(40);
    for (int i = 0; i + 1 < 5; i++)
        blk_link(list[i], 0, list[i + 1], 0);
    uint8_t theirs[16] = {0};
    for (int i = 0; i < 4; i++)
        theirs[single[i]] = 1;
    for (int i = 0; i < 5; i++)
        theirs[list[i]] = 1;
    blk_store(&g_root, mine);
    blk_link(mine, 8, lone, 0);
    scan_own(theirs);
    ck_kind(mine, ML_KIND_REACHABLE);
    ck_kind(lone, ML_KIND_REACHABLE);
    /* the parent's head only: its tail is the child's, lost, owned by it */
    for (int i = 2; i < 5; i++)
        theirs[list[i]] = 0;
    scan_own(theirs);
    ck_kind(mine, ML_KIND_REACHABLE);
    ck_kind(lone, ML_KIND_REACHABLE);
    ck_kind(list[0], ML_KIND_DEFINITE);
    for (int i = 1; i < 5; i++)
        ck_kind(list[i], ML_KIND_INDIRECT);
    g_root = NULL;
    scan_own(theirs);
    ck_kind(mine, ML_KIND_DEFINITE);
    ck_kind(lone, ML_KIND_INDIRECT);
    ck_kind(list[0], ML_KIND_DEFINITE);
    for (int i = 1; i < 5; i++)
        ck_kind(list[i], ML_KIND_INDIRECT);
    for (int i = 0; i < 4; i++)
        ck_kind(single[i], ML_KIND_DEFINITE);
}
END_TEST

START_TEST(reach_lost_singletons_owners)
{
    /* lost blocks that hold no other lost block and that none holds are
     * each their own definite leak, between lost structures (a pair, a
     * cycle) whose classification goes on as before */
    size_t s0 = blk_new(16), p0 = blk_new(16), s1 = blk_new(16), p1 = blk_new(16), c0 = blk_new(16),
           c1 = blk_new(16), s2 = blk_new(16);
    blk_link(p0, 0, p1, 0);
    blk_link(c0, 0, c1, 0);
    blk_link(c1, 0, c0, 0);
    scan(NULL, 0);
    ck_kind(s0, ML_KIND_DEFINITE);
    ck_kind(s1, ML_KIND_DEFINITE);
    ck_kind(s2, ML_KIND_DEFINITE);
    ck_kind(p0, ML_KIND_DEFINITE);
    ck_kind(p1, ML_KIND_INDIRECT);
    ck_kind(c0, ML_KIND_DEFINITE); /* a pure cycle: the first allocated */
    ck_kind(c1, ML_KIND_INDIRECT);
    for (size_t k = 0; k < S->n; k++) {
        const struct ml_live *b = &S->live[k];
        size_t owner_index = S->live[b->owner].seq - 1, me = b->seq - 1;
        if (me == s0 || me == s1 || me == s2 || me == p0 || me == c0)
            ck_assert_uint_eq(owner_index, me);
        if (me == p1)
            ck_assert_uint_eq(owner_index, p0);
        if (me == c1)
            ck_assert_uint_eq(owner_index, c0);
    }
}
END_TEST

/* ---- a lost graph: its pointers kept, or read twice ------------------ */

#define GRAPH_N 2000

/* Block 0 holds block 1; blocks 1..N-1 form a ring (each holds the next),
 * and each also holds `extra` others spread over the ring.  Nothing holds
 * block 0: it is the one definite block, every other one indirect. */
static NOINLINE void graph_build(size_t extra)
{
    S = NULL;
    set_new(GRAPH_N);
    for (size_t i = 0; i < GRAPH_N; i++)
        blk_new(8 * (extra + 1));
    blk_link(0, 0, 1, 0);
    for (size_t i = 1; i < GRAPH_N; i++) {
        blk_link(i, 0, i + 1 < GRAPH_N ? i + 1 : 1, 0);
        for (size_t k = 1; k <= extra; k++)
            blk_link(i, 8 * k, 1 + (i * 7 + k * 131) % (GRAPH_N - 1), 0);
    }
}

static void graph_check(void)
{
    ck_kind(0, ML_KIND_DEFINITE);
    size_t indirect = 0;
    for (size_t i = 1; i < GRAPH_N; i++)
        indirect += S->kind[i] == ML_KIND_INDIRECT;
    ck_assert_uint_eq(indirect, GRAPH_N - 1);
}

START_TEST(reach_lost_graph_kept)
{
    /* 3 pointers a block: step 4 follows the pointers step 3 kept */
    graph_build(2);
    scan(NULL, 0);
    graph_check();
}
END_TEST

START_TEST(reach_lost_graph_reread)
{
    /* 8 pointers a block, more than step 3 keeps (4 a lost block): step 4
     * reads the blocks again */
    graph_build(7);
    scan(NULL, 0);
    graph_check();
}
END_TEST

START_TEST(reach_lost_graph_rooted_part)
{
    /* a global holds block 1000 of the ring: all of the ring is reachable,
     * block 0 (which only holds it) is definite, the pointers into the
     * reachable ring are not kept */
    graph_build(2);
    blk_store(&g_root, 1000);
    scan(NULL, 0);
    g_root = NULL;
    ck_kind(0, ML_KIND_DEFINITE);
    for (size_t i = 1; i < GRAPH_N; i++)
        ck_kind(i, ML_KIND_REACHABLE);
}
END_TEST

/* ---- scale ------------------------------------------------------------- */

#define BIG_N 1000000

static NOINLINE void big_list(void)
{
    for (size_t i = 0; i < BIG_N; i++)
        blk_new(64);
    for (size_t i = 0; i + 1 < BIG_N; i++)
        blk_link(i, 0, i + 1, 0);
}

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct timing {
    double wall, cpu; /* the machine is shared: CPU time is the steadier figure */
};

static NOINLINE void timed_scan_below(struct timing *t)
{
    live_build();
    stack_clobber();
    double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    ml_reach_classify(S->live, S->n, NULL, 0, NULL);
    t->cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    t->wall = now_s(CLOCK_MONOTONIC) - w0;
    live_collect();
}

static inline __attribute__((always_inline)) void timed_scan(struct timing *t)
{
    stack_clobber();
    timed_scan_below(t);
}

START_TEST(reach_million_list)
{
    S = NULL;
    set_new(BIG_N);
    big_list();
    struct timing lost, kept;
    timed_scan(&lost);
    size_t count[3] = {0, 0, 0};
    for (size_t i = 0; i < S->n; i++)
        count[S->kind[i]]++;
    ck_kind(0, ML_KIND_DEFINITE);
    ck_assert_uint_eq(count[ML_KIND_DEFINITE], 1);
    ck_assert_uint_eq(count[ML_KIND_INDIRECT], BIG_N - 1);

    blk_store(&g_root, 0);
    timed_scan(&kept);
    g_root = NULL;
    ck_kind(BIG_N - 1, ML_KIND_REACHABLE);
    printf("reach_million_list: %d blocks of 64 bytes, classify: dropped list (1 definite + %d "
           "indirect) %.3f s wall %.3f s cpu; rooted list (all reachable) %.3f s wall %.3f s cpu\n",
           BIG_N, BIG_N - 1, lost.wall, lost.cpu, kept.wall, kept.cpu);
    fflush(stdout);
}
END_TEST

static Suite *reach_suite(void)
{
    Suite *s = suite_create("reach");
    TCase *tc = tcase_create("classify");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reach_global_root);
    tcase_add_test(tc, reach_global_chain);
    tcase_add_test(tc, reach_list_dropped);
    tcase_add_test(tc, reach_list_dropped_head_last);
    tcase_add_test(tc, reach_list_rooted_midway);
    tcase_add_test(tc, reach_cycle_dropped);
    tcase_add_test(tc, reach_fanout_dropped);
    tcase_add_test(tc, reach_xor_hidden);
    tcase_add_test(tc, reach_interior_pointer);
    tcase_add_test(tc, reach_skip_range);
    tcase_add_test(tc, reach_meta_heap_not_root);
    tcase_add_test(tc, reach_anonymous_mapping);
    tcase_add_test(tc, reach_block_faults);
    tcase_add_test(tc, reach_small_block_faults);
    tcase_add_test(tc, reach_block_unreadable);
    tcase_add_test(tc, reach_own_local);
    tcase_add_test(tc, reach_own_tls);
    tcase_add_test(tc, reach_other_thread_stack);
    tcase_add_test(tc, reach_other_thread_tls);
    tcase_add_test(tc, reach_detached_thread_stack);
    tcase_add_test(tc, reach_detached_thread_tls);
    tcase_add_test(tc, reach_threads_after_fork);
    tcase_add_test(tc, reach_every_word);
    tcase_add_test(tc, reach_every_tail_word);
    tcase_add_test(tc, reach_tail_at_page_end);
    tcase_add_test(tc, reach_own_through_theirs);
    tcase_add_test(tc, reach_own_found_early);
    tcase_add_test(tc, reach_own_quick);
    tcase_add_test(tc, reach_lost_singletons_owners);
    tcase_add_test(tc, reach_lost_graph_kept);
    tcase_add_test(tc, reach_lost_graph_reread);
    tcase_add_test(tc, reach_lost_graph_rooted_part);
    suite_add_tcase(s, tc);
    TCase *big = tcase_create("scale");
    tcase_add_checked_fixture(big, setup, teardown);
    tcase_set_timeout(big, 300);
    tcase_add_test(big, reach_million_list);
    suite_add_tcase(s, big);
    return s;
}

/* argv[1]: the test case to run (classify or scale); all when absent. */
int main(int argc, char **argv)
{
    SRunner *sr = srunner_create(reach_suite());
    if (argc > 1)
        srunner_run(sr, NULL, argv[1], CK_NORMAL);
    else
        srunner_run_all(sr, CK_NORMAL);
    /* a misspelt case name runs nothing: that is a failure too */
    int failed = srunner_ntests_failed(sr) || srunner_ntests_run(sr) == 0;
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
