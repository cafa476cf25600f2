/* report/stats.c: the MALLARD_STATS decorator.  See stats.h.
 *
 * Bytes are the backend's usable sizes (the bare allocator does not keep
 * requested sizes).  Peak: each thread keeps the peak of its own running
 * balance; the summary adds them up, which is exact for a program with one
 * allocating thread and an upper bound otherwise (it says which).  There are
 * no tags without the tracer: the summary says "per tag needs the tracer". */
#define _GNU_SOURCE
#include "trace.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "../core/compiler.h"
#include "../core/lock.h"
#include "../core/meta.h"
#include "../core/options.h"
#include "outfile.h"
#include "wbuf.h"

struct st_slot {
    uint64_t allocs, frees, bytes;
    int64_t current, peak;
    int used; /* held by a live thread */
    struct st_slot *next;
};

static const struct ml_backend *inner;
static struct ml_backend wrapped;
static const struct ml_options *opts;

static ml_mutex reg_lock = ML_MUTEX_INIT;
static struct st_slot *registry; /* every slot ever made; a freed one is reused */
static struct st_slot folded;    /* the slots of ended threads, added up */
static unsigned nthreads;        /* threads that ever counted */

static ML_TLS struct st_slot *me;
static struct st_slot boot_slot; /* if the meta heap fails */

static struct st_slot *attach(void)
{
    ml_mutex_lock(&reg_lock);
    struct st_slot *s = registry;
    while (s && s->used)
        s = s->next;
    if (!s) {
        s = ml_meta_alloc(sizeof *s);
        if (s) {
            memset(s, 0, sizeof *s);
            s->next = registry;
            registry = s;
        } else {
            s = &boot_slot;
        }
    }
    s->used = 1;
    nthreads++;
    ml_mutex_unlock(&reg_lock);
    me = s;
    ml_backend_watch_thread();
    return s;
}

static inline struct st_slot *slot(void)
{
    struct st_slot *s = me;
    return ML_LIKELY(s != NULL) ? s : attach();
}

static inline void count_alloc(void *p)
{
    if (!p)
        return;
    struct st_slot *s = slot();
    size_t n = inner->usable_size(p);
    s->allocs++;
    s->bytes += n;
    s->current += (int64_t)n;
    if (s->current > s->peak)
        s->peak = s->current;
}

static inline void count_free(size_t n)
{
    struct st_slot *s = slot();
    s->frees++;
    s->current -= (int64_t)n;
}

static void *st_malloc(size_t size)
{
    void *p = inner->malloc(size);
    count_alloc(p);
    return p;
}

static void *st_zalloc(size_t size)
{
    void *p = inner->zalloc(size);
    count_alloc(p);
    return p;
}

static void *st_memalign(size_t align, size_t size)
{
    void *p = inner->memalign(align, size);
    count_alloc(p);
    return p;
}

static void st_free(void *p)
{
    count_free(inner->usable_size(p));
    inner->free(p);
}

static int st_free_checked(void *p)
{
    count_free(inner->usable_size(p));
    return inner->free_checked(p);
}

/* A realloc counts as a free of the old block and an allocation of the
 * new one, as the trace layer counts it. */
static void *st_realloc(void *p, size_t size)
{
    size_t old = inner->usable_size(p);
    void *q = inner->realloc(p, size);
    if (q) {
        count_free(old);
        count_alloc(q);
    }
    return q;
}

static void st_thread_exit(void)
{
    struct st_slot *s = me;
    if (s && s != &boot_slot) {
        ml_mutex_lock(&reg_lock);
        folded.allocs += s->allocs;
        folded.frees += s->frees;
        folded.bytes += s->bytes;
        folded.current += s->current;
        folded.peak += s->peak;
        memset(s, 0, offsetof(struct st_slot, next));
        ml_mutex_unlock(&reg_lock);
        me = NULL;
    }
    if (inner->thread_exit)
        inner->thread_exit();
}

static void st_atfork(int phase)
{
    if (phase == ML_FORK_PREPARE) {
        ml_lock_atfork(&reg_lock, phase);
        if (inner->atfork)
            inner->atfork(phase);
    } else {
        if (inner->atfork)
            inner->atfork(phase);
        ml_lock_atfork(&reg_lock, phase);
    }
}

