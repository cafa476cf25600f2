/* report/finish.c: the exit report.
 *
 * Record now, interpret at exit: snapshot the live blocks, sort them by
 * address (livesort.c), classify them by reachability (reach.c), drop what the
 * suppressions match, group the rest by (kind, stack, tag), roll each
 * indirect block up into the definite group of its owner, sort the groups
 * by bytes (a definite group's with the indirect bytes it owns) and hand
 * the model to the text or JSON writer (write_text.c, write_json.c).  Runs
 * once per process, with the recursion guard set so that whatever libdw or
 * the unwinder allocate comes from the meta heap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "inject.h"
#include "livesort.h"
#include "../core/meta.h"
#include "../core/os.h"
#include "../core/options.h"
#include "blocks.h"
#include "dw.h"
#include "finish.h"
#include "outfile.h"
#include "pressure.h"
#include "suppress.h"
#include "trace.h"

/* ---- mallard's own data: not a root ----------------------------------- */

struct skip_ctx {
    struct ml_range r[8];
    size_t n;
};

static int find_own_data(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct skip_ctx *c = data;
    uintptr_t me = (uintptr_t)&ml_tr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (me < lo || me >= hi)
            continue;
        /* the bootstrap arena holds program data: keep scanning it */
        uintptr_t blo = ml_tr.boot_lo, bhi = ml_tr.boot_hi;
        if (blo >= lo && bhi <= hi) {
            c->r[c->n++] = (struct ml_range){lo, blo};
            c->r[c->n++] = (struct ml_range){bhi, hi};
        } else {
            c->r[c->n++] = (struct ml_range){lo, hi};
        }
        return 1;
    }
    return 0;
}

/* ---- grouping --------------------------------------------------------- */

struct group_map {
    struct ml_leak_group *g;
    size_t cap, n;
};

static uint64_t group_hash(unsigned kind, ml_stack_id s, uint16_t tag)
{
    uint64_t h = ((uint64_t)s << 20) ^ ((uint64_t)tag << 4) ^ kind;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 31);
}

static struct ml_leak_group *group_get(struct group_map *m, unsigned kind, ml_stack_id s, uint16_t tag)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        struct ml_leak_group *g = ml_meta_alloc(cap * sizeof *g);
        if (!g) {
            ml_tr_report_short("the list of leak groups");
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->g[i].blocks)
                continue;
            size_t j = group_hash(m->g[i].kind, m->g[i].stack, (uint16_t)(uintptr_t)m->g[i].tag) & (cap - 1);
            while (g[j].blocks)
                j = (j + 1) & (cap - 1);
            g[j] = m->g[i];
        }
        ml_meta_free(m->g);
        m->g = g;
        m->cap = cap;
    }
    size_t j = group_hash(kind, s, tag) & (m->cap - 1);
    while (m->g[j].blocks) {
        struct ml_leak_group *e = &m->g[j];
        if (e->kind == kind && e->stack == s && (uint16_t)(uintptr_t)e->tag == tag)
            return e;
        j = (j + 1) & (m->cap - 1);
    }
    m->n++;
    /* tag holds the id until the groups are finished */
    m->g[j] =
        (struct ml_leak_group){.kind = (enum ml_kind)kind, .tag = (const char *)(uintptr_t)tag, .stack = s};
    return &m->g[j];
}

/* The group of (kind, s, tag) if there is one; never adds. */
static struct ml_leak_group *group_find(const struct group_map *m, unsigned kind, ml_stack_id s, uint16_t tag)
{
    if (!m->cap)
        return NULL;
    size_t j = group_hash(kind, s, tag) & (m->cap - 1);
    for (; m->g[j].blocks; j = (j + 1) & (m->cap - 1)) {
        const struct ml_leak_group *e = &m->g[j];
        if (e->kind == kind && e->stack == s && (uint16_t)(uintptr_t)e->tag == tag)
            return &m->g[j];
    }
    return NULL;
}

/* Until the report is finished a group's tag field holds the tag's id. */
static uint16_t gm_tag_id(const struct ml_leak_group *g) { return (uint16_t)(uintptr_t)g->tag; }

static uint64_t group_total(const struct ml_leak_group *g) { return g->bytes + g->indirect_bytes; }

static void sort_groups(struct ml_leak_group *g, size_t n)
{
    /* shell sort: total bytes descending, then kind, then stack id for
     * stability */
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t gi = 0; gi < sizeof gaps / sizeof gaps[0]; gi++) {
        size_t gap = gaps[gi];
        for (size_t i = gap; i < n; i++) {
            struct ml_leak_group v = g[i];
            size_t j = i;
            while (j >= gap && (group_total(&g[j - gap]) < group_total(&v) ||
                                (group_total(&g[j - gap]) == group_total(&v) &&
                                 (g[j - gap].kind > v.kind ||
                                  (g[j - gap].kind == v.kind && g[j - gap].stack > v.stack))))) {
                g[j] = g[j - gap];
                j -= gap;
            }
            g[j] = v;
        }
    }
}

