/* report/reach.c: leak classification by a conservative reachability scan,
 * in process, at exit.
 *
 * Algorithm (LSan's marking, valgrind's cliques):
 *   1. Snapshot /proc/self/maps (raw read into the meta heap) so that only
 *      readable memory is ever touched.
 *   2. Mark from the roots: the writable PT_LOAD segments of every loaded
 *      object (GNU_RELRO included: it lies inside them), each attached
 *      thread's stack block (for glibc threads it also holds the static TLS
 *      and the descriptor), the mapping that holds a thread pointer outside
 *      its stack block (the main thread's TLS, made by ld.so), the TLS and
 *      descriptor of exited threads whose blocks glibc keeps cached, the
 *      calling thread's spilled registers and its stack from the current
 *      stack pointer up (at exit: from the stack pointer of the frame that
 *      called exit, _exit or exec, with its callee-saved registers, so that
 *      neither mallard's frames nor the dead ones of returned functions
 *      count), and all other private anonymous writable memory, 64 KiB
 *      granule by granule, that mallard does not own and that holds no live
 *      block (memory a program manages itself, like Python's object arenas,
 *      as valgrind scans it; the kernel may merge such a mapping with one of
 *      mallard's into one /proc/self/maps entry, so the entry says nothing).
 *      Every root loses the skip ranges and any granule mallard owns (meta
 *      heap, backend heaps).  A word marks the block whose
 *      [addr, addr + max(size,1)) holds it, found through an address index
 *      (one bucket per power-of-two stretch of the heap, about one block
 *      each) and a binary search among the few in its bucket; marked
 *      blocks go on an explicit work stack and are scanned in turn, so
 *      chains of any length are fine.
 *   3. Pointed: every unmarked block is scanned once, and each unmarked
 *      block another one points to is flagged; the pointers found are
 *      kept (up to 4 per lost block), so that step 4 follows them instead
 *      of reading the blocks again.
 *   4. Cliques: walk the unmarked blocks, first those no other points to,
 *      then the rest (cycles, and what hangs off them), each group in
 *      allocation order.  Each one not yet classified becomes DEFINITE, a
 *      leader, and every unmarked block reachable from it becomes INDIRECT,
 *      owned by it; an earlier leader it reaches (only possible in the
 *      second walk) becomes INDIRECT too, its blocks passing to the new
 *      leader.  So the definite block of a structure is the one nothing else
 *      lost points to, and of a pure cycle the first allocated (valgrind
 *      takes the lowest address, which its allocator hands out first).
 *
 * A report that counts at most 16 blocks (a fork child's own, a short
 * program's) first looks for a direct pointer to each among the roots
 * above that need no maps (quick_all_held); the full scan runs only if one
 * is not found.
 *
 * Invariants: blocks[] is sorted by addr and its blocks do not overlap;
 * each block enters the work stack once per phase, so the stack holds at
 * most n entries; nothing here allocates from the host's malloc.
 *
 * Other threads: freeze.c holds the attached ones still in a handler of
 * mallard's for the scan (from inside dl_iterate_phdr, whose lock the scan
 * takes), and their registers and stacks from the stack pointer up are
 * roots.  One it cannot hold without the program seeing it (blocked in a
 * call a handler would end with EINTR) keeps running, its stack read from
 * the stack pointer /proc shows for it, its registers unseen; one it
 * learns nothing of (inside mallard throughout, no /proc) is read whole,
 * its dead frames too.
 *
 * Safety: threads not held keep running while this scans, and may unmap
 * or protect memory (the page backend makes a freed block PROT_NONE).  A
 * SIGSEGV/SIGBUS on the scanning thread while it reads is caught and the
 * page (or block) is skipped; any other fault is passed to the handler the
 * program had, with the guard kept in place.
 *
 * Trade-off: large anonymous ranges skip pages that /proc/self/pagemap says
 * were never touched, which read as zero.
 */
#define _GNU_SOURCE
#include "report.h"

#include "../core/fmt.h"
#include "../core/meta.h"
#include "../core/os.h"
#include "pressure.h"
#include "trace.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#include <sys/platform/x86.h>
#endif

/* flags, scratch per block */
#define F_MARK 1u     /* reached from a root */
#define F_DONE 2u     /* classified by a clique walk */
#define F_SCANNED 4u  /* its words were (or are being) read */
#define F_NOREAD 8u   /* not inside readable memory: never read */
#define F_POINTED 16u /* unmarked, and another unmarked block points to it */
#define F_LEADER 32u  /* DEFINITE, the head of a clique (until an other reaches it) */
#define F_GLIBC 64u   /* a glibc chunk (system backend) whose successor's header lies inside it */
#define F_OUT 128u    /* unmarked, and points to another unmarked block */

/* what reach_hit does with a hit */
enum reach_mode { MODE_ROOTS, MODE_POINTED, MODE_CLIQUE };

/* map flags */
#define M_READ 1u
#define M_WRITE 2u
#define M_PRIVATE 4u
#define M_ANON 8u     /* private memory no file backs: untouched pages read as 0 */
#define M_SPECIAL 16u /* [vvar], [vdso], [vsyscall]: never read */

/* Buckets of the address index, about one per this many blocks. */
#define REACH_PER_BUCKET 1
/* What a leaf function may use below its stack pointer (the x86-64 ABI's red
 * zone): live, for a thread stopped at any instruction. */
#define REACH_RED_ZONE 128

/* Blocks at least this long consult pagemap to skip untouched pages. */
#define REACH_PAGEMAP_MIN ((uintptr_t)256 << 10)
/* Roots in private writable memory at least this long, too: a page this
 * process never wrote reads as zero (anonymous) or as the file (an
 * object's .data: no heap address there), and copying one in costs a
 * fault in the kernel.  Traced ls: 13 of its roots' pages never written
 * (libc's .bss, ld.so's, ls's, ...). */
#define REACH_PAGEMAP_PIECE ((uintptr_t)32 << 10)

struct reach_map {
    uintptr_t lo, hi;
    unsigned flags;
};

struct reach {
    struct ml_live *b;
    size_t n;
    uintptr_t min, span; /* every block lies in [min, min + span) */
    /* The address index: bucket[k] is the first block at or above
     * min + (k << bshift), bucket[nbucket] is n.  Blocks starting in
     * bucket k are [bucket[k], bucket[k + 1]). */
    uint32_t *bucket;
    size_t nbucket;
    unsigned bshift;
    uint32_t bucket_one[2]; /* the index when no room: one bucket, a plain binary search */
    size_t *work;
    size_t top;
    enum reach_mode mode;
    size_t leader; /* MODE_POINTED: the block being read; MODE_CLIQUE: the clique's leader */
    struct reach_map *maps;
    size_t nmaps;
    char *maps_text;       /* kept to the end: unmapping it would stale the snapshot */
    struct ml_range *skip; /* sorted, merged */
    size_t nskip;
    struct ml_range *skip_own; /* skip plus mallard's own TLS in each thread (own_tls_skip) */
    struct ml_range *excl;     /* skip plus thread stacks: taken out of anonymous roots */
    size_t nexcl;
    struct ml_range *dead; /* dead frames of stacks that are heap blocks (stacks_in_blocks): never read */
    size_t ndead;
    uintptr_t tls_span; /* bound on static TLS below a thread pointer */
    size_t page;
    int pagemap;
    int lost;   /* a fault may have dropped pushes: rebuild the work stack */
    int nomaps; /* the maps are synthesized (no /proc): blocks are not checked against them */
    struct reach_guard *g;
    void *vbuf;      /* scan_copied's buffer (meta heap); NULL: read directly */
    uint64_t *edges; /* MODE_POINTED's finds, from << 32 | to, by from; NULL: read again */
    size_t nedges, edges_cap, edges_max;
    pid_t self;
    int avx2;              /* scan_words_avx2 may run */
    int jb_here;           /* g->jb was set by the running drain or pointed walk */
    size_t walk;           /* the pointed walk's position */
    const uint8_t *theirs; /* per block, nonzero: not this report's (ml_reach_classify_own); NULL: none */
    size_t want_left;      /* this report's blocks not yet marked: at 0 the marking can stop */
};

/* The fault guard: one scan at a time (exit), on one thread.  It lives in
 * the meta heap: a jmp_buf in .data would be a root full of stale
 * registers. */
struct reach_guard {
    volatile sig_atomic_t armed;
    volatile pid_t tid;
    sigjmp_buf jb;
    struct sigaction old_segv, old_bus;
    sigset_t old_mask;
};
static struct reach_guard *volatile guard;

/* A fault that is not the scan's (another thread of a program that uses
 * SIGSEGV on purpose, as GCs and JVMs do): run the program's own handler
 * as the kernel would have, and keep the guard installed, since the scan's
 * next fault must still be caught.  A default or ignored disposition is
 * restored for real: the fault repeats on return and ends the process, as
 * it would have without mallard. */
static void reach_chain(int sig, siginfo_t *si, void *uc, struct sigaction *old)
{
    if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        if (si->si_code <= 0)
            raise(sig);
        return;
    }
    struct sigaction use = *old;
    if (old->sa_flags & SA_RESETHAND) {
        memset(old, 0, sizeof *old);
        old->sa_handler = SIG_DFL;
        sigemptyset(&old->sa_mask);
    }
    sigset_t mask, was;
    mask = use.sa_mask;
    if (!(use.sa_flags & SA_NODEFER))
        sigaddset(&mask, sig);
    pthread_sigmask(SIG_BLOCK, &mask, &was);
    if (use.sa_flags & SA_SIGINFO)
        use.sa_sigaction(sig, si, uc);
    else
        use.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &was, NULL);
}

static void reach_fault(int sig, siginfo_t *si, void *uc)
{
    struct reach_guard *g = guard;
    if (g && g->armed && (pid_t)syscall(SYS_gettid) == g->tid) {
        g->armed = 0;
        siglongjmp(g->jb, 1);
    }
    if (g) {
        reach_chain(sig, si, uc, sig == SIGBUS ? &g->old_bus : &g->old_segv);
        return;
    }
    /* The guard was removed while this signal was on its way: the handlers
     * it replaced are back, so a fault repeats into them on return (into
     * the program's own handler, a GC's for instance) and a sent signal is
     * sent again.  Forcing SIG_DFL here killed a program whose thread
     * faulted on purpose just as the scan ended. */
    if (si->si_code <= 0)
        raise(sig);
}

static void guard_install(struct reach_guard *g)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = reach_fault;
    /* NODEFER: siglongjmp(jb, 0-mask) leaves the handler without restoring
     * the mask, so the signal must not be blocked inside it. */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    g->tid = (pid_t)syscall(SYS_gettid);
    /* guard is set before reach_fault is installed, so a fault on another
     * thread in between finds the handlers to chain to */
    sigaction(SIGSEGV, NULL, &g->old_segv);
    sigaction(SIGBUS, NULL, &g->old_bus);
    guard = g;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    /* The report may be written from a fatal SIGSEGV's handler, where the
     * signal is blocked: a fault then would kill without the handler. */
    sigset_t faults;
    sigemptyset(&faults);
    sigaddset(&faults, SIGSEGV);
    sigaddset(&faults, SIGBUS);
    pthread_sigmask(SIG_UNBLOCK, &faults, &g->old_mask);
}

