/* report/stack.c: stack capture, and the stack depot.
 *
 * Capture: unwind.c's caching unwinder first (no lock, no TLS); for a
 * stack with a frame it cannot walk (a signal frame, a CFA expression, code
 * without an FDE), unw_backtrace with libunwind's per-thread cache, whose
 * frames are the same by construction (tests/unwind).  libunwind.so.8
 * exports _Unwind_* and a weak backtrace, so linking it into a preloaded
 * library would hand those names to the host (C++ exceptions could end up
 * in the wrong unwinder).  It is therefore dlopen'ed RTLD_LOCAL, and only
 * when a stack needs it: loading it (and its liblzma) cost every traced
 * process about a quarter of the tracer's start-up and exit, and most
 * processes never have a stack the own unwinder cannot walk.  The first
 * capture that needs it loads it (see "loading libunwind" below);
 * allocations made before mallard's constructor carry no stack.  Frames inside libmallard.so are dropped, so
 * frame 0 is the return address into the caller of the malloc-family function; the caching unwinder steps
 * over them without recording them (ml_unwind_skip: after their first visit, mallard's standard frame-pointer
 * frames cost three loads each, no recipe lookup).  A per-thread memo of recent walks (unwind.c), up to 256
 * of them in sets chosen by where each leaves mallard's frames, answers a walk that would read the very words
 * a recorded one read with that walk's stack id, so a program allocating from a few hundred places neither
 * walks nor hashes those stacks again; a walk it has not seen that meets, in its first frames, a frame a
 * recorded walk went through (an anchor) takes that walk's frames from there on (ML_UNWIND_ABOVE).
 *
 * Depot: stacks are deduplicated into 32-bit ids.  A 64-way sharded hash
 * (each shard its own lock, so threads rarely meet) maps a stack to its id;
 * the frames live in the meta heap, and ids index a two-level array that
 * only grows, so ml_stack_frames needs no lock.  Each thread also remembers
 * its recent stacks in a small direct-mapped cache, so a loop that
 * allocates and frees from a few call sites skips the shared table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "../core/lock.h"
#include "../core/meta.h"
#include "../core/os.h"
#include "busy.h"
#include "pressure.h"
#include "report.h"

#define SHARDS 64
#define IDS_PER_CHUNK 65536
#define ID_CHUNKS 4096 /* 2^28 ids */

struct depot_entry {
    uint64_t hash;
    uint32_t id;
    uint32_t n;
    uintptr_t frames[];
};

struct depot_shard {
    ml_mutex lock;
    struct depot_entry **slots; /* open addressing */
    size_t cap, count;
    char pad[64 - sizeof(ml_mutex) - 2 * sizeof(size_t) - sizeof(void *)];
};

static struct {
    int depth;
    int on;        /* stacks are captured */
    int fast;      /* unwind.c answers first; libunwind for what it cannot */
    int memo_ok;   /* on and fast, and not no_unwind: capture_from asks the memo first */
    int unw_state; /* libunwind: UNW_NONE, UNW_LOADING, UNW_READY, UNW_FAILED */
    void *unw_handle;
    int (*backtrace)(void **, int);
    uintptr_t self_lo, self_hi; /* libmallard.so's text */
    struct depot_shard shards[SHARDS];
    struct depot_entry **ids[ID_CHUNKS];
    uint32_t next_id;
} st;

#define RECENT 64 /* per-thread direct-mapped cache of stack hash -> id */
static ML_TLS struct {
    uint64_t hash;
    ml_stack_id id;
} recent[RECENT];
/* and the unwinder's record of its recent walks on this thread (unwind.c):
 * a signal handler on this thread captures no stack while the thread is in
 * a capture (the trace layer's guard is set then), so it is never seen
 * half-written.  It is a mapping of its own (registered as mallard's, so
 * the exit scan reads none of the stack words it holds), made at the
 * thread's first capture and unmapped at its exit: in static TLS it would come out of
 * every thread's stack (pthread_create of a PTHREAD_STACK_MIN stack would
 * fail with EINVAL), and fresh pages need no clearing.  It starts with
 * ML_MEMO_SETS_MIN sets (27 KiB, in a 64 KiB mapping), and doubles, up to
 * ML_MEMO_SETS_MAX (216 KiB), each time more than an eighth of the last MEMO_WINDOW walks missed:
 * a short program touches a few pages, one that allocates from a few
 * hundred places keeps the walk of each. */
