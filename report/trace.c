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
 * Errors: a free or realloc of a pointer that is not a live block is never
 * passed to the backend.  Freed blocks wait in a small per-thread FIFO
 * quarantine before the backend gets them, and their records stay in the
 * table meanwhile, so a double free names the allocation, the first free
 * and the second free.
 */
#define _GNU_SOURCE
#include "trace.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "../core/lock.h"
#include "../core/meta.h"
#include "../core/os.h"
#include "../core/options.h"
#include "blocks.h"
#include "busy.h"
#include "finish.h"
#include "report.h"

#define QUARANTINE_SLOTS 256
#define QUARANTINE_BYTES ((size_t)4 << 20)
#define TAGS_MAX 1024

#define DEFER_SLOTS 64

struct tr_thread {
    int guard;
    int attached;
    unsigned ndefer; /* frees a signal handler left for later (see defer_free) */
    void *defer[DEFER_SLOTS];
    uint16_t tag;
    uint32_t qhead, qcount;
    size_t qbytes;
    struct {
        void *p;
        size_t size;
    } q[QUARANTINE_SLOTS];
};

static ML_TLS struct tr_thread t;

/* A call into the backend: it may hold its locks until it returns. */
#define BACKEND(expr)                                                                                        \
    do {                                                                                                     \
        ml_tr_busy_enter();                                                                                  \
        expr;                                                                                                \
        ml_tr_busy_leave();                                                                                  \
    } while (0)

struct ml_trace_state ml_tr = {.stderr_fd = -1};

static const struct ml_backend *inner;

/* ---- statistics and tags ---------------------------------------------- */