/* The guard every scan uses, made once and never freed: a thread that
 * faulted as a scan ended may still be inside reach_fault, reading the
 * handlers the guard saved.  Freed, that memory was taken again and read
 * as SIG_DFL: reach_chain then set SIGSEGV to its default and the
 * program's next deliberate fault killed it (hostile_gcsegv, once freeze.c
 * held such a thread inside reach_fault until the scan's end). */
static struct reach_guard *guard_get(void)
{
    static struct reach_guard *mem;
    if (!mem)
        mem = ml_meta_alloc(sizeof *mem);
    return mem;
}

static void guard_remove(struct reach_guard *g)
{
    g->armed = 0;
    pthread_sigmask(SIG_SETMASK, &g->old_mask, NULL);
    sigaction(SIGSEGV, &g->old_segv, NULL);
    sigaction(SIGBUS, &g->old_bus, NULL);
    guard = NULL;
}

/* ---- small helpers ---------------------------------------------------- */

static void range_sort(struct ml_range *r, size_t n)
{
    /* Shell sort: no recursion, no allocation, and n is small (threads). */
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            struct ml_range t = r[i];
            size_t j = i;
            for (; j >= gap && r[j - gap].lo > t.lo; j -= gap)
                r[j] = r[j - gap];
            r[j] = t;
        }
    }
}

/* Sorts and merges overlapping or touching ranges, drops empty ones. */
static size_t range_normalize(struct ml_range *r, size_t n)
{
    range_sort(r, n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].hi <= r[i].lo)
            continue;
        if (m && r[i].lo <= r[m - 1].hi) {
            if (r[i].hi > r[m - 1].hi)
                r[m - 1].hi = r[i].hi;
        } else {
            r[m++] = r[i];
        }
    }
    return m;
}

static uintptr_t parse_hex(const char **s)
{
    uintptr_t v = 0;
    for (;; (*s)++) {
        char c = **s;
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return v;
        v = v << 4 | d;
    }
}

/* One line of /proc/self/maps: "lo-hi rwxp offset dev inode   path". */
static int maps_parse_line(const char *s, const char *end, struct reach_map *m)
{
    m->lo = parse_hex(&s);
    if (*s++ != '-')
        return -1;
    m->hi = parse_hex(&s);
    if (*s++ != ' ' || end - s < 4)
        return -1;
    m->flags = 0;
    if (s[0] == 'r')
        m->flags |= M_READ;
    if (s[1] == 'w')
        m->flags |= M_WRITE;
    if (s[3] == 'p')
        m->flags |= M_PRIVATE;
    s += 4;
    /* offset, dev, inode */
    uintptr_t inode = 0;
    for (int field = 0; field < 3; field++) {
        while (s < end && *s == ' ')
            s++;
        const char *f = s;
        while (s < end && *s != ' ')
            s++;
        if (field == 2)
            for (; f < s; f++)
                inode = inode * 10 + (uintptr_t)(*f - '0');
    }
    while (s < end && *s == ' ')
        s++;
    size_t plen = (size_t)(end - s);
    int named = plen > 0;
    int bracket = named && s[0] == '[';
    if (bracket && (plen < 6 || memcmp(s, "[heap]", 6) != 0) && (plen < 7 || memcmp(s, "[stack]", 7) != 0) &&
        (plen < 6 || memcmp(s, "[anon:", 6) != 0))
        m->flags |= M_SPECIAL;
    if (inode == 0 && (m->flags & M_PRIVATE) && (!named || bracket) && !(m->flags & M_SPECIAL))
        m->flags |= M_ANON;
    return m->hi > m->lo ? 0 : -1;
}

/* Reads the maps whole into the meta heap (no stdio, no malloc).  Through
 * /proc/thread-self first: /proc/self is the main thread's, and once main
 * has called pthread_exit its maps read as empty (no mm), which would leave
 * no root and no readable block (every block a definite leak). */
static int maps_snapshot(struct reach *st)
{
    size_t len = 0;
    char *buf = ml_meta_read_file("/proc/thread-self/maps", SIZE_MAX, &len);
    if (!buf || !len) {
        ml_meta_free(buf);
        len = 0;
        buf = ml_meta_read_file("/proc/self/maps", SIZE_MAX, &len);
    }
    if (buf && !len) {
        ml_meta_free(buf);
        errno = ENOENT;
        buf = NULL;
    }
    if (!buf)
        return -1;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    st->maps = ml_meta_alloc((lines + 1) * sizeof *st->maps);
    if (!st->maps) {
        ml_meta_free(buf);
        return -1;
    }
    const char *s = buf, *end = buf + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
            nl = end;
        if (maps_parse_line(s, nl, &st->maps[st->nmaps]) == 0)
            st->nmaps++;
        s = nl + 1;
    }
    st->maps_text = buf;
    return 0;
}

/* ---- without /proc/self/maps ----------------------------------------- */

/* No /proc (a chroot, a minimal container), no free fd, or vm.max_map_count
 * reached: build the snapshot from what mallard knows without it, so that
 * no range is ever walked blindly (a catch-all map would walk a stack to
 * 2^64).  Known: the PT_LOAD segments of every loaded object
 * (dl_iterate_phdr), each registered thread's stack block, and around the
 * main stack, the calling thread's stack pointer and each thread pointer
 * the extent mincore(2) says is mapped.  Memory a program maps itself is
 * not known: it is not a root (the report says so on stderr). */

/* Reach at most this far from an anchor when probing with mincore. */
#define REACH_PROBE_MAX ((uintptr_t)256 << 20)
/* Around a thread pointer: static TLS below it, the descriptor above. */
#define REACH_TLS_PROBE ((uintptr_t)1 << 20)

static int page_mapped(uintptr_t a, size_t page)
{
    unsigned char v;
    return mincore((void *)a, page, &v) == 0 || errno != ENOMEM;
}

/* [*lo, *hi): the mapped pages around the page holding a, within max of it. */
static void probe_extent(uintptr_t a, uintptr_t max, size_t page, uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t p = a & ~(uintptr_t)(page - 1);
    *lo = *hi = p;
    if (!page_mapped(p, page))
        return;
    *hi = p + page;
    while (*lo > page && p - (*lo - page) <= max && page_mapped(*lo - page, page))
        *lo -= page;
    while (*hi && *hi - p <= max && page_mapped(*hi, page))
        *hi += page;
}

struct synth {
    struct reach_map *m;
    size_t n, cap;
};

static void synth_add(struct synth *s, uintptr_t lo, uintptr_t hi, unsigned flags)
{
    if (hi <= lo)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct reach_map *m = ml_meta_realloc(s->m, cap * sizeof *m);
        if (!m)
            return;
        s->m = m;
        s->cap = cap;
    }
    s->m[s->n++] = (struct reach_map){lo, hi, flags};
}

static int synth_phdr(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct synth *s = data;
    size_t page = ml_os_page_size();
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_R) || !ph->p_memsz)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        lo &= ~(uintptr_t)(page - 1);
        hi = (hi + page - 1) & ~(uintptr_t)(page - 1);
        synth_add(s, lo, hi, M_READ | M_PRIVATE | ((ph->p_flags & PF_W) ? M_WRITE : 0));
    }
    return 0;
}

static int maps_synthesize(struct reach *st)
{
    struct synth s = {0};
    size_t page = st->page;
    dl_iterate_phdr(synth_phdr, &s);
    size_t nth = ml_threads_list(NULL, 0);
    struct ml_thread_root *th = nth ? ml_meta_alloc((nth + 8) * sizeof *th) : NULL;
    if (th)
        nth = ml_threads_list(th, nth + 8) < nth + 8 ? ml_threads_list(th, nth + 8) : nth + 8;
    else
        nth = 0;
    uintptr_t lo, hi;
    for (size_t i = 0; i < nth; i++) {
        if (th[i].is_main) {
            probe_extent(th[i].lo, REACH_PROBE_MAX, page, &lo, &hi);
            synth_add(&s, lo, hi, M_READ | M_WRITE | M_PRIVATE);
        } else if (!th[i].gone) {
            synth_add(&s, th[i].lo, th[i].hi, M_READ | M_WRITE | M_PRIVATE);
        }
        /* the thread pointer: static TLS below it, the descriptor above */
        probe_extent(th[i].tp, REACH_TLS_PROBE, page, &lo, &hi);
        synth_add(&s, lo, hi, M_READ | M_WRITE | M_PRIVATE);
    }
    ml_meta_free(th);
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    probe_extent(here, REACH_PROBE_MAX, page, &lo, &hi);
    synth_add(&s, lo, hi, M_READ | M_WRITE | M_PRIVATE);
    uintptr_t tp = (uintptr_t)pthread_self();
    probe_extent(tp, REACH_TLS_PROBE, page, &lo, &hi);
    synth_add(&s, lo, hi, M_READ | M_WRITE | M_PRIVATE);
    if (!s.n)
        return -1;
    /* sorted, disjoint, as map_find expects */
    struct ml_range *r = ml_meta_alloc(s.n * sizeof *r);
    if (!r) {
        ml_meta_free(s.m);
        return -1;
    }
    for (size_t i = 0; i < s.n; i++)
        r[i] = (struct ml_range){s.m[i].lo, s.m[i].hi};
    size_t nr = range_normalize(r, s.n);
    for (size_t i = 0; i < nr; i++) {
        unsigned f = 0;
        for (size_t k = 0; k < s.n; k++)
            if (s.m[k].lo < r[i].hi && s.m[k].hi > r[i].lo)
                f |= s.m[k].flags;
        s.m[i] = (struct reach_map){r[i].lo, r[i].hi, f};
    }
    ml_meta_free(r);
    st->maps = s.m;
    st->nmaps = nr;
    return 0;
}

