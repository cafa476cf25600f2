/* report/threads.c: the registry of threads whose stacks and TLS are roots
 * for the exit-time reachability scan (reach.c).
 *
 * One entry per thread that ever made a traced allocation: its thread
 * pointer (pthread_self() on x86_64) and an anchor in its stack.  For a
 * thread glibc created the stack block above the guard page holds the
 * stack, then the static TLS, then the thread descriptor at the top, so one
 * range covers all three; reach.c resolves it from /proc/self/maps when it
 * scans (see threads_extent: no glibc call is made at attach time).  The
 * main thread's stack is the kernel's [stack] mapping, which grows; only an
 * anchor inside it is kept (__libc_stack_end) and reach.c resolves the
 * current extent at scan time too.  Its TLS sits in a separate mapping that
 * ld.so made, found through the thread pointer at scan time as well.
 *
 * Invariants: the table lives in the meta heap and is guarded by one
 * ml_mutex; at most one live entry per thread pointer.  An exited thread's
 * entry is kept, marked gone, because glibc caches the stack block of an
 * exited thread and its descriptor still points (through the DTV) at
 * dynamic TLS blocks that glibc frees only when the block is reused; reach.c
 * scans a gone thread's TLS and descriptor but no longer its stack.  Gone
 * entries whose block is taken by a newly attached thread are dropped, and
 * their number is capped so a program that churns threads cannot grow the
 * table without bound.
 *
 * Trade-off: attach runs once per thread on a cold path, so a linear search
 * under a global lock is fine; scans happen once, at exit.
 */
#define _GNU_SOURCE
#include "report.h"

#include "../core/lock.h"
#include "../core/meta.h"
#include "../core/os.h"
#include "busy.h"
#include "pressure.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Gone entries kept at most; beyond it the oldest are forgotten. */
#define THREADS_GONE_MAX 1024
/* A thread pointer this far above the first frame is not the top of the
 * same stack block. */
#define THREADS_STACK_MAX ((uintptr_t)1 << 32)

extern void *__libc_stack_end;

/* busy.h's count lives here, with the first of the trace layer's locks
 * (threads.c is linked wherever any of them is). */
ML_TLS int ml_tr_busy;

static struct {
    ml_mutex lock;
    struct ml_thread_root *v; /* meta heap */
    size_t n, cap;
    size_t ngone;
} threads = {.lock = ML_MUTEX_INIT};

/* What the calling thread can say about its stack without asking glibc.
 * Never pthread_getattr_np here: this runs inside the thread's first traced
 * allocation, and glibc itself allocates inside pthread_getattr_np with the
 * thread's descriptor lock held (Ruby, JVMs and GCs call it first thing in
 * a new thread), so asking again would wait on that lock forever.  The
 * main thread's stack is [stack]; for any other thread the current frame
 * is an anchor inside its stack mapping and, for a thread glibc created,
 * the descriptor (the thread pointer) sits at the top of the same block,
 * just above the static TLS.  reach.c turns the anchor into the mapping's
 * extent when it scans (the guard page below a glibc stack is a mapping of
 * its own, so the mapping starts where the stack does), clipped at hi. */
static void threads_extent(struct ml_thread_root *e)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    size_t page = ml_os_page_size();
    e->tp = (uintptr_t)pthread_self();
    e->tid = (int)syscall(SYS_gettid);
    /* The initial thread's descriptor lies in a mapping of ld.so's, not
     * above its stack.  A thread glibc created keeps its block when it
     * forks, and in the child its tid is the pid: taken for the initial
     * thread, it claimed [stack] and everything from its frame up, which
     * dropped the gone entries of the threads whose cached stacks lie
     * above it, and their dead frames became roots (stats_threads' child:
     * its 333-byte leak reachable in 7 of 12 runs). */
    int own_block = e->tp > sp && e->tp - sp < THREADS_STACK_MAX;
    e->is_main = e->tid == getpid() && !own_block;
    e->lo = sp & ~(page - 1);
    if (e->is_main) {
        uintptr_t top = (uintptr_t)__libc_stack_end;
        e->hi = top > sp ? (top + page) & ~(page - 1) : e->lo + page;
        return;
    }
    e->anchored = 1;
    if (own_block)
        /* one page past the page holding the descriptor's start: the
         * descriptor is smaller than a page; reach.c clips to the mapping */
        e->hi = ((e->tp + page) & ~(page - 1)) + page;
    else
        e->hi = UINTPTR_MAX; /* not glibc's layout: the whole mapping */
}