/* link_owners' map from a group's key to its place: 16 bytes a slot (a
 * group is 72), so that the table of a report with a few dozen groups
 * fills a page, not five. */
struct owner_slot {
    ml_stack_id stack;
    uint16_t tag;
    uint8_t kind, used;
    uint32_t sorted; /* its index among the sorted groups */
    uint32_t listed; /* its index among the report's leaks */
};

static const struct owner_slot *owner_find(const struct owner_slot *t, size_t cap, unsigned kind,
                                           ml_stack_id s, uint16_t tag)
{
    for (size_t j = group_hash(kind, s, tag) & (cap - 1); t[j].used; j = (j + 1) & (cap - 1))
        if (t[j].kind == kind && t[j].stack == s && t[j].tag == tag)
            return &t[j];
    return NULL;
}

/* After the sort: gives every indirect group the indexes of the definite
 * groups that own its blocks.  The groups sit compacted in g->g[0..ng);
 * a table of their keys finds them again. */
static void link_owners(struct group_map *gm, size_t ng, const struct ml_live *live, size_t n,
                        const uint8_t *inherited, size_t nowned, int show_reachable)
{
    if (!nowned)
        return;
    size_t cap = 16;
    while (cap < 2 * ng + 2)
        cap *= 2;
    struct owner_slot *ix = ml_meta_alloc(cap * sizeof *ix);
    uint64_t *pairs = ml_meta_alloc(nowned * sizeof *pairs); /* indirect index << 32 | owner index */
    if (!ix || !pairs) {
        ml_meta_free(ix);
        ml_meta_free(pairs);
        return;
    }
    size_t listed_before = 0;
    for (size_t k = 0; k < ng; k++) {
        const struct ml_leak_group *e = &gm->g[k];
        size_t j = group_hash(e->kind, e->stack, gm_tag_id(e)) & (cap - 1);
        while (ix[j].used)
            j = (j + 1) & (cap - 1);
        ix[j] = (struct owner_slot){.stack = e->stack,
                                    .tag = gm_tag_id(e),
                                    .kind = (uint8_t)e->kind,
                                    .used = 1,
                                    .sorted = (uint32_t)k,
                                    .listed = (uint32_t)(k - listed_before)};
        /* the index in the report's leaks, which lists reachable groups
         * only with MALLARD_SHOW=all */
        if (e->kind == ML_KIND_REACHABLE && !show_reachable)
            listed_before++;
    }
    size_t np = 0;
    for (size_t i = 0; i < n && np < nowned; i++) {
        const struct ml_live *b = &live[i];
        if (b->kind != ML_KIND_INDIRECT || (inherited && inherited[i]) || b->owner >= n)
            continue;
        const struct ml_live *o = &live[b->owner];
        const struct owner_slot *og = owner_find(ix, cap, ML_KIND_DEFINITE, o->stack, o->tag);
        const struct owner_slot *bg = owner_find(ix, cap, ML_KIND_INDIRECT, b->stack, b->tag);
        if (og && bg)
            pairs[np++] = (uint64_t)bg->sorted << 32 | og->listed;
    }
    /* sort the pairs (shell sort), then hand each indirect group its run */
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t gi = 0; gi < sizeof gaps / sizeof gaps[0]; gi++)
        for (size_t i = gaps[gi]; i < np; i++) {
            uint64_t v = pairs[i];
            size_t j = i;
            for (; j >= gaps[gi] && pairs[j - gaps[gi]] > v; j -= gaps[gi])
                pairs[j] = pairs[j - gaps[gi]];
            pairs[j] = v;
        }
    uint32_t *owners = (uint32_t *)pairs; /* compacted in place: 4 bytes per 8 read */
    size_t w = 0;
    for (size_t i = 0; i < np;) {
        size_t gidx = (size_t)(pairs[i] >> 32);
        size_t first = w;
        uint32_t last = UINT32_MAX;
        for (; i < np && (size_t)(pairs[i] >> 32) == gidx; i++) {
            uint32_t own = (uint32_t)pairs[i];
            if (own != last)
                owners[w++] = own;
            last = own;
        }
        gm->g[gidx].owners = owners + first;
        gm->g[gidx].nowners = (uint32_t)(w - first);
    }
    ml_meta_free(ix);
}

/* ---- process facts ---------------------------------------------------- */