/* The first map whose hi is above a, or nmaps. */
static size_t map_lower(const struct reach *st, uintptr_t a)
{
    size_t lo = 0, hi = st->nmaps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->maps[mid].hi <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const struct reach_map *map_find(const struct reach *st, uintptr_t a)
{
    size_t i = map_lower(st, a);
    return i < st->nmaps && st->maps[i].lo <= a ? &st->maps[i] : NULL;
}

/* Index of the first block with addr >= a. */
static size_t block_lower(const struct reach *st, uintptr_t a)
{
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->b[mid].addr < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Does any block overlap [lo, hi)? */
static int blocks_within(const struct reach *st, uintptr_t lo, uintptr_t hi)
{
    size_t i = block_lower(st, lo);
    if (i < st->n && st->b[i].addr < hi)
        return 1;
    return i > 0 && st->b[i - 1].addr + (st->b[i - 1].size ? st->b[i - 1].size : 1) > lo;
}

/* ---- marking ---------------------------------------------------------- */

/* glibc's heap (the system backend): a chunk's header is the 16 bytes below
 * the block and its size (low 3 bits: flags) sits in the word just below
 * it.  The next chunk's header starts 16 bytes before the end of the chunk,
 * in the last 8 usable bytes of this block: glibc's main_arena.top,
 * last_remainder and its bins point there, so a block whose requested size
 * reaches over that word would be kept alive by glibc's bookkeeping (the
 * last block carved from the top chunk always is). */
static inline uintptr_t glibc_next_chunk(uintptr_t addr)
{
    return addr - 16 + (((const uintptr_t *)addr)[-1] & ~(uintptr_t)7);
}

/* Flags the blocks glibc_next_chunk lies inside.  Only blocks in memory
 * mallard does not own (glibc's) whose size word is readable memory and
 * describes an in-heap chunk (not mmapped: bit 1) that covers the block. */
static void blocks_flag_glibc(struct reach *st)
{
    for (size_t i = 0; i < st->n; i++) {
        struct ml_live *blk = &st->b[i];
        if ((blk->flags & F_NOREAD) || !blk->size || (blk->addr & 15) ||
            ml_os_owner((const void *)blk->addr) != ML_OWNER_NONE)
            continue;
        const struct reach_map *m = map_find(st, blk->addr - 8);
        if (!m || !(m->flags & M_READ) || (m->flags & M_SPECIAL))
            continue;
        uintptr_t word = ((const uintptr_t *)blk->addr)[-1];
        uintptr_t csize = word & ~(uintptr_t)7;
        if ((word & 2) || csize < 32 || csize - 8 < blk->size || csize > ((uintptr_t)1 << 40))
            continue;
        uintptr_t next = glibc_next_chunk(blk->addr);
        if (next > blk->addr && next - blk->addr < blk->size)
            blk->flags |= F_GLIBC;
    }
}

/* Keeps the pointer from block `from` to block `to` that MODE_POINTED
 * found, for MODE_CLIQUE to follow without reading the block again.  When
 * the list cannot grow, it is dropped and the blocks are read again. */
static __attribute__((noinline)) void edge_grow(struct reach *st, size_t from, size_t to)
{
    size_t cap = st->edges_cap * 2;
    uint64_t *e = cap <= st->edges_max ? ml_meta_realloc(st->edges, cap * sizeof *e) : NULL;
    if (!e) {
        ml_meta_free(st->edges);
        st->edges = NULL;
        return;
    }
    st->edges = e;
    st->edges_cap = cap;
    e[st->nedges++] = (uint64_t)from << 32 | to;
}

static inline void edge_add(struct reach *st, size_t from, size_t to)
{
    if (!st->edges)
        return;
    if (ML_LIKELY(st->nedges < st->edges_cap))
        st->edges[st->nedges++] = (uint64_t)from << 32 | to;
    else
        edge_grow(st, from, to);
}

/* What a pointer to block j does in the current mode. */
static inline void reach_take(struct reach *st, size_t j)
{
    struct ml_live *blk = &st->b[j];
    if (st->mode == MODE_ROOTS) {
        if (blk->flags & F_MARK)
            return;
        blk->flags |= F_MARK;
        blk->kind = ML_KIND_REACHABLE;
        st->want_left -= !st->theirs || !st->theirs[j];
    } else if (st->mode == MODE_POINTED) {
        if (!(blk->flags & F_MARK) && j != st->leader) {
            blk->flags |= F_POINTED;
            st->b[st->leader].flags |= F_OUT;
            edge_add(st, st->leader, j);
        }
        return;
    } else {
        if ((blk->flags & F_MARK) || j == st->leader)
            return;
        if (blk->flags & F_DONE) {
            if (blk->flags & F_LEADER) {
                /* an earlier leader reached from this clique: not a head */
                blk->flags &= (uint8_t)~F_LEADER;
                blk->kind = ML_KIND_INDIRECT;
                blk->owner = (uint32_t)st->leader;
            }
            return;
        }
        blk->flags |= F_DONE;
        blk->kind = ML_KIND_INDIRECT;
        blk->owner = (uint32_t)st->leader;
    }
    st->work[st->top++] = j;
}

static inline void reach_hit(struct reach *st, uintptr_t w)
{
    /* The last block whose addr <= w: the bucket of w gives the blocks
     * that start in its stretch of addresses, then branch-free halving
     * over them and the one before (which may reach into it). */
    size_t k = (size_t)((w - st->min) >> st->bshift);
    size_t lo = st->bucket[k], hi = st->bucket[k + 1];
    lo -= lo > 0;
    const struct ml_live *base = st->b + lo;
    size_t len = hi - lo;
    while (len > 1) {
        size_t half = len >> 1;
        base = base[half].addr <= w ? base + half : base;
        len -= half;
    }
    uint64_t size = base->size ? base->size : 1;
    if (w - base->addr >= size)
        return;
    if (ML_UNLIKELY(base->flags & F_GLIBC) && w == glibc_next_chunk(base->addr))
        return; /* glibc's own link to the next chunk (its top, a bin), not the program's */
    reach_take(st, (size_t)(base - st->b));
}

/* MODE_CLIQUE without reading block j: the pointers MODE_POINTED found in
 * it, in the order it found them. */
static void edges_follow(struct reach *st, size_t j)
{
    const uint64_t *e = st->edges;
    size_t lo = 0, hi = st->nedges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((e[mid] >> 32) < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < st->nedges && (e[lo] >> 32) == j; lo++)
        reach_take(st, (size_t)(uint32_t)e[lo]);
}

/* Reads memory no one gave it: a sanitizer must not instrument it. */
#if defined(__x86_64__)
/* Eight words a step: each minus min compared with span as unsigned
 * numbers (a signed compare after flipping the top bits), one test for all
 * eight; a step with a candidate goes word by word.  About 1.5 instructions
 * a word where the plain loop takes 7: the words that are not pointers
 * into the heap, nearly all of them, cost that much less.  Every load
 * lies inside [p, end), so within the page scan_guarded gave. */
__attribute__((target("avx2"), no_sanitize_address)) static void
scan_words_avx2(struct reach *st, const uintptr_t *p, const uintptr_t *end)
{
    const uintptr_t min = st->min, span = st->span;
    const __m256i vmin = _mm256_set1_epi64x((long long)min);
    const __m256i top = _mm256_set1_epi64x((long long)((uintptr_t)1 << 63));
    const __m256i lim = _mm256_set1_epi64x((long long)(span ^ ((uintptr_t)1 << 63)));
    for (; end - p >= 8; p += 8) {
        __m256i a = _mm256_xor_si256(_mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)p), vmin), top);
        __m256i b =
            _mm256_xor_si256(_mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(p + 4)), vmin), top);
        __m256i in = _mm256_or_si256(_mm256_cmpgt_epi64(lim, a), _mm256_cmpgt_epi64(lim, b));
        if (ML_LIKELY(_mm256_testz_si256(in, in)))
            continue;
        for (int i = 0; i < 8; i++) {
            uintptr_t w = p[i];
            if (w - min < span)
                reach_hit(st, w);
        }
    }
    /* the last 1..7 words by masked loads, which read nothing past end
     * (a masked-out lane reads as 0, which lies in no block): most blocks
     * end in such a tail, and a word-by-word loop over it cost more than
     * the eight-word steps */
    size_t left = (size_t)(end - p);
    if (!left)
        return;
    const __m256i nleft = _mm256_set1_epi64x((long long)left);
    __m256i a =
        _mm256_maskload_epi64((const long long *)p, _mm256_cmpgt_epi64(nleft, _mm256_set_epi64x(3, 2, 1, 0)));
    __m256i b = _mm256_maskload_epi64((const long long *)(p + 4),
                                      _mm256_cmpgt_epi64(nleft, _mm256_set_epi64x(7, 6, 5, 4)));
    a = _mm256_xor_si256(_mm256_sub_epi64(a, vmin), top);
    b = _mm256_xor_si256(_mm256_sub_epi64(b, vmin), top);
    __m256i in = _mm256_or_si256(_mm256_cmpgt_epi64(lim, a), _mm256_cmpgt_epi64(lim, b));
    if (ML_LIKELY(_mm256_testz_si256(in, in)))
        return;
    for (; p < end; p++) {
        uintptr_t w = *p;
        if (w - min < span)
            reach_hit(st, w);
    }
}
#endif

__attribute__((no_sanitize_address)) static void scan_words(struct reach *st, uintptr_t lo, uintptr_t hi)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    hi &= ~(uintptr_t)7;
#if defined(__x86_64__)
    if (st->avx2) {
        scan_words_avx2(st, (const uintptr_t *)lo, (const uintptr_t *)hi);
        return;
    }
#endif
    const uintptr_t min = st->min, span = st->span;
    for (const uintptr_t *p = (const uintptr_t *)lo; p < (const uintptr_t *)hi; p++) {
        uintptr_t w = *p;
        if (ML_LIKELY(w - min >= span))
            continue;
        reach_hit(st, w);
    }
}

/* After a fault the work stack may have lost the pushes of the interrupted
 * scan (its top may have lived in a register): rebuild it from the flags.
 * Pending blocks are marked or classified but not yet scanned. */
static void work_rebuild(struct reach *st)
{
    st->top = 0;
    for (size_t i = 0; i < st->n; i++) {
        unsigned f = st->b[i].flags;
        if ((f & (F_MARK | F_DONE)) && !(f & (F_SCANNED | F_NOREAD)))
            st->work[st->top++] = i;
    }
}

/* Scans [lo, hi), readable as far as the snapshot knows, a page at a time
 * so that a fault (memory unmapped or protected since) loses one page. */
static void scan_guarded(struct reach *st, uintptr_t lo, uintptr_t hi)
{
    volatile uintptr_t cursor = lo;
    struct reach_guard *g = st->g;
    if (sigsetjmp(g->jb, 0) != 0) {
        cursor = (cursor & ~(uintptr_t)(st->page - 1)) + st->page;
        st->lost = 1;
    }
    while (cursor < hi) {
        uintptr_t end = (cursor & ~(uintptr_t)(st->page - 1)) + st->page;
        if (end > hi)
            end = hi;
        g->armed = 1;
        scan_words(st, cursor, end);
        g->armed = 0;
        cursor = end;
    }
}

/* Scans [lo, hi) of memory mallard did not hand out (roots, and big blocks
 * read by page): copied by the kernel with process_vm_readv, so that a page
 * unmapped or protected since the snapshot costs an error return, not a
 * fault (no signal reaches the program's handlers, and tools that count
 * signal frames, such as valgrind's, see none).  Where the call is refused
 * (seccomp, no CAP_SYS_PTRACE under a container's policy), the fault guard
 * reads the memory directly. */
