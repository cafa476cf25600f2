/* core/freelist.c: the general-purpose backend (MALLARD_BACKEND=freelist).
 *
 * Algorithm: thread-cached size classes over central span lists, in the
 * manner of tcmalloc.
 *   - 60 size classes from 16 bytes to 1 MiB: multiples of 16 up to 128,
 *     then four steps per power of two.  Every power of two is a class, so
 *     an aligned request is served by the first class that is a multiple of
 *     the alignment.
 *   - Memory comes in 4 MiB segments aligned to their size, cut into 64 KiB
 *     pages.  Page 0 holds the segment header; a span is a run of pages
 *     holding objects of one class.  The header maps each page to its
 *     span's first page, so the central list finds a span from the
 *     address: segment = p & ~(4 MiB - 1).
 *   - Each thread keeps a LIFO list per class (the hot path: a pop or a
 *     push, no lock, no atomic).  An empty list refills a batch from the
 *     class's central list, and grows its limit by a batch each time, up to
 *     256 KiB of objects (2 MiB a thread in all), so a working set larger
 *     than the starting 128 objects stays in the thread; an overlong list
 *     returns a batch.  Frees from
 *     other threads simply land in the freeing thread's cache; the central
 *     list returns each object to its own span.
 *   - The nursery: a process's first few KiB of each class up to 4 KiB are
 *     carved side by side, 16-byte aligned, from the rest of one segment's
 *     header page, as glibc packs a short program's few hundred blocks
 *     into a few pages; a span per class would fault in a page or more for
 *     every size the program uses (a dash pipeline's tr or sed uses about
 *     25 classes).  A class leaves the nursery for good once it has taken
 *     NURSERY_CLASS_BYTES there or a thread freed its nursery objects
 *     NURSERY_FREES times; its nursery objects freed after that wait on the
 *     class's central list (retired) and serve it only when its spans are
 *     full, so a hot malloc/free loop does not keep cycling one of them
 *     through the slow free.  A table beside the segment header gives each
 *     nursery object's class (the class map says only ML_FL_NURSERY there).
 *   - Free, realloc and usable_size find the class of any pointer in one
 *     lookup in the class map, a two-level table laid out like the owner
 *     map, one byte a page (core/freelist.h: the preload shim's fused fast
 *     path reads it, and the thread cache, inline).
 *   - A span whose objects are all back goes to the page heap.  Free pages
 *     are decommitted (madvise) by decay: once they have stayed free for a
 *     whole 100 ms epoch, or at once past ML_FL_DIRTY_MAX; empty segments
 *     are unmapped likewise.  Memory freed and reused in waves is not
 *     faulted in again, and an idle heap still shrinks.
 *   - Blocks above 1 MiB get their own mapping, found through a hash
 *     table.  Freed ones are kept, by bytes (up to the peak of large bytes
 *     in use, 2 to 64 MiB, or half that peak when more) and for at most
 *     nine epochs, and reused best fit, cut to size or grown by mremap (not
 *     one under half the size asked for), since programs that replace megabyte
 *     buffers in a loop would otherwise pay for mmap, page faults and munmap
 *     every time; calloc clears only what was used before.  realloc grows
 *     them with mremap instead of copying, and moves a small block that it
 *     grows past 64 KiB to such a mapping (with an eighth of slack), so a
 *     buffer grown in steps is copied once, not once per size class, and
 *     leaves no trail of abandoned copies resident.
 * Invariants: every object pointer is 16-byte aligned; a page's class byte
 * is non-zero exactly while it belongs to a live span; the owner map marks
 * segments ML_OWNER_FREELIST and large mappings ML_OWNER_FREELIST_LARGE,
 * so pointers of anyone else are recognised and ignored.
 * Trade-off: thread caches cost up to a few MiB per busy thread and objects
 * freed by one thread for another migrate through the central lists, which
 * take a per-class lock (never on the hot path).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "backend.h"
#include "freelist.h"
#include "lock.h"
#include "meta.h"
#include "os.h"

#define SEG_SHIFT 22
#define SEG_SIZE ((size_t)1 << SEG_SHIFT)
#define PAGE_SHIFT 16
#define PAGE_SIZE_FL ((size_t)1 << PAGE_SHIFT)
#define PAGES_PER_SEG (SEG_SIZE / PAGE_SIZE_FL)
#define SMALL_MAX ((size_t)1 << 20)
#define NCLASS ML_FL_NCLASS
#define MAX_SPAN_PAGES 16
#define SEG_MAGIC 0x6d6c666c73656721ull
/* Free pages stay committed for one to two purge epochs; past ML_FL_DIRTY_MAX
 * of them they are decommitted at once. */
#define ML_FL_EPOCH_NS 100000000ull
#define ML_FL_DIRTY_MAX ((size_t)32 << 20)
#define LARGE_CACHE_SLOTS 16
#define LARGE_CACHE_MIN ((size_t)2 << 20)  /* the cache's budget: the peak of live */
#define LARGE_CACHE_MAX ((size_t)64 << 20) /* large bytes, within these bounds */
#define LARGE_CACHE_EPOCHS 8               /* a cached mapping is unmapped after 8 to 9 epochs unused */
/* Thread-cache growth: a bin that runs dry grows by a batch, up to
 * BIN_CAP_BYTES of objects (BIN_CAP_OBJS at most), while the thread's
 * TC_GROW_BYTES allowance lasts. */
#define BIN_CAP_BYTES ((size_t)256 << 10)
#define BIN_CAP_OBJS 8192u
#define TC_GROW_BYTES ((size_t)2 << 20)
/* realloc moves a small block growing past this to its own mapping, which
 * then grows by mremap: a buffer grown in steps is neither copied from class
 * to class nor leaves a trail of abandoned copies resident. */
#define REALLOC_LARGE_MIN ((size_t)64 << 10)
/* Room (resident, from a cached mapping) that such a buffer keeps beyond its
 * size: more cuts bench/realloc's page faults further (512 KiB: 3282 against
 * 4396 here, glibc 5254) but takes resident memory to the edge of 1.8x the
 * live peak (unit_freelist_realloc_cycle read 5748-5792 KiB against its
 * 5724 KiB bound in 1 run of 3 to 2 of 10), and 1 MiB past it. */
#define REALLOC_ROOM ((size_t)256 << 10)
/* The nursery (see the top): classes up to NURSERY_SIZE_MAX, each taking
 * at most NURSERY_CLASS_BYTES (or two objects) there, NURSERY_CHUNK bytes a
 * refill, until its nursery objects were freed NURSERY_FREES times. */
#define NURSERY_SIZE_MAX ((size_t)4096)
#define NURSERY_CLASS_BYTES ((size_t)4096)
#define NURSERY_CHUNK ((size_t)256)
#define NURSERY_FREES 64u
#define NURSERY_SLOTS (PAGE_SIZE_FL / 16) /* a class byte per 16 bytes of the page */
/* A class's first FIRST_SPANS spans hand out batches that touch one fresh
 * 4 KiB page at most (central_fetch). */
#define FIRST_SPANS 2u