static void threads_remove(size_t i)
{
    if (threads.v[i].gone)
        threads.ngone--;
    threads.v[i] = threads.v[--threads.n];
}

/* Call with the lock held.  Drops gone entries whose block overlaps e, or
 * that share its thread pointer: the block was reused. */
static void threads_drop_reused(const struct ml_thread_root *e)
{
    for (size_t i = 0; i < threads.n;) {
        const struct ml_thread_root *t = &threads.v[i];
        /* an unbounded anchor stands for its own page only here */
        uintptr_t thi = t->hi == UINTPTR_MAX ? t->lo + 1 : t->hi,
                  ehi = e->hi == UINTPTR_MAX ? e->lo + 1 : e->hi;
        int overlap = t->lo < ehi && e->lo < thi;
        if (t->gone && (t->tp == e->tp || (!t->is_main && overlap)))
            threads_remove(i);
        else
            i++;
    }
}

void ml_threads_attach(void)
{
    struct ml_thread_root e;
    memset(&e, 0, sizeof e);
    threads_extent(&e);

    ml_tr_lock(&threads.lock);
    threads_drop_reused(&e);
    for (size_t i = 0; i < threads.n; i++) {
        if (threads.v[i].tp == e.tp) {
            e.alt_lo = threads.v[i].alt_lo;
            e.alt_hi = threads.v[i].alt_hi;
            threads.v[i] = e; /* attached twice: refresh */
            ml_tr_unlock(&threads.lock);
            return;
        }
    }
    if (threads.n == threads.cap) {
        size_t cap = threads.cap ? threads.cap * 2 : 64;
        struct ml_thread_root *v = ml_meta_alloc(cap * sizeof *v);
        if (!v) {
            /* Out of meta memory: the thread goes unregistered; reach.c still
             * scans its stack as an anonymous mapping. */
            ml_tr_unlock(&threads.lock);
            ml_tr_degrade("the thread list");
            return;
        }
        if (threads.n)
            memcpy(v, threads.v, threads.n * sizeof *v);
        ml_meta_free(threads.v);
        threads.v = v;
        threads.cap = cap;
    }
    threads.v[threads.n++] = e;
    ml_tr_unlock(&threads.lock);
}

void ml_threads_detach(void)
{
    uintptr_t tp = (uintptr_t)pthread_self();
    ml_tr_lock(&threads.lock);
    for (size_t i = 0; i < threads.n; i++) {
        struct ml_thread_root *t = &threads.v[i];
        if (t->tp != tp || t->gone)
            continue;
        t->gone = 1;
        /* its signal stack ends with it, and the memory may be anything later */
        t->alt_lo = t->alt_hi = 0;
        threads.ngone++;
        break;
    }
    while (threads.ngone > THREADS_GONE_MAX) {
        size_t i = 0;
        while (!threads.v[i].gone)
            i++;
        threads_remove(i);
    }
    ml_tr_unlock(&threads.lock);
}

void ml_threads_altstack(uintptr_t lo, uintptr_t hi)
{
    uintptr_t tp = (uintptr_t)pthread_self();
    ml_tr_lock(&threads.lock);
    for (size_t i = 0; i < threads.n; i++) {
        struct ml_thread_root *t = &threads.v[i];
        if (t->tp == tp && !t->gone) {
            t->alt_lo = lo;
            t->alt_hi = hi;
            break;
        }
    }
    ml_tr_unlock(&threads.lock);
}

void ml_threads_after_fork(void)
{
    /* The child has one thread; whoever held the lock in the parent is not
     * in it.  The other threads' blocks are still mapped here, and glibc
     * moves them to its stack cache, so they become gone, not forgotten. */
    ml_mutex_reset(&threads.lock);
    uintptr_t tp = (uintptr_t)pthread_self();
    threads.ngone = 0;
    for (size_t i = 0; i < threads.n; i++) {
        struct ml_thread_root *t = &threads.v[i];
        t->gone = t->tp != tp;
        threads.ngone += (size_t)t->gone;
        if (!t->gone)
            t->tid = (int)syscall(SYS_gettid); /* the child's own */
    }
}

size_t ml_threads_list(struct ml_thread_root *out, size_t cap)
{
    ml_tr_lock(&threads.lock);
    size_t n = threads.n;
    if (out && cap)
        memcpy(out, threads.v, (n < cap ? n : cap) * sizeof *out);
    ml_tr_unlock(&threads.lock);
    return n;
}
