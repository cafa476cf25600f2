/* tests/unwind/test_unwind.c: report/unwind.c's stacks equal libunwind's.
 *
 * A probe called at the bottom of each fixture takes both backtraces from
 * the same frame: ml_unwind's and unw_backtrace's.  Frame 0 differs (each is
 * the return address of its own call); every frame after it must be the same
 * address, and the counts equal, whenever ml_unwind answers at all (-1 means
 * "libunwind's business", which stack.c then asks).  Fixtures: -O0 and -O2
 * C, deep recursion (with and without truncation), alloca and a realigned
 * stack, a call to a noreturn function that ends its caller's code, C++ (virtual calls, std::function, try
 * blocks), a dlopen'ed library (twice, across a dlclose), 4096 call sites from three threads (the recipe
 * table grows meanwhile), a signal handler, a second thread. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../report/report.h"
#include "unwind_own.h"
#include "unwind_test.h"

#define MAX 256

static int max_frames = MAX;
/* volatile: a signal handler changes them behind the compiler's back */
static volatile int failures, fast, fallback;
static volatile long compared;
static const char *case_name = "?";

static int probe(int tag)
{
    void *a[MAX], *b[MAX];
    int n = ml_unwind(a, max_frames);
    int m = unw_backtrace(b, max_frames);
    if (n < 0) {
        fallback++;
        return tag;
    }
    fast++;
    int bad = n != m;
    for (int i = 1; !bad && i < n; i++)
        bad = a[i] != b[i];
    if (bad) {
        failures++;
        fprintf(stderr, "%s: ml_unwind %d frames, unw_backtrace %d\n", case_name, n, m);
        for (int i = 0; i < (n > m ? n : m); i++)
            fprintf(stderr, "  #%d %p %p\n", i, i < n ? a[i] : NULL, i < m ? b[i] : NULL);
    }
    compared += n - 1;
    return tag;
}

/* ---- ml_unwind_skip: ml_unwind less the leading "own" frames ----------
 *
 * The own frames are unwind_own.c's, a library built and loaded like
 * libmallard.so (frame pointers, present at start-up): most of them are
 * stepped by the frame-pointer bit after their first visit, one by its
 * recipe.  The frames that follow (the fixture's: -O0 ones that need the
 * right rbp, -O2 ones, C++, a signal frame, a thread) must be libunwind's,
 * the own ones dropped, at most keep of them; run twice per case, so the
 * second pass uses the bits.  With use_memo, each thread keeps a memo as
 * stack.c does, and the frames of an ML_UNWIND_SAME answer are those of the
 * walk recorded in that way: they too must be libunwind's. */
static uintptr_t own_lo, own_hi;
static int own_keep = MAX, own_nofp, use_memo;
static volatile int memo_hits, memo_aboves;
static __thread struct ml_unwind_memo *memo; /* the largest a thread's grows to */
static __thread void *memo_frames[ML_MEMO_SETS_MAX * ML_MEMO_WAYS][MAX];
static __thread int memo_n[ML_MEMO_SETS_MAX * ML_MEMO_WAYS];

static struct ml_unwind_memo *test_memo(void)
{
    if (!memo) {
        memo = calloc(1, ML_MEMO_BYTES(ML_MEMO_SETS_MAX));
        if (!memo)
            abort();
        memo->sets = ML_MEMO_SETS_MAX;
    }
    return memo;
}