struct fl_span {
    struct fl_span *next, *prev; /* central list of spans with free objects */
    void *free;                  /* objects returned to this span */
    char *bump;                  /* next object never handed out */
    char *end;                   /* end of the object area */
    uint32_t used;               /* objects out in caches or with the user */
    uint16_t npages;
    uint8_t cls;
    uint8_t listed;
};

struct fl_seg {
    uint64_t magic;
    struct fl_seg *next;               /* all segments */
    uint64_t free_mask;                /* bit i: page i belongs to no span */
    uint64_t dirty_mask;               /* bit i: free page still committed */
    uint64_t fresh_mask;               /* bit i: dirty since the current epoch began */
    uint8_t page_first[PAGES_PER_SEG]; /* first page of the span */
    struct fl_span spans[PAGES_PER_SEG];
};

struct fl_central {
    ml_mutex lock;
    struct fl_span *head;
    void *retired; /* nursery objects freed after the class left the nursery */
    char pad[64 - sizeof(ml_mutex) - 2 * sizeof(void *)];
};

/* Where the nursery's class table and objects lie in its header page. */
#define NURSERY_TABLE_OFF ((sizeof(struct fl_seg) + 63) & ~(size_t)63)
#define NURSERY_START (NURSERY_TABLE_OFF + NURSERY_SLOTS)
_Static_assert(NURSERY_START + 8 * NURSERY_SIZE_MAX <= PAGE_SIZE_FL, "room in the nursery");

struct fl_large {
    void *p;      /* block == mapping base; NULL: empty slot, (void*)1: tombstone */
    size_t total; /* mapping size: the usable bytes */
    size_t asked; /* the size last asked for (malloc or realloc) */
};

static inline uint32_t bin_count(const struct ml_fl_bin *b) { return (uint32_t)((int64_t)b->max - b->room); }

/* The fields a short program's start-up touches come first, packed, so that
 * they share one page (the nursery, the heap's head); the central lists and
 * the large-block state follow. */
static struct {
    ml_mutex nursery_lock;
    struct fl_seg *nursery_seg; /* whose header page holds the nursery; never unmapped */
    char *nursery_bump;         /* next free byte; atomic (free reads it) */
    uint16_t nursery_given[NCLASS];
    uint8_t nursery_left[NCLASS]; /* 1: the class left the nursery; atomic */

    ml_mutex heap_lock;
    struct fl_seg *segs;
    size_t dirty_bytes;
    int cls_first_taken; /* cls_first is in use */

    uint64_t epoch_ns;            /* when the current purge epoch began; atomic */
    uint64_t epoch;               /* epochs so far; atomic */
    uint32_t class_spans[NCLASS]; /* spans made so far; atomic */

    struct fl_central central[NCLASS];

    ml_mutex large_lock;
    struct fl_large *large; /* open addressing, power-of-two capacity */
    size_t large_cap, large_count, large_tomb;
    struct {
        void *p; /* NULL: empty slot */
        size_t total;
        uint64_t epoch; /* when it was cached */
        uint64_t seq;   /* age among the cached */
    } cache[LARGE_CACHE_SLOTS];
    size_t cache_bytes;
    size_t large_live, large_peak; /* bytes of large mappings in use */
    uint64_t cache_seq;
    unsigned long large_maps; /* fresh large mappings made (a test hook) */
} fl __attribute__((aligned(2048)));
/* Aligned so, the fields before central lie in one page. */
_Static_assert(offsetof(__typeof__(fl), central) <= 2048, "start-up fields in one page");

/* The class map's first second-level table (fl_class_cover). */
static uint8_t cls_first[ML_OS_L2_SIZE] ML_LARGE_BSS;

/* The thread cache: a pop or a push per call (core/freelist.h). */
ML_TLS struct ml_fl_tcache ml_fl_tc;

/* The class map: for every 64 KiB page of a segment, class + 1 while it
 * belongs to a span, else 0; laid out like the owner map (core/os.h), one
 * byte per granule, so free finds the class of any pointer in one two-level
 * lookup that never faults, without asking the owner map and then the
 * segment header the same question.  Second-level tables come from the meta
 * heap when a segment first lands in their 4 GiB; they are never freed. */
_Static_assert(PAGE_SHIFT == ML_OS_GRANULE_SHIFT, "a class-map byte per freelist page");
uint8_t *ml_fl_cls_l1[ML_OS_L1_SIZE] ML_LARGE_BSS;

static inline uint8_t *fl_class_byte(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return &ml_fl_cls_l1[a >> ML_OS_L1_SHIFT][(a >> PAGE_SHIFT) & (ML_OS_L2_SIZE - 1)];
}

/* Makes sure the class map covers segment s.  Caller holds heap_lock (the
 * only writer of the first level).  0, or ENOMEM. */
static int fl_class_cover(const void *s)
{
    uintptr_t a = (uintptr_t)s;
    ML_WRITE_TOUCH(&ml_fl_cls_l1[a >> ML_OS_L1_SHIFT]); /* one fault, not two (compiler.h) */
    if (ml_fl_cls_l1[a >> ML_OS_L1_SHIFT])
        return 0;
    /* The first second-level table is static, as the owner map's (a short
     * program then maps no meta heap for it). */
    uint8_t *l2 = fl.cls_first_taken ? ml_meta_alloc(ML_OS_L2_SIZE) : cls_first;
    fl.cls_first_taken = 1;
    if (!l2)
        return ENOMEM;
    __atomic_store_n(&ml_fl_cls_l1[a >> ML_OS_L1_SHIFT], l2, __ATOMIC_RELEASE);
    return 0;
}

/* ---- size classes ----------------------------------------------------- */

/* The class tables, as classes_compute makes them: constants, so that no
 * process computes them at start-up (5,000 instructions) or writes a page
 * for them (ML_CONST_TABLE: nor does a fork child read one in again);
 * ml_fl_classes_check (the unit test) compares the two. */
static const uint32_t class_size[NCLASS] ML_CONST_TABLE = {
    16,     32,     48,     64,     80,     96,     112,    128,    160,    192,    224,    256,
    320,    384,    448,    512,    640,    768,    896,    1024,   1280,   1536,   1792,   2048,
    2560,   3072,   3584,   4096,   5120,   6144,   7168,   8192,   10240,  12288,  14336,  16384,
    20480,  24576,  28672,  32768,  40960,  49152,  57344,  65536,  81920,  98304,  114688, 131072,
    163840, 196608, 229376, 262144, 327680, 393216, 458752, 524288, 655360, 786432, 917504, 1048576,
};
static const uint32_t class_batch[NCLASS] ML_CONST_TABLE = {
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 51, 42, 36, 32, 25, 21, 18, 16,
    12, 10, 9,  8,  6,  5,  4,  4,  3,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
    2,  2,  2,  2,  2,  2,  2,  2,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
};
static const uint32_t class_cap[NCLASS] ML_CONST_TABLE = {
    8192, 8192, 5461, 4096, 3276, 2730, 2340, 2048, 1638, 1365, 1170, 1024, 819, 682, 585,
    512,  409,  341,  292,  256,  204,  170,  146,  128,  102,  85,   73,   64,  51,  42,
    36,   32,   25,   21,   18,   16,   12,   10,   9,    8,    6,    5,    4,   4,   4,
    4,    4,    4,    2,    2,    2,    2,    2,    2,    2,    2,    2,    2,   2,   2,
};
static const uint8_t class_pages[NCLASS] ML_CONST_TABLE = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  1,  1,  1,
    1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 2, 3, 1, 1, 4, 3, 2, 2, 5, 3, 4, 4, 5, 6, 7, 8, 10, 12, 14, 16,
};
const uint8_t ml_fl_class_small[ML_FL_FAST_MAX / 16 + 1] ML_CONST_TABLE = {
    0,  0,  1,  2,  3,  4,  5,  6,  7,  8,  8,  9,  9,  10, 10, 11, 11, 12, 12, 12, 12, 13,
    13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15, 16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17,
    17, 17, 17, 17, 17, 18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19,
};