#define REACH_VBUF ((size_t)64 << 10)
static void scan_copied(struct reach *st, uintptr_t lo, uintptr_t hi)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    hi &= ~(uintptr_t)7;
    while (lo < hi && st->vbuf) {
        size_t want = hi - lo < REACH_VBUF ? (size_t)(hi - lo) : REACH_VBUF;
        struct iovec local = {st->vbuf, want}, remote = {(void *)lo, want};
        ssize_t got = syscall(SYS_process_vm_readv, st->self, &local, 1UL, &remote, 1UL, 0UL);
        if (got > 0) {
            scan_words(st, (uintptr_t)st->vbuf, (uintptr_t)st->vbuf + ((size_t)got & ~(size_t)7));
            lo += (size_t)got;
            if ((size_t)got == want)
                continue;
        } else if (got < 0 && errno != EFAULT) {
            st->vbuf = NULL; /* refused: read directly from now on (freed at the end) */
            break;
        }
        lo = (lo & ~(uintptr_t)(st->page - 1)) + st->page; /* the page that failed */
    }
    if (lo < hi)
        scan_guarded(st, lo, hi);
}

/* Pages of [lo, hi) that were ever touched (present or swapped), per
 * /proc/self/pagemap; untouched private anonymous pages read as zero. */
static void scan_touched(struct reach *st, uintptr_t lo, uintptr_t hi)
{
    uint64_t ent[512];
    uintptr_t page = st->page;
    uintptr_t a = lo & ~(page - 1);
    while (a < hi) {
        size_t want = (size_t)((hi - a + page - 1) / page);
        if (want > sizeof ent / sizeof ent[0])
            want = sizeof ent / sizeof ent[0];
        ssize_t r = pread(st->pagemap, ent, want * sizeof ent[0], (off_t)(a / page * sizeof ent[0]));
        if (r <= 0) {
            scan_copied(st, a > lo ? a : lo, hi);
            return;
        }
        size_t got = (size_t)r / sizeof ent[0];
        uintptr_t run = 0; /* start of the current run of touched pages, or 0 */
        for (size_t i = 0; i < got; i++, a += page) {
            int touched = (ent[i] >> 62) != 0; /* bit 63 present, bit 62 swapped */
            if (touched && !run)
                run = a > lo ? a : lo;
            if (!touched && run) {
                scan_copied(st, run, a);
                run = 0;
            }
        }
        if (run)
            scan_copied(st, run, a < hi ? a : hi);
    }
}

/* [lo, hi) lies in one readable map: drop granules mallard owns. */
static void root_piece(struct reach *st, uintptr_t lo, uintptr_t hi, unsigned mflags)
{
    while (lo < hi) {
        uintptr_t g = (lo & ~(uintptr_t)(ML_OS_GRANULE - 1)) + ML_OS_GRANULE;
        uintptr_t end = g < hi ? g : hi;
        if (ml_os_owner((const void *)lo) == ML_OWNER_NONE) {
            /* extend over following unowned granules, then scan once */
            while (end < hi && ml_os_owner((const void *)end) == ML_OWNER_NONE)
                end = end + ML_OS_GRANULE < hi ? end + ML_OS_GRANULE : hi;
            if (st->pagemap >= 0 && (mflags & (M_PRIVATE | M_WRITE)) == (M_PRIVATE | M_WRITE) &&
                end - lo >= REACH_PAGEMAP_PIECE)
                scan_touched(st, lo, end);
            else
                scan_copied(st, lo, end);
        }
        lo = end;
    }
}

/* Scans [lo, hi) minus the sorted ranges ex, within one map. */
static void root_minus(struct reach *st, uintptr_t lo, uintptr_t hi, const struct ml_range *ex, size_t nex,
                       unsigned mflags)
{
    /* first exclusion that ends above lo */
    size_t a = 0, b = nex;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (ex[mid].hi <= lo)
            a = mid + 1;
        else
            b = mid;
    }
    for (size_t i = a; lo < hi; i++) {
        uintptr_t cut = i < nex && ex[i].lo < hi ? ex[i].lo : hi;
        if (cut > lo)
            root_piece(st, lo, cut, mflags);
        if (i >= nex || ex[i].lo >= hi)
            break;
        lo = ex[i].hi;
    }
}

/* A root: [lo, hi) clipped to readable maps, minus the ranges ex (sorted,
 * merged) and mallard's granules. */
static void root_add_except(struct reach *st, uintptr_t lo, uintptr_t hi, const struct ml_range *ex,
                            size_t nex)
{
    if (!st->want_left)
        return; /* nothing the report counts is left to find */
    for (size_t i = map_lower(st, lo); i < st->nmaps && st->maps[i].lo < hi; i++) {
        const struct reach_map *m = &st->maps[i];
        if (!(m->flags & M_READ) || (m->flags & M_SPECIAL))
            continue;
        uintptr_t plo = m->lo > lo ? m->lo : lo, phi = m->hi < hi ? m->hi : hi;
        root_minus(st, plo, phi, ex, nex, m->flags);
    }
}

/* A root less the skip ranges. */
static void root_add(struct reach *st, uintptr_t lo, uintptr_t hi)
{
    root_add_except(st, lo, hi, st->skip, st->nskip);
}

static void scan_block_part(struct reach *st, uintptr_t lo, uintptr_t hi)
{
    if (hi - lo >= REACH_PAGEMAP_MIN && st->pagemap >= 0) {
        const struct reach_map *m = map_find(st, lo);
        if (m && (m->flags & M_ANON) && hi <= m->hi) {
            scan_touched(st, lo, hi); /* a big block, barely written */
            return;
        }
    }
    scan_guarded(st, lo, hi);
}

/* Reads the words of one block that is not inside one page, less the dead
 * frames of a stack it holds (st->dead, sorted and merged). */
static void scan_block(struct reach *st, const struct ml_live *blk)
{
    uintptr_t lo = blk->addr, hi = blk->addr + blk->size;
    for (size_t i = 0; ML_UNLIKELY(i < st->ndead) && lo < hi; i++) {
        const struct ml_range *d = &st->dead[i];
        if (d->hi <= lo || d->lo >= hi)
            continue;
        if (d->lo > lo)
            scan_block_part(st, lo, d->lo);
        lo = d->hi;
    }
    if (lo < hi)
        scan_block_part(st, lo, hi);
}

/* Whether blk lies inside one page.  drain and the pointed walk read such
 * a block under a jump buffer they set once for many (sigsetjmp per block
 * was a fifth of the scan's instructions): a fault loses the rest of the
 * page, which is the rest of the block, as in scan_guarded. */
static inline int block_small(const struct reach *st, const struct ml_live *blk)
{
    uintptr_t mask = ~(uintptr_t)(st->page - 1);
    return blk->size && (blk->addr & mask) == ((blk->addr + blk->size - 1) & mask);
}

static void drain(struct reach *st)
{
    struct reach_guard *const g = st->g;
    for (;;) {
        st->jb_here = 0;
        while (st->top) {
            if (st->mode == MODE_ROOTS && !st->want_left) {
                st->top = 0; /* every block the report counts is reachable */
                return;
            }
            size_t j = st->work[--st->top];
            struct ml_live *blk = &st->b[j];
            if (blk->flags & (F_SCANNED | F_NOREAD))
                continue;
            blk->flags |= F_SCANNED;
            if (st->mode == MODE_CLIQUE && st->edges) {
                edges_follow(st, j);
            } else if (block_small(st, blk)) {
                if (!st->jb_here) {
                    st->jb_here = 1;
                    if (sigsetjmp(g->jb, 0) != 0) {
                        st->lost = 1; /* that block is done; pushes may be lost */
                        continue;
                    }
                }
                g->armed = 1;
                scan_words(st, blk->addr, blk->addr + blk->size);
                g->armed = 0;
            } else {
                scan_block(st, blk);
                st->jb_here = 0; /* scan_guarded's frame held the jump buffer */
            }
        }
        if (!st->lost)
            return;
        st->lost = 0;
        work_rebuild(st);
    }
}

/* ---- roots ------------------------------------------------------------ */

struct phdr_ctx {
    struct ml_range *r;
    size_t n, cap;
    uintptr_t tp;        /* the calling thread's */
    uintptr_t tp_map_lo; /* start of the mapping that holds it */
    uintptr_t tls;       /* deepest static TLS block below it */
};

/* Static TLS lies below the thread pointer at the same offsets in every
 * thread; more than this below it is not static TLS. */
#define REACH_TLS_MAX ((uintptr_t)1 << 20)

static int phdr_collect(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct phdr_ctx *c = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        /* dlpi_tls_data is this thread's copy.  A module in static TLS has
         * it below the thread pointer, in the same mapping; a dynamic TLS
         * block is a heap block elsewhere (often also below: ignore it). */
        uintptr_t td = (uintptr_t)info->dlpi_tls_data;
        if (ph->p_type == PT_TLS && td >= c->tp_map_lo && td < c->tp && c->tp - td < REACH_TLS_MAX &&
            ml_os_owner((const void *)td) == ML_OWNER_NONE && c->tp - td > c->tls)
            c->tls = c->tp - td;
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || !ph->p_memsz)
            continue;
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            struct ml_range *r = ml_meta_realloc(c->r, cap * sizeof *r);
            if (!r)
                return 1;
            c->r = r;
            c->cap = cap;
        }
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        c->r[c->n++] = (struct ml_range){lo, lo + ph->p_memsz};
    }
    return 0;
}

/* The current extent of a thread's stack as the snapshot sees it. */
static void thread_extent(const struct reach *st, const struct ml_thread_root *t, uintptr_t *lo,
                          uintptr_t *hi)
{
    *lo = t->lo;
    *hi = t->hi;
    if (t->is_main) {
        /* [stack] grows: take the whole mapping around the anchor */
        const struct reach_map *m = map_find(st, t->hi - 1);
        if (!m)
            m = map_find(st, t->lo);
        if (m) {
            *lo = m->lo;
            *hi = m->hi;
        }
    } else if (t->anchored) {
        /* a thread's stack: the mapping around the anchor, clipped at the
         * top of its block (threads.c records no glibc view of it) */
        const struct reach_map *m = map_find(st, t->lo);
        if (m) {
            *lo = m->lo;
            *hi = m->hi < t->hi ? m->hi : t->hi;
        } else {
            *hi = t->lo + 4096;
        }
    }
}

/* Whether the descriptor of an exited thread is still where it was: on
 * x86_64 the TCB starts with a pointer to itself (tcb) and holds another
 * (self) two words on.  glibc unmaps cached stacks past its cache limit,
 * and the range may since hold anything. */
static int thread_block_intact(const struct reach *st, uintptr_t tp)
{
    const struct reach_map *m = map_find(st, tp);
    if (!m || !(m->flags & M_READ) || (m->flags & M_SPECIAL) || m->hi - tp < 3 * sizeof(uintptr_t))
        return 0;
    const uintptr_t *tcb = (const uintptr_t *)tp;
    return tcb[0] == tp && tcb[2] == tp;
}