static int probe_own(int tag)
{
    void *a[MAX], *b[MAX + 16];
    struct own_req r = {
        ml_unwind_skip, unw_backtrace, use_memo ? test_memo() : NULL, a, b, MAX + 16, own_keep, 0, 0, own_nofp};
    own_enter(&r, 3);
    void **got = a;
    if (r.n == ML_UNWIND_SAME && use_memo) {
        memo_hits++;
        got = memo_frames[memo->last];
        r.n = memo_n[memo->last];
    } else if (r.n == ML_UNWIND_ABOVE && use_memo) {
        /* out[0..at) this walk's, the rest the anchor way's from its frame
         * from, as stack.c puts them together */
        memo_aboves++;
        unsigned src = memo->above.above, at = memo->above.at, from = memo->above.from, n = memo->above.n;
        if (from + (n - at) > (unsigned)memo_n[src]) {
            failures++;
            fprintf(stderr, "%s: ML_UNWIND_ABOVE past its way's %d frames (%u from %u)\n", case_name,
                    memo_n[src], n - at, from);
            return tag;
        }
        memcpy(&a[at], &memo_frames[src][from], (n - at) * sizeof *a);
        r.n = (int)n;
    }
    if (use_memo && r.n > 0 && got == a && memo->way[memo->last].n == r.n) {
        memcpy(memo_frames[memo->last], a, (size_t)r.n * sizeof *a);
        memo_n[memo->last] = r.n;
        memo->way[memo->last].id = 1;
    }
    if (r.n < 0) {
        fallback++;
        return tag;
    }
    fast++;
    int first = 0;
    while (first < r.m && (uintptr_t)b[first] >= own_lo && (uintptr_t)b[first] < own_hi)
        first++;
    int want = r.m - first < own_keep ? r.m - first : own_keep;
    int bad = first < 4 || r.n != want;
    for (int i = 0; !bad && i < r.n; i++)
        bad = got[i] != b[first + i];
    if (bad) {
        failures++;
        fprintf(stderr, "%s: ml_unwind_skip %d frames, unw_backtrace %d, %d of them own\n", case_name, r.n,
                r.m, first);
        for (int i = 0; i < r.m; i++)
            fprintf(stderr, "  #%d %p %p\n", i, i >= first && i - first < r.n ? got[i - first] : NULL, b[i]);
    }
    compared += r.n;
    return tag;
}

/* Two callers of one function, alike to the byte: the walk from common's
 * call starts at the same return address and sp under both, and only the
 * word above says which called it; -O0 ones keep rbp-based CFAs. */
__attribute__((noinline)) static int common(int tag)
{
    volatile int v = tag;
    return probe_own(v);
}
__attribute__((noinline)) static int twin_a(int tag)
{
    int x = common(tag);
    __asm__ volatile("" ::: "memory");
    return x;
}
__attribute__((noinline)) static int twin_b(int tag)
{
    int x = common(tag);
    __asm__ volatile("" ::: "memory");
    return x;
}
__attribute__((noinline, optimize("O0", "no-omit-frame-pointer"))) static int common_o0(int tag)
{
    return probe_own(tag);
}
__attribute__((noinline, optimize("O0", "no-omit-frame-pointer"))) static int twin_o0_a(int tag)
{
    return common_o0(tag) + 0;
}
__attribute__((noinline, optimize("O0", "no-omit-frame-pointer"))) static int twin_o0_b(int tag)
{
    return common_o0(tag) + 0;
}
/* A walk that starts where a recorded one did, and finds the same word at
 * the address the recorded one read its first return address of the
 * fixture from, but whose rbp (and so that frame's CFA) differs: the
 * recorded walk went through one more frame (hop), and the stack still
 * holds its return address.  alloca lines the two calls of probe_own up on
 * the same sp; both reach frame_at through the same indirect call. */
static volatile int measure;
__attribute__((noinline, optimize("O0", "no-omit-frame-pointer"))) static uintptr_t frame_at(size_t n)
{
    char *p = __builtin_alloca(n);
    p[0] = 0;
    if (measure)
        return (uintptr_t)__builtin_frame_address(0);
    return (uintptr_t)probe_own(p[0]);
}
__attribute__((noinline, optimize("O0", "no-omit-frame-pointer"))) static uintptr_t hop(size_t n)
{
    volatile char pad[96]; /* a frame larger than frame_at's locals: the word lands in its alloca */
    pad[0] = 0;
    return frame_at(n) + pad[0];
}
__attribute__((noinline, optimize("O0", "no-omit-frame-pointer"))) static uintptr_t via(int through_hop,
                                                                                        size_t n)
{
    uintptr_t (*f)(size_t) = through_hop ? hop : frame_at;
    return f(n);
}
/* -O0: one call site for both calls (no unrolled loop) */
__attribute__((noinline, optimize("O0"))) static void via_twice(size_t hop_n, size_t direct_n)
{
    /* first recorded, then the same start, the same words, another rbp */
    for (int i = 0; i < 2; i++)
        via(i == 0, i == 0 ? hop_n : direct_n);
}
static int c_same_sp(void)
{
    measure = 1;
    uintptr_t direct = via(0, 64), hopped = via(1, 64);
    measure = 0;
    if (direct <= hopped || direct - hopped > 4096) {
        fprintf(stderr, "same sp: frames at %#lx and %#lx\n", (unsigned long)direct, (unsigned long)hopped);
        failures++;
        return 0;
    }
    via_twice(64, 64 + (direct - hopped));
    return 0;
}