static inline unsigned size_class_calc(size_t n)
{
    if (n <= 128)
        return (unsigned)((n + 15) >> 4) - (n != 0);
    unsigned k = 63u - (unsigned)__builtin_clzl(n - 1);
    size_t step = (size_t)1 << (k - 2);
    unsigned idx = (unsigned)((n - ((size_t)1 << k) + step - 1) >> (k - 2)) - 1;
    return 8 + (k - 7) * 4 + idx;
}

static inline unsigned size_class(size_t n)
{
    if (ML_LIKELY(n <= 1024))
        return ml_fl_class_small[(n + 15) >> 4];
    return size_class_calc(n);
}

/* The class tables from their definition (see the top), into size, batch,
 * cap, pages and small. */
static void classes_compute(uint32_t *size, uint32_t *batch, uint32_t *cap, uint8_t *pages, uint8_t *small)
{
    for (unsigned c = 0; c < 8; c++)
        size[c] = 16 * (c + 1);
    for (unsigned k = 7, c = 8; c < NCLASS; k++)
        for (unsigned i = 1; i <= 4; i++, c++)
            size[c] = (uint32_t)(((size_t)1 << k) + i * ((size_t)1 << (k - 2)));
    for (unsigned c = 0; c < NCLASS; c++) {
        size_t s = size[c];
        unsigned p = 1;
        for (; p < MAX_SPAN_PAGES; p++) {
            size_t bytes = p * PAGE_SIZE_FL;
            if (bytes >= s && (bytes % s) * 8 <= bytes)
                break;
        }
        while (p * PAGE_SIZE_FL < s)
            p++;
        pages[c] = (uint8_t)p;
        size_t b = 16384 / s;
        size_t least = s > ((size_t)128 << 10) ? 1 : 2; /* a thread keeps at most two blocks this big */
        batch[c] = (uint32_t)(b < least ? least : b > 64 ? 64 : b);
        size_t most = BIN_CAP_BYTES / s;
        if (most > BIN_CAP_OBJS)
            most = BIN_CAP_OBJS;
        if (most < 2 * batch[c])
            most = 2 * batch[c];
        cap[c] = (uint32_t)most;
    }
    for (size_t i = 0; i <= 1024 / 16; i++)
        small[i] = (uint8_t)size_class_calc(i ? i * 16 : 1);
}

/* ---- the page heap ---------------------------------------------------- */

static inline struct fl_seg *seg_of(const void *p)
{
    return (struct fl_seg *)((uintptr_t)p & ~(SEG_SIZE - 1));
}

static inline unsigned page_of(const void *p)
{
    return (unsigned)(((uintptr_t)p >> PAGE_SHIFT) & (PAGES_PER_SEG - 1));
}

static uint64_t run_mask(unsigned first, unsigned n)
{
    return (n == 64 ? ~0ull : ((1ull << n) - 1)) << first;
}

/* First fit of n free pages in s; returns the first page or -1. */
static int seg_find(const struct fl_seg *s, unsigned n)
{
    for (unsigned i = 1; i + n <= PAGES_PER_SEG; i++) {
        uint64_t m = run_mask(i, n);
        if ((s->free_mask & m) == m)
            return (int)i;
    }
    return -1;
}

static struct fl_seg *seg_new(void)
{
    struct fl_seg *s = ml_os_map_user(SEG_SIZE, SEG_SIZE, ML_OWNER_FREELIST, 0);
    if (!s)
        return NULL;
    if (fl_class_cover(s)) {
        ml_os_unmap_user(s, SEG_SIZE);
        return NULL;
    }
    s->magic = SEG_MAGIC;
    s->free_mask = ~1ull;
    s->dirty_mask = 0;
    s->fresh_mask = 0;
    s->next = fl.segs;
    fl.segs = s;
    return s;
}

/* Decommits the dirty free pages that keep is clear for (all of them when
 * everything is 1) and unmaps empty, clean segments but one.  Caller holds
 * heap_lock. */
static void heap_purge(int everything)
{
    int kept_empty = 0;
    for (struct fl_seg **link = &fl.segs; *link;) {
        struct fl_seg *s = *link;
        uint64_t d = everything ? s->dirty_mask : s->dirty_mask & ~s->fresh_mask;
        if (s->free_mask == ~1ull && d == s->dirty_mask && s != fl.nursery_seg && kept_empty++) {
            fl.dirty_bytes -= (size_t)__builtin_popcountll(s->dirty_mask) * PAGE_SIZE_FL;
            *link = s->next;
            ml_os_unmap_user(s, SEG_SIZE);
            continue;
        }
        fl.dirty_bytes -= (size_t)__builtin_popcountll(d) * PAGE_SIZE_FL;
        s->dirty_mask &= ~d;
        while (d) {
            unsigned i = (unsigned)__builtin_ctzll(d);
            unsigned j = i;
            while (j < PAGES_PER_SEG && (d >> j) & 1)
                j++;
            ml_os_decommit((char *)s + (size_t)i * PAGE_SIZE_FL, (size_t)(j - i) * PAGE_SIZE_FL);
            d &= ~run_mask(i, j - i);
        }
        s->fresh_mask = 0; /* what was freed this epoch is old in the next */
        link = &s->next;
    }
}

static void large_decay(uint64_t epoch);

/* Purge by decay, as jemalloc and mimalloc do: a free page is decommitted
 * once it has stayed free for a whole epoch (so between one and two), and
 * a cached large mapping unmapped likewise, so memory freed and taken again
 * in a loop is never given back and faulted in again, while an idle heap
 * shrinks within a fraction of a second of its next free.  Called with no
 * lock held, from the frees that make memory free. */