/* The threads, as the roots see them. */
struct thread_set {
    struct ml_thread_root *th;
    size_t n;
    uintptr_t self;             /* pthread_self() of the scanning thread */
    uintptr_t self_lo, self_hi; /* its stack */
    int on_own_stack;           /* sp lies in it (not on a signal stack): only its live frames are roots */
};

/* mallard's own thread-local state (a backend's current chunk and last
 * block, the tracer's per-thread records) points into the heap, but it is
 * not the program's: each thread's copy leaves the roots.  Where
 * libmallard.so's TLS block lies: in static TLS (preloaded or initial-exec),
 * at one offset below every thread pointer. */
struct own_tls {
    uintptr_t tp;
    uintptr_t below, size; /* the block is [tp - below, tp - below + size) */
};

extern __typeof__(ml_stack_is_own) ml_stack_is_own __attribute__((weak));

static int own_tls_find(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct own_tls *o = data;
    const ElfW(Phdr) *tls = NULL;
    int own = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_TLS)
            tls = ph;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && ph->p_memsz &&
            ml_stack_is_own(info->dlpi_addr + ph->p_vaddr + 1))
            own = 1;
    }
    uintptr_t td = (uintptr_t)info->dlpi_tls_data;
    if (!own || !tls || !td || td >= o->tp || o->tp - td >= REACH_TLS_MAX)
        return own;
    o->below = o->tp - td;
    o->size = tls->p_memsz;
    return 1;
}

static void own_tls_skip(struct reach *st, const struct ml_thread_root *th, size_t nth, uintptr_t self)
{
    if (!ml_stack_is_own)
        return; /* the scan's unit tests: no libmallard.so */
    struct own_tls o = {.tp = self};
    dl_iterate_phdr(own_tls_find, &o);
    if (!o.size)
        return;
    struct ml_range *sk = ml_meta_alloc((st->nskip + nth + 1) * sizeof *sk);
    if (!sk)
        return;
    size_t k = 0;
    for (size_t i = 0; i < st->nskip; i++)
        sk[k++] = st->skip[i];
    sk[k++] = (struct ml_range){self - o.below, self - o.below + o.size};
    for (size_t i = 0; i < nth; i++)
        if (th[i].tp != self && th[i].tp > o.below)
            sk[k++] = (struct ml_range){th[i].tp - o.below, th[i].tp - o.below + o.size};
    st->skip_own = sk;
    st->skip = sk;
    st->nskip = range_normalize(sk, k);
}

/* Lists the threads, drops exited ones whose block is gone, finds the
 * calling thread's stack around sp and builds st->excl: the skip ranges
 * and every thread stack, which the anonymous roots must not take again. */
static void threads_collect(struct reach *st, struct thread_set *ts, uintptr_t sp)
{
    struct ml_thread_root *th = NULL;
    size_t nth = ml_threads_list(NULL, 0);
    while (nth) {
        th = ml_meta_alloc((nth + 8) * sizeof *th);
        if (!th) {
            nth = 0;
            break;
        }
        size_t now = ml_threads_list(th, nth + 8);
        if (now <= nth + 8) {
            nth = now;
            break;
        }
        ml_meta_free(th);
        nth = now;
    }
    uintptr_t self = (uintptr_t)pthread_self();
    for (size_t i = 0; i < nth;) {
        if (th[i].gone && !th[i].is_main && !thread_block_intact(st, th[i].tp))
            th[i] = th[--nth]; /* its block is gone: neither root nor exclusion */
        else
            i++;
    }

    /* the calling thread: the stack block that holds sp */
    uintptr_t self_lo = sp, self_hi = 0;
    int on_own_stack = 0;
    for (size_t i = 0; i < nth; i++) {
        if (th[i].tp != self || th[i].gone)
            continue;
        uintptr_t lo, hi;
        thread_extent(st, &th[i], &lo, &hi);
        if (sp >= lo && sp < hi) {
            self_lo = lo;
            self_hi = hi;
            on_own_stack = 1;
        }
    }
    if (!self_hi) {
        const struct reach_map *m = map_find(st, sp);
        self_lo = m ? m->lo : sp;
        self_hi = m ? m->hi : sp;
    }

    own_tls_skip(st, th, nth, self);
    size_t nex = st->nskip + 2 * nth + 1;
    st->excl = ml_meta_alloc(nex * sizeof *st->excl);
    if (st->excl) {
        size_t k = 0;
        for (size_t i = 0; i < st->nskip; i++)
            st->excl[k++] = st->skip[i];
        for (size_t i = 0; i < nth; i++) {
            thread_extent(st, &th[i], &st->excl[k].lo, &st->excl[k].hi);
            k++;
            /* a live thread's signal stack: a stack, read from where a
             * handler runs (roots_threads), not the program's memory */
            if (!th[i].gone && th[i].alt_hi > th[i].alt_lo)
                st->excl[k++] = (struct ml_range){th[i].alt_lo, th[i].alt_hi};
        }
        st->excl[k++] = (struct ml_range){self_lo, self_hi};
        st->nexcl = range_normalize(st->excl, k);
    }
    *ts = (struct thread_set){th, nth, self, self_lo, self_hi, on_own_stack};
}

/* Roots: the writable segments of every loaded object.  Also learns how
 * far static TLS reaches below a thread pointer. */
static void roots_objects(struct reach *st, uintptr_t self)
{
    const struct reach_map *tp_map = map_find(st, self);
    struct phdr_ctx pc = {.tp = self, .tp_map_lo = tp_map ? tp_map->lo : self};
    dl_iterate_phdr(phdr_collect, &pc);
    st->tls_span = pc.tls ? (pc.tls + 63) & ~(uintptr_t)63 : 4096;
    for (size_t i = 0; i < pc.n; i++)
        root_add(st, pc.r[i].lo, pc.r[i].hi);
    /* Their .bss beyond the file is an anonymous mapping: roots_anonymous
     * must not read it again (mallard's own 4 MiB bootstrap arena was read
     * twice by every traced process). */
    struct ml_range *ex = st->excl ? ml_meta_alloc((st->nexcl + pc.n) * sizeof *ex) : NULL;
    if (ex) {
        memcpy(ex, st->excl, st->nexcl * sizeof *ex);
        memcpy(ex + st->nexcl, pc.r, pc.n * sizeof *ex);
        ml_meta_free(st->excl);
        st->excl = ex;
        st->nexcl = range_normalize(ex, st->nexcl + pc.n);
    }
    ml_meta_free(pc.r);
}

/* Takes [lo, hi), read already, out of the anonymous roots too. */
static void excl_add(struct reach *st, uintptr_t lo, uintptr_t hi)
{
    struct ml_range *ex = st->excl ? ml_meta_alloc((st->nexcl + 1) * sizeof *ex) : NULL;
    if (!ex)
        return; /* read twice then, as before */
    memcpy(ex, st->excl, st->nexcl * sizeof *ex);
    ex[st->nexcl] = (struct ml_range){lo, hi};
    ml_meta_free(st->excl);
    st->excl = ex;
    st->nexcl = range_normalize(ex, st->nexcl + 1);
}

static uintptr_t signal_sp; /* ml_reach_signal_sp's */

void ml_reach_signal_sp(uintptr_t sp) { __atomic_store_n(&signal_sp, sp, __ATOMIC_RELAXED); }

/* A root of [lo, hi) less the live blocks, the thread stacks and the signal
 * stacks in it.  The kernel merges neighbouring anonymous mappings into one
 * entry of /proc/self/maps: under the system backend a block glibc maps for
 * itself (a stack a thread runs on, say) can share one with the mapping
 * ld.so made for the main thread's TLS, and so can a signal stack the
 * program mapped; as a root, their dead frames kept what they once pointed
 * to (tests/programs/heap_stack.c: a root reachable in 4 of 10 runs). */
static void root_add_between_blocks(struct reach *st, uintptr_t lo, uintptr_t hi)
{
    const struct ml_range *ex = st->excl ? st->excl : st->skip;
    size_t nex = st->excl ? st->nexcl : st->nskip;
    size_t i = block_lower(st, lo);
    if (i > 0 && st->b[i - 1].addr + st->b[i - 1].size > lo)
        lo = st->b[i - 1].addr + st->b[i - 1].size;
    for (; i < st->n && st->b[i].addr < hi && lo < hi; i++) {
        if (st->b[i].addr > lo)
            root_add_except(st, lo, st->b[i].addr, ex, nex);
        uintptr_t end = st->b[i].addr + (st->b[i].size ? st->b[i].size : 1);
        if (end > lo)
            lo = end;
    }
    if (lo < hi)
        root_add_except(st, lo, hi, ex, nex);
}

/* Where another thread's live stack starts, as freeze.c learnt it (the red
 * zone below its stack pointer included), 0 when it does not know; the
 * registers of a thread it held are roots too, read from the meta heap
 * (root_add would drop them as mallard's). */
static uintptr_t frozen_sp(struct reach *st, uintptr_t tp)
{
    uintptr_t sp = 0, regs[ML_FREEZE_NREGS];
    enum ml_freeze_how how = ml_freeze_thread(tp, &sp, regs);
    if (how == ML_FREEZE_UNKNOWN || sp < REACH_RED_ZONE)
        return 0;
    if (how == ML_FREEZE_REGS) {
        uintptr_t *copy = ml_meta_alloc(sizeof regs);
        if (copy) {
            memcpy(copy, regs, sizeof regs);
            scan_guarded(st, (uintptr_t)copy, (uintptr_t)copy + sizeof regs);
            ml_meta_free(copy);
        }
    }
    return (sp - REACH_RED_ZONE) & ~(uintptr_t)7;
}

/* Roots: the calling thread from sp (or from where it called exit) up, the
 * other live threads' stacks (from their stack pointers when freeze.c held
 * them or saw them blocked), every thread's TLS and descriptor; a thread a
 * signal handler left for a stack of its own from where it left it. */