/* Sixteen call sites taken in turn, as a loop over a table of functions
 * does, half of them through one shared function (an allocating wrapper:
 * the walk leaves it at the same return address and sp from each): once
 * each has been seen, the memo must answer most walks (it kept four walks
 * in all before, and answered none of these; which set a walk falls in
 * moves with the stack's address, so a set may now and then get more than
 * its ways and miss each time: half is the bound). */
#define SITE(name, via, k)                                                                                   \
    __attribute__((noinline)) static int name(int tag) { return via(tag) + k; }
SITE(site_0, common, 0)
SITE(site_1, common, 1)
SITE(site_2, common, 2)
SITE(site_3, common, 3)
SITE(site_4, common, 4)
SITE(site_5, common, 5)
SITE(site_6, common, 6)
SITE(site_7, common, 7)
SITE(site_8, common_o0, 8)
SITE(site_9, common_o0, 9)
SITE(site_10, common_o0, 10)
SITE(site_11, common_o0, 11)
SITE(site_12, probe_own, 12)
SITE(site_13, probe_own, 13)
SITE(site_14, probe_own, 14)
SITE(site_15, probe_own, 15)
static int c_turns(void)
{
    static int (*const site[16])(int) = {site_0, site_1, site_2,  site_3,  site_4,  site_5,  site_6,  site_7,
                                         site_8, site_9, site_10, site_11, site_12, site_13, site_14, site_15};
    int s = 0, hits0 = 0;
    for (int i = 0; i < 16 * 6; i++) {
        if (i == 16 * 2) /* each seen twice (a set's conflict settles in the second round) */
            hits0 = memo_hits;
        s += site[i % 16](i);
    }
    int hits = memo_hits - hits0;
    if (use_memo && hits < 16 * 4 / 2) {
        fprintf(stderr, "sixteen sites in turn: %d of %d walks answered by the memo\n", hits, 16 * 4);
        failures++;
    }
    return s;
}

static int c_twins(void)
{
    int s = 0;
    for (int i = 0; i < 8; i++) {
        s += (i & 1) ? twin_a(i) : twin_b(i);
        s += (i & 2) ? twin_o0_a(i) : twin_o0_b(i);
        s += o0_recurse(probe_own, 2 + (i & 1), 0) + o2_recurse(probe_own, 2 + (i & 2), 0);
    }
    return s;
}

/* Call sites of one frame in turn, from three depths, each walk new to
 * the memo: from the second on, a walk meets a frame or two above where it
 * starts (or, from the next depth, a few) a frame a walk went through (an
 * anchor) and must go on as that one did: -O2 callers, and -O0 ones whose
 * CFAs come from rbp. */
__attribute__((noinline)) static int leaf_a(int tag) { return probe_own(tag) + 1; }
__attribute__((noinline)) static int leaf_b(int tag) { return probe_own(tag) + 2; }
__attribute__((noinline, optimize("O0", "no-omit-frame-pointer"))) static int leaf_o0(int tag)
{
    return probe_own(tag) + 3;
}
__attribute__((noinline)) static int fan(int tag)
{
    int s = probe_own(tag);
    __asm__ volatile("" ::: "memory");
    s += probe_own(tag + 1);
    s += leaf_a(tag);
    s += leaf_b(tag);
    s += leaf_o0(tag);
    return s;
}
__attribute__((noinline, optimize("O0", "no-omit-frame-pointer"))) static int fan_o0(int tag)
{
    int s = probe_own(tag);
    s += probe_own(tag + 1);
    s += leaf_a(tag);
    s += leaf_o0(tag);
    return s;
}
static int c_anchors(void)
{
    int s = 0;
    for (int d = 0; d < 3; d++)
        s += o2_recurse(fan, 2 + d, 0) + o0_recurse(fan_o0, 2 + d, 0);
    return s;
}

