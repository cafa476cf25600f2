/* report/trace.c: the tracing decorator (SQLite's memtrace.c pattern).
 *
 * ml_trace_wrap keeps the inner backend and returns a struct ml_backend of
 * its own whose slots record, then delegate.  The hot path stores a stack
 * id, a size and a tag in the block table and nothing more; everything else
 * waits for the exit report (report/finish.c).
 *
 * Recursion guard: a per-thread flag is set while mallard works on a
 * request.  Whatever the unwinder, libdw or glibc allocate while it is set
 * comes from the meta heap and is neither traced nor handed to the backend;
 * such blocks are recognised by address on free.
 *
 * Threads, locks and the exit path: which glibc calls they make, and when.
 * glibc calls malloc while it holds locks of its own: a thread's descriptor
 * lock (pthread_getattr_np reallocs its cpuset under it), a FILE lock
 * (getline), the stdio list lock, ld.so's dl_load_lock (dlopen, TLS), the
 * nss database lock.  So nothing mallard does inside an allocation may wait
 * for any glibc lock, or call a glibc function that takes one:
 *  - Thread bookkeeping (threads.c) runs at a thread's first traced
 *    allocation and records only pthread_self() and the current frame
 *    address; the stack's extent is read from /proc/self/maps at exit
 *    (reach.c).  No pthread_getattr_np, no stdio, ever, inside malloc.
 *    Detach runs from the backend's pthread key destructor at thread exit,
 *    where glibc holds none of its locks.
 *  - Inside an allocation mallard makes system calls (mmap, munmap,
 *    gettid), reads pthread_self(), calls pthread_setspecific (backends'
 *    thread attach: a key below 32, no allocation, no lock) and libunwind's
 *    unw_backtrace, which may call dl_iterate_phdr (ld.so's recursive
 *    dl_load_write_lock: re-entering it from a thread that holds it is
 *    fine, and nobody waits for a mallard lock while holding it).
 *  - Locks: the block table's 256 shard locks, the stack depot's 64, the
 *    thread registry's, tag_lock and error_lock (all ml_spin), the meta
 *    heap's and the backend's.  A thread holds at most one trace-layer lock
 *    at a time, with at most the meta heap's inside it (a table growing),
 *    and calls nothing outside mallard while it holds one.  Each is counted
 *    in ml_tr_busy (busy.h): a malloc-family call that begins while the
 *    count is non-zero is a signal handler on the same thread and is served
 *    without any lock (see "re-entry from a signal handler" below).
 *  - fork (boot.c): PREPARE takes glibc's stdio list lock first, then
 *    error_lock, tag_lock, then closes stack.c's unwinding gate and waits
 *    (bounded) for captures in flight, since libunwind's own locks must
 *    not be copied held into the child, then the depot shards, the block
 *    shards, the backend's locks and the meta heap's; this is glibc's own order (list
 *    lock before malloc's locks, bug 19431).  PARENT releases in reverse
 *    and drops the list lock last; CHILD resets mallard's locks (glibc has
 *    reset the list lock).  A fork from a single-threaded process takes
 *    none (glibc's tst-mallocfork2).  Still open: glibc's fork briefly
 *    takes the nss database lock after PREPARE, so a thread that holds it
 *    while it loads nsswitch.conf and mallocs can meet a fork there, as it
 *    can with any allocator that uses pthread_atfork.
 *  - Exit (preload/hooks.c, finish.c): the on_exit handler, run after every
 *    other handler with no glibc lock held, records the status; the report
 *    is written from _IO_cleanup's second pass over the streams (stdio
 *    flushed, the list lock held by glibc), so it follows the program's
 *    output and a second thread in exit() waits on that lock until the
 *    report is whole.  The report path makes no stdio call; it reads /proc
 *    files with open/read, calls dl_iterate_phdr and, to name frames,
 *    dlopens libdw (ld.so's lock: a thread inside dlopen whose constructor
 *    opens a FILE at that very moment would wait for the list lock, the one
 *    known gap).  _exit, exec and fatal signals call ml_trace_finish
 *    directly; a caller that finds another thread's report in progress
 *    waits for it (bounded), so the process never ends mid-report.
 *
 * Errors: a free or realloc of a pointer that is not a live block is never
 * passed to the backend.  Freed blocks wait in a small per-thread FIFO
 * quarantine before the backend gets them, and their records stay in the
 * table meanwhile, so a double free names the allocation, the first free
 * and the second free.
 *
 * Exactness (what the leak scan may read as a pointer, report/reach.c):
 *   - Every block is asked of the backend one byte longer than requested
 *     (pad), unless the backend spaces its blocks itself, and
 *     malloc_usable_size answers one byte less.  Blocks of a size class
 *     sit back to back, so without it a pointer one past the end of a
 *     block (stdio's _IO_buf_end, std::vector's _M_end_of_storage) would
 *     equal the start of the next block and keep it alive.  With it, no
 *     block starts at or below another's end: the end pointer belongs to
 *     no block, as under valgrind, whose blocks are apart by redzones.
 *   - The first two words of a block handed out are cleared (those inside
 *     the requested size): a free list's link, glibc's fd/bk or tcache
 *     key, left there by the backend, would otherwise read as a program
 *     pointer to another block.
 *   - A request for 0 bytes is recorded as 0 bytes (the backend gets 1).
 *   - Each record carries the allocation's sequence number, so the scan
 *     can name the first-allocated block of a lost cycle.
 */
#define _GNU_SOURCE
#include "trace.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "../core/lock.h"
#include "../core/meta.h"
#include "../core/os.h"
#include "../core/options.h"
#include "blocks.h"
#include "busy.h"
#include "finish.h"
#include "pressure.h"
#include "report.h"

#define QUARANTINE_SLOTS 256
#define QUARANTINE_BYTES ((size_t)4 << 20)
#define TAGS_MAX 1024

#define DEFER_SLOTS 64

struct tr_thread {
    int guard;
    int attached;
    unsigned ndefer; /* frees a signal handler left for later (see defer_free) */
    void *freeing;   /* the block tr_free_kind is capturing the free stack of */
    struct tr_counts *counts;
    int counts_done; /* past thread exit: count in ml_tr directly */
    void *defer[DEFER_SLOTS];
    uint16_t tag;
    /* the freed blocks held back, a FIFO in the meta heap made at the
     * thread's first free: 4 KiB of static TLS would come out of every
     * thread's stack (a PTHREAD_STACK_MIN thread had 3 KiB left) */
    struct tr_quarantine *quar;
    int quar_done; /* past thread exit, or none to be had: frees are not held */
};

/* A thread's FIFO of freed blocks.  Each cell holds its block's address
 * while the block waits, and the block's freed record in the table names
 * the cell (its hold: id << 8 | cell): letting the block go is clearing the
 * cell, with no table operation (blocks.c).  Quarantines with an id are
 * never freed, so another thread may read their cells at any time; one
 * whose thread exited waits, empty, for the next thread. */