static const char *const *read_argv(void)
{
    size_t len = 0;
    char *raw = ml_meta_read_file("/proc/self/cmdline", (size_t)1 << 20, &len);
    size_t count = 0;
    for (size_t i = 0; raw && i < len; i++)
        count += raw[i] == '\0';
    const char **argv = ml_meta_alloc((count + 1) * sizeof *argv);
    if (!argv)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; raw && i < len && k < count; k++) {
        argv[k] = raw + i;
        i += strlen(raw + i) + 1;
    }
    argv[k] = NULL;
    return argv;
}

/* ---- the report ------------------------------------------------------- */

/* Snapshot and sort, in a frame of its own: a block address left in a
 * callee-saved register of ml_trace_finish would otherwise be spilled to the
 * stack during the scan and keep that block alive. */
static __attribute__((noinline)) size_t collect_live(struct ml_live **out, int locked)
{
    size_t cap = ml_blocks_record_count() + 64;
    struct ml_live *live = ml_meta_alloc(cap * sizeof *live);
    size_t n = 0;
    if (live) {
        n = ml_blocks_snapshot(live, cap, locked);
        if (n > 1)
            ml_live_sort(live, n);
    } else if (cap > 64) {
        ml_tr_report_short("the list of live blocks"); /* the totals are still known */
    }
    *out = live;
    return n;
}

/* The tag id of name, 0 when no block carries it (ml_trace_set_tag
 * registers names; preload/api.c uses these two for the LSan interface). */
static uint16_t tag_id(const char *name)
{
    for (uint16_t i = 1; i <= ml_tr.ntags; i++)
        if (ml_tr.tags[i].name && !strcmp(ml_tr.tags[i].name, name))
            return i;
    return 0;
}

static int report(enum ml_exit_how how, int status, const struct ml_options *o, int *found_out);

/* One report per process, whole: the first caller writes it; a caller on
 * another thread (a second exit(), an _exit or a crash while the report is
 * being written) waits for it before it goes on to end the process, which
 * would cut the report short.  The wait is bounded, so a reporter that
 * never finishes cannot hang the process forever. */
int ml_trace_finish(enum ml_exit_how how, int status, const struct ml_options *o)
{
    if (getpid() != ml_tr.pid)
        return status; /* a vfork child, or a clone mallard never saw */
    int me = (int)syscall(SYS_gettid);
    if (__atomic_exchange_n(&ml_tr.finished, 1, __ATOMIC_ACQ_REL)) {
        if (__atomic_load_n(&ml_tr.report_tid, __ATOMIC_ACQUIRE) != me) {
            struct timespec ms = {0, 1000000};
            for (int i = 0; i < 120000 && !__atomic_load_n(&ml_tr.report_done, __ATOMIC_ACQUIRE); i++)
                syscall(SYS_nanosleep, &ms, NULL);
        }
        return status;
    }
    __atomic_store_n(&ml_tr.report_done, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&ml_tr.report_tid, me, __ATOMIC_RELEASE);
    int code = status, found;
    /* A fork child that allocated nothing and hit no error since the fork
     * has nothing of its own to report: skip the scan (shells and signal
     * handlers fork and _exit or exec at once, often). */
    uint64_t allocs;
    ml_trace_counts(&allocs, NULL, NULL, NULL);
    if (!(ml_tr.forked_child && ml_tr.nerrors == ml_tr.nerrors_inherited && allocs == ml_tr.allocs_at_fork))
        code = report(how, status, o, &found);
    __atomic_store_n(&ml_tr.report_done, 1, __ATOMIC_RELEASE);
    return code;
}

int ml_trace_report_live(int final, const struct ml_options *o)
{
    if (getpid() != ml_tr.pid)
        return -1;
    if (final ? __atomic_exchange_n(&ml_tr.finished, 1, __ATOMIC_ACQ_REL)
              : __atomic_load_n(&ml_tr.finished, __ATOMIC_ACQUIRE))
        return -1;
    static ml_mutex live_lock; /* one live report at a time */
    ml_mutex_lock(&live_lock);
    int found = 0;
    report(ML_EXIT_LIVE, 0, o, &found);
    ml_mutex_unlock(&live_lock);
    if (final)
        __atomic_store_n(&ml_tr.report_done, 1, __ATOMIC_RELEASE);
    return found;
}

/* ---- MALLARD_TAGS: tags from the blocks' stacks, at report time ------- */

#define PTAGS_MAX 32

struct ptags {
    size_t n;
    const char *pat[PTAGS_MAX];
    uint16_t id[PTAGS_MAX];
    char buf[ML_PATH_MAX];
};

/* The tag id of name, registered when new (ml_trace_set_tag registers; the
 * thread's own tag is put back). */
static uint16_t tag_register(const char *name)
{
    const char *prev = ml_trace_set_tag(name);
    uint16_t id = tag_id(name);
    ml_trace_set_tag(prev);
    return id;
}

/* Parses "PATTERN=tag,PATTERN=tag"; entries without '=' or with an empty
 * side are skipped. */