static void fl_decay(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    uint64_t start = __atomic_load_n(&fl.epoch_ns, __ATOMIC_RELAXED);
    if (ML_LIKELY(now - start < ML_FL_EPOCH_NS))
        return;
    if (!__atomic_compare_exchange_n(&fl.epoch_ns, &start, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return; /* another thread rolls this epoch over */
    uint64_t epoch = __atomic_add_fetch(&fl.epoch, 1, __ATOMIC_RELAXED);
    ml_mutex_lock(&fl.heap_lock);
    heap_purge(0);
    ml_mutex_unlock(&fl.heap_lock);
    large_decay(epoch);
}

/* A new span of class c, or NULL when the kernel refuses memory. */
static struct fl_span *span_new(unsigned c)
{
    unsigned n = class_pages[c];
    ml_mutex_lock(&fl.heap_lock);
    struct fl_seg *s = fl.segs;
    int first = -1;
    for (; s; s = s->next)
        if ((first = seg_find(s, n)) >= 0)
            break;
    if (!s) {
        s = seg_new();
        if (!s) {
            ml_mutex_unlock(&fl.heap_lock);
            return NULL;
        }
        first = 1;
    }
    uint64_t m = run_mask((unsigned)first, n);
    size_t was_dirty = (size_t)__builtin_popcountll(s->dirty_mask & m);
    fl.dirty_bytes -= was_dirty * PAGE_SIZE_FL;
    s->free_mask &= ~m;
    s->dirty_mask &= ~m;
    s->fresh_mask &= ~m;
    for (unsigned i = (unsigned)first; i < (unsigned)first + n; i++) {
        __atomic_store_n(fl_class_byte((char *)s + (size_t)i * PAGE_SIZE_FL), (uint8_t)(c + 1),
                         __ATOMIC_RELAXED);
        s->page_first[i] = (uint8_t)first;
    }
    ml_mutex_unlock(&fl.heap_lock);
    __atomic_add_fetch(&fl.class_spans[c], 1, __ATOMIC_RELAXED);

    struct fl_span *sp = &s->spans[first];
    char *start = (char *)s + (size_t)first * PAGE_SIZE_FL;
    size_t size = class_size[c];
    sp->next = sp->prev = NULL;
    sp->free = NULL;
    sp->bump = start;
    sp->end = start + (n * PAGE_SIZE_FL / size) * size;
    sp->used = 0;
    sp->npages = (uint16_t)n;
    sp->cls = (uint8_t)c;
    sp->listed = 0;
    return sp;
}

static void span_release(struct fl_span *sp)
{
    struct fl_seg *s = seg_of(sp);
    unsigned first = (unsigned)(sp - s->spans);
    uint64_t m = run_mask(first, sp->npages);
    ml_mutex_lock(&fl.heap_lock);
    for (unsigned i = first; i < first + sp->npages; i++) {
        __atomic_store_n(fl_class_byte((char *)s + (size_t)i * PAGE_SIZE_FL), 0, __ATOMIC_RELAXED);
    }
    s->free_mask |= m;
    s->dirty_mask |= m;
    s->fresh_mask |= m;
    fl.dirty_bytes += (size_t)sp->npages * PAGE_SIZE_FL;
    if (fl.dirty_bytes > ML_FL_DIRTY_MAX)
        heap_purge(1);
    ml_mutex_unlock(&fl.heap_lock);
    fl_decay();
}

/* ---- central lists ---------------------------------------------------- */

static void central_link(struct fl_central *ce, struct fl_span *sp)
{
    sp->prev = NULL;
    sp->next = ce->head;
    if (ce->head)
        ce->head->prev = sp;
    ce->head = sp;
    sp->listed = 1;
}

static void central_unlink(struct fl_central *ce, struct fl_span *sp)
{
    if (sp->prev)
        sp->prev->next = sp->next;
    else
        ce->head = sp->next;
    if (sp->next)
        sp->next->prev = sp->prev;
    sp->next = sp->prev = NULL;
    sp->listed = 0;
}

/* Takes up to want objects of class c as a linked list; returns the count.
 * Retired nursery objects come only when no span has a free object, and
 * never when aligned (memalign: they are 16-byte aligned only). */
static uint32_t central_fetch(unsigned c, uint32_t want, void **out, int aligned)
{
    struct fl_central *ce = &fl.central[c];
    size_t size = class_size[c];
    void *list = NULL;
    uint32_t got = 0;
    ml_mutex_lock(&ce->lock);
    while (got < want) {
        struct fl_span *sp = ce->head;
        if (!sp && ce->retired && !aligned) {
            while (got < want && ce->retired) {
                void *o = ce->retired;
                ce->retired = *(void **)o;
                *(void **)o = list;
                list = o;
                got++;
            }
            continue;
        }
        if (!sp) {
            ml_mutex_unlock(&ce->lock);
            sp = span_new(c);
            ml_mutex_lock(&ce->lock);
            if (!sp)
                break;
            central_link(ce, sp);
        }
        while (got < want && sp->free) {
            void *o = sp->free;
            sp->free = *(void **)o;
            *(void **)o = list;
            list = o;
            got++;
            sp->used++;
        }
        /* In a class's first spans a batch touches no fresh page but the
         * one its first object needs: a short program that takes two or
         * three blocks of a class must not fault in the batch's 16 KiB. */
        int bounded = __atomic_load_n(&fl.class_spans[c], __ATOMIC_RELAXED) <= FIRST_SPANS;
        uintptr_t touched = ((uintptr_t)sp->bump + 4095) & ~(uintptr_t)4095;
        int stop = 0;
        while (got < want && sp->bump < sp->end) {
            void *o = sp->bump;
            if (bounded && got && (uintptr_t)o + sizeof(void *) > touched) {
                stop = 1;
                break;
            }
            sp->bump += size;
            *(void **)o = list;
            list = o;
            got++;
            sp->used++;
            uintptr_t t = ((uintptr_t)o + sizeof(void *) + 4095) & ~(uintptr_t)4095;
            touched = t > touched ? t : touched;
        }
        if (!sp->free && sp->bump >= sp->end)
            central_unlink(ce, sp);
        if (stop)
            break;
    }
    ml_mutex_unlock(&ce->lock);
    *out = list;
    return got;
}

/* Returns a linked list of objects of class c to their spans. */
static void central_return(unsigned c, void *list)
{
    struct fl_central *ce = &fl.central[c];
    ml_mutex_lock(&ce->lock);
    while (list) {
        void *o = list;
        list = *(void **)o;
        if (ML_UNLIKELY(!page_of(o))) { /* a nursery object: no span's */
            *(void **)o = ce->retired;
            ce->retired = o;
            continue;
        }
        struct fl_seg *s = seg_of(o);
        struct fl_span *sp = &s->spans[s->page_first[page_of(o)]];
        *(void **)o = sp->free;
        sp->free = o;
        if (--sp->used == 0) {
            if (sp->listed)
                central_unlink(ce, sp);
            ml_mutex_unlock(&ce->lock);
            span_release(sp);
            ml_mutex_lock(&ce->lock);
        } else if (!sp->listed) {
            central_link(ce, sp);
        }
    }
    ml_mutex_unlock(&ce->lock);
}

/* ---- the nursery ------------------------------------------------------ */

/* Opens the nursery in the header page of the first segment (made if need
 * be).  Caller holds nursery_lock.  0, or ENOMEM. */
static int nursery_open(void)
{
    ml_mutex_lock(&fl.heap_lock);
    struct fl_seg *s = fl.segs ? fl.segs : seg_new();
    if (s) {
        fl.nursery_seg = s;
        __atomic_store_n(fl_class_byte(s), (uint8_t)ML_FL_NURSERY, __ATOMIC_RELAXED);
    }
    ml_mutex_unlock(&fl.heap_lock);
    if (!s)
        return ENOMEM;
    __atomic_store_n(&fl.nursery_bump, (char *)s + NURSERY_START, __ATOMIC_RELEASE);
    return 0;
}

/* Up to want objects of class c carved side by side from the nursery, as a
 * linked list; their count, or 0 when the class has left the nursery (it
 * has taken its share, or the nursery is full). */
static __attribute__((noinline)) uint32_t nursery_fetch(unsigned c, uint32_t want, void **out)
{
    size_t size = class_size[c];
    ml_mutex_lock(&fl.nursery_lock);
    if (!fl.nursery_bump && nursery_open() != 0) {
        ml_mutex_unlock(&fl.nursery_lock);
        return 0;
    }
    char *bump = fl.nursery_bump, *end = (char *)fl.nursery_seg + PAGE_SIZE_FL;
    size_t share = NURSERY_CLASS_BYTES > 2 * size ? NURSERY_CLASS_BYTES : 2 * size;
    size_t k = NURSERY_CHUNK > size ? NURSERY_CHUNK / size : 1;
    if (k > want)
        k = want;
    if (k > (share - fl.nursery_given[c]) / size)
        k = (share - fl.nursery_given[c]) / size;
    if (k > (size_t)(end - bump) / size)
        k = (size_t)(end - bump) / size;
    uint8_t *table = (uint8_t *)fl.nursery_seg + NURSERY_TABLE_OFF;
    void *list = NULL;
    for (size_t i = k; i-- > 0;) {
        char *o = bump + i * size;
        table[((uintptr_t)o & (PAGE_SIZE_FL - 1)) >> 4] = (uint8_t)(c + 1);
        *(void **)o = list;
        list = o;
    }
    fl.nursery_given[c] = (uint16_t)(fl.nursery_given[c] + k * size);
    __atomic_store_n(&fl.nursery_bump, bump + k * size, __ATOMIC_RELEASE);
    if (fl.nursery_given[c] + size > share || (size_t)(end - bump) - k * size < size)
        __atomic_store_n(&fl.nursery_left[c], 1, __ATOMIC_RELAXED);
    ml_mutex_unlock(&fl.nursery_lock);
    *out = list;
    return (uint32_t)k;
}

/* The class of p, which lies in the nursery's page, or -1 when p is no
 * object handed out there. */
static int nursery_class(const void *p)
{
    uintptr_t a = (uintptr_t)p, off = a & (PAGE_SIZE_FL - 1);
    if ((a & 15) || off < NURSERY_START ||
        a >= (uintptr_t)__atomic_load_n(&fl.nursery_bump, __ATOMIC_ACQUIRE))
        return -1;
    unsigned v = ((const uint8_t *)fl.nursery_seg + NURSERY_TABLE_OFF)[off >> 4];
    return v ? (int)v - 1 : -1;
}

static inline void small_free(void *p, unsigned c);

/* Frees the nursery object p of class c: into the thread's cache while the
 * class is in the nursery, else onto the class's retired list. */
static __attribute__((noinline)) void nursery_free(void *p, unsigned c)
{
    if (!__atomic_load_n(&fl.nursery_left[c], __ATOMIC_RELAXED)) {
        if (++ml_fl_tc.nursery_frees[c] >= NURSERY_FREES)
            __atomic_store_n(&fl.nursery_left[c], 1, __ATOMIC_RELAXED);
        small_free(p, c);
        return;
    }
    struct fl_central *ce = &fl.central[c];
    ml_mutex_lock(&ce->lock);
    *(void **)p = ce->retired;
    ce->retired = p;
    ml_mutex_unlock(&ce->lock);
}

/* ---- the thread cache ------------------------------------------------- */

static void tcache_start(void)
{
    /* Blocks above 128 KiB are not kept per thread: a few of them would
     * pin megabytes, and their own cost dwarfs a trip to the central list. */
    for (unsigned c = 0; c < NCLASS; c++) {
        struct ml_fl_bin *b = &ml_fl_tc.bins[c];
        uint32_t count = bin_count(b); /* frees that came before the start */
        /* One batch to start: a thread that only frees (a consumer) then
         * holds at most that; one that allocates grows its bin at the first
         * refill (small_refill). */
        b->max = class_size[c] > ((size_t)128 << 10) ? 0 : class_batch[c];
        b->room = (int32_t)b->max - (int32_t)count;
    }
    ml_fl_tc.grow_left = TC_GROW_BYTES;
    ml_fl_tc.live = 1;
    ml_backend_watch_thread();
}

static __attribute__((noinline)) void *small_refill(unsigned c)
{
    if (ML_UNLIKELY(ml_fl_tc.dead)) {
        void *o;
        return central_fetch(c, 1, &o, 0) ? o : NULL;
    }
    if (ML_UNLIKELY(!ml_fl_tc.live))
        tcache_start();
    struct ml_fl_bin *b = &ml_fl_tc.bins[c];
    void *list;
    uint32_t got;
    /* From the nursery the bin does not grow: its refills are small and
     * say nothing about the working set. */
    if (class_size[c] <= NURSERY_SIZE_MAX && !__atomic_load_n(&fl.nursery_left[c], __ATOMIC_RELAXED) &&
        (got = nursery_fetch(c, class_batch[c], &list)) != 0) {
        b->head = *(void **)list;
        b->room = (int32_t)b->max - (int32_t)(got - 1);
        return list;
    }
    /* The thread allocates from this class again after its bin ran dry: a
     * working set larger than the bin, which then grows by a batch (as
     * tcmalloc's lists do), so that the objects this thread frees stay
     * with it instead of going through the central list and back.  A thread
     * that only frees (a consumer) never grows its bins. */
    size_t step = (size_t)class_batch[c] * class_size[c];
    if (b->max && b->max < class_cap[c] && ml_fl_tc.grow_left >= step) {
        ml_fl_tc.grow_left -= step;
        b->max += class_batch[c];
    }
    got = central_fetch(c, class_batch[c], &list, 0);
    if (!got)
        return NULL;
    b->head = *(void **)list;
    b->room = (int32_t)b->max - (int32_t)(got - 1);
    return list;
}

/* The bin is over its limit (or the cache is not started or is dead). */
static __attribute__((noinline)) void small_overflow(unsigned c)
{
    struct ml_fl_bin *b = &ml_fl_tc.bins[c];
    if (!ml_fl_tc.live && !ml_fl_tc.dead) {
        tcache_start();
        if (b->room >= 0)
            return;
    }
    uint32_t n = ml_fl_tc.dead ? bin_count(b) : class_batch[c];
    void *list = b->head, *tail = list;
    for (uint32_t i = 1; i < n; i++)
        tail = *(void **)tail;
    b->head = *(void **)tail;
    *(void **)tail = NULL;
    b->room += (int32_t)n;
    central_return(c, list);
}

static inline void *small_alloc(unsigned c)
{
    struct ml_fl_bin *b = &ml_fl_tc.bins[c];
    void *p = b->head;
    if (ML_LIKELY(p)) {
        b->head = *(void **)p;
        b->room++;
        return p;
    }
    return small_refill(c);
}

static inline void small_free(void *p, unsigned c)
{
    struct ml_fl_bin *b = &ml_fl_tc.bins[c];
    *(void **)p = b->head;
    b->head = p;
    if (ML_UNLIKELY(--b->room < 0))
        small_overflow(c);
}

/* ---- large blocks ----------------------------------------------------- */

#define TOMB ((void *)1)

static size_t large_hash(const void *p, size_t cap)
{
    return (size_t)(((uintptr_t)p >> 16) * 0x9e3779b97f4a7c15ull) & (cap - 1);
}

/* Caller holds large_lock. */
static struct fl_large *large_find(const void *p)
{
    if (!fl.large)
        return NULL;
    for (size_t i = large_hash(p, fl.large_cap);; i = (i + 1) & (fl.large_cap - 1)) {
        struct fl_large *e = &fl.large[i];
        if (e->p == p)
            return e;
        if (!e->p)
            return NULL;
    }
}

/* Caller holds large_lock.  Returns 0, or ENOMEM. */
static int large_insert(void *p, size_t total, size_t asked)
{
    if ((fl.large_count + fl.large_tomb + 1) * 2 > fl.large_cap) {
        size_t cap = fl.large_cap ? fl.large_cap : 256;
        while ((fl.large_count + 1) * 4 > cap)
            cap *= 2;
        struct fl_large *t = ml_meta_alloc(cap * sizeof *t);
        if (!t)
            return ENOMEM;
        struct fl_large *old = fl.large;
        size_t old_cap = fl.large_cap;
        fl.large = t;
        fl.large_cap = cap;
        fl.large_tomb = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].p && old[i].p != TOMB) {
                size_t j = large_hash(old[i].p, cap);
                while (t[j].p)
                    j = (j + 1) & (cap - 1);
                t[j] = old[i];
            }
        ml_meta_free(old);
    }
    size_t j = large_hash(p, fl.large_cap);
    while (fl.large[j].p && fl.large[j].p != TOMB)
        j = (j + 1) & (fl.large_cap - 1);
    if (fl.large[j].p == TOMB)
        fl.large_tomb--;
    fl.large[j] = (struct fl_large){p, total, asked};
    fl.large_count++;
    return 0;
}

