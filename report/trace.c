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

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "../core/os.h"
#include "../core/options.h"
#include "blocks.h"
#include "finish.h"

#define QUARANTINE_SLOTS 256
#define QUARANTINE_BYTES ((size_t)4 << 20)
#define TAGS_MAX 1024

struct tr_thread {
    int guard;
    int attached;
    uint16_t tag;
    uint32_t qhead, qcount;
    size_t qbytes;
    struct {
        void *p;
        size_t size;
    } q[QUARANTINE_SLOTS];
};

static ML_TLS struct tr_thread t;

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
    ml_mutex_lock(&ml_tr.tag_lock);
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
    ml_mutex_unlock(&ml_tr.tag_lock);
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
    ml_mutex_lock(&ml_tr.error_lock);
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
    ml_mutex_unlock(&ml_tr.error_lock);

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
    inner->free(old);
}

static void quarantine_push(void *p, size_t n)
{
    /* The page backend keeps freed blocks inaccessible itself, so a
     * use-after-free faults and the canary is checked at once. */
    if (n > QUARANTINE_BYTES / 4 || (inner->flags & ML_BACKEND_GUARDS_FREED)) {
        ml_blocks_remove((uintptr_t)p, NULL);
        inner->free(p);
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

/* ---- the decorator's slots -------------------------------------------- */

static int tr_init(const struct ml_options *opt)
{
    (void)opt;
    return 0;
}

static void *tr_malloc(size_t n)
{
    if (ML_UNLIKELY(t.guard))
        return ml_meta_alloc(n);
    t.guard = 1;
    void *p = inner->malloc(n);
    if (ML_LIKELY(p))
        record(p, n);
    t.guard = 0;
    return p;
}

static void *tr_zalloc(size_t n)
{
    if (ML_UNLIKELY(t.guard))
        return ml_meta_alloc(n);
    t.guard = 1;
    void *p;
    if (inner->zalloc) {
        p = inner->zalloc(n);
    } else {
        p = inner->malloc(n);
        if (p)
            memset(p, 0, n);
    }
    if (ML_LIKELY(p))
        record(p, n);
    t.guard = 0;
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
    if (ML_UNLIKELY(t.guard))
        return internal_block(inner->memalign(align, n), n);
    t.guard = 1;
    void *p = inner->memalign(align, n);
    if (ML_LIKELY(p))
        record(p, n);
    t.guard = 0;
    return p;
}

static void tr_free(void *p)
{
    if (ML_UNLIKELY(ml_os_owner(p) == ML_OWNER_META)) {
        ml_meta_free(p);
        return;
    }
    struct ml_block_rec r;
    if (ML_UNLIKELY(t.guard)) {
        /* Something mallard called (ld.so from inside the unwinder, say)
         * frees a block.  Only a live one goes to the backend: a freed one
         * is either in the quarantine or being freed right now by the very
         * call that re-entered (ld.so frees a stale TLS block, our stack
         * capture re-enters __tls_get_addr, which frees it again). */
        if (ml_blocks_lookup((uintptr_t)p, &r) == 0 && r.state != ML_BLOCK_FREED &&
            ml_blocks_remove((uintptr_t)p, &r) == 0) {
            stats_free(r.size, r.tag);
            inner->free(p);
        }
        return;
    }
    t.guard = 1;
    /* Mark it freed before capturing: the capture may re-enter free. */
    int rc = ml_blocks_free((uintptr_t)p, 0, &r);
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
    t.guard = 0;
}

static void *tr_realloc(void *p, size_t n)
{
    if (ML_UNLIKELY(ml_os_owner(p) == ML_OWNER_META))
        return ml_meta_realloc(p, n);
    struct ml_block_rec r;
    if (ML_UNLIKELY(t.guard)) {
        if (ml_blocks_lookup((uintptr_t)p, &r) != 0 || r.state == ML_BLOCK_FREED)
            return NULL;
        /* The record goes before the block does: once the backend frees p,
         * another thread may get p back and record it. */
        ml_blocks_remove((uintptr_t)p, NULL);
        void *q = inner->realloc(p, n);
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
        int known = ml_blocks_lookup((uintptr_t)p, &r) == 0;
        report_error(ML_ERR_INVALID_REALLOC, p, known ? r.size : 0, ml_stack_capture(), known ? r.stack : 0,
                     known ? r.free_stack : 0);
        t.guard = 0;
        return NULL;
    }
    ml_blocks_remove((uintptr_t)p, NULL);
    void *q = inner->realloc(p, n);
    if (q) {
        stats_free(r.size, r.tag);
        record(q, n);
    } else {
        ml_blocks_insert((uintptr_t)p, r.size, r.stack, r.tag);
    }
    t.guard = 0;
    return q;
}

static size_t tr_usable_size(const void *p)
{
    if (ml_os_owner(p) == ML_OWNER_META)
        return ml_meta_usable_size(p);
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
        inner->thread_exit();
}

static void tr_atfork(int phase)
{
    if (phase == ML_FORK_PREPARE) {
        ml_mutex_lock(&ml_tr.error_lock);
        ml_mutex_lock(&ml_tr.tag_lock);
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
    if (phase == ML_FORK_CHILD) {
        ml_mutex_reset(&ml_tr.tag_lock);
        ml_mutex_reset(&ml_tr.error_lock);
        ml_blocks_mark_inherited();
        ml_threads_after_fork();
        ml_tr.pid = getpid();
        ml_tr.forked_child = 1;
        ml_tr.nerrors_inherited = ml_tr.nerrors;
        ml_tr.allocs_at_fork = ml_tr.allocs;
    } else {
        ml_mutex_unlock(&ml_tr.tag_lock);
        ml_mutex_unlock(&ml_tr.error_lock);
    }
}

void ml_trace_after_single_fork(void)
{
    ml_tr.pid = getpid();
    ml_tr.forked_child = 1;
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
    ml_tr.depth = opt->depth;
    ml_tr.pid = getpid();
    ml_tr.opt = opt;
    return &trace_backend;
}

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