static void ptags_parse(struct ptags *pt, const char *spec)
{
    pt->n = 0;
    size_t len = strlen(spec);
    if (len >= sizeof pt->buf)
        return;
    memcpy(pt->buf, spec, len + 1);
    for (char *e = pt->buf; e && *e && pt->n < PTAGS_MAX;) {
        char *comma = strchr(e, ',');
        if (comma)
            *comma = '\0';
        char *eq = strrchr(e, '=');
        if (eq && eq != e && eq[1]) {
            *eq = '\0';
            uint16_t id = tag_register(eq + 1);
            if (id) {
                pt->pat[pt->n] = e;
                pt->id[pt->n++] = id;
            }
        }
        e = comma ? comma + 1 : NULL;
    }
}

/* Frames of these objects never give a tag: the allocation's callers in
 * libc, the C++ runtime, ld.so and mallard itself. */
static int ptags_skipped(const char *object)
{
    if (!object)
        return 0;
    const char *base = strrchr(object, '/');
    base = base ? base + 1 : object;
    static const char *const skip[] = {"libc.so", "libstdc++", "libgcc_s", "ld-linux", "libmallard"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strncmp(base, skip[i], strlen(skip[i])))
            return 1;
    return 0;
}

/* The tag of a stack: that of the first pattern matching the function or
 * the object of its innermost frame outside libc, libstdc++ and mallard
 * that any pattern matches; 0 when none does. */
static uint16_t ptags_stack(const struct ptags *pt, ml_stack_id id)
{
    if (!id)
        return 0;
    unsigned n;
    const uintptr_t *f = ml_stack_frames(id, &n);
    for (unsigned i = 0; f && i < n; i++) {
        struct ml_frame chain[ML_INLINE_MAX];
        unsigned k = ml_symbolize_chain(f[i], chain, ML_INLINE_MAX);
        for (unsigned j = 0; j < k; j++) {
            if (ptags_skipped(chain[j].object))
                continue;
            for (size_t p = 0; p < pt->n; p++)
                if (ml_supp_match(pt->pat[p], chain[j].function) ||
                    ml_supp_match(pt->pat[p], chain[j].object))
                    return pt->id[p];
        }
    }
    return 0;
}

/* The report itself: final ones (exit, _exit, exec, signal) once per
 * process through ml_trace_finish; live ones (ML_EXIT_LIVE) any number of
 * times, the process going on.  *found_out: leaks or errors were found. */
/* What one report works on, in the meta heap. */
struct report_work {
    struct ml_live *live;
    size_t n;
    uint8_t *inherited; /* per block, not this report's: 1 the parent's before a fork, 2 freed since */
    struct group_map gm;
    size_t ngroups;
    struct ml_tag_stats *tags;
    uint64_t *ptag_bytes, *ptag_blocks; /* MALLARD_TAGS: live bytes and blocks per tag id */
};

static void work_free(struct report_work *w)
{
    ml_meta_free(w->live);
    ml_meta_free(w->inherited);
    ml_meta_free(w->gm.g);
    ml_meta_free(w->tags);
    ml_meta_free(w->ptag_bytes);
}

/* Collects the live blocks and classifies them by a scan that starts where
 * the program called exit, _exit or exec. */
/* The snapshot and the scan, with the other threads held (freeze.c): a
 * thread that ran between the two could free a block of the snapshot, which
 * then looked lost (a thread replacing its blocks as the process exited:
 * 64 of them, 43 KiB, reported definitely lost).  The exit frame (dlsym)
 * and the symbols (libdw) are found before and after (ml_freeze_run). */
struct scan_run {
    enum ml_exit_how how;
    struct report_work *w;
    const struct skip_ctx *skip;
    const struct ml_exit_frame *ef;
    int all_held; /* no other thread ran from the snapshot to the scan's end */
};

static void scan_held(void *arg)
{
    struct scan_run *r = arg;
    struct report_work *w = r->w;
    w->n = collect_live(&w->live, r->how != ML_EXIT_SIGNAL);
    /* reach.c uses flags as scratch: keep "inherited" aside */
    w->inherited = ml_meta_alloc(w->n + 1);
    for (size_t i = 0; w->inherited && i < w->n; i++)
        w->inherited[i] = w->live[i].flags;
    if (w->n)
        ml_reach_classify_own(w->live, w->n, r->skip->r, r->skip->n, r->ef, w->inherited);
    r->all_held = ml_freeze_all_held();
}

/* A block found lost that a thread the freeze could not hold freed since
 * the snapshot (or freed and got again: another sequence number) is no
 * leak: it leaves the report, and so do the blocks it owned (a thread that
 * freed it held a pointer to it, so its structure was reachable at the
 * snapshot: a list being torn down as the process exits). */