static void large_erase(struct fl_large *e)
{
    e->p = TOMB;
    fl.large_count--;
    fl.large_tomb++;
}

static size_t large_total(size_t n) { return (n + ML_OS_GRANULE - 1) & ~(ML_OS_GRANULE - 1); }

/* How many bytes of freed mappings may be kept: the peak of large bytes in
 * use, within [LARGE_CACHE_MIN, LARGE_CACHE_MAX], or half that peak when it
 * is more.  An allocation takes a cached mapping whenever one serves it, so
 * what is cached plus what is live stays near the peak; a program whose
 * peak is hundreds of MiB of buffers replaced in a loop needs a choice of
 * sizes to keep its pages, as glibc's heap does.  Caller holds large_lock. */
static size_t large_budget(void)
{
    size_t b = fl.large_peak;
    size_t whole = b < LARGE_CACHE_MIN ? LARGE_CACHE_MIN : b > LARGE_CACHE_MAX ? LARGE_CACHE_MAX : b;
    return b / 2 > whole ? b / 2 : whole;
}

/* Takes the cached mapping that best serves total bytes: the smallest that
 * is big enough, else the biggest (to be grown); the biggest when growing
 * (a buffer realloc is growing will use its room).  Caller holds
 * large_lock. */
static void *large_cache_take(size_t total, int growing, size_t *have)
{
    int best = -1;
    for (int i = 0; i < LARGE_CACHE_SLOTS; i++) {
        if (!fl.cache[i].p)
            continue;
        size_t t = fl.cache[i].total;
        if (best < 0) {
            best = i;
            continue;
        }
        size_t bt = fl.cache[best].total;
        if (growing ? t > bt : t >= total ? (bt < total || t < bt) : (bt < total && t > bt))
            best = i;
    }
    if (best < 0)
        return NULL;
    /* Growing a mapping under half the size asked for costs most of a fresh
     * one's page faults and leaves the cache nothing to choose from next
     * time: a program that allocates each new buffer before it frees the
     * one it replaces (mimalloc-bench's malloc-large) found only the last
     * buffer freed there, and grew or cut it every time. */
    if (!growing && fl.cache[best].total < total / 2)
        return NULL;
    void *p = fl.cache[best].p;
    *have = fl.cache[best].total;
    fl.cache_bytes -= *have;
    fl.cache[best].p = NULL;
    return p;
}

