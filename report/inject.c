/* report/inject.c: the fault-injection decorator.  See inject.h. */
#include "inject.h"

#include "../core/compiler.h"
#include "../core/options.h"
#include "../core/owner.h"
#include "../core/os.h"
#include "blocks.h"
#include "pressure.h"
#include "report.h"
#include "trace.h"

int ml_inject_on;

static const struct ml_backend *in;
static const struct ml_backend *bare; /* the backend itself, for operator new untraced */
static uint64_t fail_nth;             /* 0: off */
static uint64_t rate_cut;             /* fail when mix(k) < rate_cut; 0: off */
static uint64_t seed;
static size_t limit; /* live bytes; 0: off */

static uint64_t calls, injected;
static size_t live;
static int first_taken;
static ml_stack_id first_stack;

static int started;           /* mallard's constructor is done: the program's calls count */
static ML_TLS int busy;       /* capturing the first failure's stack */
static ML_TLS size_t again_n; /* a failed new: the C++ runtime's retry of this size fails too */
static ML_TLS int again;

/* splitmix64: a cheap stateless mix of the seed and the call number, so a
 * run with the same seed fails the same calls whatever the threads do. */
static inline uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void note_failure(void)
{
    __atomic_add_fetch(&injected, 1, __ATOMIC_RELAXED);
    int expected = 0;
    if (__atomic_compare_exchange_n(&first_taken, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED) &&
        ml_trace_enabled()) {
        busy = 1;
        int was = ml_trace_guard_enter();
        ml_stack_id id = ml_stack_capture();
        ml_trace_guard_leave(was);
        __atomic_store_n(&first_stack, id, __ATOMIC_RELEASE);
        busy = 0;
    }
}

/* MALLARD_LIMIT, exact when threads race: the check and the count are one
 * compare-and-swap on live, so two requests can never both pass with a sum
 * over the budget (no lock; a lost race retries with the new value).  1:
 * delta bytes are taken, counted from now on; 0: they do not fit. */