static void drop_freed(struct report_work *w)
{
    if (!w->inherited)
        return;
    int dropped = 0;
    for (size_t i = 0; i < w->n; i++) {
        const struct ml_live *b = &w->live[i];
        if (b->kind == ML_KIND_REACHABLE || w->inherited[i])
            continue;
        struct ml_block_rec rec;
        if (ml_blocks_lookup(b->addr, &rec) == 0 && rec.state == ML_BLOCK_LIVE &&
            (!b->seq || rec.seq == b->seq))
            continue;
        w->inherited[i] = 2;
        dropped = 1;
    }
    /* an indirect block's owner is the definite block of its structure */
    for (size_t i = 0; dropped && i < w->n; i++) {
        const struct ml_live *b = &w->live[i];
        if (b->kind == ML_KIND_INDIRECT && !w->inherited[i] && b->owner < w->n && w->inherited[b->owner] == 2)
            w->inherited[i] = 2;
    }
}

static void scan_live(enum ml_exit_how how, struct report_work *w)
{
    struct ml_exit_frame ef;
    int have_ef = how != ML_EXIT_SIGNAL && ml_exit_frame_find((int)how, &ef) == 0;
    struct skip_ctx skip = {.n = 0};
    dl_iterate_phdr(find_own_data, &skip);
    struct scan_run r = {how, w, &skip, have_ef ? &ef : NULL, 0};
    ml_freeze_run(scan_held, &r);
    /* a fatal signal's report trusts no lock; with every other thread held
     * nothing was freed (the lookups of bench_exitlive's 200,000 blocks:
     * 253.4 M instructions traced with them, 239.7 M without) */
    if (how != ML_EXIT_SIGNAL && !r.all_held)
        drop_freed(w);
}

/* The suppression verdict for a block's stack, remembered per stack. */
struct supp_memo {
    struct {
        ml_stack_id id;
        int suppressed;
    } * v;
    size_t cap;
};

static int stack_suppressed(struct supp_memo *m, ml_stack_id stack, size_t n)
{
    if (!m->cap) {
        m->cap = 64;
        while (m->cap < 2 * n)
            m->cap *= 2;
        m->v = ml_meta_alloc(m->cap * sizeof *m->v);
    }
    if (!m->v || !stack)
        return ml_supp_stack(stack);
    size_t j = (stack * 2654435761u) & (m->cap - 1);
    while (m->v[j].id && m->v[j].id != stack)
        j = (j + 1) & (m->cap - 1);
    if (m->v[j].id != stack) {
        m->v[j].id = stack;
        m->v[j].suppressed = ml_supp_stack(stack);
    }
    return m->v[j].suppressed;
}

/* MALLARD_TAGS: an untagged block gets the tag of its stack (one verdict
 * per stack), and the tag table the live blocks' bytes. */
static struct ptags pattern_tags;

static void tag_by_stack(struct report_work *w, const struct ml_options *o)
{
    ptags_parse(&pattern_tags, o->tags);
    if (!pattern_tags.n)
        return;
    size_t cap = 64;
    while (cap < 2 * w->n)
        cap *= 2;
    struct {
        ml_stack_id id;
        uint16_t tag;
    } *memo = ml_meta_alloc(cap * sizeof *memo);
    w->ptag_bytes = ml_meta_alloc(2 * 1024 * sizeof *w->ptag_bytes);
    if (!memo || !w->ptag_bytes) {
        ml_meta_free(memo);
        ml_meta_free(w->ptag_bytes);
        w->ptag_bytes = NULL;
        return;
    }
    memset(memo, 0, cap * sizeof *memo);
    memset(w->ptag_bytes, 0, 2 * 1024 * sizeof *w->ptag_bytes);
    w->ptag_blocks = w->ptag_bytes + 1024;
    for (size_t i = 0; i < w->n; i++) {
        struct ml_live *b = &w->live[i];
        if ((w->inherited && w->inherited[i]) || b->tag || !b->stack)
            continue;
        size_t j = (b->stack * 2654435761u) & (cap - 1);
        while (memo[j].id && memo[j].id != b->stack)
            j = (j + 1) & (cap - 1);
        if (memo[j].id != b->stack) {
            memo[j].id = b->stack;
            memo[j].tag = ptags_stack(&pattern_tags, b->stack);
        }
        b->tag = memo[j].tag;
        if (b->tag) {
            w->ptag_bytes[b->tag] += b->size;
            w->ptag_blocks[b->tag]++;
        }
    }
    ml_meta_free(memo);
}

/* Counts every block of this process into r's totals and its group, or as
 * suppressed. */