/* Removes the oldest cached mapping but keep into *out; 0 when none. */
static int large_cache_evict(void *keep, void **out, size_t *total)
{
    int old = -1;
    for (int i = 0; i < LARGE_CACHE_SLOTS; i++)
        if (fl.cache[i].p && fl.cache[i].p != keep && (old < 0 || fl.cache[i].seq < fl.cache[old].seq))
            old = i;
    if (old < 0)
        return 0;
    *out = fl.cache[old].p;
    *total = fl.cache[old].total;
    fl.cache_bytes -= *total;
    fl.cache[old].p = NULL;
    return 1;
}

/* At an epoch's end: unmaps the mappings cached since before the last one. */
static void large_decay(uint64_t epoch)
{
    void *gone[LARGE_CACHE_SLOTS];
    size_t sizes[LARGE_CACHE_SLOTS], k = 0;
    ml_mutex_lock(&fl.large_lock);
    for (int i = 0; i < LARGE_CACHE_SLOTS; i++)
        if (fl.cache[i].p && fl.cache[i].epoch + LARGE_CACHE_EPOCHS < epoch) {
            gone[k] = fl.cache[i].p;
            sizes[k++] = fl.cache[i].total;
            fl.cache_bytes -= fl.cache[i].total;
            fl.cache[i].p = NULL;
        }
    ml_mutex_unlock(&fl.large_lock);
    for (size_t i = 0; i < k; i++)
        ml_os_unmap_user(gone[i], sizes[i]);
}

/* A large block of n bytes.  Freed mappings are reused by bytes, best fit:
 * a bigger one is cut to size when it would waste more than a quarter, a
 * smaller one grown by mremap, so a program that replaces big buffers in a
 * loop does not pay mmap, a fault per page and munmap every time.  For a
 * buffer that realloc is growing (growing = 1) the mapping gets an eighth
 * of slack, the biggest cached one is taken, and only what lies past
 * max(twice its size, its size + REALLOC_ROOM) is cut off: its pages are
 * resident already, and the buffer is about to need them; cut, they would
 * come back as fresh pages and a fault each.  *dirty is how many leading bytes may hold old data (calloc
 * clears those; the rest is straight from the kernel, zero). */