static int budget_take(size_t delta)
{
    size_t now = __atomic_load_n(&live, __ATOMIC_RELAXED);
    do {
        if (delta > limit || now > limit - delta)
            return 0;
    } while (!__atomic_compare_exchange_n(&live, &now, now + delta, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return 1;
}

static inline void live_sub(size_t u);

/* live += add - sub (clamped at 0). */
static inline void live_move(size_t add, size_t sub)
{
    if (add > sub)
        __atomic_add_fetch(&live, add - sub, __ATOMIC_RELAXED);
    else if (sub > add)
        live_sub(sub - add);
}

/* 1 when this request of n bytes (replacing a block of old usable bytes)
 * must fail.  Under MALLARD_LIMIT a request that passes and grows the
 * program's bytes (n > old) has taken *taken = n - old of the budget
 * already: the caller settles it with budget_settle once it knows what it
 * got. */
static int should_fail(size_t n, size_t old, size_t *taken)
{
    *taken = 0;
    if (ML_UNLIKELY(busy || !__atomic_load_n(&started, __ATOMIC_RELAXED)))
        return 0;
    if (ml_trace_enabled()) {
        /* mallard's own requests (the unwinder, libdw, dlopen of them),
         * made inside the trace layer, are not the program's */
        int was = ml_trace_guard_enter();
        ml_trace_guard_leave(was);
        if (was)
            return 0;
    }
    if (ML_UNLIKELY(again)) {
        again = 0;
        if (n == again_n)
            return 1;
    }
    uint64_t k = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
    int fail = k == fail_nth || (rate_cut && mix(seed + k) < rate_cut);
    if (!fail && limit && n > old) {
        fail = !budget_take(n - old);
        *taken = fail ? 0 : n - old;
    }
    if (fail)
        note_failure();
    return fail;
}

/* The bytes p counts for: with the tracer, the size the program asked for,
 * read from its table (0 for a pointer it does not know as live: a double
 * or invalid free, which the trace layer then reports; mallard's own
 * blocks); else the backend's usable size. */
static size_t live_size(const void *p)
{
    if (!ml_trace_enabled())
        return in->usable_size(p);
    struct ml_block_rec r;
    if (ml_os_owner(p) == ML_OWNER_META)
        return 0;
    if (ml_blocks_lookup((uintptr_t)p, &r) != 0)
        /* tracing stopped (pressure.h): blocks since then have no record */
        return __atomic_load_n(&ml_tr_stopped, __ATOMIC_RELAXED) && p ? in->usable_size(p) : 0;
    return r.state == ML_BLOCK_FREED ? 0 : r.size;
}

/* After a request of n bytes that passed should_fail(n, old, &taken): q
 * is what it returned (NULL: it failed, the budget taken goes back).  A
 * block counts for live_size(q), its old one (a realloc's) for old no
 * more. */
static void budget_settle(const void *q, size_t n, size_t old, size_t taken)
{
    if (!limit)
        return;
    if (!q) {
        live_sub(taken);
        return;
    }
    /* with the tracer, live_size(q) is n: nothing to look up */
    size_t now =
        taken && ml_trace_enabled() && !__atomic_load_n(&ml_tr_stopped, __ATOMIC_RELAXED) ? n : live_size(q);
    live_move(now, old + taken);
}

static inline void live_sub(size_t u)
{
    size_t now = __atomic_load_n(&live, __ATOMIC_RELAXED), next;
    do
        next = now > u ? now - u : 0;
    while (!__atomic_compare_exchange_n(&live, &now, next, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

static void *in_malloc(size_t n)
{
    size_t taken;
    if (ML_UNLIKELY(should_fail(n, 0, &taken)))
        return NULL;
    void *p = in->malloc(n);
    budget_settle(p, n, 0, taken);
    return p;
}

static void *in_zalloc(size_t n)
{
    size_t taken;
    if (ML_UNLIKELY(should_fail(n, 0, &taken)))
        return NULL;
    void *p = in->zalloc(n);
    budget_settle(p, n, 0, taken);
    return p;
}

static void *in_memalign(size_t align, size_t n)
{
    size_t taken;
    if (ML_UNLIKELY(should_fail(n, 0, &taken)))
        return NULL;
    void *p = in->memalign(align, n);
    budget_settle(p, n, 0, taken);
    return p;
}

static void in_free(void *p)
{
    if (limit)
        live_sub(live_size(p));
    in->free(p);
}

static void *in_realloc(void *p, size_t n)
{
    size_t old = limit ? live_size(p) : 0;
    size_t taken;
    if (ML_UNLIKELY(should_fail(n, old, &taken)))
        return NULL;
    void *q = in->realloc(p, n);
    budget_settle(q, n, old, taken);
    return q;
}

static size_t in_usable_size(const void *p) { return in->usable_size(p); }

void *ml_inject_cxx_alloc(size_t align, size_t n, unsigned kind)
{
    size_t taken;
    if (ML_UNLIKELY(should_fail(n, 0, &taken))) {
        again = 1;
        again_n = n;
        return NULL;
    }
    void *p;
    if (ml_trace_enabled())
        p = ml_trace_alloc(align, n, kind);
    else
        p = align <= 16 ? bare->malloc(n) : bare->memalign(align, n);
    budget_settle(p, n, 0, taken);
    return p;
}

void ml_inject_cxx_free(void *p, unsigned kind)
{
    if (limit)
        live_sub(live_size(p));
    if (ml_trace_enabled())
        ml_trace_free(p, kind);
    else
        bare->free(p);
}

static struct ml_backend inject_backend;

int ml_inject_wanted(const struct ml_options *opt)
{
    return opt->fail_nth || opt->fail_rate > 0 || opt->limit;
}

const struct ml_backend *ml_inject_wrap(const struct ml_backend *inner, const struct ml_options *opt)
{
    in = inner;
    bare = inner;
    fail_nth = (uint64_t)opt->fail_nth;
    seed = mix((uint64_t)opt->seed);
    double r = opt->fail_rate;
    rate_cut = r <= 0 ? 0 : r >= 1 ? UINT64_MAX : (uint64_t)(r * 18446744073709551616.0);
    limit = opt->limit;
    inject_backend = *inner;
    inject_backend.name = "inject";
    inject_backend.malloc = in_malloc;
    inject_backend.zalloc = inner->zalloc ? in_zalloc : NULL;
    inject_backend.memalign = in_memalign;
    inject_backend.free = in_free;
    inject_backend.realloc = in_realloc;
    inject_backend.usable_size = in_usable_size;
    ml_inject_on = 1;
    return &inject_backend;
}

void ml_inject_start(void) { __atomic_store_n(&started, 1, __ATOMIC_RELEASE); }

void ml_inject_stats(uint64_t *count, uint32_t *stack)
{
    *count = __atomic_load_n(&injected, __ATOMIC_RELAXED);
    *stack = __atomic_load_n(&first_stack, __ATOMIC_ACQUIRE);
}

int ml_inject_enabled(void) { return ml_inject_on; }