static void group_live(struct report_work *w, const struct ml_options *o, struct ml_report *r)
{
    static int supp_loaded;
    if (!__atomic_exchange_n(&supp_loaded, 1, __ATOMIC_ACQ_REL))
        ml_supp_load(ml_outfile_secure(o) ? NULL : o->suppressions);
    /* __lsan_ignore_object and __lsan_disable (preload/api.c) tag blocks:
     * they are never leaks, and count as suppressed */
    uint16_t ignored_tag = tag_id(ML_TAG_LSAN_IGNORED), disabled_tag = tag_id(ML_TAG_LSAN_DISABLED);
    ml_supp_reset_counts();
    struct supp_memo memo = {0};
    /* The (kind, stack, tag) keys met last, with their verdict and group:
     * blocks in address order come from a few call sites at a time, and
     * the two hash probes per block were most of this loop.  Forgotten
     * when the group table grows (its groups move). */
    struct {
        struct ml_leak_group *g; /* NULL for a suppressed key */
        ml_stack_id stack;
        uint16_t tag;
        uint8_t kind, full;
        int sup;
    } recent[16];
    memset(recent, 0, sizeof recent);
    for (size_t i = 0; i < w->n; i++) {
        if (w->inherited && w->inherited[i])
            continue; /* the parent's block: its report covers it */
        struct ml_live *b = &w->live[i];
        size_t h = ((b->stack * 2654435761u) >> 28 ^ b->tag ^ (unsigned)b->kind << 2) & 15;
        int sup;
        struct ml_leak_group *g;
        if (recent[h].full && recent[h].stack == b->stack && recent[h].tag == b->tag &&
            recent[h].kind == b->kind) {
            sup = recent[h].sup;
            g = recent[h].g;
        } else {
            sup = 0;
            if (b->kind != ML_KIND_REACHABLE && b->tag && (b->tag == ignored_tag || b->tag == disabled_tag))
                sup = ML_SUPP_NO_STACK; /* counted as suppressed, against no pattern */
            else if (b->kind != ML_KIND_REACHABLE)
                sup = stack_suppressed(&memo, b->stack, w->n);
            size_t cap = w->gm.cap;
            g = sup ? NULL : group_get(&w->gm, b->kind, b->stack, b->tag);
            if (w->gm.cap != cap)
                memset(recent, 0, sizeof recent);
            if (g || sup) { /* not a group the table had no room for: asked again */
                recent[h].g = g;
                recent[h].full = 1;
                recent[h].stack = b->stack;
                recent[h].tag = b->tag;
                recent[h].kind = b->kind;
                recent[h].sup = sup;
            }
        }
        if (sup) {
            ml_supp_count(sup, b->size);
            r->suppressed.bytes += b->size;
            r->suppressed.blocks++;
            continue;
        }
        struct ml_count *c = b->kind == ML_KIND_DEFINITE   ? &r->definite
                             : b->kind == ML_KIND_INDIRECT ? &r->indirect
                                                           : &r->reachable;
        c->bytes += b->size;
        c->blocks++;
        if (g) {
            g->bytes += b->size;
            g->blocks++;
        }
    }
    ml_meta_free(memo.v);
}

/* The owner roll-up, then the groups compacted, sorted and named. */
static void finish_groups(struct report_work *w, const struct ml_options *o)
{
    /* each indirect block's bytes go to the definite group of the block
     * that owns it (none when that one is suppressed) */
    struct group_map *gm = &w->gm;
    size_t nowned = 0;
    for (size_t i = 0; i < w->n; i++) {
        const struct ml_live *b = &w->live[i];
        if (b->kind != ML_KIND_INDIRECT || (w->inherited && w->inherited[i]) || b->owner >= w->n)
            continue;
        const struct ml_live *ob = &w->live[b->owner];
        struct ml_leak_group *og = group_find(gm, ML_KIND_DEFINITE, ob->stack, ob->tag);
        if (!og || !group_find(gm, ML_KIND_INDIRECT, b->stack, b->tag))
            continue; /* the owner or the block itself was suppressed */
        og->indirect_bytes += b->size;
        og->indirect_blocks++;
        nowned++;
    }
    size_t ng = 0;
    for (size_t i = 0; i < gm->cap; i++) {
        if (!gm->g[i].blocks)
            continue;
        gm->g[ng++] = gm->g[i];
    }
    sort_groups(gm->g, ng);
    link_owners(gm, ng, w->live, w->n, w->inherited, nowned, o->show == ML_SHOW_ALL);
    for (size_t i = 0; i < ng; i++) {
        uint16_t tag = gm_tag_id(&gm->g[i]);
        gm->g[i].tag = tag ? ml_tr.tags[tag].name : NULL;
    }
    w->ngroups = ng;
}

static int dw_refused; /* this report does without libdw (report_prepare_memory) */