static void roots_threads(struct reach *st, const struct thread_set *ts, uintptr_t sp,
                          const struct ml_exit_frame *exitf)
{
    if (exitf && exitf->sp > ts->self_lo && exitf->sp < ts->self_hi) {
        /* the registers as they were at the call, read from the meta heap
         * (root_add would drop it as mallard's) */
        uintptr_t *regs = ml_meta_alloc(sizeof exitf->regs);
        if (regs) {
            memcpy(regs, exitf->regs, sizeof exitf->regs);
            scan_guarded(st, (uintptr_t)regs, (uintptr_t)regs + sizeof exitf->regs);
            ml_meta_free(regs);
        }
        root_add(st, exitf->sp, ts->self_hi);
    } else {
        /* spilled registers and live frames, mallard's included */
        root_add(st, sp, ts->self_hi);
    }

    for (size_t i = 0; i < ts->n; i++) {
        const struct ml_thread_root *t = &ts->th[i];
        uintptr_t lo, hi;
        thread_extent(st, t, &lo, &hi);
        int self_entry = t->tp == ts->self && !t->gone && ts->on_own_stack;
        uintptr_t left = t->tp == ts->self ? __atomic_load_n(&signal_sp, __ATOMIC_RELAXED) : 0;
        if (t->tp != ts->self && !t->gone)
            left = frozen_sp(st, t->tp);
        if (!t->gone && !self_entry)
            root_add(st, left > lo && left < hi ? left : lo, hi);
        /* a thread in a handler on its signal stack: the live frames there
         * (and the signal frame, with the registers it interrupted) */
        if (!t->gone && left >= t->alt_lo && left < t->alt_hi)
            root_add(st, left, t->alt_hi);
        else if (!t->gone && t->tp != ts->self && !left && t->alt_hi > t->alt_lo)
            root_add(st, t->alt_lo, t->alt_hi); /* where it is not known: all of it */
        if (t->tp >= lo && t->tp < hi) {
            /* TLS and descriptor sit at the top of the block; once the
             * thread is gone they are all that is left of its roots */
            uintptr_t tlo = t->tp - st->tls_span;
            if (tlo < lo || tlo > t->tp)
                tlo = lo;
            if (t->gone && !blocks_within(st, tlo, hi))
                root_add(st, tlo, hi);
        } else {
            /* the main thread: ld.so put its TLS in a mapping of its own */
            const struct reach_map *m = map_find(st, t->tp);
            if (m) {
                root_add_between_blocks(st, m->lo, m->hi);
                excl_add(st, m->lo, m->hi); /* roots_anonymous read it a second time */
            }
        }
    }
}

/* Whether the granule-sized piece [lo, hi) of an anonymous mapping is the
 * program's own memory: mallard does not own it and no live block lies in
 * it (glibc's heap under the system backend, say). */
static int anon_is_root(const struct reach *st, uintptr_t lo, uintptr_t hi)
{
    return ml_os_owner((const void *)lo) == ML_OWNER_NONE && !blocks_within(st, lo, hi);
}

/* Roots: private anonymous writable memory the program manages itself,
 * judged granule by granule; runs of such granules are scanned at once so
 * that big ones can skip untouched pages. */
static void roots_anonymous(struct reach *st)
{
    if (!st->excl)
        return;
    const unsigned need = M_READ | M_WRITE | M_ANON;
    for (size_t i = 0; i < st->nmaps && st->want_left; i++) {
        const struct reach_map *m = &st->maps[i];
        if ((m->flags & need) != need)
            continue;
        uintptr_t run = 0, lo = m->lo;
        int in_run = 0;
        while (lo < m->hi) {
            uintptr_t g = (lo & ~(uintptr_t)(ML_OS_GRANULE - 1)) + ML_OS_GRANULE;
            uintptr_t hi = g < m->hi ? g : m->hi;
            int root = anon_is_root(st, lo, hi);
            if (root && !in_run) {
                run = lo;
                in_run = 1;
            } else if (!root && in_run) {
                root_minus(st, run, lo, st->excl, st->nexcl, m->flags);
                in_run = 0;
            }
            lo = hi;
        }
        if (in_run)
            root_minus(st, run, m->hi, st->excl, st->nexcl, m->flags);
    }
}

/* The block that holds a, or NULL. */
static const struct ml_live *block_holding(const struct reach *st, uintptr_t a)
{
    size_t k = block_lower(st, a + 1);
    if (!k)
        return NULL;
    const struct ml_live *b = &st->b[k - 1];
    return a - b->addr < b->size ? b : NULL;
}

/* Where another thread's live frames begin, as freeze.c learnt it (the red
 * zone below its stack pointer included), 0 when it does not know: what
 * frozen_sp returns, without reading its registers. */
static uintptr_t held_sp(uintptr_t tp)
{
    uintptr_t sp = 0, regs[ML_FREEZE_NREGS];
    if (ml_freeze_thread(tp, &sp, regs) == ML_FREEZE_UNKNOWN || sp < REACH_RED_ZONE)
        return 0;
    return (sp - REACH_RED_ZONE) & ~(uintptr_t)7;
}

/* Threads whose stack is a block of the heap (pthread_attr_setstack on
 * memory from malloc, as coroutine and green-thread libraries do): what lies
 * below a thread's stack pointer is dead, and valgrind, which makes it
 * unaddressable as the stack pointer rises, reads none of it when it reads
 * the block; an ended thread's frames are dead up to its static TLS.  Any
 * read of such a block skips those ranges (scan_block), so this runs before
 * the first drain reads one.  Stacks are bigger than a page: drain and the
 * pointed walk read them through scan_block. */
static void stacks_in_blocks(struct reach *st, const struct thread_set *ts, uintptr_t sp,
                             const struct ml_exit_frame *exitf)
{
    struct ml_range *dead = NULL;
    size_t n = 0;
    ml_meta_free(st->dead);
    st->dead = NULL;
    st->ndead = 0;
    for (size_t i = 0; i < ts->n; i++) {
        const struct ml_thread_root *t = &ts->th[i];
        if (!t->gone && t->alt_hi > t->alt_lo) {
            /* a signal stack from malloc: dead below a handler's frames */
            const struct ml_live *b = block_holding(st, t->alt_lo);
            uintptr_t asp =
                t->tp == ts->self ? __atomic_load_n(&signal_sp, __ATOMIC_RELAXED) : held_sp(t->tp);
            /* where another thread is cannot be told: nothing on it is dead */
            int known = t->tp == ts->self || asp;
            uintptr_t top = asp > t->alt_lo && asp < t->alt_hi ? asp & ~(uintptr_t)7 : t->alt_hi;
            if (known && b && t->alt_hi <= b->addr + b->size && top > t->alt_lo) {
                if (!dead && !(dead = ml_meta_alloc(2 * ts->n * sizeof *dead)))
                    return;
                dead[n++] = (struct ml_range){t->alt_lo, top};
            }
        }
        if (t->is_main || !t->anchored)
            continue;
        /* the anchor is the page of a frame: its start may lie below the block */
        const struct ml_live *b = block_holding(st, t->lo);
        if (!b)
            b = block_holding(st, t->lo + st->page - 1);
        if (!b)
            continue;
        uintptr_t lo = b->addr, hi = b->addr + b->size, live = 0;
        if (t->gone) {
            live = t->tp > lo + st->tls_span && t->tp < hi ? t->tp - st->tls_span : hi;
        } else if (t->tp == ts->self) {
            live = exitf && exitf->sp > lo && exitf->sp < hi ? exitf->sp : sp;
        } else {
            live = held_sp(t->tp);
        }
        live &= ~(uintptr_t)7;
        if (live <= lo || live > hi)
            continue;
        if (!dead && !(dead = ml_meta_alloc(2 * ts->n * sizeof *dead)))
            return;
        dead[n++] = (struct ml_range){lo, live};
    }
    st->dead = dead;
    st->ndead = dead ? range_normalize(dead, n) : 0;
}

/* Every root; `sp` is below the caller's frame, which holds the spilled
 * registers. */
static __attribute__((noinline)) void reach_run(struct reach *st, const struct ml_exit_frame *exitf)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    struct thread_set ts;
    threads_collect(st, &ts, sp);
    /* each kind of root is followed through the heap before the next:
     * once every block the report counts is found, the rest is not read
     * (a fork child at exec holds a block or two of its own, most often
     * reachable from the program's globals) */
    roots_objects(st, ts.self); /* learns tls_span */
    stacks_in_blocks(st, &ts, sp, exitf);
    drain(st);
    roots_threads(st, &ts, sp, exitf);
    drain(st);
    roots_anonymous(st);
    ml_meta_free(ts.th);
}

/* ---- entry ------------------------------------------------------------ */

/* Blocks outside readable memory are marked F_NOREAD: a merge walk of the
 * sorted blocks against the sorted maps. */
static void blocks_check_readable(struct reach *st)
{
    size_t m = 0;
    for (size_t i = 0; i < st->n; i++) {
        struct ml_live *blk = &st->b[i];
        uintptr_t lo = blk->addr, hi = blk->addr + blk->size;
        while (m < st->nmaps && st->maps[m].hi <= lo)
            m++;
        size_t k = m;
        uintptr_t at = lo;
        while (at < hi && k < st->nmaps && st->maps[k].lo <= at && (st->maps[k].flags & M_READ) &&
               !(st->maps[k].flags & M_SPECIAL)) {
            at = st->maps[k].hi;
            k++;
        }
        if (at < hi)
            blk->flags |= F_NOREAD;
    }
}

/* Order of the clique walk: blocks no other lost block points to first,
 * then the rest; allocation order within each, address order last. */
static int walk_before(const struct ml_live *b, size_t x, size_t y)
{
    unsigned px = b[x].flags & F_POINTED, py = b[y].flags & F_POINTED;
    if (px != py)
        return px < py;
    if (b[x].seq != b[y].seq)
        return b[x].seq < b[y].seq;
    return x < y;
}

/* Moves ix[r] down the heap ix[0..end) ordered by walk_before. */
static void walk_sift(const struct ml_live *b, size_t *ix, size_t r, size_t end)
{
    for (;;) {
        size_t c = 2 * r + 1;
        if (c >= end)
            break;
        if (c + 1 < end && walk_before(b, ix[c], ix[c + 1]))
            c++;
        if (!walk_before(b, ix[r], ix[c]))
            break;
        size_t t = ix[r];
        ix[r] = ix[c];
        ix[c] = t;
        r = c;
    }
}

/* Heap sort of the m indexes by walk_before: no recursion, no allocation. */
static void walk_sort(const struct ml_live *b, size_t *ix, size_t m)
{
    for (size_t k = m / 2; k-- > 0;)
        walk_sift(b, ix, k, m);
    for (size_t end = m; end-- > 1;) {
        size_t t = ix[0];
        ix[0] = ix[end];
        ix[end] = t;
        walk_sift(b, ix, 0, end);
    }
}

/* The same order as walk_sort, by LSD radix sort: each index packed with
 * its key, F_POINTED above seq - min seq above the index, sorted 11 bits a
 * pass over the bits the keys use, the index recovered from the low bits.
 * tmp: m words of scratch.  0, or -1 (the keys do not fit a word, no
 * room) when walk_sort must do it.  The heap sort was the largest part of
 * classifying 10^5 lost blocks. */