/* the caller of the own frames keeps a frame pointer: its CFA is rbp's */
__attribute__((noinline, optimize("no-omit-frame-pointer"))) static int probe_own_fp(int tag)
{
    volatile int v = tag;
    int x = probe_own(v);
    __asm__ volatile("" ::: "memory");
    return x;
}

static int find_own(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t me = (uintptr_t)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && me >= lo && me < lo + ph->p_memsz) {
            own_lo = lo;
            own_hi = lo + ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

/* Runs one case; need_fast: ml_unwind must have answered it itself. */
static void run(const char *name, int (*f)(void), int need_fast)
{
    case_name = name;
    int fast0 = fast, fb0 = fallback;
    f();
    f(); /* again: from the cache this time */
    printf("%-22s fast %d, fallback %d\n", name, fast - fast0, fallback - fb0);
    if (need_fast && (fallback != fb0 || fast == fast0)) {
        fprintf(stderr, "%s: expected ml_unwind to answer\n", name);
        failures++;
    }
}

static int c_o0(void) { return o0_recurse(probe, 5, 0); }
static int c_o2(void) { return o2_recurse(probe, 5, 0); }
static int c_o0_alloca(void) { return o0_recurse(probe, 3, 1); }
static int c_o2_alloca(void) { return o2_recurse(probe, 3, 1); }
static int c_o0_aligned(void) { return o0_recurse(probe, 3, 2); }
static int c_o2_aligned(void) { return o2_recurse(probe, 3, 2); }
static int c_o0_noret(void) { return o0_recurse(probe, 2, 3); }
static int c_o2_noret(void) { return o2_recurse(probe, 2, 3); }
static int c_deep(void) { return o2_recurse(probe, 300, 0); }
static int c_deep_mixed(void) { return o0_recurse(probe, 100, 0) + o2_recurse(probe, 100, 0); }
static int c_cxx(void) { return cxx_run(probe, 9); }

/* A case's probe from a signal handler, or from a second thread. */
static int in_signal(int sig, void (*handler)(int))
{
    signal(sig, handler);
    raise(sig);
    return 0;
}
static int in_thread(void *(*body)(void *))
{
    pthread_t t;
    if (pthread_create(&t, NULL, body, NULL) != 0)
        abort();
    pthread_join(t, NULL);
    return 0;
}

static int c_own_o0(void) { return o0_recurse(probe_own, 5, 0); }
static int c_own_o0_fp(void) { return o0_recurse(probe_own_fp, 5, 0); }
static int c_own_o2(void) { return o2_recurse(probe_own, 5, 0); }
static int c_own_o2_fp(void) { return o2_recurse(probe_own_fp, 5, 0); }
static int c_own_cxx(void) { return cxx_run(probe_own_fp, 9); }
static int c_own_deep(void) { return o0_recurse(probe_own_fp, 60, 0) + o2_recurse(probe_own, 60, 0); }
static void on_signal_own(int sig)
{
    (void)sig;
    probe_own_fp(0);
}
static int c_own_signal(void) { return in_signal(SIGUSR2, on_signal_own); }
static void *thread_own(void *arg)
{
    (void)arg;
    o0_recurse(probe_own_fp, 4, 0);
    return NULL;
}
static int c_own_thread(void) { return in_thread(thread_own); }

static void own_cases(void)
{
    if (!dl_iterate_phdr(find_own, (void *)(uintptr_t)own_enter)) {
        fprintf(stderr, "unwind_own: own_enter's text not found\n");
        exit(1);
    }
    ml_unwind_set_own(own_lo, own_hi);
    for (int pass = 0; pass < 4; pass++) {
        own_nofp = pass & 1;
        use_memo = pass >= 2;
        printf("own frames%s%s:\n", own_nofp ? ", one without a frame pointer" : "",
               use_memo ? ", with a memo" : "");
        run("  own, -O0 callers", c_own_o0, 1);
        run("  own, -O0, fp caller", c_own_o0_fp, 1);
        run("  own, -O2 callers", c_own_o2, 1);
        run("  own, -O2, fp caller", c_own_o2_fp, 1);
        run("  own, C++", c_own_cxx, 1);
        run("  own, deep", c_own_deep, 1);
        own_keep = 32;
        run("  own, deep, keep 32", c_own_deep, 1);
        own_keep = 3;
        run("  own, keep 3", c_own_o0_fp, 1);
        own_keep = MAX;
        run("  own, signal handler", c_own_signal, 0);
        run("  own, second thread", c_own_thread, 1);
        run("  own, twin callers", c_twins, 1);
        run("  own, same sp, other rbp", c_same_sp, 1);
        run("  own, sixteen sites in turn", c_turns, 1);
        int above0 = memo_aboves;
        run("  own, call sites of one frame", c_anchors, 1);
        printf("  call sites of one frame: %d walks answered by an anchor\n", memo_aboves - above0);
        /* the first time through (the memo keeps the walks for the next
         * pass), most of its 54 walks (27, run twice) go on from an anchor
         * (42 seen) */
        if (pass == 2 && memo_aboves - above0 < 12) {
            fprintf(stderr, "call sites of one frame: %d walks answered by an anchor\n", memo_aboves - above0);
            failures++;
        }
    }
    printf("memo answers %d, by an anchor %d\n", memo_hits, memo_aboves);
    if (memo_aboves < 20) {
        fprintf(stderr, "anchors answered %d times\n", memo_aboves);
        failures++;
    }
    if (memo_hits < 20) {
        fprintf(stderr, "the memo answered %d times\n", memo_hits);
        failures++;
    }
}

static int (*lib_call)(probe_fn, int);
static int c_lib(void) { return lib_call(probe, 4); }

static void on_signal(int sig)
{
    (void)sig;
    probe(0);
}
static int c_signal(void) { return in_signal(SIGUSR1, on_signal); }

static void *thread_main(void *arg)
{
    (void)arg;
    o2_recurse(probe, 4, 0);
    return NULL;
}
static int c_thread(void) { return in_thread(thread_main); }

/* 4096 return addresses, from three threads at once: the recipe table
 * moves to larger generations while walks read and fill it, and every
 * walk must still be libunwind's, then and after (entries moved). */
static int c_many(void) { return many_sites(probe); }
static void *thread_many(void *arg)
{
    (void)arg;
    many_sites(probe);
    return NULL;
}
static void many_cases(void)
{
    size_t before = ml_unwind_cache_slots();
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, thread_many, NULL) != 0)
            abort();
    run("4096 call sites", c_many, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    size_t after = ml_unwind_cache_slots();
    printf("recipe table: %zu slots, %zu after 4096 more return addresses\n", before, after);
    /* a page or four of slots for the few dozen return addresses of the
     * cases before (four when a crowded probe path moved it on early: their
     * fixtures' calls are close together); at most half full after, so at
     * least 8192 slots (the 1 MiB table had 65536 from the start) */
    if (before > 1024 || after < 8192) {
        fprintf(stderr, "recipe table: %zu slots before, %zu after\n", before, after);
        failures++;
    }
    run("C -O0, after", c_o0, 1);
    run("C -O2, after", c_o2, 1);
    run("C++, after", c_cxx, 1);
}