/* The rest of r: the process, its errors, the groups, the statistics. */
static void fill_report(struct ml_report *r, struct report_work *w, enum ml_exit_how how, int status,
                        const struct ml_options *o)
{
    size_t ntags = ml_tr.ntags;
    w->tags = ml_meta_alloc((ntags + 1) * sizeof *w->tags);
    for (size_t i = 0; w->tags && i < ntags; i++) {
        const struct ml_tag_slot *ts = &ml_tr.tags[i + 1];
        w->tags[i] = (struct ml_tag_stats){.tag = ts->name,
                                           .allocs = ts->allocs,
                                           .current_bytes = ts->current,
                                           .peak_bytes = ts->peak,
                                           .frees = ts->frees,
                                           .bytes_allocated = ts->bytes};
        for (size_t p = 0; p < pattern_tags.n; p++)
            if (pattern_tags.id[p] == i + 1) { /* a MALLARD_TAGS tag */
                w->tags[i].by_stack = !ts->allocs;
                w->tags[i].blocks = w->ptag_blocks ? w->ptag_blocks[i + 1] : 0;
                w->tags[i].current_bytes += w->ptag_bytes ? w->ptag_bytes[i + 1] : 0;
                break;
            }
    }
    r->pid = getpid();
    r->ppid = getppid();
    /* r->exe and r->argv: by write_report, once something is to be said */
    r->backend = ml_tr.backend_name;
    r->exit_how = how;
    r->exit_status = status;
    size_t first_error = ml_tr.forked_child ? ml_tr.nerrors_inherited : 0;
    size_t listed = ml_tr.nerrors < ml_tr.errors_cap ? ml_tr.nerrors : ml_tr.errors_cap;
    r->nerrors = ml_tr.nerrors - first_error;
    r->errors = ml_tr.errors ? ml_tr.errors + first_error : NULL;
    r->nerrors_listed = listed > first_error ? listed - first_error : 0;
    r->groups = w->gm.g;
    r->ngroups = w->ngroups;
    r->tags = w->tags;
    r->ntags = w->tags ? ntags : 0;
    ml_trace_counts(&r->allocs, &r->frees, &r->bytes_allocated, &r->current_bytes);
    int64_t peak = __atomic_load_n(&ml_tr.peak_bytes, __ATOMIC_RELAXED);
    /* threads' shares read apart from the peak's tests: never below now */
    r->peak_bytes = peak > 0 && (uint64_t)peak > r->current_bytes ? (uint64_t)peak : r->current_bytes;
    r->show_reachable = o->show == ML_SHOW_ALL;
    r->nsupps = ml_supp_user(&r->supps);
    ml_inject_stats(&r->injected, &r->inject_stack);
    r->stopped_why = ml_tr_stopped_why();
    r->untraced_allocs = __atomic_load_n(&ml_tr_untraced, __ATOMIC_RELAXED);
    /* frames without names are a shortfall only where frames are shown: a
     * clean process under a tight ulimit -v still says nothing */
    if (dw_refused && (r->definite.blocks || r->indirect.blocks || r->nerrors || r->injected ||
                       (r->show_reachable && r->reachable.blocks)))
        ml_tr_report_short("function names and source lines (too little address space left for libdw; "
                           "frames are object+offset)");
    r->nshort = ml_tr_report_shortfalls(&r->short_of);
}

enum report_shape { SAY_NOTHING, ONE_LINE, WHOLE };

/* What a process writes: nothing when it has nothing to say (a bare
 * preload adds nothing to a clean program's stderr), one line when only a
 * summary was asked for, else the whole report. */
static enum report_shape report_shape(const struct ml_report *r, enum ml_exit_how how,
                                      const struct ml_options *o)
{
    int live_report = how == ML_EXIT_LIVE;
    int found = r->definite.blocks || r->indirect.blocks || r->nerrors;
    /* A partial report is never dropped nor cut to one line: what it lacks
     * is the news (pressure.h). */
    if (r->stopped_why || r->nshort)
        return WHOLE;
    /* A fork child (or one about to exec) with nothing of its own to say
     * stays quiet: the parent's report covers the heap it inherited. */
    if (!live_report && ml_tr.forked_child && !found &&
        (how != ML_EXIT_EXIT || !o->report[0] || !strstr(o->report, "%p")))
        return SAY_NOTHING;
    /* injected failures are worth a report, not a leak or an error */
    int quiet = !found && !r->injected;
    int clean_text = o->format == ML_FORMAT_TEXT && quiet && !r->show_reachable && !r->suppressed.blocks;
    /* A clean process prints its one line only when asked: the top of a
     * tree the mallard command started (MALLARD_SUMMARY=auto; not while it
     * execs into the next image, which will say it), or every process (all,
     * -v); none (-q) prints nothing. */
    int summary = live_report || o->summary == ML_SUMMARY_ALL ||
                  (o->summary == ML_SUMMARY_AUTO && o->top_pid == r->pid && how != ML_EXIT_EXEC);
    /* As LSan prints "Suppressions used:" even when every leak was
     * suppressed, a process whose leaks the user's file suppressed writes
     * its report: the table is how a user sees a suppression work. */
    int supp_used = 0;
    for (size_t k = 0; k < r->nsupps; k++)
        supp_used |= r->supps[k].blocks != 0;
    /* Nothing found and nothing asked for: a report bound for stderr says
     * nothing at all, in any format and whatever was suppressed, as LSan
     * does, since programs capture and compare stderr (CMake, $(cmd 2>&1),
     * tests). */
    if (!o->stats && ((clean_text && !summary) ||
                      (quiet && !r->show_reachable && !o->report[0] && !summary && !supp_used)))
        return SAY_NOTHING;
    if (!supp_used && !o->stats &&
        (clean_text || (quiet && !r->show_reachable && summary && o->format == ML_FORMAT_TEXT)))
        return ONE_LINE;
    return WHOLE;
}