#define MEMO_WINDOW 4096
static ML_TLS struct ml_unwind_memo *memo;
static ML_TLS int memo_done; /* past thread exit, or none to be had: no memo */

static struct ml_unwind_memo *memo_map(unsigned sets)
{
    /* mallard's own (ML_OWNER_META): the words it copies from the stack,
     * a program's rbp among them, are no roots for the exit scan */
    int saved = errno;
    struct ml_unwind_memo *m = ml_os_map_user(ML_MEMO_BYTES(sets), 0, ML_OWNER_META, 0);
    errno = saved;
    if (m) {
        m->sets = sets;
        m->grow_at = MEMO_WINDOW;
    }
    return m;
}

static struct ml_unwind_memo *memo_get(void)
{
    if (ML_LIKELY(memo != NULL) || memo_done)
        return memo;
    struct ml_unwind_memo *m = memo_map(ML_MEMO_SETS_MIN);
    if (!m)
        memo_done = 1;
    memo = m;
    return m;
}

/* Past m->grow_at walks: a memo that missed more than an eighth of the
 * last window is replaced by one twice its size (a cache: what it held is
 * let go). */
static __attribute__((noinline)) void memo_look(struct ml_unwind_memo *m)
{
    unsigned long misses = m->misses - m->seen_misses, walks = misses + m->hits - m->seen_hits;
    m->seen_misses = m->misses;
    m->seen_hits = m->hits;
    m->grow_at = m->hits + m->misses + MEMO_WINDOW;
    if (misses * 8 <= walks || m->sets >= ML_MEMO_SETS_MAX)
        return;
    struct ml_unwind_memo *g = memo_map(m->sets * 2);
    if (!g) {
        m->grow_at = (unsigned long)-1; /* keep this one */
        return;
    }
    g->misses = g->seen_misses = m->misses;
    g->hits = g->seen_hits = m->hits;
    g->grow_at = m->grow_at;
    memo = g;
    ml_os_unmap_user(m, ML_MEMO_BYTES(m->sets));
}

void ml_stack_thread_exit(void)
{
    /* no memo from here on, even for a signal handler's malloc between the
     * two stores */
    memo_done = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    struct ml_unwind_memo *m = memo;
    memo = NULL;
    if (m)
        ml_os_unmap_user(m, ML_MEMO_BYTES(m->sets));
}

/* ---- unwinding across fork ------------------------------------------
 *
 * libunwind takes locks of its own while it unwinds (its caches, its
 * memory pool; dl_iterate_phdr's lock).  A fork taken while another thread
 * is inside unw_backtrace leaves them locked in the child, whose first
 * stack capture then hangs.  So each capture that calls libunwind (the
 * caching unwinder takes no lock and needs no gate) is counted in flight (a
 * counter per stripe of threads, two locked operations on a line its
 * threads share), and a fork's prepare handler closes a gate at which new
 * captures wait, then waits for the ones in flight to finish.  Both waits
 * are bounded, so neither can hang a program whose threads hold locks the
 * other side needs; and a child forked while a capture was still in
 * flight (the counts it inherits say so exactly) records no stacks rather
 * than risk libunwind's locks. */
#define GATE_STRIPES 64
#define GATE_WAIT_MS 2000
static struct {
    int n;
    char pad[60];
} in_flight[GATE_STRIPES] __attribute__((aligned(64)));
static int gate_closed;
static int no_unwind;         /* a fork child that inherited a capture in flight */
static ML_TLS int my_unwinds; /* this thread's captures in flight (a signal handler's nest) */