static int walk_radix(const struct ml_live *b, size_t *ix, size_t m, uint64_t *tmp)
{
    uint32_t smin = UINT32_MAX, smax = 0;
    size_t imax = 0;
    for (size_t k = 0; k < m; k++) {
        uint32_t s = b[ix[k]].seq;
        smin = s < smin ? s : smin;
        smax = s > smax ? s : smax;
        imax = ix[k] > imax ? ix[k] : imax;
    }
    unsigned ibits = imax ? 64 - (unsigned)__builtin_clzll((unsigned long long)imax) : 1;
    unsigned sbits = smax > smin ? 32 - (unsigned)__builtin_clz(smax - smin) : 0;
    unsigned total = ibits + sbits + 1;
    if (total > 64)
        return -1;
    size_t *cnt = ml_meta_alloc(2048 * sizeof *cnt); /* a digit's counts, then its slots */
    if (!cnt)
        return -1;
    uint64_t *key = (uint64_t *)ix; /* the indexes become keys in place */
    _Static_assert(sizeof(size_t) == sizeof(uint64_t), "keys share the index array");
    for (size_t k = 0; k < m; k++) {
        const struct ml_live *blk = &b[ix[k]];
        uint64_t pointed = (blk->flags & F_POINTED) != 0;
        key[k] = (pointed << (sbits + ibits)) | ((uint64_t)(blk->seq - smin) << ibits) | (uint64_t)ix[k];
    }
    /* the input is in index order, and each pass is stable: the index
     * bits need no pass of their own */
    uint64_t *from = key, *to = tmp;
    for (unsigned lo = ibits; lo < total; lo += 11) {
        memset(cnt, 0, 2048 * sizeof *cnt);
        for (size_t k = 0; k < m; k++)
            cnt[(from[k] >> lo) & 2047]++;
        size_t at = 0;
        for (size_t d = 0; d < 2048; d++) {
            size_t c = cnt[d];
            cnt[d] = at;
            at += c;
        }
        for (size_t k = 0; k < m; k++)
            to[cnt[(from[k] >> lo) & 2047]++] = from[k];
        uint64_t *t = from;
        from = to;
        to = t;
    }
    uint64_t imask = ibits >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << ibits) - 1;
    for (size_t k = 0; k < m; k++)
        ix[k] = (size_t)(from[k] & imask);
    ml_meta_free(cnt);
    return 0;
}

/* Whether every block index fits the 32 bits an edge gives it. */
static int n_fits_u32(size_t n) { return n <= (size_t)UINT32_MAX; }

/* Step 3 over the m unmarked blocks (their indexes in lost). */
static void pointed_walk(struct reach *st, const size_t *lost, size_t m)
{
    /* The pointers found here are kept (lost[] is in index order, so they
     * come sorted by the block that holds them): step 4 follows them
     * instead of reading every lost block a second time.  Up to 32 bytes a
     * lost block, about what its ml_live takes; beyond that, or when a
     * fault may have dropped some, step 4 reads the blocks again. */
    st->edges_max = 4 * m + 1024;
    st->edges_cap = 1024;
    st->nedges = 0;
    st->edges = n_fits_u32(st->n) ? ml_meta_alloc(st->edges_cap * sizeof *st->edges) : NULL;
    st->mode = MODE_POINTED;
    struct reach_guard *const g = st->g;
    st->jb_here = 0;
    /* the index lives in st: a fault comes back through sigsetjmp */
    for (st->walk = 0; st->walk < m; st->walk++) {
        const struct ml_live *blk = &st->b[lost[st->walk]];
        if (blk->flags & F_NOREAD)
            continue;
        st->leader = lost[st->walk];
        if (block_small(st, blk)) {
            if (!st->jb_here) {
                st->jb_here = 1;
                if (sigsetjmp(g->jb, 0) != 0) {
                    st->lost = 1;
                    continue;
                }
            }
            g->armed = 1;
            scan_words(st, blk->addr, blk->addr + blk->size);
            g->armed = 0;
        } else {
            scan_block(st, blk);
            st->jb_here = 0;
        }
    }
    if (st->lost) {
        ml_meta_free(st->edges);
        st->edges = NULL;
    }
}

/* Steps 3 and 4 over the m unmarked blocks (their indexes in lost). */
static void classify_lost(struct reach *st, size_t *lost, size_t m)
{
    pointed_walk(st, lost, m);
    /* A lost block that no other lost block points to and that points to
     * none is a clique of its own wherever the walk meets it: DEFINITE,
     * its own owner.  Settled here, in address order, it stays out of the
     * sort and the walk, whose order (allocation order) reads the blocks
     * at random: a leak is mostly such blocks (a lost string, a lost
     * struct of numbers).  Not after a fault, which may have cut a block's
     * reading short before it found its pointers. */
    if (!st->lost) {
        size_t kept = 0;
        for (size_t k = 0; k < m; k++) {
            struct ml_live *blk = &st->b[lost[k]];
            if (!(blk->flags & (F_POINTED | F_OUT))) {
                blk->flags |= F_DONE | F_LEADER;
                blk->kind = ML_KIND_DEFINITE;
                blk->owner = (uint32_t)lost[k];
            } else {
                lost[kept++] = lost[k];
            }
        }
        m = kept;
    }
    st->lost = 0; /* nothing was pushed in this step */
    /* the work stack is empty until the walk: its n words are the sort's
     * second array (no fresh pages to fault in) */
    _Static_assert(sizeof(size_t) == sizeof(uint64_t), "the work stack holds keys");
    if (walk_radix(st->b, lost, m, (uint64_t *)st->work) != 0)
        walk_sort(st->b, lost, m);
    st->mode = MODE_CLIQUE;
    for (size_t k = 0; k < m; k++) {
        size_t i = lost[k];
        struct ml_live *blk = &st->b[i];
        if (blk->flags & F_DONE)
            continue;
        blk->flags |= F_DONE | F_LEADER;
        blk->kind = ML_KIND_DEFINITE;
        blk->owner = (uint32_t)i;
        st->leader = i;
        st->work[st->top++] = i;
        drain(st);
    }
    /* owners: follow demoted leaders to the leader that reached them */
    for (size_t k = 0; k < m; k++) {
        struct ml_live *blk = &st->b[lost[k]];
        uint32_t o = blk->owner;
        while (st->b[o].kind == ML_KIND_INDIRECT)
            o = st->b[o].owner;
        blk->owner = o;
    }
    ml_meta_free(st->edges);
    st->edges = NULL;
}

/* Spills every caller's callee-saved registers into this frame, so that
 * reach_run, one frame below, sees them in the stack it scans. */
static __attribute__((noinline)) void classify(struct reach *st, const struct ml_exit_frame *exitf)
{
    __builtin_unwind_init();
    st->mode = MODE_ROOTS;
    reach_run(st, exitf);
    drain(st);
    if (!st->want_left)
        return; /* all reachable; the blocks that are not the report's stay unresolved */

    /* the unmarked blocks: they need an order of their own */
    size_t m = 0;
    for (size_t i = 0; i < st->n; i++)
        m += !(st->b[i].flags & F_MARK);
    if (!m)
        return;
    size_t *lost = ml_meta_alloc(m * sizeof *lost);
    if (!lost) {
        /* no space to order them: address order, as before */
        st->mode = MODE_CLIQUE;
        for (size_t i = 0; i < st->n; i++) {
            struct ml_live *blk = &st->b[i];
            if (blk->flags & (F_MARK | F_DONE))
                continue;
            blk->flags |= F_DONE | F_LEADER;
            blk->kind = ML_KIND_DEFINITE;
            blk->owner = (uint32_t)i;
            st->leader = i;
            st->work[st->top++] = i;
            drain(st);
        }
        for (size_t i = 0; i < st->n; i++) {
            uint32_t o = st->b[i].owner;
            while (!(st->b[i].flags & F_MARK) && st->b[o].kind == ML_KIND_INDIRECT)
                o = st->b[o].owner;
            st->b[i].owner = o;
        }
        return;
    }
    m = 0;
    for (size_t i = 0; i < st->n; i++)
        if (!(st->b[i].flags & F_MARK))
            lost[m++] = i;
    classify_lost(st, lost, m);
    ml_meta_free(lost);
}

/* classify with the other threads held (freeze.c; a no-op inside the
 * report's own hold, which also covers its snapshot) */
struct frozen_run {
    struct reach *st;
    const struct ml_exit_frame *exitf;
};

static void classify_held(void *arg)
{
    struct frozen_run *r = arg;
    classify(r->st, r->exitf);
}

/* Everything that reads block addresses before the scan happens here, in
 * a frame of its own: a block address left in a callee-saved register of
 * ml_reach_classify would be spilled by classify and found on the stack. */
static __attribute__((noinline)) void reach_prepare(struct reach *st)
{
    const struct ml_live *last = &st->b[st->n - 1];
    st->min = st->b[0].addr;
    st->span = last->addr + (last->size ? last->size : 1) - st->min;
    /* about one bucket per REACH_PER_BUCKET blocks, each a power of two
     * bytes wide */
    size_t want = st->n / REACH_PER_BUCKET + 1;
    unsigned shift = 0;
    while (((st->span - 1) >> shift) >= want)
        shift++;
    size_t nb = (size_t)((st->span - 1) >> shift) + 1;
    st->bucket = st->n <= UINT32_MAX ? ml_meta_alloc((nb + 1) * sizeof *st->bucket) : NULL;
    if (st->bucket) {
        st->nbucket = nb;
        st->bshift = shift;
        size_t i = 0;
        for (size_t k = 0; k < nb; k++) {
            uintptr_t start = st->min + ((uintptr_t)k << shift);
            while (i < st->n && st->b[i].addr < start)
                i++;
            st->bucket[k] = (uint32_t)i;
        }
        st->bucket[nb] = (uint32_t)st->n;
    } else {
        st->bucket = st->bucket_one;
        st->bucket_one[0] = 0;
        st->bucket_one[1] = (uint32_t)st->n; /* n above 2^32 is refused before */
        st->nbucket = 1;
        st->bshift = 63;
    }
    /* without the real maps, the fault guard alone keeps block reads safe
     * (each block is bounded: no walk can run away) */
    if (!st->nomaps) {
        blocks_check_readable(st);
        blocks_flag_glibc(st);
    }
}

/* Zeroes the dead stack below the caller, where reach_prepare and the maps
 * snapshot left block addresses: classify's and reach_run's frames, made
 * there next, have slots they never write, and the scan reads them. */