static void stats_alloc(size_t n, uint16_t tag)
{
    __atomic_add_fetch(&ml_tr.allocs, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&ml_tr.bytes_allocated, n, __ATOMIC_RELAXED);
    uint64_t cur = __atomic_add_fetch(&ml_tr.current_bytes, n, __ATOMIC_RELAXED);
    uint64_t peak = __atomic_load_n(&ml_tr.peak_bytes, __ATOMIC_RELAXED);
    while (cur > peak &&
           !__atomic_compare_exchange_n(&ml_tr.peak_bytes, &peak, cur, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    if (tag) {
        struct ml_tag_slot *ts = &ml_tr.tags[tag];
        __atomic_add_fetch(&ts->allocs, 1, __ATOMIC_RELAXED);
        uint64_t tcur = __atomic_add_fetch(&ts->current, n, __ATOMIC_RELAXED);
        uint64_t tpeak = __atomic_load_n(&ts->peak, __ATOMIC_RELAXED);
        while (tcur > tpeak &&
               !__atomic_compare_exchange_n(&ts->peak, &tpeak, tcur, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
    }
}

static void stats_free(size_t n, uint16_t tag)
{
    __atomic_add_fetch(&ml_tr.frees, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&ml_tr.current_bytes, n, __ATOMIC_RELAXED);
    if (tag)
        __atomic_sub_fetch(&ml_tr.tags[tag].current, n, __ATOMIC_RELAXED);
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

static const char *const error_words[] = {"double free", "invalid free", "invalid realloc", "overflow",
                                          "use after free"};

static void report_error(enum ml_error_kind kind, const void *p, uint64_t bytes, ml_stack_id stack,
                         ml_stack_id alloc_stack, ml_stack_id free_stack)
{
    struct ml_error e = {kind, (uintptr_t)p, bytes, stack, alloc_stack, free_stack};
    ml_tr_lock(&ml_tr.error_lock);
    if (ml_tr.nerrors == ml_tr.errors_cap) {
        size_t cap = ml_tr.errors_cap ? ml_tr.errors_cap * 2 : 64;
        struct ml_error *grown = ml_meta_realloc(ml_tr.errors, cap * sizeof *grown);
        if (grown) {
            ml_tr.errors = grown;
            ml_tr.errors_cap = cap;
        }
    }
    if (ml_tr.nerrors < ml_tr.errors_cap)
        ml_tr.errors[ml_tr.nerrors] = e;
    ml_tr.nerrors++;
    ml_tr_unlock(&ml_tr.error_lock);

    struct ml_frame f = {0};
    unsigned n;
    const uintptr_t *frames = ml_stack_frames(stack, &n);
    if (n) {
        ml_symbolize(frames[0], &f);
        const char *file = f.file ? strrchr(f.file, '/') : NULL;
        file = file ? file + 1 : f.file ? f.file : "?";
        if (bytes)
            ml_say("%s of %p (a %lu-byte block) in %s %s:%d; the report has the stacks", error_words[kind], p,
                   (unsigned long)bytes, f.function ? f.function : "??", file, f.line);
        else
            ml_say("%s of %p in %s %s:%d; the report has the stacks", error_words[kind], p,
                   f.function ? f.function : "??", file, f.line);
    } else {
        ml_say("%s of %p; the report has the stacks", error_words[kind], p);
    }
    if (ml_tr.on_error == ML_ON_ERROR_ABORT) {
        t.guard = 0;
        abort();
    }
}

/* ---- recording -------------------------------------------------------- */

static void attach_thread(void)
{
    t.attached = 1;
    ml_threads_attach();
}

static inline void record(void *p, size_t n)
{
    if (ML_UNLIKELY(!t.attached))
        attach_thread();
    ml_stack_id id = ml_stack_capture();
    if (ml_blocks_insert((uintptr_t)p, n, id, t.tag) == 0)
        stats_alloc(n, t.tag);
}

static void quarantine_evict_one(void)
{
    uint32_t i = (t.qhead + QUARANTINE_SLOTS - t.qcount) % QUARANTINE_SLOTS;
    void *old = t.q[i].p;
    t.qbytes -= t.q[i].size;
    t.qcount--;
    ml_blocks_remove((uintptr_t)old, NULL);
    BACKEND(inner->free(old));
}

static void quarantine_push(void *p, size_t n)
{
    /* The page backend keeps freed blocks inaccessible itself, so a
     * use-after-free faults and the canary is checked at once. */
    if (n > QUARANTINE_BYTES / 4 || (inner->flags & ML_BACKEND_GUARDS_FREED)) {
        ml_blocks_remove((uintptr_t)p, NULL);
        BACKEND(inner->free(p));
        return;
    }
    while (t.qcount && (t.qcount == QUARANTINE_SLOTS || t.qbytes + n > QUARANTINE_BYTES))
        quarantine_evict_one();
    t.q[t.qhead].p = p;
    t.q[t.qhead].size = n;
    t.qhead = (t.qhead + 1) % QUARANTINE_SLOTS;
    t.qcount++;
    t.qbytes += n;
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

static void tr_free(void *p);

/* Called where the interrupted call is over (no lock held, guard clear). */
static void defer_drain(void)
{
    for (;;) {
        unsigned n = __atomic_load_n(&t.ndefer, __ATOMIC_RELAXED);
        if (!n)
            return;
        void *p = t.defer[n - 1];
        if (__atomic_compare_exchange_n(&t.ndefer, &n, n - 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            tr_free(p);
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
    else if (inner->flags & ML_BACKEND_GUARDS_FREED)
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

static void *tr_malloc(size_t n)
{
    if (ML_UNLIKELY(ml_tr_busy))
        return emerg_alloc(16, n);
    if (ML_UNLIKELY(t.guard))
        return meta_alloc(n);
    t.guard = 1;
    void *p;
    BACKEND(p = inner->malloc(n));
    if (ML_LIKELY(p))
        record(p, n);
    SLOT_DONE();
    return p;
}

static void *tr_zalloc(size_t n)
{
    if (ML_UNLIKELY(ml_tr_busy))
        return emerg_alloc(16, n);
    if (ML_UNLIKELY(t.guard))
        return meta_alloc(n);
    t.guard = 1;
    void *p;
    if (inner->zalloc) {
        BACKEND(p = inner->zalloc(n));
    } else {
        BACKEND(p = inner->malloc(n));
        if (p)
            memset(p, 0, n);
    }
    if (ML_LIKELY(p))
        record(p, n);
    SLOT_DONE();
    return p;
}

/* A block that something called from inside mallard (ld.so growing a
 * thread's DTV under the unwinder, say) gets from the backend: it is known
 * to the table, so its later free is valid, but it carries no stack, which
 * keeps it out of the leak list like every pre-tracing block. */
static void *internal_block(void *p, size_t n)
{
    if (p && ml_blocks_insert((uintptr_t)p, n, 0, 0) == 0)
        stats_alloc(n, 0);
    return p;
}

static void *tr_memalign(size_t align, size_t n)
{
    if (ML_UNLIKELY(ml_tr_busy))
        return emerg_alloc(align, n);
    void *p;
    if (ML_UNLIKELY(t.guard)) {
        BACKEND(p = inner->memalign(align, n));
        return internal_block(p, n);
    }
    t.guard = 1;
    BACKEND(p = inner->memalign(align, n));
    if (ML_LIKELY(p))
        record(p, n);
    SLOT_DONE();
    return p;
}

static void tr_free(void *p)
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
        if (ml_blocks_lookup((uintptr_t)p, &r) == 0) {
            if (r.state != ML_BLOCK_FREED && ml_blocks_remove((uintptr_t)p, &r) == 0) {
                stats_free(r.size, r.tag);
                BACKEND(inner->free(p));
            }
        } else {
            emerg_release(p);
        }
        return;
    }
    t.guard = 1;
    /* Mark it freed before capturing: the capture may re-enter free. */
    int rc = ml_blocks_free((uintptr_t)p, 0, &r);
    if (ML_UNLIKELY(rc < 0) && emerg_release(p)) {
        SLOT_DONE();
        return;
    }
    ml_stack_id here = ml_stack_capture();
    if (ML_LIKELY(rc == 1)) {
        if (here)
            ml_blocks_set_free_stack((uintptr_t)p, here);
        stats_free(r.size, r.tag);
        quarantine_push(p, r.size);
    } else if (rc == 0) {
        report_error(ML_ERR_DOUBLE_FREE, p, r.size, here, r.stack, r.free_stack);
    } else {
        report_error(ML_ERR_INVALID_FREE, p, 0, here, 0, 0);
    }
    SLOT_DONE();
}

static void *tr_realloc(void *p, size_t n)
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
        if (ml_blocks_lookup((uintptr_t)p, &r) != 0) {
            int i = emerg_find(p);
            return i >= 0 ? emerg_move(i, p, n, meta_alloc) : NULL;
        }
        if (r.state == ML_BLOCK_FREED)
            return NULL;
        /* The record goes before the block does: once the backend frees p,
         * another thread may get p back and record it. */
        ml_blocks_remove((uintptr_t)p, NULL);
        BACKEND(q = inner->realloc(p, n));
        if (q) {
            stats_free(r.size, r.tag);
            internal_block(q, n);
        } else {
            ml_blocks_insert((uintptr_t)p, r.size, r.stack, r.tag);
        }
        return q;
    }
    t.guard = 1;
    if (ml_blocks_lookup((uintptr_t)p, &r) != 0 || r.state == ML_BLOCK_FREED) {
        int i = emerg_find(p);
        if (i >= 0) {
            SLOT_DONE();
            return emerg_move(i, p, n, tr_malloc);
        }
        int known = ml_blocks_lookup((uintptr_t)p, &r) == 0;
        report_error(ML_ERR_INVALID_REALLOC, p, known ? r.size : 0, ml_stack_capture(), known ? r.stack : 0,
                     known ? r.free_stack : 0);
        SLOT_DONE();
        return NULL;
    }
    ml_blocks_remove((uintptr_t)p, NULL);
    BACKEND(q = inner->realloc(p, n));
    if (q) {
        stats_free(r.size, r.tag);
        record(q, n);
    } else {
        ml_blocks_insert((uintptr_t)p, r.size, r.stack, r.tag);
    }
    SLOT_DONE();
    return q;
}

static size_t tr_usable_size(const void *p)
{
    if (ml_os_owner(p) == ML_OWNER_META)
        return ml_meta_usable_size(p);
    int i = emerg_find(p);
    if (ML_UNLIKELY(i >= 0))
        return emerg[i].size;
    return inner->usable_size(p);
}

static void tr_thread_exit(void)
{
    int guard = t.guard;
    t.guard = 1;
    while (t.qcount)
        quarantine_evict_one();
    if (t.attached) {
        ml_threads_detach();
        t.attached = 0;
    }
    t.guard = guard;
    if (inner->thread_exit)
        BACKEND(inner->thread_exit());
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
        ml_blocks_mark_inherited();
        ml_threads_after_fork();
        ml_tr.pid = getpid();
        ml_tr.forked_child = 1;
        ml_tr.report_done = 1; /* a report the parent is writing is not this process's */
        ml_tr.nerrors_inherited = ml_tr.nerrors;
        ml_tr.allocs_at_fork = ml_tr.allocs;
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
    ml_blocks_mark_inherited();
    ml_threads_after_fork();
    ml_tr.nerrors_inherited = ml_tr.nerrors;
    ml_tr.allocs_at_fork = ml_tr.allocs;
}

static const struct ml_backend trace_backend = {
    .name = "trace",
    .init = tr_init,
    .malloc = tr_malloc,
    .zalloc = tr_zalloc,
    .memalign = tr_memalign,
    .free = tr_free,
    .realloc = tr_realloc,
    .usable_size = tr_usable_size,
    .thread_exit = tr_thread_exit,
    .atfork = tr_atfork,
};

const struct ml_backend *ml_trace_wrap(const struct ml_backend *b, const struct ml_options *opt)
{
    inner = b;
    ml_tr.backend_name = b->name;
    ml_tr.on_error = opt->on_error;
    ml_tr.pid = getpid();
    return &trace_backend;
}

void ml_trace_start(const struct ml_options *opt, const void *boot_arena, size_t boot_size)
{
    ml_stack_init(opt->depth);
    ml_tr.boot_lo = (uintptr_t)boot_arena;
    ml_tr.boot_hi = (uintptr_t)boot_arena + boot_size;
    ml_tr.stderr_fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
    struct stat st;
    if (ml_tr.stderr_fd >= 0 && fstat(ml_tr.stderr_fd, &st) == 0) {
        ml_tr.stderr_dev = st.st_dev;
        ml_tr.stderr_ino = st.st_ino;
    } else if (ml_tr.stderr_fd >= 0) {
        close(ml_tr.stderr_fd);
        ml_tr.stderr_fd = -1;
    }
}

void ml_trace_exec_failed(void) { __atomic_store_n(&ml_tr.finished, 0, __ATOMIC_RELEASE); }

int ml_trace_guard_enter(void)
{
    int was = t.guard;
    t.guard = 1;
    return was;
}

void ml_trace_guard_leave(int was) { t.guard = was; }

size_t ml_trace_current_bytes(void)
{
    return (size_t)__atomic_load_n(&ml_tr.current_bytes, __ATOMIC_RELAXED);
}

int ml_trace_enabled(void) { return __atomic_load_n(&inner, __ATOMIC_RELAXED) != NULL; }