static void *large_alloc(size_t align, size_t n, int growing, size_t *dirty)
{
    if (n > ((size_t)1 << 46))
        return NULL;
    size_t total = large_total(growing ? n + n / 8 : n);
    void *p = NULL;
    size_t have = 0;
    *dirty = 0;
    if (align <= ML_OS_GRANULE) {
        ml_mutex_lock(&fl.large_lock);
        p = large_cache_take(total, growing, &have);
        ml_mutex_unlock(&fl.large_lock);
    }
    if (p) {
        *dirty = have < n ? have : n;
        size_t keep = growing ? (total > REALLOC_ROOM ? 2 * total : total + REALLOC_ROOM) : total + total / 4;
        if (have > keep) {
            size_t cut = growing ? keep : total;
            ml_os_unmap_user((char *)p + cut, have - cut);
            have = cut;
        } else if (have < total) {
            void *q = ml_os_remap_user(p, have, total, ML_OWNER_FREELIST_LARGE);
            if (!q) {
                ml_os_unmap_user(p, have);
                p = NULL;
            } else {
                p = q;
                have = total;
            }
        }
    }
    if (!p) {
        *dirty = 0;
        p = ml_os_map_user(total, align, ML_OWNER_FREELIST_LARGE, 0);
        if (!p)
            return NULL;
        have = total;
        __atomic_add_fetch(&fl.large_maps, 1, __ATOMIC_RELAXED);
    }
    ml_mutex_lock(&fl.large_lock);
    int rc = large_insert(p, have, n);
    if (!rc) {
        fl.large_live += have;
        if (fl.large_live > fl.large_peak)
            fl.large_peak = fl.large_live;
    }
    ml_mutex_unlock(&fl.large_lock);
    if (rc) {
        ml_os_unmap_user(p, have);
        return NULL;
    }
    return p;
}

static void large_free(void *p)
{
    ml_mutex_lock(&fl.large_lock);
    struct fl_large *e = large_find(p);
    if (!e) {
        ml_mutex_unlock(&fl.large_lock);
        return; /* not a block of ours */
    }
    size_t total = e->total;
    large_erase(e);
    fl.large_live -= total;
    void *gone[LARGE_CACHE_SLOTS + 1];
    size_t sizes[LARGE_CACHE_SLOTS + 1], k = 0;
    size_t budget = large_budget();
    if (total <= budget) {
        int slot = -1;
        for (int i = 0; i < LARGE_CACHE_SLOTS && slot < 0; i++)
            if (!fl.cache[i].p)
                slot = i;
        if (slot < 0 && large_cache_evict(NULL, &gone[k], &sizes[k])) {
            k++;
            for (int i = 0; i < LARGE_CACHE_SLOTS && slot < 0; i++)
                if (!fl.cache[i].p)
                    slot = i;
        }
        fl.cache[slot].p = p;
        fl.cache[slot].total = total;
        fl.cache[slot].epoch = __atomic_load_n(&fl.epoch, __ATOMIC_RELAXED);
        fl.cache[slot].seq = ++fl.cache_seq;
        fl.cache_bytes += total;
        while (fl.cache_bytes > budget && k <= LARGE_CACHE_SLOTS && large_cache_evict(p, &gone[k], &sizes[k]))
            k++;
    } else {
        gone[k] = p;
        sizes[k++] = total;
    }
    ml_mutex_unlock(&fl.large_lock);
    for (size_t i = 0; i < k; i++)
        ml_os_unmap_user(gone[i], sizes[i]);
    fl_decay();
}

static size_t large_usable(const void *p)
{
    ml_mutex_lock(&fl.large_lock);
    struct fl_large *e = large_find(p);
    size_t n = e ? e->total : 0;
    ml_mutex_unlock(&fl.large_lock);
    return n;
}

/* Grows or shrinks a large block; NULL when p is not ours or memory ran out. */
static void *large_realloc(void *p, size_t n)
{
    ml_mutex_lock(&fl.large_lock);
    struct fl_large *e = large_find(p);
    if (!e) {
        ml_mutex_unlock(&fl.large_lock);
        return NULL;
    }
    size_t total = e->total, asked = e->asked;
    /* Within the mapping, a block that grows (or shrinks by less than half
     * of it) stays: a buffer grown into a roomy cached mapping must not be
     * cut down to its current size on the way up, only to fault the same
     * pages in afresh at the next step. */
    if (n <= total && (n >= asked || n >= total / 2)) {
        e->asked = n;
        ml_mutex_unlock(&fl.large_lock);
        return p;
    }
    ml_mutex_unlock(&fl.large_lock);
    if ((n < total && n <= REALLOC_LARGE_MIN) || n > ((size_t)1 << 46)) {
        void *q = n <= SMALL_MAX ? small_alloc(size_class(n)) : NULL;
        if (!q)
            return NULL;
        memcpy(q, p, n);
        large_free(p);
        return q;
    }
    /* Grow with some slack, so a buffer grown by small steps is not
     * remapped every time; untouched slack costs no memory. */
    size_t want = large_total(n > total ? n + n / 8 : n);
    void *q = ml_os_remap_user(p, total, want, ML_OWNER_FREELIST_LARGE);
    if (!q)
        return NULL;
    ml_mutex_lock(&fl.large_lock);
    e = large_find(p);
    if (e)
        large_erase(e);
    int rc = large_insert(q, want, n);
    if (!rc) {
        fl.large_live += want - total;
        if (fl.large_live > fl.large_peak)
            fl.large_peak = fl.large_live;
    }
    ml_mutex_unlock(&fl.large_lock);
    if (rc) { /* cannot track it: give it back rather than lose it */
        errno = ENOMEM;
        return NULL;
    }
    return q;
}

/* ---- mallinfo and malloc_trim (preload/shim.c) ------------------------- */

static size_t fl_free_bytes(void)
{
    size_t n = 0;
    /* objects back in their spans (a thread's cache flushed at its exit,
     * say): free, as glibc counts its bins */
    for (unsigned c = 0; c < NCLASS; c++) {
        struct fl_central *ce = &fl.central[c];
        size_t size = class_size[c];
        ml_mutex_lock(&ce->lock);
        for (void *o = ce->retired; o; o = *(void **)o)
            n += size;
        for (struct fl_span *sp = ce->head; sp; sp = sp->next) {
            size_t k = (size_t)(sp->end - sp->bump) / (size ? size : 1);
            for (void *o = sp->free; o; o = *(void **)o)
                k++;
            n += k * size;
        }
        ml_mutex_unlock(&ce->lock);
    }
    ml_mutex_lock(&fl.heap_lock);
    for (struct fl_seg *s = fl.segs; s; s = s->next)
        n += (size_t)__builtin_popcountll(s->free_mask) * PAGE_SIZE_FL;
    ml_mutex_unlock(&fl.heap_lock);
    /* the nursery's part of its header page not carved yet (all of it
     * before the nursery opens, in the segment it will open in): free too,
     * so that objects carved from it count as newly in use, as a span's do */
    ml_mutex_lock(&fl.nursery_lock);
    if (fl.nursery_bump) {
        n += (size_t)((char *)fl.nursery_seg + PAGE_SIZE_FL - fl.nursery_bump);
    } else {
        ml_mutex_lock(&fl.heap_lock);
        if (fl.segs)
            n += PAGE_SIZE_FL - NURSERY_START;
        ml_mutex_unlock(&fl.heap_lock);
    }
    ml_mutex_unlock(&fl.nursery_lock);
    ml_mutex_lock(&fl.large_lock);
    n += fl.cache_bytes;
    ml_mutex_unlock(&fl.large_lock);
    return n;
}

