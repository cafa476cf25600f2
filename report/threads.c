/* report/threads.c: the registry of threads whose stacks and TLS are roots
 * for the exit-time reachability scan (reach.c).
 *
 * One entry per thread that ever made a traced allocation: its thread
 * pointer (pthread_self() on x86_64) and the extent of its stack block.  For
 * a thread glibc created, pthread_getattr_np reports the whole block above
 * the guard page: the stack, then the static TLS, then the thread descriptor
 * at the top, so one range covers all three.  The main thread's stack is
 * the kernel's [stack] mapping, which grows; only an anchor inside it is
 * kept (__libc_stack_end) and reach.c resolves the current extent from
 * /proc/self/maps when it scans.  Its TLS sits in a separate mapping that
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

#include "../core/os.h"

#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Gone entries kept at most; beyond it the oldest are forgotten. */
#define THREADS_GONE_MAX 1024

extern void *__libc_stack_end;

static struct {
    ml_mutex lock;
    struct ml_thread_root *v; /* meta heap */
    size_t n, cap;
    size_t ngone;
} threads = {.lock = ML_MUTEX_INIT};

static int threads_is_main(void) { return syscall(SYS_gettid) == getpid(); }

/* The stack block of the calling thread, outside the lock: pthread_getattr_np
 * takes the descriptor's lock and may allocate (its affinity mask). */
static void threads_extent(struct ml_thread_root *e)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    size_t page = ml_os_page_size();
    e->tp = (uintptr_t)pthread_self();
    e->is_main = threads_is_main();
    if (e->is_main) {
        /* Never pthread_getattr_np here: for the initial thread it parses
         * /proc/self/maps through stdio. */
        uintptr_t top = (uintptr_t)__libc_stack_end;
        e->lo = sp & ~(page - 1);
        e->hi = top > sp ? (top + page) & ~(page - 1) : e->lo + page;
        return;
    }
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) != 0)
            size = 0;
        pthread_attr_destroy(&attr);
    }
    if (size && sp >= (uintptr_t)addr && sp < (uintptr_t)addr + size) {
        e->lo = (uintptr_t)addr;
        e->hi = (uintptr_t)addr + size;
    } else {
        /* A thread glibc knows nothing of (raw clone) or a failure: keep only
         * the page of the current frame as an anchor. */
        e->lo = sp & ~(page - 1);
        e->hi = e->lo + page;
    }
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
        int overlap = t->lo < e->hi && e->lo < t->hi;
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

    ml_mutex_lock(&threads.lock);
    threads_drop_reused(&e);
    for (size_t i = 0; i < threads.n; i++) {
        if (threads.v[i].tp == e.tp) {
            threads.v[i] = e; /* attached twice: refresh */
            ml_mutex_unlock(&threads.lock);
            return;
        }
    }
    if (threads.n == threads.cap) {
        size_t cap = threads.cap ? threads.cap * 2 : 64;
        struct ml_thread_root *v = ml_meta_alloc(cap * sizeof *v);
        if (!v) {
            /* Out of meta memory: the thread goes unregistered; reach.c still
             * scans its stack as an anonymous mapping. */
            ml_mutex_unlock(&threads.lock);
            return;
        }
        if (threads.n)
            memcpy(v, threads.v, threads.n * sizeof *v);
        ml_meta_free(threads.v);
        threads.v = v;
        threads.cap = cap;
    }
    threads.v[threads.n++] = e;
    ml_mutex_unlock(&threads.lock);
}

void ml_threads_detach(void)
{
    uintptr_t tp = (uintptr_t)pthread_self();
    ml_mutex_lock(&threads.lock);
    for (size_t i = 0; i < threads.n; i++) {
        struct ml_thread_root *t = &threads.v[i];
        if (t->tp != tp || t->gone)
            continue;
        t->gone = 1;
        threads.ngone++;
        break;
    }
    while (threads.ngone > THREADS_GONE_MAX) {
        size_t i = 0;
        while (!threads.v[i].gone)
            i++;
        threads_remove(i);
    }
    ml_mutex_unlock(&threads.lock);
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
    }
}

size_t ml_threads_list(struct ml_thread_root *out, size_t cap)
{
    ml_mutex_lock(&threads.lock);
    size_t n = threads.n;
    if (out && cap)
        memcpy(out, threads.v, (n < cap ? n : cap) * sizeof *out);
    ml_mutex_unlock(&threads.lock);
    return n;
}