#define QUARANTINE_IDS 1024 /* holds are 18 bits: 10 of id, 8 of cell */

struct tr_quarantine {
    uint32_t head, count;
    uint32_t id; /* 0: none (more threads than ids): its records are removed when let go */
    int used;
    size_t bytes;
    struct {
        void *p; /* written by the owner thread only, read by any */
        size_t size;
    } q[QUARANTINE_SLOTS];
};

_Static_assert(QUARANTINE_SLOTS == 256, "a hold keeps 8 bits of cell");

static struct tr_quarantine *quars[QUARANTINE_IDS];
static unsigned quars_next; /* ids handed out so far */

static ML_TLS struct tr_thread t;

/* A call into the backend: it may hold its locks until it returns. */
#define BACKEND(expr)                                                                                        \
    do {                                                                                                     \
        ml_tr_busy_enter();                                                                                  \
        expr;                                                                                                \
        ml_tr_busy_leave();                                                                                  \
    } while (0)

struct ml_trace_state ml_tr; /* in .bss: an initialised 49 KiB would be file pages, all resident */

static const struct ml_backend *inner;
static size_t pad; /* 1, or 0 for a backend that spaces its blocks */
/* The inner backend's ML_BACKEND_GUARDS_FREED, read once: a free tested it
 * up to four times, two loads each (inner, then its flags), reloaded after
 * every call and atomic operation. */
static unsigned guards_freed;

/* The size asked of the backend for a request of n bytes: never 0, and
 * SIZE_MAX (which fails) rather than a wrapped sum. */
static inline size_t inner_size(size_t n)
{
    size_t m = n + pad;
    return m < n ? SIZE_MAX : m ? m : 1;
}

/* A block's bytes start as zeros, whatever its memory held before.
 * memcheck takes a word for a pointer only when the program has written it
 * since the allocation (its "defined" bits): what an earlier block left in
 * memory that is handed out again points nowhere for the new one.  Left
 * there, a freed block's pointers keep the blocks they name alive
 * (tests/programs/stale_blocks.c, valgrind: 96,000 bytes in 3,000 blocks
 * definitely lost; freelist said 876 blocks, bump and arena 1,512, system
 * 1,502).  mallard cannot tell a written word from a stale one, so the
 * bytes the program has not written yet are cleared: malloc and operator
 * new go to the backend's zalloc, which knows what memory comes fresh from
 * the kernel and clears only the rest; an aligned block and the bytes a
 * realloc adds are cleared here (clear_block). */
#define CLEAR_MADVISE_MIN ((size_t)256 << 10)

/* Clears [from, n) of block p: its whole pages by madvise past
 * CLEAR_MADVISE_MIN (a page never touched stays untouched, a dirty one is
 * given back), the rest, or all of it when the kernel refuses (a locked
 * mapping), by memset. */
static void clear_block(void *p, size_t from, size_t n)
{
    if (n <= from)
        return;
    char *a = (char *)p + from;
    size_t len = n - from;
    if (len >= CLEAR_MADVISE_MIN) {
        size_t ps = ml_os_page_size();
        char *lo = (char *)(((uintptr_t)a + ps - 1) & ~(uintptr_t)(ps - 1));
        char *hi = (char *)(((uintptr_t)a + len) & ~(uintptr_t)(ps - 1));
        if (ml_os_decommit(lo, (size_t)(hi - lo)) == 0) {
            memset(a, 0, (size_t)(lo - a));
            memset(hi, 0, (size_t)(a + len - hi));
            return;
        }
    }
    memset(a, 0, len);
}

/* n bytes from the backend, all zero (see clear_block's header). */
static inline __attribute__((always_inline)) void *backend_zalloc(size_t n)
{
    void *p;
    if (inner->zalloc) {
        BACKEND(p = inner->zalloc(inner_size(n)));
    } else {
        BACKEND(p = inner->malloc(inner_size(n)));
        if (p)
            memset(p, 0, n);
    }
    return p;
}

/* ---- statistics and tags ---------------------------------------------- */

/* The counts kept per thread (no shared cache line on the hot path): a
 * thread's slot holds its allocations, frees and bytes allocated, and its
 * share of the live balance (bytes it allocated less bytes it freed, which
 * is negative in a thread that frees what others allocate).  Readers sum
 * the slots with ml_tr (ml_trace_counts); a thread's slot is folded into
 * ml_tr at its exit, then reused.
 *
 * The live balance is ml_tr.current_bytes plus every slot's share.  A
 * share goes into ml_tr when it passes LIVE_FLUSH either way, so the
 * shared line is written once per 64 KiB of growth or shrinkage, not once
 * per call.  The peak is tested at each allocation against ml_tr's balance
 * plus the caller's own share: exact in a process with one thread (the
 * other slots hold nothing), and in one with several off by at most the
 * other threads' unflushed shares (LIVE_FLUSH each).
 *
 * The sequence number (allocation order, for the fork boundary and the
 * order of a lost cycle, blocks.c and reach.c) comes from ml_tr.seq in
 * batches of SEQ_BATCH per thread: one shared write per 64 allocations.
 * It orders one thread's allocations exactly; two threads' only to within
 * their batches. */
#define LIVE_FLUSH ((int64_t)64 << 10)
#define SEQ_BATCH 64

struct tr_counts {
    uint64_t allocs, frees, bytes;
    int64_t live;
    uint64_t seq_next, seq_end; /* the batch of sequence numbers: [next, end) */
    int used;
    struct tr_counts *next;
} __attribute__((aligned(64))); /* two threads' slots never share a line */

static struct tr_counts *counts_list; /* every slot ever made, push only */

static void *meta_alloc(size_t n);

/* The calling thread's slot, or NULL (the meta heap failed, or the thread
 * is past its exit): then the shared counters take the counts. */
__attribute__((noinline)) static struct tr_counts *counts_slot_make(void);

static inline struct tr_counts *counts_slot(void)
{
    if (ML_LIKELY(t.counts != NULL) || t.counts_done)
        return t.counts;
    return counts_slot_make();
}