static int fl_trim(void)
{
    ml_mutex_lock(&fl.heap_lock);
    int released = fl.dirty_bytes != 0;
    heap_purge(1);
    ml_mutex_unlock(&fl.heap_lock);
    ml_mutex_lock(&fl.large_lock);
    void *evict[LARGE_CACHE_SLOTS];
    size_t sizes[LARGE_CACHE_SLOTS], k = 0;
    for (int i = 0; i < LARGE_CACHE_SLOTS; i++)
        if (fl.cache[i].p) {
            evict[k] = fl.cache[i].p;
            sizes[k++] = fl.cache[i].total;
            fl.cache[i].p = NULL;
        }
    fl.cache_bytes = 0;
    ml_mutex_unlock(&fl.large_lock);
    for (size_t i = 0; i < k; i++)
        ml_os_unmap_user(evict[i], sizes[i]);
    return released || k;
}

/* ---- the interface ---------------------------------------------------- */

static int fl_init(const struct ml_options *opt)
{
    (void)opt; /* the class tables are constants */
    /* The first allocation reads fl's start-up fields, then writes them (the
     * nursery): taking their page by a write now spares a fault. */
    ML_WRITE_TOUCH(&fl);
    return 0;
}

/* Whether the constant class tables are what classes_compute makes, and
 * every size maps to the smallest class that holds it.  The answer never
 * changes, so the unit test asks, not every process start (21,000 sizes: a
 * twentieth of a traced /bin/true's CPU). */
int ml_fl_classes_check(void)
{
    uint32_t size[NCLASS], batch[NCLASS], cap[NCLASS];
    uint8_t pages[NCLASS], small[ML_FL_FAST_MAX / 16 + 1];
    classes_compute(size, batch, cap, pages, small);
    if (memcmp(size, class_size, sizeof size) || memcmp(batch, class_batch, sizeof batch) ||
        memcmp(cap, class_cap, sizeof cap) || memcmp(pages, class_pages, sizeof pages) ||
        memcmp(small, ml_fl_class_small, sizeof small))
        return EINVAL;
    for (size_t n = 1; n <= SMALL_MAX; n++) {
        unsigned c = size_class(n);
        if (c >= NCLASS || class_size[c] < n || (c && class_size[c - 1] >= n))
            return EINVAL;
    }
    return 0;
}

static void *fl_malloc(size_t n)
{
    if (ML_LIKELY(n <= SMALL_MAX))
        return small_alloc(size_class(n));
    size_t dirty;
    return large_alloc(0, n, 0, &dirty);
}

static void *fl_zalloc(size_t n)
{
    if (ML_LIKELY(n <= SMALL_MAX)) {
        unsigned c = size_class(n);
        void *p = small_alloc(c);
        if (p)
            memset(p, 0, n);
        return p;
    }
    size_t dirty;
    void *p = large_alloc(0, n, 0, &dirty);
    if (p && dirty)
        memset(p, 0, dirty);
    return p;
}

static void *fl_memalign(size_t align, size_t n)
{
    if (align <= PAGE_SIZE_FL && n <= SMALL_MAX) {
        for (unsigned c = size_class(n < align ? align : n); c < NCLASS; c++)
            if (class_size[c] % align == 0) {
                /* A span's objects of a size that align divides are
                 * aligned; a nursery object only to 16 bytes. */
                void *p = small_alloc(c);
                if (ML_UNLIKELY((uintptr_t)p & (align - 1))) {
                    small_free(p, c);
                    if (!central_fetch(c, 1, &p, 1))
                        p = NULL;
                }
                return p;
            }
    }
    size_t dirty;
    return large_alloc(align, n, 0, &dirty);
}

static void fl_free(void *p)
{
    unsigned c = ml_fl_class_of(p);
    if (ML_LIKELY(c) && ML_LIKELY(c != ML_FL_NURSERY)) {
        small_free(p, c - 1);
        return;
    }
    if (c) {
        int k = nursery_class(p);
        if (k >= 0)
            nursery_free(p, (unsigned)k);
        return;
    }
    if (ml_os_owner(p) == ML_OWNER_FREELIST_LARGE)
        large_free(p);
}

/* Like free, one lookup in the class map answers for small objects; only
 * the rest ask the owner map. */
static size_t fl_usable_size(const void *p)
{
    unsigned c = ml_fl_class_of(p);
    if (ML_UNLIKELY(c == ML_FL_NURSERY))
        c = (unsigned)(nursery_class(p) + 1);
    if (ML_LIKELY(c))
        return class_size[c - 1];
    if (ml_os_owner(p) == ML_OWNER_FREELIST_LARGE)
        return large_usable(p);
    return 0;
}

static void *fl_realloc(void *p, size_t n)
{
    unsigned c = ml_fl_class_of(p);
    int nursery = c == ML_FL_NURSERY;
    if (ML_UNLIKELY(nursery) && (c = (unsigned)(nursery_class(p) + 1)) == 0)
        return NULL;
    if (ML_UNLIKELY(!c))
        return ml_os_owner(p) == ML_OWNER_FREELIST_LARGE ? large_realloc(p, n) : NULL;
    size_t have = class_size[c - 1];
    if (n <= have && (n > have / 2 || size_class(n) == c - 1))
        return p;
    void *q;
    if (n > have && n > REALLOC_LARGE_MIN) {
        size_t dirty;
        q = large_alloc(0, n, 1, &dirty);
    } else {
        q = fl_malloc(n);
    }
    if (!q)
        return NULL;
    memcpy(q, p, n < have ? n : have);
    if (ML_UNLIKELY(nursery))
        nursery_free(p, c - 1);
    else
        small_free(p, c - 1);
    return q;
}

static void fl_thread_exit(void)
{
    ml_fl_tc.dead = 1;
    for (unsigned c = 0; c < NCLASS; c++) {
        struct ml_fl_bin *b = &ml_fl_tc.bins[c];
        uint32_t count = bin_count(b);
        b->max = 0;
        b->room = 0;
        if (count) {
            void *list = b->head;
            b->head = NULL;
            central_return(c, list);
        }
    }
}

static void fl_atfork(int phase)
{
    if (phase == ML_FORK_PREPARE) {
        for (unsigned c = 0; c < NCLASS; c++)
            ml_mutex_lock(&fl.central[c].lock);
        ml_mutex_lock(&fl.nursery_lock);
        ml_mutex_lock(&fl.heap_lock);
        ml_mutex_lock(&fl.large_lock);
        return;
    }
    void (*release)(ml_mutex *) = phase == ML_FORK_CHILD ? ml_mutex_reset : ml_mutex_unlock;
    release(&fl.large_lock);
    release(&fl.heap_lock);
    release(&fl.nursery_lock);
    for (unsigned c = 0; c < NCLASS; c++)
        release(&fl.central[c].lock);
}

const struct ml_backend ml_backend_freelist = {
    .name = "freelist",
    .init = fl_init,
    .malloc = fl_malloc,
    .zalloc = fl_zalloc,
    .memalign = fl_memalign,
    .free = fl_free,
    .realloc = fl_realloc,
    .usable_size = fl_usable_size,
    .thread_exit = fl_thread_exit,
    .trim = fl_trim,
    .free_bytes = fl_free_bytes,
    .atfork = fl_atfork,
};