static __attribute__((noinline)) void scrub_below(void)
{
    char buf[16384];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

void ml_reach_classify(struct ml_live *blocks, size_t n, const struct ml_range *skip, size_t nskip,
                       const struct ml_exit_frame *exitf)
{
    ml_reach_classify_own(blocks, n, skip, nskip, exitf, NULL);
}

/* ---- a fork child's few blocks, held directly ------------------------ */

/* A fork child's report (at its exec or exit) counts only the blocks it
 * made since the fork, most often one or two that the program's globals
 * or its stack hold (a shell's command line on its way to exec: 100 such
 * reports in a 25-pipeline dash script, 119-228 us each, the maps read
 * 30-92 us of it; a short program's few blocks are alike).  When each of
 * the blocks a report counts (at most QUICK_MAX) is pointed into by a word
 * of the roots the full scan also reads (the loaded objects' writable
 * segments minus the skip ranges, in granules no one owns; the exit
 * frame's registers; the main thread's stack from the exit frame up to
 * __libc_stack_end), all are REACHABLE, as the full scan would find them:
 * no maps, no scan.  Anything else (more blocks, one found only through
 * another) goes the full way. */
#define QUICK_MAX 16

extern void *__libc_stack_end;

struct quick {
    const struct ml_live *b[QUICK_MAX];
    uintptr_t glibc[QUICK_MAX]; /* a word that does not hold it (glibc_next_chunk), or 0 */
    uint8_t hit[QUICK_MAX];
    size_t n, left;
    uintptr_t lo, hi; /* [lo, hi): all of them */
};

static inline void quick_word(struct quick *q, uintptr_t w)
{
    if (w - q->lo >= q->hi - q->lo)
        return;
    for (size_t i = 0; i < q->n; i++) {
        uint64_t size = q->b[i]->size ? q->b[i]->size : 1;
        if (w - q->b[i]->addr < size) {
            if (w == q->glibc[i])
                return;
            q->left -= !q->hit[i];
            q->hit[i] = 1;
            return;
        }
    }
}

/* [lo, hi) word by word, a page at a time under the fault guard (a page
 * the program protected is passed by), in granules no one owns only, as
 * root_piece reads roots. */
__attribute__((no_sanitize_address)) static void quick_piece(struct reach *st, struct quick *q, uintptr_t lo,
                                                             uintptr_t hi)
{
    volatile uintptr_t cursor = lo;
    struct reach_guard *g = st->g;
    if (sigsetjmp(g->jb, 0) != 0)
        cursor = (cursor & ~(uintptr_t)(st->page - 1)) + st->page;
    while (cursor + sizeof(uintptr_t) <= hi && q->left) {
        uintptr_t end = (cursor & ~(uintptr_t)(st->page - 1)) + st->page;
        if (end > hi)
            end = hi;
        g->armed = 1;
        for (const uintptr_t *w = (const uintptr_t *)cursor; (uintptr_t)(w + 1) <= end; w++)
            quick_word(q, *w);
        g->armed = 0;
        cursor = end;
    }
}

/* Only the pages that are resident (mincore): one never touched reads as
 * zeros, and an untouched .bss is most of what a short program has there
 * (mallard's own 4 MiB bootstrap arena, a root: read whole, it made a
 * traced dash script of 175 short processes a quarter slower, where the
 * full scan asks pagemap which pages were touched).  A page passed by
 * can only leave a block unfound, and the full scan then runs. */
#define QUICK_PAGES 256

static void quick_resident(struct reach *st, struct quick *q, uintptr_t lo, uintptr_t hi)
{
    size_t ps = st->page;
    while (lo < hi && q->left) {
        uintptr_t base = lo & ~(uintptr_t)(ps - 1), end = base + QUICK_PAGES * ps;
        if (end > hi || end < base)
            end = hi;
        unsigned char in[QUICK_PAGES];
        size_t npages = (end - base + ps - 1) / ps;
        if (mincore((void *)base, end - base, in) != 0)
            return; /* not mapped as a whole: leave it to the full scan */
        for (size_t k = 0; k < npages && q->left; k++) {
            uintptr_t plo = base + k * ps, phi = plo + ps;
            if (!(in[k] & 1))
                continue;
            quick_piece(st, q, plo > lo ? plo : lo, phi < end ? phi : end);
        }
        lo = end;
    }
}

static void quick_range(struct reach *st, struct quick *q, uintptr_t lo, uintptr_t hi)
{
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    while (lo < hi && q->left) {
        uintptr_t g = (lo & ~(uintptr_t)(ML_OS_GRANULE - 1)) + ML_OS_GRANULE;
        uintptr_t end = g < hi ? g : hi;
        if (ml_os_owner((const void *)lo) == ML_OWNER_NONE)
            quick_resident(st, q, lo, end);
        lo = end;
    }
}

struct quick_ctx {
    struct reach *st;
    struct quick *q;
};

static int quick_objects(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct quick_ctx *c = data;
    for (int i = 0; i < info->dlpi_phnum && c->q->left; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || !ph->p_memsz)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        /* minus the skip ranges (sorted, disjoint) */
        for (size_t k = 0; k < c->st->nskip && lo < hi; k++) {
            const struct ml_range *x = &c->st->skip[k];
            if (x->hi <= lo || x->lo >= hi)
                continue;
            if (x->lo > lo)
                quick_range(c->st, c->q, lo, x->lo);
            lo = x->hi;
        }
        if (lo < hi)
            quick_range(c->st, c->q, lo, hi);
    }
    return c->q->left == 0;
}

/* The word of glibc's that lies inside blk, when blk may be a glibc chunk
 * (memory mallard does not own): blocks_flag_glibc's test without the
 * maps, under the installed guard, so it flags at least the blocks that
 * one does.  0: none. */
static uintptr_t glibc_inside(struct reach *st, const struct ml_live *blk)
{
    if (!blk->size || (blk->addr & 15) || ml_os_owner((const void *)blk->addr) != ML_OWNER_NONE)
        return 0;
    struct reach_guard *g = st->g;
    volatile uintptr_t word = 0;
    if (sigsetjmp(g->jb, 0) == 0) {
        g->armed = 1;
        word = ((const volatile uintptr_t *)blk->addr)[-1];
    }
    g->armed = 0;
    uintptr_t csize = word & ~(uintptr_t)7;
    if (!word || (word & 2) || csize < 32 || csize - 8 < blk->size || csize > ((uintptr_t)1 << 40))
        return 0;
    uintptr_t next = blk->addr - 16 + csize;
    return next > blk->addr && next - blk->addr < blk->size ? next : 0;
}

/* Whether every block this report counts is pointed into from those roots
 * (then their kinds stay REACHABLE). */
static int quick_all_held(struct reach *st, const struct ml_exit_frame *exitf)
{
    struct quick q;
    q.n = 0;
    for (size_t i = 0; i < st->n; i++) {
        if (st->theirs && st->theirs[i])
            continue;
        if (q.n == QUICK_MAX)
            return 0;
        q.hit[q.n] = 0;
        q.b[q.n++] = &st->b[i];
    }
    if (!q.n)
        return 0;
    guard_install(st->g);
    for (size_t i = 0; i < q.n; i++)
        q.glibc[i] = glibc_inside(st, q.b[i]);
    q.left = q.n;
    q.lo = q.b[0]->addr;
    q.hi = q.b[q.n - 1]->addr + (q.b[q.n - 1]->size ? q.b[q.n - 1]->size : 1);
    for (int i = 0; i < 6; i++)
        quick_word(&q, exitf->regs[i]);
    uintptr_t top = (uintptr_t)__libc_stack_end;
    if (syscall(SYS_gettid) == st->self && exitf->sp < top && top - exitf->sp < ((uintptr_t)64 << 20))
        quick_range(st, &q, exitf->sp, top);
    struct quick_ctx c = {st, &q};
    if (q.left)
        dl_iterate_phdr(quick_objects, &c);
    guard_remove(st->g);
    return q.left == 0;
}

void ml_reach_classify_own(struct ml_live *blocks, size_t n, const struct ml_range *skip, size_t nskip,
                           const struct ml_exit_frame *exitf, const uint8_t *theirs)
{
    if (!n)
        return;
    for (size_t i = 0; i < n; i++) {
        blocks[i].flags = 0;
        blocks[i].kind = ML_KIND_REACHABLE;
        blocks[i].owner = (uint32_t)i;
    }
    /* All state in the meta heap: min alone, on the stack, would be a
     * pointer to the first block. */
    struct reach *st = ml_meta_alloc(sizeof *st);
    struct reach_guard *g = guard_get();
    size_t *work = ml_meta_alloc((n + 1) * sizeof *work);
    struct ml_range *sk = ml_meta_alloc((nskip + 1) * sizeof *sk);
    if (!st || !g || !work || !sk || n > UINT32_MAX) {
        /* Without work space nothing is proven lost: everything stays
         * reachable rather than a false leak, and the report says so. */
        ml_tr_report_short("the leak scan (every block counts as reachable)");
        ml_meta_free(st);
        ml_meta_free(work);
        ml_meta_free(sk);
        return;
    }
    st->b = blocks;
    st->n = n;
    st->dead = NULL;
    st->ndead = 0;
    st->theirs = theirs;
    st->want_left = 0;
    for (size_t i = 0; i < n; i++)
        st->want_left += !theirs || !theirs[i];
    st->work = work;
    st->g = g;
    st->page = ml_os_page_size();
    if (nskip)
        memcpy(sk, skip, nskip * sizeof *sk);
    st->skip = sk;
    st->nskip = range_normalize(sk, nskip);
    st->self = (pid_t)syscall(SYS_getpid);
    if (theirs && exitf && st->want_left <= QUICK_MAX && quick_all_held(st, exitf)) {
        ml_meta_free(st);
        ml_meta_free(work);
        ml_meta_free(sk);
        return;
    }
    if (maps_snapshot(st) != 0) {
        int err = errno;
        ml_meta_free(st->maps);
        st->maps = NULL;
        st->nmaps = 0;
        st->nomaps = 1;
        if (maps_synthesize(st) != 0) {
            ml_say("/proc/self/maps cannot be read (%s): no leak scan, every block counts as reachable",
                   strerrordesc_np(err) ? strerrordesc_np(err) : "unknown error");
            ml_meta_free(st);
            ml_meta_free(work);
            ml_meta_free(sk);
            return;
        }
        ml_say("/proc/self/maps cannot be read (%s): roots are the loaded objects, thread stacks and "
               "TLS only; memory the program mapped itself is not scanned",
               strerrordesc_np(err) ? strerrordesc_np(err) : "unknown error");
    }
    st->pagemap = st->nomaps ? -1 : open("/proc/thread-self/pagemap", O_RDONLY | O_CLOEXEC);
    if (st->pagemap < 0 && !st->nomaps)
        st->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    void *vbuf = ml_meta_alloc(REACH_VBUF);
    st->vbuf = vbuf;
#if defined(__x86_64__)
    /* ld.so's CPU feature record: __builtin_cpu_supports would link libgcc's
     * cpuid constructor into every process, traced or not (cpuid traps to
     * the hypervisor on a VM) */
    st->avx2 = CPU_FEATURE_ACTIVE(AVX2) != 0;
#endif
    reach_prepare(st);

    guard_install(g);
    /* Without the maps, reach_prepare could not tell which blocks' last
     * bytes hold a glibc chunk header: glibc's top pointer, in libc's
     * data, kept the block last carved from the top alive (a fork child's
     * lost block under the system backend, with no /proc). */
    for (size_t i = 0; st->nomaps && i < n; i++)
        if (glibc_inside(st, &blocks[i]))
            blocks[i].flags |= F_GLIBC;
    scrub_below();
    struct frozen_run fr = {st, exitf};
    ml_freeze_run(classify_held, &fr);
    guard_remove(g);

    if (st->pagemap >= 0)
        close(st->pagemap);
    ml_meta_free(vbuf);
    ml_meta_free(st->skip_own);
    ml_meta_free(st->maps);
    ml_meta_free(st->maps_text);
    ml_meta_free(st->excl);
    ml_meta_free(st->dead);
    ml_meta_free(sk);
    if (st->bucket != st->bucket_one)
        ml_meta_free(st->bucket);
    ml_meta_free(work);
    ml_meta_free(st);
}