static unsigned gate_stripe(void)
{
    uint64_t h = (uint64_t)(uintptr_t)&my_unwinds * 0x9e3779b97f4a7c15ull;
    return (unsigned)(h >> 58) & (GATE_STRIPES - 1);
}

static void gate_nap(void)
{
    struct timespec ms = {0, 1000000};
    syscall(SYS_nanosleep, &ms, NULL);
}

static unsigned gate_enter(void)
{
    unsigned s = gate_stripe();
    for (int waited = 0;; waited++) {
        __atomic_add_fetch(&in_flight[s].n, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&gate_closed, __ATOMIC_SEQ_CST) || waited >= GATE_WAIT_MS)
            break;
        __atomic_sub_fetch(&in_flight[s].n, 1, __ATOMIC_SEQ_CST);
        gate_nap();
    }
    my_unwinds++;
    return s;
}

static void gate_leave(unsigned s)
{
    my_unwinds--;
    __atomic_sub_fetch(&in_flight[s].n, 1, __ATOMIC_RELEASE);
}

/* Captures in flight on other threads. */
static int gate_others(void)
{
    int sum = 0;
    for (int i = 0; i < GATE_STRIPES; i++)
        sum += __atomic_load_n(&in_flight[i].n, __ATOMIC_SEQ_CST);
    return sum - my_unwinds;
}

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t me = (uintptr_t)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (me >= lo && me < hi) {
            st.self_lo = lo;
            st.self_hi = hi;
            return 1;
        }
    }
    return 0;
}

/* ---- loading libunwind ----------------------------------------------
 *
 * Once per process, by the first caller that needs it: a capture the own
 * unwinder cannot walk (from inside malloc, under the fork gate, with
 * cancellation off), a fault's capture, the exit report's frame search
 * when the own reader cannot follow a rule, or start-up itself when
 * glibc lacks _dl_find_object or the page backend is on (whose fault
 * reports unwind through a signal frame, in a SIGSEGV handler).  From
 * inside malloc, dlopen takes ld.so's dl_load_lock; a capture on another
 * thread that needs libunwind while it is being loaded does not wait for
 * it (it records no stack), so the loader is never waited for by a
 * thread that holds what it might need.  Same gap as the exit report's
 * libdw: a thread inside dlopen whose constructor takes a lock (a FILE's)
 * the allocating thread holds would wait for it; before this change
 * libunwind was loaded at start-up in every process, whether needed or
 * not. */
#define UNW_NONE 0
#define UNW_LOADING 1
#define UNW_READY 2
#define UNW_FAILED 3