static struct tr_counts *counts_slot_make(void)
{
    struct tr_counts *c;
    for (c = __atomic_load_n(&counts_list, __ATOMIC_ACQUIRE); c; c = c->next) {
        int unused = 0;
        if (!__atomic_load_n(&c->used, __ATOMIC_RELAXED) &&
            __atomic_compare_exchange_n(&c->used, &unused, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            break;
    }
    if (!c) {
        /* the meta heap aligns to 16: room to put the slot on its own line */
        char *raw = meta_alloc(sizeof *c + 64);
        if (!raw)
            return NULL;
        c = (struct tr_counts *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
        memset(c, 0, sizeof *c);
        c->used = 1;
        c->next = __atomic_load_n(&counts_list, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(&counts_list, &c->next, c, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
            ;
    }
    c->seq_next = c->seq_end = 0; /* a reused slot's batch was its last thread's */
    t.counts = c;
    return c;
}

/* A slot's counts go to ml_tr, leaving it empty. */
static void counts_move(struct tr_counts *c)
{
    __atomic_add_fetch(&ml_tr.allocs, __atomic_exchange_n(&c->allocs, 0, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    __atomic_add_fetch(&ml_tr.frees, __atomic_exchange_n(&c->frees, 0, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    __atomic_add_fetch(&ml_tr.bytes_allocated, __atomic_exchange_n(&c->bytes, 0, __ATOMIC_RELAXED),
                       __ATOMIC_RELAXED);
    __atomic_add_fetch(&ml_tr.current_bytes, __atomic_exchange_n(&c->live, 0, __ATOMIC_RELAXED),
                       __ATOMIC_RELAXED);
    c->seq_next = c->seq_end = 0;
}

/* At thread exit: the slot's counts go to ml_tr and the slot to the next
 * thread. */
static void counts_fold(void)
{
    struct tr_counts *c = t.counts;
    t.counts = NULL;
    t.counts_done = 1;
    if (!c)
        return;
    counts_move(c);
    __atomic_store_n(&c->used, 0, __ATOMIC_RELEASE);
}

/* In a fork child (one thread): the parent's other threads are gone, so
 * their slots go to ml_tr and to new threads, and the caller's batch of
 * sequence numbers, handed out before the fork, is dropped: every number
 * the child gives is above the fork boundary. */
static void counts_after_fork(void)
{
    for (struct tr_counts *c = counts_list; c; c = c->next) {
        if (c == t.counts) {
            c->seq_next = c->seq_end = 0;
            continue;
        }
        counts_move(c);
        c->used = 0;
    }
}

void ml_trace_counts(uint64_t *allocs, uint64_t *frees, uint64_t *bytes_allocated, uint64_t *current)
{
    uint64_t a = __atomic_load_n(&ml_tr.allocs, __ATOMIC_RELAXED);
    uint64_t f = __atomic_load_n(&ml_tr.frees, __ATOMIC_RELAXED);
    uint64_t b = __atomic_load_n(&ml_tr.bytes_allocated, __ATOMIC_RELAXED);
    int64_t l = __atomic_load_n(&ml_tr.current_bytes, __ATOMIC_RELAXED);
    for (struct tr_counts *c = __atomic_load_n(&counts_list, __ATOMIC_ACQUIRE); c; c = c->next) {
        a += __atomic_load_n(&c->allocs, __ATOMIC_RELAXED);
        f += __atomic_load_n(&c->frees, __ATOMIC_RELAXED);
        b += __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);
        l += __atomic_load_n(&c->live, __ATOMIC_RELAXED);
    }
    if (allocs)
        *allocs = a;
    if (frees)
        *frees = f;
    if (bytes_allocated)
        *bytes_allocated = b;
    if (current)
        *current = l > 0 ? (uint64_t)l : 0; /* read while threads move shares: never below 0 */
}

/* The next sequence number (0 once in 2^32: the numbers wrapped). */
static inline uint32_t next_seq(struct tr_counts *c)
{
    if (ML_UNLIKELY(c == NULL))
        return (uint32_t)__atomic_add_fetch(&ml_tr.seq, 1, __ATOMIC_RELAXED);
    if (ML_UNLIKELY(c->seq_next == c->seq_end)) {
        c->seq_next = __atomic_fetch_add(&ml_tr.seq, SEQ_BATCH, __ATOMIC_RELAXED) + 1;
        c->seq_end = c->seq_next + SEQ_BATCH;
    }
    return (uint32_t)c->seq_next++;
}

/* Tests the peak against the balance as this thread sees it. */
static inline void peak_test(int64_t cur)
{
    int64_t peak = __atomic_load_n(&ml_tr.peak_bytes, __ATOMIC_RELAXED);
    while (cur > peak &&
           !__atomic_compare_exchange_n(&ml_tr.peak_bytes, &peak, cur, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

__attribute__((noinline)) static void stats_tag_alloc(size_t n, uint16_t tag)
{
    struct ml_tag_slot *ts = &ml_tr.tags[tag];
    __atomic_add_fetch(&ts->allocs, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&ts->bytes, n, __ATOMIC_RELAXED);
    uint64_t tcur = __atomic_add_fetch(&ts->current, n, __ATOMIC_RELAXED);
    uint64_t tpeak = __atomic_load_n(&ts->peak, __ATOMIC_RELAXED);
    while (tcur > tpeak &&
           !__atomic_compare_exchange_n(&ts->peak, &tpeak, tcur, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

__attribute__((noinline)) static void stats_tag_free(size_t n, uint16_t tag)
{
    __atomic_add_fetch(&ml_tr.tags[tag].frees, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&ml_tr.tags[tag].current, n, __ATOMIC_RELAXED);
}

/* c: the caller's slot (counts_slot), or NULL. */
static inline __attribute__((always_inline)) void stats_alloc(struct tr_counts *c, size_t n, uint16_t tag)
{
    int64_t cur;
    if (ML_LIKELY(c != NULL)) {
        /* only this thread writes its slot; readers load it whole */
        __atomic_store_n(&c->allocs, c->allocs + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&c->bytes, c->bytes + n, __ATOMIC_RELAXED);
        int64_t live = c->live + (int64_t)n;
        if (ML_UNLIKELY(live >= LIVE_FLUSH)) {
            cur = __atomic_add_fetch(&ml_tr.current_bytes, live, __ATOMIC_RELAXED);
            live = 0;
        } else {
            cur = __atomic_load_n(&ml_tr.current_bytes, __ATOMIC_RELAXED) + live;
        }
        __atomic_store_n(&c->live, live, __ATOMIC_RELAXED);
    } else {
        __atomic_add_fetch(&ml_tr.allocs, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&ml_tr.bytes_allocated, n, __ATOMIC_RELAXED);
        cur = __atomic_add_fetch(&ml_tr.current_bytes, (int64_t)n, __ATOMIC_RELAXED);
    }
    peak_test(cur);
    if (ML_UNLIKELY(tag))
        stats_tag_alloc(n, tag);
}

static inline __attribute__((always_inline)) void stats_free(size_t n, uint16_t tag)
{
    struct tr_counts *c = counts_slot();
    if (ML_LIKELY(c != NULL)) {
        __atomic_store_n(&c->frees, c->frees + 1, __ATOMIC_RELAXED);
        int64_t live = c->live - (int64_t)n;
        if (ML_UNLIKELY(live <= -LIVE_FLUSH)) {
            __atomic_add_fetch(&ml_tr.current_bytes, live, __ATOMIC_RELAXED);
            live = 0;
        }
        __atomic_store_n(&c->live, live, __ATOMIC_RELAXED);
    } else {
        __atomic_add_fetch(&ml_tr.frees, 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&ml_tr.current_bytes, (int64_t)n, __ATOMIC_RELAXED);
    }
    if (ML_UNLIKELY(tag))
        stats_tag_free(n, tag);
}

const char *ml_trace_set_tag(const char *name)
{
    const char *prev = t.tag ? ml_tr.tags[t.tag].name : NULL;
    if (!name) {
        t.tag = 0;
        return prev;
    }
    int guard = t.guard;
    t.guard = 1;
    ml_tr_lock(&ml_tr.tag_lock);
    uint16_t id = 0;
    for (uint16_t i = 1; i <= ml_tr.ntags; i++)
        if (!strcmp(ml_tr.tags[i].name, name)) {
            id = i;
            break;
        }
    if (!id && ml_tr.ntags + 1 < TAGS_MAX) {
        size_t len = strlen(name);
        char *copy = ml_meta_alloc(len + 1);
        if (copy) {
            memcpy(copy, name, len + 1);
            id = (uint16_t)(ml_tr.ntags + 1);
            ml_tr.tags[id].name = copy;
            __atomic_store_n(&ml_tr.ntags, id, __ATOMIC_RELEASE);
        }
    }
    ml_tr_unlock(&ml_tr.tag_lock);
    t.tag = id;
    t.guard = guard;
    return prev;
}

/* ---- errors ----------------------------------------------------------- */

static const char *const error_words[] = {"double free", "invalid free",   "invalid realloc",
                                          "overflow",    "use after free", "mismatched free"};

/* The calling thread's id and name, for an error it made: one syscall
 * each, no glibc thread internals (this may run inside an allocation). */
static void error_thread(struct ml_error *e)
{
    e->tid = (int)syscall(SYS_gettid);
    char name[16] = {0};
    if (prctl(PR_GET_NAME, (unsigned long)name, 0, 0, 0) == 0) {
        name[15] = '\0';
        memcpy(e->thread, name, sizeof e->thread);
    }
}

/* Fills block context for an address inside (or freed as) a known block. */
static void error_block(struct ml_error *e, const struct ml_block_rec *r)
{
    e->block = r->addr;
    e->offset = (int64_t)(e->address - r->addr);
    e->bytes = r->size;
    e->alloc_stack = r->stack;
    e->alloc_kind = r->kind;
    if (r->state == ML_BLOCK_FREED)
        e->free_stack = r->free_stack;
}

void ml_trace_record_error(struct ml_error *e)
{
    error_thread(e);
    ml_tr_lock(&ml_tr.error_lock);
    if (ml_tr.nerrors == ml_tr.errors_cap) {
        size_t cap = ml_tr.errors_cap ? ml_tr.errors_cap * 2 : 64;
        struct ml_error *grown = ml_meta_realloc(ml_tr.errors, cap * sizeof *grown);
        if (grown) {
            ml_tr.errors = grown;
            ml_tr.errors_cap = cap;
        } else {
            ml_tr_degrade("the error list");
        }
    }
    if (ml_tr.nerrors < ml_tr.errors_cap)
        ml_tr.errors[ml_tr.nerrors] = *e;
    ml_tr.nerrors++;
    ml_tr_unlock(&ml_tr.error_lock);
}

static void report_error(struct ml_error *e)
{
    ml_trace_record_error(e);
    struct ml_frame f = {0};
    unsigned n;
    const uintptr_t *frames = ml_stack_frames(e->stack, &n);
    const void *p = (const void *)e->address;
    const char *what =
        (unsigned)e->kind < sizeof error_words / sizeof *error_words ? error_words[e->kind] : "error";
    if (n) {
        ml_symbolize(frames[0], &f);
        const char *file = f.file ? strrchr(f.file, '/') : NULL;
        file = file ? file + 1 : f.file ? f.file : "?";
        if (e->kind == ML_ERR_OVERFLOW && !e->access)
            ml_say("page backend: the bytes next to block %p (%lu bytes) were overwritten (out-of-bounds "
                   "write), "
                   "found by free in %s %s:%d; the report has the allocation stack",
                   p, (unsigned long)e->bytes, f.function ? f.function : "??", file, f.line);
        else if (e->bytes)
            ml_say("%s of %p (a %lu-byte block) in %s %s:%d; the report has the stacks", what, p,
                   (unsigned long)e->bytes, f.function ? f.function : "??", file, f.line);
        else
            ml_say("%s of %p in %s %s:%d; the report has the stacks", what, p, f.function ? f.function : "??",
                   file, f.line);
    } else {
        ml_say("%s of %p; the report has the stacks", what, p);
    }
    if (ml_tr.on_error == ML_ON_ERROR_ABORT) {
        t.guard = 0;
        abort();
    }
}

/* A free or realloc of p that is not a live block: say which block, if
 * any, it points into (valgrind's "is 16 bytes inside a 96-byte block"). */
static void report_bad_pointer(enum ml_error_kind kind, void *p, ml_stack_id here)
{
    struct ml_error e = {.kind = kind, .address = (uintptr_t)p, .stack = here};
    struct ml_block_rec r;
    if (ml_blocks_find_containing((uintptr_t)p, &r) == 0)
        error_block(&e, &r);
    report_error(&e);
}

/* ---- recording -------------------------------------------------------- */

/* The tracer keeps state of its own for the thread (its registry entry,
 * quarantine and counts), so it asks for the thread's end itself: a
 * backend asks only when it makes per-thread state of its own, which the
 * system backend never does and the page backend only for blocks it hands
 * to its fallback.  Without it an ended thread stayed registered as live
 * and its dead stack, cached by glibc for the next thread, was a root
 * (tests/programs/thread_exit_leak.c, valgrind 585 bytes in 10 blocks
 * definitely lost: system 391 in 7, page 468 in 8). */
static void attach_thread(void)
{
    t.attached = 1;
    ml_threads_attach();
    ml_backend_watch_thread();
}

static inline __attribute__((always_inline)) void record(void *p, size_t n, unsigned kind)
{
    if (ML_UNLIKELY(__atomic_load_n(&ml_tr_stopped, __ATOMIC_RELAXED))) {
        ml_tr_count_untraced(); /* out of metadata memory (pressure.h) */
        if (guards_freed)
            ml_blocks_remove_freed((uintptr_t)p); /* a freed record of this address is stale now */
        return;
    }
    if (ML_UNLIKELY(!t.attached))
        attach_thread();
    ml_stack_id id = ml_stack_capture();
    struct tr_counts *c = counts_slot();
    uint32_t seq = next_seq(c);
    if (ML_UNLIKELY(!seq))
        ml_blocks_seq_wrapped();
    if (ml_blocks_insert((uintptr_t)p, n, id, t.tag, seq, kind) == 0)
        stats_alloc(c, n, t.tag);
    else
        ml_tr_count_untraced();
}

int ml_trace_holds(uint32_t hold, uintptr_t addr)
{
    if (!hold)
        return 1;
    struct tr_quarantine *qu = __atomic_load_n(&quars[hold >> 8], __ATOMIC_ACQUIRE);
    return qu && (uintptr_t)__atomic_load_n(&qu->q[hold & 0xff].p, __ATOMIC_RELAXED) == addr;
}

/* The calling thread's quarantine, made (or taken over from an exited
 * thread) at its first free; NULL when there is none to be had. */
static struct tr_quarantine *quarantine_get(void)
{
    if (ML_LIKELY(t.quar != NULL) || t.quar_done)
        return t.quar;
    struct tr_quarantine *qu = NULL;
    unsigned n = __atomic_load_n(&quars_next, __ATOMIC_ACQUIRE);
    for (unsigned i = 1; i <= n && i < QUARANTINE_IDS && !qu; i++) {
        struct tr_quarantine *c = __atomic_load_n(&quars[i], __ATOMIC_ACQUIRE);
        int unused = 0;
        if (c && !__atomic_load_n(&c->used, __ATOMIC_RELAXED) &&
            __atomic_compare_exchange_n(&c->used, &unused, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            qu = c;
    }
    if (!qu) {
        qu = meta_alloc(sizeof *qu); /* zeroed */
        if (qu) {
            qu->used = 1;
            unsigned id = __atomic_add_fetch(&quars_next, 1, __ATOMIC_ACQ_REL);
            if (id < QUARANTINE_IDS) {
                qu->id = id;
                __atomic_store_n(&quars[id], qu, __ATOMIC_RELEASE);
            }
        }
    }
    t.quar = qu;
    t.quar_done = !qu;
    return qu;
}

/* Lets the oldest block go: its cell is cleared (its record is stale from
 * then on), then the backend gets it. */
static inline __attribute__((always_inline)) void quarantine_evict_one(struct tr_quarantine *qu)
{
    uint32_t i = (qu->head + QUARANTINE_SLOTS - qu->count) % QUARANTINE_SLOTS;
    void *old = qu->q[i].p;
    qu->bytes -= qu->q[i].size;
    qu->count--;
    __atomic_store_n(&qu->q[i].p, NULL, __ATOMIC_RELEASE);
    if (!qu->id) {
        if (guards_freed)
            ml_blocks_remove_freed((uintptr_t)old); /* the address may hold a new block by now */
        else
            ml_blocks_remove((uintptr_t)old, NULL);
    }
    /* the page backend has had the block since it was freed; only the
     * record waited */
    if (!guards_freed)
        BACKEND(inner->free(old));
}

/* Where the next freed block will wait: the quarantine has a free cell. */
static inline struct tr_quarantine *quarantine_room(void)
{
    struct tr_quarantine *qu = quarantine_get();
    if (ML_LIKELY(qu != NULL) && ML_UNLIKELY(qu->count == QUARANTINE_SLOTS))
        quarantine_evict_one(qu);
    return qu;
}

/* p, just freed (ml_blocks_free stored it in qu's head cell), waits there;
 * qu is what quarantine_room gave. */
static void quarantine_push(struct tr_quarantine *qu, void *p, const struct ml_block_rec *r, ml_stack_id here)
{
    size_t n = r->size;
    if (guards_freed) {
        /* The page backend keeps freed blocks inaccessible itself, so a
         * use-after-free faults and the canary is checked at once; the
         * record stays in the FIFO, so a second free is still a double
         * free naming all three stacks. */
        int bad = 0;
        if (inner->free_checked)
            BACKEND(bad = inner->free_checked(p));
        else
            BACKEND(inner->free(p));
        if (bad) {
            struct ml_error e = {.kind = ML_ERR_OVERFLOW, .address = (uintptr_t)p, .stack = here};
            error_block(&e, r);
            e.free_stack = 0;
            e.offset = (int64_t)r->size; /* the bytes past (or before) the block were written */
            report_error(&e);
        }
        n = 0;
    }
    if (n > QUARANTINE_BYTES / 4 || ML_UNLIKELY(!qu)) {
        if (qu)
            __atomic_store_n(&qu->q[qu->head].p, NULL, __ATOMIC_RELEASE);
        if (!qu || !qu->id) {
            if (guards_freed)
                ml_blocks_remove_freed((uintptr_t)p);
            else
                ml_blocks_remove((uintptr_t)p, NULL);
        }
        if (!guards_freed)
            BACKEND(inner->free(p));
        return;
    }
    qu->q[qu->head].size = n;
    qu->head = (qu->head + 1) % QUARANTINE_SLOTS;
    qu->count++;
    qu->bytes += n;
    while (qu->count > 1 && qu->bytes > QUARANTINE_BYTES)
        quarantine_evict_one(qu);
}

/* ---- re-entry from a signal handler ----------------------------------
 *
 * A malloc-family call made while this thread is inside one of mallard's
 * locks (ml_tr_busy, see busy.h) comes from a signal handler that
 * interrupted it, and must take no lock at all.  Such a call is served
 * from the kernel: each block is a mapping of its own, listed in a
 * lock-free table, so a later free or realloc from anywhere recognises it
 * (after the block table has said the address is unknown, so the normal
 * paths pay nothing).  A free the handler makes of any other block is left
 * in a small per-thread list and done when the interrupted call is over.
 * These blocks are not traced; they are rare (the window is a few
 * instructions long), and glibc's own malloc survives such programs. */

#define EMERG_SLOTS 4096

static struct {
    uintptr_t user; /* 0: free slot; 1: being filled */
    size_t size;
    void *base;
    size_t len;
} emerg[EMERG_SLOTS];
static int emerg_live;

static void *emerg_alloc(size_t align, size_t n)
{
    size_t page = ml_os_page_size();
    if (align < 16)
        align = 16;
    size_t len;
    if (__builtin_add_overflow(n, align > page ? align : 0, &len) || len > ((size_t)1 << 46))
        return NULL;
    void *base = ml_os_map(len ? len : 1); /* one mmap: zeroed, no lock */
    if (!base)
        return NULL;
    len = (len + page - 1) & ~(page - 1);
    uintptr_t user = ((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1);
    for (size_t i = 0; i < EMERG_SLOTS; i++) {
        uintptr_t expected = 0;
        if (__atomic_load_n(&emerg[i].user, __ATOMIC_RELAXED) ||
            !__atomic_compare_exchange_n(&emerg[i].user, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        emerg[i].size = n;
        emerg[i].base = base;
        emerg[i].len = len;
        __atomic_add_fetch(&emerg_live, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&emerg[i].user, user, __ATOMIC_RELEASE);
        return (void *)user;
    }
    ml_os_unmap(base, len);
    return NULL;
}

static int emerg_find(const void *p)
{
    if (ML_LIKELY(!__atomic_load_n(&emerg_live, __ATOMIC_ACQUIRE)) || (uintptr_t)p <= 1)
        return -1;
    for (int i = 0; i < EMERG_SLOTS; i++)
        if (__atomic_load_n(&emerg[i].user, __ATOMIC_ACQUIRE) == (uintptr_t)p)
            return i;
    return -1;
}

/* Unmaps p when it is one of these blocks; 0 when it is not. */
static int emerg_release(void *p)
{
    int i = emerg_find(p);
    if (i < 0)
        return 0;
    void *base = emerg[i].base;
    size_t len = emerg[i].len;
    uintptr_t expected = (uintptr_t)p;
    if (!__atomic_compare_exchange_n(&emerg[i].user, &expected, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return 0;
    __atomic_sub_fetch(&emerg_live, 1, __ATOMIC_RELEASE);
    ml_os_unmap(base, len);
    return 1;
}

/* Moves an emergency block p into one from alloc; NULL leaves p alone. */
static void *emerg_move(int i, void *p, size_t n, void *(*alloc)(size_t))
{
    void *q = alloc(n);
    if (q) {
        size_t old = emerg[i].size;
        memcpy(q, p, old < n ? old : n);
        emerg_release(p);
    }
    return q;
}

static void defer_free(void *p)
{
    unsigned i = __atomic_fetch_add(&t.ndefer, 1, __ATOMIC_RELAXED);
    if (i < DEFER_SLOTS)
        t.defer[i] = p;
    else
        __atomic_fetch_sub(&t.ndefer, 1, __ATOMIC_RELAXED); /* full: the block stays allocated */
}

/* Called where the interrupted call is over (no lock held, guard clear). */
static void defer_drain(void)
{
    for (;;) {
        unsigned n = __atomic_load_n(&t.ndefer, __ATOMIC_RELAXED);
        if (!n)
            return;
        void *p = t.defer[n - 1];
        if (__atomic_compare_exchange_n(&t.ndefer, &n, n - 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ml_trace_free(p, ML_ALLOC_MALLOC);
    }
}

static void busy_free(void *p)
{
    if (!emerg_release(p))
        defer_free(p);
}

static void *busy_realloc(void *p, size_t n)
{
    size_t old;
    int i = emerg_find(p);
    if (i >= 0)
        old = emerg[i].size;
    else if (ml_os_owner(p) == ML_OWNER_META)
        old = ml_meta_usable_size(p); /* reads the header, no lock */
    else if (guards_freed)
        return NULL; /* the page backend's size lookup takes its lock */
    else
        old = inner->usable_size(p); /* the other backends read it lock-free */
    void *q = emerg_alloc(16, n);
    if (q) {
        memcpy(q, p, old < n ? old : n);
        busy_free(p);
    }
    return q;
}

/* ---- the decorator's slots -------------------------------------------- */

static int tr_init(const struct ml_options *opt)
{
    (void)opt;
    return 0;
}

/* Something mallard called (the unwinder, libdw) allocates: meta heap. */
static void *meta_alloc(size_t n)
{
    ml_tr_busy_enter();
    void *p = ml_meta_alloc(n);
    ml_tr_busy_leave();
    return p;
}

#define SLOT_DONE()                                                                                          \
    do {                                                                                                     \
        t.guard = 0;                                                                                         \
        if (ML_UNLIKELY(t.ndefer))                                                                           \
            defer_drain();                                                                                   \
    } while (0)

/* malloc and calloc alike: every block's bytes start as zeros (see
 * clear_block's header). */
static inline __attribute__((always_inline)) void *tr_malloc(size_t n)
{
    if (ML_UNLIKELY(ml_tr_busy))
        return emerg_alloc(16, n);
    if (ML_UNLIKELY(t.guard))
        return meta_alloc(n);
    t.guard = 1;
    void *p = backend_zalloc(n);
    if (ML_LIKELY(p))
        record(p, n, ML_ALLOC_MALLOC);
    SLOT_DONE();
    return p;
}

/* A block that something called from inside mallard (ld.so growing a
 * thread's DTV under the unwinder, say) gets from the backend: it is known
 * to the table, so its later free is valid, but it carries no stack, which
 * keeps it out of the leak list like every pre-tracing block. */
static void *internal_block(void *p, size_t n)
{
    if (p && ml_blocks_insert((uintptr_t)p, n, 0, 0, 0, ML_ALLOC_MALLOC) == 0)
        stats_alloc(counts_slot(), n, 0);
    return p;
}

static inline __attribute__((always_inline)) void *tr_memalign(size_t align, size_t n)
{
    if (ML_UNLIKELY(ml_tr_busy))
        return emerg_alloc(align, n);
    void *p;
    if (ML_UNLIKELY(t.guard)) {
        BACKEND(p = inner->memalign(align, inner_size(n)));
        return internal_block(p, n);
    }
    t.guard = 1;
    BACKEND(p = inner->memalign(align, inner_size(n)));
    if (ML_LIKELY(p)) {
        clear_block(p, 0, n);
        record(p, n, ML_ALLOC_MALLOC);
    }
    SLOT_DONE();
    return p;
}

static inline __attribute__((always_inline)) void tr_free_kind(void *p, unsigned kind)
{
    if (ML_UNLIKELY(ml_tr_busy)) {
        busy_free(p);
        return;
    }
    if (ML_UNLIKELY(ml_os_owner(p) == ML_OWNER_META)) {
        ml_tr_busy_enter();
        ml_meta_free(p);
        ml_tr_busy_leave();
        return;
    }
    struct ml_block_rec r;
    if (ML_UNLIKELY(t.guard)) {
        /* Something mallard called (ld.so from inside the unwinder, say)
         * frees a block.  Only a live one goes to the backend: a freed one
         * is either in the quarantine or being freed right now by the very
         * call that re-entered (ld.so frees a stale TLS block, our stack
         * capture re-enters __tls_get_addr, which frees it again). */
        if (p == t.freeing)
            return;
        int rc = ml_blocks_take_live((uintptr_t)p, &r);
        if (rc == 1) {
            stats_free(r.size, r.tag);
            BACKEND(inner->free(p));
        } else if (rc < 0 && !emerg_release(p) && __atomic_load_n(&ml_tr_stopped, __ATOMIC_RELAXED)) {
            BACKEND(inner->free(p)); /* allocated untraced (pressure.h) */
        }
        return;
    }
    t.guard = 1;
    int stopped = __atomic_load_n(&ml_tr_stopped, __ATOMIC_RELAXED);
    ml_stack_id here = 0;
    if (ML_LIKELY(!stopped)) {
        /* The capture may re-enter free with p itself (libunwind's
         * fallback, through ld.so); t.freeing tells that call p is being
         * freed here. */
        t.freeing = p;
        here = ml_stack_capture();
        t.freeing = NULL;
    }
    struct tr_quarantine *qu = quarantine_room();
    uint32_t hold = qu && qu->id ? qu->id << 8 | qu->head : 0;
    int rc = ml_blocks_free((uintptr_t)p, here, hold, qu ? &qu->q[qu->head].p : NULL, &r);
    if (ML_UNLIKELY(rc < 0) && emerg_release(p)) {
        SLOT_DONE();
        return;
    }
    if (ML_UNLIKELY(stopped) && rc < 0) {
        BACKEND(inner->free(p)); /* allocated untraced (pressure.h) */
        SLOT_DONE();
        return;
    }
    if (ML_LIKELY(rc == 1)) {
        stats_free(r.size, r.tag);
        if (ML_UNLIKELY(r.kind != kind) && r.stack) {
            /* valgrind's "Mismatched free() / delete / delete []"; the
             * block is freed all the same.  Blocks with no stack were
             * allocated before tracing (or by mallard's callees). */
            struct ml_error e = {.kind = ML_ERR_MISMATCH, .address = (uintptr_t)p, .stack = here};
            error_block(&e, &r);
            e.free_kind = (uint8_t)kind;
            report_error(&e);
        }
        quarantine_push(qu, p, &r, here);
    } else if (rc == 0) {
        struct ml_error e = {.kind = ML_ERR_DOUBLE_FREE, .address = (uintptr_t)p, .stack = here};
        error_block(&e, &r);
        e.free_kind = (uint8_t)kind;
        report_error(&e);
    } else {
        report_bad_pointer(ML_ERR_INVALID_FREE, p, here);
    }
    SLOT_DONE();
}

static inline __attribute__((always_inline)) void *tr_realloc(void *p, size_t n)
{
    if (ML_UNLIKELY(ml_tr_busy))
        return busy_realloc(p, n);
    void *q;
    if (ML_UNLIKELY(ml_os_owner(p) == ML_OWNER_META)) {
        ml_tr_busy_enter();
        q = ml_meta_realloc(p, n);
        ml_tr_busy_leave();
        return q;
    }
    struct ml_block_rec r;
    if (ML_UNLIKELY(t.guard)) {
        /* The record goes before the block does: once the backend frees p,
         * another thread may get p back and record it. */
        int rc = ml_blocks_take_live((uintptr_t)p, &r);
        if (rc < 0) {
            int i = emerg_find(p);
            if (i >= 0)
                return emerg_move(i, p, n, meta_alloc);
            if (__atomic_load_n(&ml_tr_stopped, __ATOMIC_RELAXED))
                BACKEND(q = inner->realloc(p, inner_size(n))); /* untraced (pressure.h) */
            else
                q = NULL;
            return q;
        }
        if (rc == 0)
            return NULL;
        BACKEND(q = inner->realloc(p, inner_size(n)));
        if (q) {
            stats_free(r.size, r.tag);
            internal_block(q, n);
        } else {
            ml_blocks_insert((uintptr_t)p, r.size, r.stack, r.tag, r.seq, r.kind);
        }
        return q;
    }
    t.guard = 1;
    int rc = ml_blocks_take_live((uintptr_t)p, &r); /* removed now, as in the guarded path above */
    if (rc != 1) {
        int i = emerg_find(p);
        if (i >= 0) {
            SLOT_DONE();
            return emerg_move(i, p, n, tr_malloc);
        }
        if (__atomic_load_n(&ml_tr_stopped, __ATOMIC_RELAXED) && rc < 0) {
            BACKEND(q = inner->realloc(p, inner_size(n))); /* allocated untraced (pressure.h) */
            SLOT_DONE();
            return q;
        }
        report_bad_pointer(ML_ERR_INVALID_REALLOC, p, ml_stack_capture());
        SLOT_DONE();
        return NULL;
    }
    /* What the program may have written: all of the old usable size
     * (malloc_usable_size promised it; redis's sds strings use it).  The
     * bytes past it are new to the program, and cleared (clear_block's
     * header): the backend's links, or what an earlier block left. */
    size_t kept = r.size;
    if (n > kept) {
        size_t u;
        BACKEND(u = inner->usable_size(p));
        kept = u > pad ? u - pad : u;
    }
    BACKEND(q = inner->realloc(p, inner_size(n)));
    if (q) {
        clear_block(q, kept, n);
        stats_free(r.size, r.tag);
        record(q, n, ML_ALLOC_MALLOC);
    } else {
        ml_blocks_insert((uintptr_t)p, r.size, r.stack, r.tag, r.seq, r.kind);
    }
    SLOT_DONE();
    return q;
}

/* operator new and new[] (preload/cxx.c): n > 0, align a power of two. */
static inline __attribute__((always_inline)) void *tr_alloc_kind(size_t align, size_t n, unsigned kind)
{
    if (ML_UNLIKELY(ml_tr_busy))
        return emerg_alloc(align, n);
    void *p;
    if (ML_UNLIKELY(t.guard)) {
        if (align <= 16)
            return meta_alloc(n);
        BACKEND(p = inner->memalign(align, n));
        return internal_block(p, n);
    }
    t.guard = 1;
    if (align <= 16) {
        p = backend_zalloc(n);
    } else {
        BACKEND(p = inner->memalign(align, inner_size(n)));
        if (p)
            clear_block(p, 0, n);
    }
    if (ML_LIKELY(p))
        record(p, n, kind);
    SLOT_DONE();
    return p;
}

void ml_trace_set_kind(void *p, unsigned kind)
{
    if (ml_os_owner(p) != ML_OWNER_META)
        ml_blocks_set_kind((uintptr_t)p, kind);
}

static size_t tr_usable_size(const void *p)
{
    if (ml_os_owner(p) == ML_OWNER_META)
        return ml_meta_usable_size(p);
    int i = emerg_find(p);
    if (ML_UNLIKELY(i >= 0))
        return emerg[i].size;
    size_t u = inner->usable_size(p);
    return u > pad ? u - pad : u; /* the spare byte is not the program's */
}

static void tr_thread_exit(void)
{
    int guard = t.guard;
    t.guard = 1;
    struct tr_quarantine *qu = t.quar;
    t.quar = NULL;
    t.quar_done = 1;
    while (qu && qu->count)
        quarantine_evict_one(qu);
    if (qu && qu->id) {
        __atomic_store_n(&qu->used, 0, __ATOMIC_RELEASE); /* empty, for the next thread */
    } else if (qu) {
        ml_tr_busy_enter(); /* the meta heap's lock: counted (busy.h) */
        ml_meta_free(qu);
        ml_tr_busy_leave();
    }
    if (t.attached) {
        ml_threads_detach();
        t.attached = 0;
    }
    ml_stack_thread_exit();
    counts_fold();
    t.guard = guard;
    if (inner->thread_exit)
        BACKEND(inner->thread_exit());
}

/* In a fork child: every block numbered so far is the parent's. */
static void mark_fork_boundary(void)
{
    counts_after_fork();
    ml_blocks_mark_inherited(ml_tr.seq);
    ml_trace_counts(&ml_tr.allocs_at_fork, NULL, NULL, NULL);
}

static void tr_atfork(int phase)
{
    if (phase == ML_FORK_PREPARE) {
        ml_lock_atfork(&ml_tr.error_lock, phase);
        ml_lock_atfork(&ml_tr.tag_lock, phase);
        ml_stack_atfork(phase);
        ml_blocks_atfork(phase);
        if (inner->atfork)
            inner->atfork(phase);
        return;
    }
    if (inner->atfork)
        inner->atfork(phase);
    ml_blocks_atfork(phase);
    ml_stack_atfork(phase);
    ml_lock_atfork(&ml_tr.tag_lock, phase);
    ml_lock_atfork(&ml_tr.error_lock, phase);
    if (phase == ML_FORK_CHILD) {
        mark_fork_boundary();
        ml_threads_after_fork();
        ml_tr.pid = getpid();
        ml_tr.forked_child = 1;
        ml_tr.report_done = 1; /* a report the parent is writing is not this process's */
        ml_tr.nerrors_inherited = ml_tr.nerrors;
    }
}

void ml_trace_after_single_fork(void)
{
    ml_tr.pid = getpid();
    ml_tr.forked_child = 1;
    ml_tr.report_done = 1;
    if (t.guard) {
        ml_tr.finished = 1;
        return;
    }
    mark_fork_boundary();
    ml_threads_after_fork();
    ml_tr.nerrors_inherited = ml_tr.nerrors;
}

/* The program's calls come in here; each clears the scratch registers the
 * work inside may have left holding heap addresses (ml_scrub_scratch).
 * The tr_ functions are inlined into them: a frame more between the
 * program and the capture cost the unwinder's memo (traced bench_churn
 * 100000: 97.5 M instructions against 91.8 M). */
static void *entry_malloc(size_t n)
{
    void *p = tr_malloc(n);
    ml_scrub_scratch();
    return p;
}

static void *entry_memalign(size_t align, size_t n)
{
    void *p = tr_memalign(align, n);
    ml_scrub_scratch();
    return p;
}

/* the one copy of tr_free_kind: free, operator delete and its sized and
 * aligned forms (preload/cxx.c), the deferred frees */
void ml_trace_free(void *p, unsigned kind)
{
    tr_free_kind(p, kind);
    ml_scrub_scratch();
}

static void entry_free(void *p) { ml_trace_free(p, ML_ALLOC_MALLOC); }

static void *entry_realloc(void *p, size_t n)
{
    void *q = tr_realloc(p, n);
    ml_scrub_scratch();
    return q;
}

void *ml_trace_alloc(size_t align, size_t n, unsigned kind)
{
    void *p = tr_alloc_kind(align, n, kind);
    ml_scrub_scratch();
    return p;
}

static const struct ml_backend trace_backend = {
    .name = "trace",
    .init = tr_init,
    .malloc = entry_malloc,
    .zalloc = entry_malloc, /* the same: see tr_malloc */
    .memalign = entry_memalign,
    .free = entry_free,
    .realloc = entry_realloc,
    .usable_size = tr_usable_size,
    .thread_exit = tr_thread_exit,
    .atfork = tr_atfork,
    .flags = ML_BACKEND_TAKES_ZERO,
};

const struct ml_backend *ml_trace_wrap(const struct ml_backend *b, const struct ml_options *opt)
{
    inner = b;
    pad = (b->flags & ML_BACKEND_SPACED) ? 0 : 1;
    guards_freed = b->flags & ML_BACKEND_GUARDS_FREED;
    ml_tr.backend_name = b->name;
    ml_tr.on_error = opt->on_error;
    ml_tr.pid = getpid();
    return &trace_backend;
}

void ml_trace_start(const struct ml_options *opt, const void *boot_arena, size_t boot_size)
{
    /* the page backend's fault reports unwind through a signal frame from
     * a SIGSEGV handler: libunwind is loaded for them now, not there */
    ml_stack_init(opt->depth, inner && inner->describe_fault);
    /* The backend's first span now, as loading libunwind here used to do:
     * a program that lowers RLIMIT_AS to what it has mapped plus a little
     * (tests/hostile "tight") must not find its first malloc needing a
     * fresh 4 MiB segment. */
    void *first = inner ? inner->malloc(inner_size(1)) : NULL;
    if (first)
        inner->free(first);
    ml_tr.boot_lo = (uintptr_t)boot_arena;
    ml_tr.boot_hi = (uintptr_t)boot_arena + boot_size;
    struct stat st;
    if (fstat(2, &st) == 0) {
        ml_tr.stderr_dev = st.st_dev;
        ml_tr.stderr_ino = st.st_ino;
        ml_tr.stderr_known = 1;
        ml_tr.stderr_fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
        if (ml_tr.stderr_fd < 0) /* RLIMIT_NOFILE below 100 */
            ml_tr.stderr_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    }
}

void ml_trace_exec_failed(void) { __atomic_store_n(&ml_tr.finished, 0, __ATOMIC_RELEASE); }
const struct ml_backend *ml_trace_inner(void) { return inner; }

int ml_trace_guard_enter(void)
{
    int was = t.guard;
    t.guard = 1;
    return was;
}

void ml_trace_guard_leave(int was) { t.guard = was; }

size_t ml_trace_current_bytes(void)
{
    uint64_t cur;
    ml_trace_counts(NULL, NULL, NULL, &cur);
    return (size_t)cur;
}

int ml_trace_enabled(void) { return __atomic_load_n(&inner, __ATOMIC_RELAXED) != NULL; }

void ml_trace_note_altstack(uintptr_t lo, uintptr_t hi)
{
    if (!ml_trace_enabled() || ml_tr_busy || t.guard)
        return;
    if (!t.attached) {
        /* a stack put away needs no entry: a thread that is ending (the
         * registry let it go) would come back as a live one */
        if (lo == hi)
            return;
        attach_thread();
    }
    ml_threads_altstack(lo, hi);
}

void ml_trace_ignore_object(const void *p)
{
    int was = ml_trace_guard_enter();
    struct ml_block_rec rec;
    if (ml_blocks_lookup((uintptr_t)p, &rec) == 0 && rec.state == ML_BLOCK_LIVE) {
        /* register the tag by name, then find its id */
        ml_trace_guard_leave(was);
        const char *prev = ml_trace_set_tag(ML_TAG_LSAN_IGNORED);
        ml_trace_set_tag(prev);
        was = ml_trace_guard_enter();
        uint16_t id = 0;
        for (uint16_t i = 1; i <= ml_tr.ntags; i++)
            if (ml_tr.tags[i].name && !__builtin_strcmp(ml_tr.tags[i].name, ML_TAG_LSAN_IGNORED))
                id = i;
        if (id && rec.tag != id) {
            /* move the block's bytes between the tags' current counts, as
             * its free will take them from the new tag */
            if (rec.tag)
                __atomic_sub_fetch(&ml_tr.tags[rec.tag].current, rec.size, __ATOMIC_RELAXED);
            __atomic_add_fetch(&ml_tr.tags[id].current, rec.size, __ATOMIC_RELAXED);
            ml_blocks_insert(rec.addr, rec.size, rec.stack, id, rec.seq, rec.kind);
        }
    }
    ml_trace_guard_leave(was);
}