static void field(struct ml_wbuf *o, const char *name, uint64_t v, int json)
{
    if (json) {
        ml_wbuf_str(o, ", \"");
        ml_wbuf_str(o, name);
        ml_wbuf_str(o, "\": ");
    } else {
        ml_wbuf_str(o, ", ");
        ml_wbuf_str(o, name);
        ml_wbuf_str(o, " ");
    }
    ml_wbuf_u64(o, v);
}

/* The summary, at exit (a destructor: exit() and a return from main). */
__attribute__((destructor)) static void st_report(void)
{
    if (!inner)
        return;
    ml_mutex_lock(&reg_lock);
    struct st_slot t = folded;
    unsigned threads = nthreads;
    for (struct st_slot *s = registry; s; s = s->next) {
        t.allocs += s->allocs;
        t.frees += s->frees;
        t.bytes += s->bytes;
        t.current += s->current;
        t.peak += s->peak;
    }
    t.allocs += boot_slot.allocs;
    t.frees += boot_slot.frees;
    t.bytes += boot_slot.bytes;
    t.current += boot_slot.current;
    t.peak += boot_slot.peak;
    ml_mutex_unlock(&reg_lock);
    uint64_t current = t.current > 0 ? (uint64_t)t.current : 0;
    uint64_t peak = t.peak > 0 ? (uint64_t)t.peak : 0;
    if (peak < current)
        peak = current;
    int exact = threads <= 1;

    int owned = 0, fd = 2;
    if (opts->report[0]) {
        fd = ml_outfile_report(opts, &owned);
        if (fd < 0) {
            fd = 2;
            owned = 0;
        }
    }
    int json = opts->format == ML_FORMAT_JSON;
    struct ml_wbuf o;
    ml_wbuf_init(&o, fd);
    if (json) {
        ml_wbuf_str(&o, "{\"mallard_stats\": {\"pid\": ");
        ml_wbuf_u64(&o, (uint64_t)getpid());
        ml_wbuf_str(&o, ", \"tracer\": false, \"backend\": \"");
        ml_wbuf_str(&o, inner->name);
        ml_wbuf_str(&o, "\", \"bytes_are\": \"usable\"");
        field(&o, "allocs", t.allocs, 1);
        field(&o, "frees", t.frees, 1);
        field(&o, "bytes_allocated", t.bytes, 1);
        field(&o, "current_bytes", current, 1);
        field(&o, "peak_bytes", peak, 1);
        ml_wbuf_str(&o, exact ? ", \"peak_exact\": true" : ", \"peak_exact\": false");
        field(&o, "threads", threads, 1);
        ml_wbuf_str(&o, ", \"tags\": null, \"tags_note\": \"per tag needs the tracer\"}}\n");
    } else {
        ml_wbuf_str(&o, "==mallard== stats (pid ");
        ml_wbuf_u64(&o, (uint64_t)getpid());
        ml_wbuf_str(&o, ", tracer off, backend ");
        ml_wbuf_str(&o, inner->name);
        ml_wbuf_str(&o, ", usable bytes): allocs ");
        ml_wbuf_u64(&o, t.allocs);
        field(&o, "frees", t.frees, 0);
        field(&o, "bytes allocated", t.bytes, 0);
        field(&o, "current bytes", current, 0);
        field(&o, "peak bytes", peak, 0);
        ml_wbuf_str(&o, exact ? " (exact)" : " (at most: per-thread peaks added up)");
        ml_wbuf_str(&o, "\n==mallard== stats: per tag needs the tracer (MALLARD_TRACE=1)\n");
    }
    ml_wbuf_done(&o);
    if (owned)
        close(fd);
}

const struct ml_backend *ml_stats_wrap(const struct ml_backend *b, const struct ml_options *opt)
{
    inner = b;
    opts = opt;
    wrapped = *b;
    wrapped.malloc = st_malloc;
    wrapped.zalloc = b->zalloc ? st_zalloc : NULL;
    wrapped.memalign = st_memalign;
    wrapped.free = st_free;
    wrapped.realloc = st_realloc;
    wrapped.free_checked = b->free_checked ? st_free_checked : NULL;
    wrapped.thread_exit = st_thread_exit;
    wrapped.atfork = st_atfork;
    return &wrapped;
}