static void load_lib(void)
{
    void *h = dlopen(UNWIND_LIB_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        exit(1);
    }
    lib_call = (int (*)(probe_fn, int))dlsym(h, "lib_call");
    run("dlopen'ed library", c_lib, 1);
    dlclose(h);
}

int main(void)
{
    if (ml_unwind_init() != 0) {
        fprintf(stderr, "no _dl_find_object\n");
        return 1;
    }
    run("C -O0", c_o0, 1);
    run("C -O2", c_o2, 1);
    run("C -O0 alloca", c_o0_alloca, 1);
    run("C -O2 alloca", c_o2_alloca, 1);
    run("C -O0 aligned stack", c_o0_aligned, 0);
    run("C -O2 aligned stack", c_o2_aligned, 0);
    run("C -O0 noreturn call", c_o0_noret, 1);
    run("C -O2 noreturn call", c_o2_noret, 1);
    run("deep recursion", c_deep, 1);
    run("deep, -O0 and -O2", c_deep_mixed, 1);
    max_frames = 40;
    run("deep, truncated at 40", c_deep, 1);
    max_frames = MAX;
    run("C++", c_cxx, 1);
    load_lib();
    load_lib(); /* reloaded, perhaps at the same address */
    many_cases();
    run("signal handler", c_signal, 0);
    run("second thread", c_thread, 1);
    own_cases();
    printf("%ld frames compared, %d mismatches\n", compared, failures);
    return failures || compared < 1000 ? 1 : 0;
}