static void write_report(const struct ml_report *r, const struct ml_options *o, enum report_shape shape)
{
    int owned;
    int fd = ml_outfile_report(o, &owned);
    if (fd < 0) {
        /* stderr is gone and its numbers hold the program's own files:
         * nowhere to write, not even a warning */
        ml_say_to(-1);
        return;
    }
    if (owned)
        ml_outfile_lock(fd);
    int rc;
    if (shape == ONE_LINE) {
        /* Nothing to show: one line, not a page per process (a shell
         * script runs dozens of them, each writing its own report). */
        const char *name = r->argv && r->argv[0] ? r->argv[0] : r->exe ? r->exe : "?";
        char line[512];
        size_t len =
            ml_fmt(line, sizeof line,
                   "==mallard== pid %d (%s): no leaks, no errors; %lu bytes in %lu blocks still reachable\n",
                   r->pid, name, (unsigned long)r->reachable.bytes, (unsigned long)r->reachable.blocks);
        rc = ml_write_all(fd, line, len);
    } else {
        rc = o->format == ML_FORMAT_JSON ? ml_write_json(fd, r) : ml_write_text(fd, r);
    }
    if (rc != 0)
        ml_say("the report could not be written (%s)",
               strerrordesc_np(rc) ? strerrordesc_np(rc) : "unknown error");
    if (owned) {
        ml_outfile_unlock(fd);
        close(fd);
    }
}

/* Address space left under RLIMIT_AS, in bytes; SIZE_MAX when there is no
 * limit or it cannot be told.  open/read only, nothing allocated. */
static size_t as_room(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return SIZE_MAX;
    char buf[64];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SIZE_MAX;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return SIZE_MAX;
    buf[n] = '\0';
    size_t pages = 0;
    for (const char *c = buf; *c >= '0' && *c <= '9'; c++)
        pages = pages * 10 + (size_t)(*c - '0');
    size_t used = pages * ml_os_page_size();
    return used >= rl.rlim_cur ? 0 : (size_t)rl.rlim_cur - used;
}

/* Below this much address space, the report does without libdw (its
 * libraries, its DWARF data and its deep stack would not fit; a stack that
 * cannot grow is a SIGSEGV) and hands part of the meta heap's reserve back
 * for the stack. */
#define REPORT_ROOM ((size_t)16 << 20)

static void report_prepare_memory(void)
{
    ml_tr_report_reset();
    size_t room = as_room();
    dw_refused = room < REPORT_ROOM;
    if (dw_refused)
        ml_dw_refuse();
    /* short of memory, the report draws on the meta heap's reserve */
    ml_meta_reserve_open(room < REPORT_ROOM ? (size_t)1 << 20 : 0);
}

static int report(enum ml_exit_how how, int status, const struct ml_options *o, int *found_out)
{
    int was = ml_trace_guard_enter();
    /* every message from here on goes where the report's stderr is */
    ml_say_to(ml_outfile_stderr());
    report_prepare_memory();
    struct report_work w;
    memset(&w, 0, sizeof w);
    struct ml_report r;
    memset(&r, 0, sizeof r);
    scan_live(how, &w);
    tag_by_stack(&w, o);
    group_live(&w, o, &r);
    finish_groups(&w, o);
    fill_report(&r, &w, how, status, o);
    *found_out = r.definite.blocks || r.indirect.blocks || r.nerrors;
    enum report_shape shape = report_shape(&r, how, o);
    if (shape != SAY_NOTHING) {
        /* read only for a report that is written: a quiet process (most
         * of a shell script's) skips the readlink and the cmdline read */
        r.exe = ml_modules_exe();
        r.argv = read_argv();
        write_report(&r, o, shape);
    }
    /* the process may go on (a live report, a failed exec): give the work
     * space back */
    work_free(&w);
    ml_trace_guard_leave(was);
    if (o->exitcode && (r.definite.blocks || r.nerrors))
        return o->exitcode;
    return status;
}