static int (*unw_load(void))(void **, int)
{
    int state = __atomic_load_n(&st.unw_state, __ATOMIC_ACQUIRE);
    if (state == UNW_READY)
        return st.backtrace;
    if (state != UNW_NONE || !__atomic_compare_exchange_n(&st.unw_state, &state, UNW_LOADING, 0,
                                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return state == UNW_READY ? st.backtrace : NULL;
    /* never dlclose'd (RTLD_NODELETE: see report/exitframe.c) */
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    int (*bt)(void **, int) = NULL;
    if (!h) {
        ml_say("libunwind.so.8 could not be loaded; stacks it is needed for are not recorded");
    } else {
        int (*policy)(void *, int) = (int (*)(void *, int))dlsym(h, "_ULx86_64_set_caching_policy");
        void **space = dlsym(h, "_ULx86_64_local_addr_space");
        if (policy && space)
            policy(*space, 2 /* UNW_CACHE_PER_THREAD */);
        bt = (int (*)(void **, int))dlsym(h, "unw_backtrace");
        if (!bt)
            ml_say("libunwind.so.8 has no unw_backtrace; stacks it is needed for are not recorded");
    }
    st.unw_handle = h;
    st.backtrace = bt;
    __atomic_store_n(&st.unw_state, bt ? UNW_READY : UNW_FAILED, __ATOMIC_RELEASE);
    return bt;
}

void *ml_stack_libunwind(void) { return unw_load() ? st.unw_handle : NULL; }

int ml_stack_libunwind_loaded(void) { return __atomic_load_n(&st.unw_state, __ATOMIC_ACQUIRE) == UNW_READY; }

int ml_stack_init(int depth, int eager)
{
    st.depth = depth < 1 ? 1 : depth > ML_DEPTH_MAX ? ML_DEPTH_MAX : depth;
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&ml_stack_init);
    st.fast = ml_unwind_init() == 0;
    ml_unwind_set_own(st.self_lo, st.self_hi);
    if ((eager || !st.fast) && !unw_load())
        return -1;
    __atomic_store_n(&st.memo_ok, st.fast, __ATOMIC_RELAXED);
    __atomic_store_n(&st.on, 1, __ATOMIC_RELEASE);
    return 0;
}

static uint64_t hash_frames(const uintptr_t *f, unsigned n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (unsigned i = 0; i < n; i++) {
        h ^= f[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h ? h : 1;
}

static struct depot_entry *entry_of(ml_stack_id id)
{
    struct depot_entry **chunk = __atomic_load_n(&st.ids[id / IDS_PER_CHUNK], __ATOMIC_ACQUIRE);
    return chunk ? __atomic_load_n(&chunk[id % IDS_PER_CHUNK], __ATOMIC_ACQUIRE) : NULL;
}

/* Gives e a new id; 0 when the id space or memory is exhausted. */
static ml_stack_id publish(struct depot_entry *e)
{
    uint32_t id = __atomic_add_fetch(&st.next_id, 1, __ATOMIC_RELAXED);
    if (id / IDS_PER_CHUNK >= ID_CHUNKS)
        return 0;
    struct depot_entry ***slot = &st.ids[id / IDS_PER_CHUNK];
    struct depot_entry **chunk = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!chunk) {
        struct depot_entry **fresh = ml_meta_alloc(IDS_PER_CHUNK * sizeof *fresh);
        if (!fresh)
            return 0;
        if (!__atomic_compare_exchange_n(slot, &chunk, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            ml_meta_free(fresh);
        else
            chunk = fresh;
    }
    e->id = id;
    __atomic_store_n(&chunk[id % IDS_PER_CHUNK], e, __ATOMIC_RELEASE);
    return id;
}

static int shard_grow(struct depot_shard *s)
{
    /* 64 shards: a short program touches most, so the first tables are
     * small (8 slots, a 128-byte block: 64 of them take 2 pages, where
     * tables of 64 slots took 16) */
    size_t cap = s->cap ? s->cap * 2 : 8;
    struct depot_entry **slots = ml_meta_alloc(cap * sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        struct depot_entry *e = s->slots[i];
        if (!e)
            continue;
        size_t j = (e->hash >> 6) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = e;
    }
    ml_meta_free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

/* Returns the id of frames[0..n), adding it when new; *fresh says so. */
static ml_stack_id intern(const uintptr_t *frames, unsigned n, uint64_t h, int *fresh)
{
    struct depot_shard *s = &st.shards[h & (SHARDS - 1)];
    ml_stack_id id = 0;
    *fresh = 0;
    ml_tr_lock(&s->lock);
    if ((s->count + 1) * 2 > s->cap && shard_grow(s) != 0)
        goto out;
    size_t j = (h >> 6) & (s->cap - 1);
    for (;; j = (j + 1) & (s->cap - 1)) {
        struct depot_entry *e = s->slots[j];
        if (!e)
            break;
        if (e->hash == h && e->n == n && !memcmp(e->frames, frames, n * sizeof *frames)) {
            id = e->id;
            goto out;
        }
    }
    /* entries are never freed: packed back to back (an entry of 8 frames,
     * 80 bytes, took a 128-byte class block) */
    struct depot_entry *e = ml_meta_alloc_packed(sizeof *e + n * sizeof *frames);
    if (!e)
        goto out;
    e->hash = h;
    e->n = n;
    memcpy(e->frames, frames, n * sizeof *frames);
    id = publish(e);
    if (!id)
        goto out; /* the id space is used up: e stays unused */
    s->slots[j] = e;
    s->count++;
    *fresh = 1;
out:
    ml_tr_unlock(&s->lock);
    return id;
}

/* The caching unwinder's entries (unwind.c): ml_unwind_skip's, with the
 * registers given, and its halves, the memo's first test and the rest. */
int ml_unwind_skip_from(void **out, int keep, struct ml_unwind_memo *memo, uintptr_t rbp, uintptr_t sp,
                        uintptr_t ra);
typedef uint32_t ml_unwind_miss_fn(void);
uint32_t ml_unwind_memo_next(struct ml_unwind_memo *memo, int keep, uintptr_t rbp, uintptr_t sp, uintptr_t ra,
                             ml_unwind_miss_fn *miss);
int ml_unwind_skip_walk(void **out, int keep, struct ml_unwind_memo *memo, uintptr_t rbp, uintptr_t sp,
                        uintptr_t ra);

static ml_stack_id capture_rest(void **raw, int n, struct ml_unwind_memo *mm, uintptr_t rbp, uintptr_t sp,
                                uintptr_t ra);

/* ml_stack_capture: the registers of its caller (the trace slot) as they
 * are once the call returns, handed to capture_from, which walks from
 * there.  A C ml_stack_capture that called ml_unwind_skip was one more own
 * frame for every walk to step and for the memo to check (its return
 * address and the trace slot's rbp saved in it; traced bench_churn
 * 100000: 103.0 M instructions, 101.6 M without it).  Counting from the
 * caller, ml_unwind_skip_from's keep + 8 frames start one frame higher;
 * mallard has at most five own frames below a program's, so the frames
 * kept are the same. */
__attribute__((used, visibility("hidden"))) ml_stack_id capture_from(uintptr_t rbp, uintptr_t sp,
                                                                     uintptr_t ra);

__asm__(".text\n"
        ".globl ml_stack_capture\n"
        ".hidden ml_stack_capture\n"
        ".type ml_stack_capture, @function\n"
        "ml_stack_capture:\n"
        ".cfi_startproc\n"
        "    movq %rbp, %rdi\n"
        "    leaq 8(%rsp), %rsi\n"
        "    movq (%rsp), %rdx\n"
        "    jmp capture_from\n"
        ".cfi_endproc\n"
        ".size ml_stack_capture, .-ml_stack_capture\n");

__attribute__((used, visibility("hidden"))) ml_stack_id capture_walk(uintptr_t rbp, uintptr_t sp,
                                                                     uintptr_t ra);

/* capture_again: capture_walk from its caller's registers, as
 * ml_stack_capture's.  The memo's miss, a tail call, so those are the
 * trace slot's again (were it not one, the walk would step over the
 * unwinder's frame too, an own one: the same frames). */
__attribute__((visibility("hidden"))) uint32_t capture_again(void);
__asm__(".text\n"
        ".type capture_again, @function\n"
        "capture_again:\n"
        ".cfi_startproc\n"
        "    movq %rbp, %rdi\n"
        "    leaq 8(%rsp), %rsi\n"
        "    movq (%rsp), %rdx\n"
        "    jmp capture_walk\n"
        ".cfi_endproc\n"
        ".size capture_again, .-capture_again\n");

/* The common case first, with no stack frame: the memo's way that
 * followed the last walk's is this walk's (a loop over a few call sites);
 * the unwinder calls capture_walk for anything else.  Such a hit does not
 * look at growing the memo: the next walk it cannot answer looks, over a
 * window of more walks (only misses grow it).  memo_ok: captures are on,
 * by the caching unwinder, in a process that may unwind (no_unwind). */
ml_stack_id capture_from(uintptr_t rbp, uintptr_t sp, uintptr_t ra)
{
    struct ml_unwind_memo *m = memo;
    if (ML_LIKELY(m != NULL) && ML_LIKELY(__atomic_load_n(&st.memo_ok, __ATOMIC_ACQUIRE)))
        return ml_unwind_memo_next(m, st.depth, rbp, sp, ra, capture_again);
    return capture_walk(rbp, sp, ra);
}

/* An ML_UNWIND_ABOVE answer's frames into raw, those of the walk itself
 * there: the rest are the answering way's, from the depot by its id (a way
 * gets its id only when its frames are its walk's, capture_rest); should
 * they not be there, the walk is made. */
static int above_frames(void **raw, const struct ml_unwind_memo *m, uintptr_t rbp, uintptr_t sp, uintptr_t ra)
{
    const struct ml_unwind_memo_way *src = &m->way[m->above.above];
    unsigned nf, at = m->above.at, from = m->above.from, n = m->above.n;
    const uintptr_t *f = ml_stack_frames(src->id, &nf);
    if (ML_UNLIKELY(!f || (int)nf != src->n || from + (n - at) > nf))
        return ml_unwind_skip_from(raw, st.depth, NULL, rbp, sp, ra);
    memcpy(&raw[at], &f[from], (n - at) * sizeof *f);
    return (int)n;
}

ml_stack_id capture_walk(uintptr_t rbp, uintptr_t sp, uintptr_t ra)
{
    if (!__atomic_load_n(&st.on, __ATOMIC_ACQUIRE) || ML_UNLIKELY(no_unwind))
        return 0;
    void *raw[ML_DEPTH_MAX + 16];
    /* mallard's own leading frames are dropped by the unwinder itself; a
     * walk that would read just what a recorded one from the same place
     * read has its frames, hence its id */
    struct ml_unwind_memo *m = st.fast ? memo_get() : NULL;
    int n = st.fast ? ml_unwind_skip_walk(raw, st.depth, m, rbp, sp, ra) : -1;
    if (n == ML_UNWIND_SAME && ML_LIKELY(m->way[m->last].id))
        return m->way[m->last].id;
    if (n == ML_UNWIND_ABOVE)
        n = above_frames(raw, m, rbp, sp, ra);
    ml_stack_id id = capture_rest(raw, n, m, rbp, sp, ra);
    if (m && ML_UNLIKELY(m->hits + m->misses >= m->grow_at))
        memo_look(m);
    return id;
}

/* The rest of a capture: n is ml_unwind_skip_from's answer for the walk
 * from (rbp, sp, ra). */
static __attribute__((noinline)) ml_stack_id capture_rest(void **raw, int n, struct ml_unwind_memo *mm,
                                                          uintptr_t rbp, uintptr_t sp, uintptr_t ra)
{
    /* the memo's way that holds (or was just filled with) this walk */
    struct ml_unwind_memo_way *w = mm && (n > 0 || n == ML_UNWIND_SAME) ? &mm->way[mm->last] : NULL;
    if (n == ML_UNWIND_SAME)
        n = ml_unwind_skip_from(raw, st.depth, NULL, rbp, sp, ra); /* its id is not known yet */
    if (w && w->n != n) {
        w = NULL; /* not recorded */
    }
    int first = 0;
    if (ML_UNLIKELY(n < 0)) {
        /* libunwind checks addresses with read(2), a cancellation point: a
         * thread with a cancel pending must not die inside malloc */
        int cancel;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
        unsigned stripe = gate_enter();
        int (*bt)(void **, int) = unw_load();
        int got = bt ? bt(raw, st.depth + 8) : 0;
        gate_leave(stripe);
        pthread_setcancelstate(cancel, NULL);
        while (first < got && (uintptr_t)raw[first] >= st.self_lo && (uintptr_t)raw[first] < st.self_hi)
            first++;
        n = got - first;
        if (n > st.depth)
            n = st.depth;
    }
    if (n <= 0)
        return 0;
    const uintptr_t *frames = (const uintptr_t *)&raw[first];
    uint64_t h = hash_frames(frames, (unsigned)n);
    unsigned slot = (unsigned)(h >> 58) & (RECENT - 1);
    if (recent[slot].hash == h && recent[slot].id) {
        if (w)
            w->id = recent[slot].id;
        return recent[slot].id;
    }
    int fresh;
    ml_stack_id id = intern(frames, (unsigned)n, h, &fresh);
    if (ML_UNLIKELY(!id))
        ml_tr_degrade("the stack depot");
    if (fresh) {
        /* A new stack may run through an object loaded since the last look;
         * record it now so it still symbolizes if it is dlclose'd later.
         * Loaded objects do not overlap, so a frame inside the loaded object
         * of the frame before is in that one: most frames are, and are not
         * looked up again (cc1 traced: 184,220 lookups, 11.1 M of its 504 M
         * instructions). */
        const struct ml_module *m = NULL;
        for (int i = 0; i < n; i++) {
            if (m && frames[i] >= m->lo && frames[i] < m->hi)
                continue;
            m = ml_modules_find(frames[i]);
            if (!m || m->unloaded) {
                /* its lock and the meta heap's: counted (busy.h) */
                ml_tr_busy_enter();
                ml_modules_refresh();
                ml_tr_busy_leave();
                break;
            }
        }
    }
    recent[slot].hash = h;
    recent[slot].id = id;
    if (w)
        w->id = id;
    return id;
}

int ml_stack_is_own(uintptr_t addr) { return addr - 1 >= st.self_lo && addr - 1 < st.self_hi; }

ml_stack_id ml_stack_capture_fault(uintptr_t pc)
{
    int (*bt)(void **, int) = __atomic_load_n(&st.on, __ATOMIC_ACQUIRE) ? unw_load() : NULL;
    void *raw[ML_DEPTH_MAX + 32];
    int got = bt ? bt(raw, st.depth + 24) : 0;
    /* libunwind steps through the signal frame and reports the faulting
     * pc itself as one frame: what follows it are the callers. */
    int at = 0;
    while (at < got && (uintptr_t)raw[at] != pc)
        at++;
    uintptr_t frames[ML_DEPTH_MAX];
    unsigned n = 0;
    frames[n++] = pc + 1;
    for (int i = at + 1; i < got && n < (unsigned)st.depth; i++)
        frames[n++] = (uintptr_t)raw[i];
    int fresh;
    return intern(frames, n, hash_frames(frames, n), &fresh);
}

const uintptr_t *ml_stack_frames(ml_stack_id id, unsigned *n)
{
    struct depot_entry *e = id ? entry_of(id) : NULL;
    *n = e ? e->n : 0;
    return e ? e->frames : NULL;
}

void ml_stack_atfork(int phase)
{
    if (phase == ML_FORK_PREPARE) {
        __atomic_store_n(&gate_closed, 1, __ATOMIC_SEQ_CST);
        for (int i = 0; i < GATE_WAIT_MS && gate_others() > 0; i++)
            gate_nap();
    }
    for (int i = 0; i < SHARDS; i++)
        ml_lock_atfork(&st.shards[i].lock, phase);
    if (phase == ML_FORK_CHILD) {
        ml_unwind_fork_child();
        if (gate_others() > 0)
            no_unwind = 1;
        if (no_unwind)
            __atomic_store_n(&st.memo_ok, 0, __ATOMIC_RELAXED);
        for (int i = 0; i < GATE_STRIPES; i++) /* the other threads are gone */
            in_flight[i].n = 0;
        in_flight[gate_stripe()].n = my_unwinds;
    }
    if (phase != ML_FORK_PREPARE)
        __atomic_store_n(&gate_closed, 0, __ATOMIC_RELEASE);
}
