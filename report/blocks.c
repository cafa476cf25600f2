/* report/blocks.c: the live-block table.
 *
 * Maps a block's address to its requested size, allocation stack id and
 * tag, and keeps the record of a freed block while the block waits in the
 * trace layer's quarantine, so a double free can name all three stacks.
 * 4096 shards chosen by the block's page (shard_of), each an open-addressing
 * table with linear probing and backward-shift deletion (no tombstones)
 * under its own spin lock: threads meet only when they touch the same shard
 * at the same moment.  A live record keeps the allocation's sequence
 * number where a freed one keeps its free stack.  A record is 24 bytes
 * and tables stay between 8/15 and 4/5 full (they grow by half): 30 to 45
 * bytes per record.
 *
 * Two table operations per block, not three: a free marks the record
 * freed and names its hold, the quarantine cell that holds the block's
 * address while it waits (ml_trace_holds).  When the quarantine lets the
 * block go it only clears the cell: the record is stale from then on, and
 * every operation here treats a stale record as no record at all.  A new
 * block at the same address overwrites it (the common case: allocators
 * reuse what was freed last), and a shard about to grow first sweeps its
 * stale records out when freed ones are a quarter of it, so they never
 * pile up.  A hold of 0 means the record is held until it is removed.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/lock.h"
#include "../core/meta.h"
#include "../core/os.h"
#include "blocks.h"
#include "busy.h"
#include "pressure.h"
#include "report.h"

#define SHARD_BITS 12
#define SHARDS (1u << SHARD_BITS)
#define SIZE_BITS 40
#define SIZE_MASK ((1ull << SIZE_BITS) - 1)

struct rec {
    uintptr_t addr;  /* 0: empty slot */
    uint64_t packed; /* size:40, tag:16 (a freed record: its hold's low bits), state:2, hold's high
                        bits:2, kind:2 */
    uint32_t stack;
    uint32_t free_stack; /* freed records; a live one keeps its sequence number here */
};

/* A shard's lock: a spin lock whose release is a plain store, so an
 * uncontended operation costs one atomic instruction, not the two of an
 * ml_mutex (whose release must look for sleepers).  The sections it guards
 * are a few dozen instructions and call nothing; a waiter spins, then
 * yields, then naps, so a holder that lost its CPU still gets it back. */
typedef struct {
    int v;
} shard_lock;

struct shard {
    shard_lock lock;
    uint16_t level; /* the small table's region (below SMALL_LEVELS), or SMALL_LEVELS */
    uint16_t place; /* the small table's place in its region */
    struct rec *slots;
    size_t cap, count;
    size_t nfreed;              /* freed records, stale ones included */
} __attribute__((aligned(64))); /* one cache line each (the lock's padding made them 72 bytes) */

_Static_assert(sizeof(struct shard) == 64, "a shard is one cache line");
static struct shard shards[SHARDS];

/* The shards that ever had a table, one bit each (set by grow, under the
 * shard's lock and first_lock): the report's walks and a fork pass the
 * others by without reading their lines.  The 4096 shards are 64 pages; a
 * short program's blocks lie on a few pages, so in a few shards
 * (shard_of), and the walks that read every shard, and took every lock,
 * cost it page faults at exit (traced /bin/true, 256 shards then: 94-95
 * faults, 88-90 with the walks passing unused shards by). */
static uint64_t shards_used[SHARDS / 64] __attribute__((aligned(64)));

static inline int shard_used(unsigned i)
{
    return (int)(__atomic_load_n(&shards_used[i / 64], __ATOMIC_ACQUIRE) >> (i % 64) & 1);
}

__attribute__((noinline)) static void lock_wait(shard_lock *l)
{
    for (unsigned n = 0;; n++) {
        if (!__atomic_load_n(&l->v, __ATOMIC_RELAXED) && !__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE))
            return;
        if (n < 128) {
            __builtin_ia32_pause();
        } else if (n < 256) {
            syscall(SYS_sched_yield);
        } else {
            struct timespec nap = {0, 50000};
            syscall(SYS_nanosleep, &nap, NULL);
        }
    }
}

/* Counted in ml_tr_busy like the trace layer's other locks (busy.h). */
static inline void shard_take(shard_lock *l)
{
    ml_tr_busy_enter();
    if (ML_UNLIKELY(__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE)))
        lock_wait(l);
}

static inline void shard_release(shard_lock *l)
{
    __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE);
    ml_tr_busy_leave();
}

/* A shard's lock is taken only once the shard has a table (its cap, read
 * first, is not 0: tables only grow), or under first_lock, which the
 * insert that gives a shard its first table holds around the shard's own.
 * So a fork (ml_blocks_atfork), holding first_lock, has every lock a
 * thread may hold among the shards marked used, and takes and clears only
 * those: with 4096 shards, taking all of them wrote 64 pages of them. */
static shard_lock first_lock;

/* cap, read without the shard's lock: 0 until the shard's first table is
 * in place (grow publishes it after marking the shard used). */
static inline size_t cap_now(const struct shard *s) { return __atomic_load_n(&s->cap, __ATOMIC_ACQUIRE); }

static inline uint64_t mix(uintptr_t a)
{
    uint64_t h = (uint64_t)a >> 4;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* A block's shard: by the 4 KiB page it starts in, not by its address.  A
 * thread's blocks come from the pages its cache was refilled from, so two
 * threads' operations meet on fewer shard lines and tables than when every
 * shard took every thread's blocks (bench_threads 3000000 2 on 2 cores,
 * task-clock: 754-1126 ms against 1201-1312 with shards by address).  The
 * pages of one 16 MiB window (4096 pages) take 4096 consecutive shards,
 * from a place the window's number hashes to: a thread working in a few
 * hundred pages has shards of its own, where 256 shards by a hash of the
 * page gave every thread most of them, and two CPUs' threads passed the
 * shards' lines back and forth (bench_threads 100000 4 traced, task-clock
 * on 2 CPUs 16.5-20.4 ms against 10.8 ms on 1).  Consecutive shards are
 * neighbours in memory, so a short program's few pages of blocks touch a
 * page or two of shards, as the 256 did. */
#define SHARD_PAGE_SHIFT 12

static inline struct shard *shard_of(uintptr_t addr)
{
    uint64_t page = (uint64_t)(addr >> SHARD_PAGE_SHIFT);
    uint64_t from = ((page >> SHARD_BITS) * 0x9e3779b97f4a7c15ull) >> (64 - SHARD_BITS);
    return &shards[(page + from) & (SHARDS - 1)];
}

static inline uint64_t pack(uint64_t size, uint16_t tag, uint8_t state, unsigned kind)
{
    if (size > SIZE_MASK)
        size = SIZE_MASK;
    return size | ((uint64_t)tag << SIZE_BITS) | ((uint64_t)(state & 3) << 56) | ((uint64_t)(kind & 3) << 60);
}

static inline uint8_t state_of(const struct rec *r) { return (uint8_t)((r->packed >> 56) & 3); }

static inline uint8_t kind_of(const struct rec *r) { return (uint8_t)((r->packed >> 60) & 3); }

/* A freed record's hold (18 bits): in the tag's bits and bits 58-59. */
static inline uint32_t hold_of(const struct rec *r)
{
    return (uint32_t)((r->packed >> SIZE_BITS) & 0xffff) | (uint32_t)((r->packed >> 58) & 3) << 16;
}

/* A freed record whose block its hold no longer holds: no record. */
static inline int stale(const struct rec *r)
{
    return state_of(r) == ML_BLOCK_FREED && !ml_trace_holds(hold_of(r), r->addr);
}

static inline void set_freed(struct rec *r, uint32_t hold, uint32_t free_stack)
{
    r->packed = (r->packed & (SIZE_MASK | (3ull << 60))) | ((uint64_t)(hold & 0xffff) << SIZE_BITS) |
                ((uint64_t)ML_BLOCK_FREED << 56) | ((uint64_t)((hold >> 16) & 3) << 58);
    r->free_stack = free_stack;
}

static inline void set_state(struct rec *r, uint8_t state)
{
    r->packed = (r->packed & ~(3ull << 56)) | ((uint64_t)(state & 3) << 56);
}

static void unpack(const struct rec *r, struct ml_block_rec *out)
{
    int freed = state_of(r) == ML_BLOCK_FREED;
    out->addr = r->addr;
    out->size = r->packed & SIZE_MASK;
    out->tag = freed ? 0 : (uint16_t)(r->packed >> SIZE_BITS);
    out->state = state_of(r);
    out->kind = kind_of(r);
    out->stack = r->stack;
    out->free_stack = freed ? r->free_stack : 0;
    out->seq = freed ? 0 : r->free_stack;
}

/* A record's home slot in a table of cap slots: the address hash's top
 * bits, scaled to [0, cap) (cap need not be a power of two).  The shard is
 * chosen by page, not by these bits; the bits below them, which homes used
 * when the top ones chose the shard, put one page's blocks in runs
 * (bench_exitlive: 124 instructions an insert against 108). */
static inline size_t home_of(uint64_t h, size_t cap) { return (size_t)(((unsigned __int128)h * cap) >> 64); }

static inline size_t next_slot(size_t j, size_t cap) { return j + 1 == cap ? 0 : j + 1; }

/* Tables grow by half when 4/5 full (to 8/15), so a record of 24 bytes
 * costs 30 to 45 bytes of table (at 3/4 -> 1/2 it was 32 to 48, over the
 * 48 bytes a live block may cost with the rest of the tracer); the first
 * doubles.  The first tables (6 to 271 records) lie side by side in one
 * region per size and 256 shards, a mapping whose pages are touched as
 * shards use them; when the shards whose tables share a page have all
 * outgrown it, the page goes back to the kernel.  The smallest hold 4
 * records in 144 bytes, so 256 of them take 9 pages: a program's first few
 * hundred blocks touch a few of those, where first tables of 16 records
 * (then 24 pages for 256 shards, all of them touched, two faults each)
 * cost a traced tr 48 page faults.  Its one more size costs a program of
 * many blocks a move per shard (6 -> 12 -> 24 where 16 -> 24 was).  From
 * the meta heap's classes every outgrown table would stay on their free
 * lists (none needs that size again): about 12 KiB a shard, 15 bytes a
 * block at 200 k blocks (256 shards).  Larger
 * tables are mappings of their own (a meta heap request above its largest
 * class), which go back to the kernel when the table grows again. */
#define FITS(n, cap) ((n)*5 <= (cap)*4)

#define SMALL_LEVELS 9
static const uint16_t small_caps[SMALL_LEVELS] = {6, 12, 24, 36, 54, 81, 121, 181, 271};
#define SMALL_CAP(l) ((size_t)small_caps[l])
#define META_LARGEST_CLASS ((size_t)64 << 10)

/* Each level's places come in regions of 256, each a mapping of its own,
 * made by its first table: a short program maps the first level's 36 KiB
 * and perhaps the second's, not the 77 MiB of every place of all nine for
 * 4096 shards (address space a tight RLIMIT_AS may not have to give).  A
 * level's tables are handed out in the order shards reach the level, not
 * by shard number: the dozen shards that a short program's few pages of
 * blocks fill (shards go by page, shard_of) take their tables of a level
 * side by side, a page or two, where by number they took a page each
 * (run_faults: 70 faults more than untraced, not 35).  A shard reaches
 * each level once (tables only grow), so a level has a place for each. */
#define REGION_PLACES 256u
#define REGIONS (SHARDS / REGION_PLACES)
static struct rec *small_region[SMALL_LEVELS][REGIONS];
static unsigned small_next[SMALL_LEVELS];        /* places handed out */
static uint8_t small_gone[SMALL_LEVELS][SHARDS]; /* places whose shard has left */

static struct rec *small_table(unsigned level, uint16_t *where)
{
    unsigned k = __atomic_fetch_add(&small_next[level], 1, __ATOMIC_RELAXED);
    if (k >= SHARDS)
        return NULL; /* not reached: a shard takes one place a level */
    struct rec **region = &small_region[level][k / REGION_PLACES];
    struct rec *base = __atomic_load_n(region, __ATOMIC_ACQUIRE);
    if (!base) {
        size_t bytes = REGION_PLACES * SMALL_CAP(level) * sizeof(struct rec);
        /* the meta heap's owner: the leak scan reads no table as roots */
        struct rec *fresh = ml_os_map_user(bytes, 0, ML_OWNER_META, 0);
        if (!fresh) {
            __atomic_store_n(&small_gone[level][k], 1, __ATOMIC_SEQ_CST); /* never used */
            return NULL;
        }
        if (__atomic_compare_exchange_n(region, &base, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            base = fresh;
        else
            ml_os_unmap_user(fresh, bytes); /* another shard mapped it first */
    }
    *where = (uint16_t)k;
    return base + (size_t)(k % REGION_PLACES) * SMALL_CAP(level);
}

/* Pages of small tables whose every place's shard has left, given back
 * DEAD_BATCH at a time, in runs: the shards of a growing program leave a
 * level in about the order they came, so its pages die one after the
 * other, and an madvise each was most of a traced C++ program's system
 * calls (bench_cxx 200000: 6974 madvise).  At most DEAD_BATCH - 1 pages a
 * level wait (60 KiB).  Its lock is taken only under a shard's, in grow,
 * so a fork (which holds them all) finds it free. */
#define DEAD_BATCH 16
static struct {
    shard_lock lock;
    unsigned n;
    uintptr_t page[DEAD_BATCH];
} dead_pages[SMALL_LEVELS];

static void dead_page(unsigned level, uintptr_t pg, size_t ps)
{
    shard_take(&dead_pages[level].lock);
    unsigned n = dead_pages[level].n;
    dead_pages[level].page[n++] = pg;
    if (n == DEAD_BATCH) {
        uintptr_t *a = dead_pages[level].page;
        for (unsigned i = 1; i < n; i++) /* 16 entries, nearly in order */
            for (unsigned j = i; j > 0 && a[j] < a[j - 1]; j--) {
                uintptr_t t = a[j];
                a[j] = a[j - 1];
                a[j - 1] = t;
            }
        for (unsigned i = 0; i < n;) {
            unsigned j = i + 1;
            while (j < n && a[j] == a[j - 1] + ps)
                j++;
            ml_os_decommit((void *)a[i], (j - i) * ps);
            i = j;
        }
        n = 0;
    }
    dead_pages[level].n = n;
    shard_release(&dead_pages[level].lock);
}

/* A shard has left its small table of level l, at place k: gives back each
 * page of it whose every place's shard has left too (dead_page).  A place
 * handed out but not yet used counts as in use.  The leaving is stored
 * before the neighbours' are read, sequentially consistent, so of two
 * neighbours leaving at once at least one sees the other gone; both may,
 * and the page is given back twice, which is harmless. */
static void small_release(unsigned level, unsigned k)
{
    size_t tbytes = SMALL_CAP(level) * sizeof(struct rec), ps = ml_os_page_size();
    unsigned r0 = k - k % REGION_PLACES; /* the region's first place */
    uintptr_t base = (uintptr_t)__atomic_load_n(&small_region[level][k / REGION_PLACES], __ATOMIC_RELAXED);
    uintptr_t lo = base + (k - r0) * tbytes, hi = lo + tbytes;
    __atomic_store_n(&small_gone[level][k], 1, __ATOMIC_SEQ_CST);
    for (uintptr_t pg = lo & ~(ps - 1); pg < hi; pg += ps) {
        size_t first = pg < base ? 0 : (pg - base) / tbytes;
        size_t last = (pg + ps - 1 - base) / tbytes;
        int dead = 1;
        for (size_t j = first; j <= last && dead; j++)
            dead = j < REGION_PLACES && __atomic_load_n(&small_gone[level][r0 + j], __ATOMIC_SEQ_CST);
        if (dead)
            dead_page(level, pg, ps);
    }
}

static inline void place(struct rec *slots, size_t cap, const struct rec *r)
{
    size_t j = home_of(mix(r->addr), cap);
    while (slots[j].addr)
        j = next_slot(j, cap);
    slots[j] = *r;
}

/* Moves the shard into a table of the next size; stale records stay behind. */
__attribute__((noinline, cold)) static int grow(struct shard *s)
{
    size_t old_cap = s->cap;
    unsigned level = old_cap ? s->level + (s->level < SMALL_LEVELS) : 0;
    uint16_t where = 0;
    size_t cap = level < SMALL_LEVELS ? SMALL_CAP(level) : s->cap + s->cap / 2;
    struct rec *slots;
    if (level < SMALL_LEVELS) {
        slots = small_table(level, &where);
        /* zero already (no shard had it before); a write to each of its
         * pages first, as placing reads before it writes: one page fault
         * a page where the read of an untouched page and the write after
         * it took two */
        size_t ps = ml_os_page_size();
        for (uintptr_t a = (uintptr_t)slots, end = a + cap * sizeof *slots; slots && a < end;
             a = (a & ~(ps - 1)) + ps)
            __atomic_store_n((uint8_t *)a, 0, __ATOMIC_RELAXED);
    } else {
        size_t bytes = cap * sizeof(struct rec);
        slots = ml_meta_alloc(bytes <= META_LARGEST_CLASS ? META_LARGEST_CLASS + 1 : bytes);
        if (slots) {
            /* the rest of the last page it touches is the table's too (a
             * mapping's pages are resident only once touched): up to 4 KiB
             * a table, 12% of one of 32 KiB */
            size_t ps = ml_os_page_size(), room = ml_meta_usable_size(slots);
            size_t end = (((uintptr_t)slots + bytes + ps - 1) & ~(ps - 1)) - (uintptr_t)slots;
            cap = (end < room ? end : room) / sizeof(struct rec);
            /* placing writes to every page of it (tables are at least
             * 8/15 full): made resident in one call, not a fault a page
             * (bench_exitlive 200000 traced: 14548 faults -> 9100,
             * task-clock 73.8-88.5 ms -> 68.0-73.2) */
            ml_os_populate(slots, cap * sizeof(struct rec));
        }
    }
    if (!slots) {
        ml_tr_degrade("the block table");
        return -1;
    }
    size_t kept = 0, freed = 0;
    if (!s->nfreed) {
        for (size_t j = 0; j < s->cap; j++)
            if (s->slots[j].addr)
                place(slots, cap, &s->slots[j]);
        kept = s->count;
    } else {
        for (size_t j = 0; j < s->cap; j++) {
            const struct rec *r = &s->slots[j];
            if (!r->addr || stale(r))
                continue;
            place(slots, cap, r);
            kept++;
            freed += state_of(r) == ML_BLOCK_FREED;
        }
    }
    if (!old_cap) {
        unsigned i = (unsigned)(s - shards);
        __atomic_fetch_or(&shards_used[i / 64], (uint64_t)1 << (i % 64), __ATOMIC_RELEASE);
    }
    unsigned was = s->level, was_at = s->place;
    struct rec *old = s->slots;
    s->slots = slots;
    __atomic_store_n(&s->cap, cap, __ATOMIC_RELEASE); /* after the shard's used bit (cap_now) */
    s->count = kept;
    s->nfreed = freed;
    s->level = (uint16_t)level;
    s->place = where;
    if (old && was < SMALL_LEVELS)
        small_release(was, was_at);
    else if (old)
        ml_meta_free(old);
    return 0;
}

/* Backward-shift deletion keeps every probe sequence unbroken. */
static void erase(struct shard *s, size_t j)
{
    size_t cap = s->cap;
    size_t k = j;
    if (state_of(&s->slots[j]) == ML_BLOCK_FREED)
        s->nfreed--;
    for (;;) {
        k = next_slot(k, cap);
        if (!s->slots[k].addr)
            break;
        size_t home = home_of(mix(s->slots[k].addr), cap);
        /* move k into the hole j when its home is not in (j, k] */
        if ((k > j && (home <= j || home > k)) || (k < j && home <= j && home > k)) {
            s->slots[j] = s->slots[k];
            j = k;
        }
    }
    s->slots[j].addr = 0;
    s->count--;
}

/* Drops the shard's stale records in place: empties their slots, then
 * places every record again in slot order from a slot that was empty
 * before (no probe sequence crosses it), so each lands at or before where
 * it was, reachable from its home (a backward-shift erase per record
 * walked its cluster each time). */
static void sweep(struct shard *s)
{
    size_t cap = s->cap, freed = 0, start = 0;
    while (s->slots[start].addr) /* there is one: tables are at most 4/5 full */
        start++;
    for (size_t j = 0; j < cap; j++) {
        struct rec *r = &s->slots[j];
        if (r->addr && stale(r)) {
            r->addr = 0;
            s->count--;
        } else if (r->addr) {
            freed += state_of(r) == ML_BLOCK_FREED;
        }
    }
    s->nfreed = freed;
    for (size_t n = 0, j = start; n < cap; n++, j = next_slot(j, cap)) {
        if (!s->slots[j].addr)
            continue;
        struct rec r = s->slots[j];
        s->slots[j].addr = 0;
        place(s->slots, cap, &r);
    }
}

/* Room for one more record: sweeps when freed records are a quarter of
 * the table and that leaves it at most 2/3 full, else grows. */
static int make_room(struct shard *s)
{
    if (s->cap && s->nfreed * 4 >= s->cap) {
        sweep(s);
        if ((s->count + 1) * 3 <= s->cap * 2)
            return 0;
    }
    return grow(s);
}

/* Slot of addr in s, or of the empty slot ending its probe sequence. */
static inline size_t probe(const struct shard *s, uintptr_t addr, uint64_t h)
{
    size_t j = home_of(h, s->cap);
    while (s->slots[j].addr && s->slots[j].addr != addr)
        j = next_slot(j, s->cap);
    return j;
}

/* The common case of each operation is a function that calls nothing
 * (no registers to save): the shard's lock free on the first try, the
 * table with room, the record as expected.  Anything else releases what it
 * took and starts over in the full version, which takes the lock the slow
 * way and may grow, sweep or ask the trace layer about a hold. */
static inline int shard_try(shard_lock *l)
{
    ml_tr_busy_enter();
    if (ML_LIKELY(!__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE)))
        return 1;
    ml_tr_busy_leave();
    return 0;
}

static inline void fill(const struct rec *r, struct ml_block_rec *out)
{
    out->addr = r->addr;
    out->size = r->packed & SIZE_MASK;
    out->tag = (uint16_t)(r->packed >> SIZE_BITS);
    out->state = state_of(r);
    out->kind = kind_of(r);
    out->stack = r->stack;
    out->free_stack = 0;
    out->seq = r->free_stack;
}

__attribute__((noinline)) static int insert_slow(uintptr_t addr, uint64_t size, uint32_t stack, uint16_t tag,
                                                 uint32_t seq, unsigned kind);

int ml_blocks_insert(uintptr_t addr, uint64_t size, uint32_t stack, uint16_t tag, uint32_t seq, unsigned kind)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(addr);
    if (ML_LIKELY(cap_now(s)) && ML_LIKELY(shard_try(&s->lock))) {
        size_t cap = s->cap;
        {
            struct rec *slots = s->slots;
            size_t j = home_of(h, cap);
            while (slots[j].addr && slots[j].addr != addr)
                j = next_slot(j, cap);
            /* a freed record of the address (its block came back) is
             * replaced, the count unchanged, however full the table is:
             * at the growth threshold that was the slow path for every
             * reused address (bigset: 29% of inserts) */
            int fits = 1;
            if (slots[j].addr)
                s->nfreed -= state_of(&slots[j]) == ML_BLOCK_FREED;
            else if ((fits = FITS(s->count + 1, cap)))
                s->count++;
            if (ML_LIKELY(fits)) {
                slots[j] = (struct rec){addr, pack(size, tag, ML_BLOCK_LIVE, kind), stack, seq};
                shard_release(&s->lock);
                return 0;
            }
        }
        shard_release(&s->lock);
    }
    return insert_slow(addr, size, stack, tag, seq, kind);
}

static int insert_slow(uintptr_t addr, uint64_t size, uint32_t stack, uint16_t tag, uint32_t seq,
                       unsigned kind)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(addr);
    int first = !cap_now(s); /* its first table: under first_lock */
    if (first)
        shard_take(&first_lock);
    shard_take(&s->lock);
    size_t j = 0;
    if (ML_LIKELY(s->cap))
        j = probe(s, addr, h);
    if (ML_LIKELY(s->cap) && s->slots[j].addr) {
        /* a freed record of this address, stale or not: replaced */
        s->nfreed -= state_of(&s->slots[j]) == ML_BLOCK_FREED;
    } else {
        if (ML_UNLIKELY(!FITS(s->count + 1, s->cap))) {
            if (make_room(s) != 0) {
                shard_release(&s->lock);
                if (first)
                    shard_release(&first_lock);
                return -1;
            }
            j = probe(s, addr, h);
        }
        s->count++;
    }
    s->slots[j] = (struct rec){addr, pack(size, tag, ML_BLOCK_LIVE, kind), stack, seq};
    shard_release(&s->lock);
    if (first)
        shard_release(&first_lock);
    return 0;
}

/* The record of addr in its shard, or NULL; a stale one is erased.
 * Caller holds s->lock. */
static inline __attribute__((always_inline)) struct rec *find(struct shard *s, uintptr_t addr, uint64_t h)
{
    if (!s->cap)
        return NULL;
    size_t j = probe(s, addr, h);
    struct rec *r = &s->slots[j];
    if (!r->addr)
        return NULL;
    if (ML_UNLIKELY(state_of(r) == ML_BLOCK_FREED) && stale(r)) {
        erase(s, j);
        return NULL;
    }
    return r;
}

__attribute__((noinline)) static int free_slow(uintptr_t addr, uint32_t free_stack, uint32_t hold,
                                               void **cell, struct ml_block_rec *out);

int ml_blocks_free(uintptr_t addr, uint32_t free_stack, uint32_t hold, void **cell, struct ml_block_rec *out)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(addr);
    if (ML_UNLIKELY(!cap_now(s)))
        return -1; /* no table: no record */
    if (ML_LIKELY(shard_try(&s->lock))) {
        size_t cap = s->cap;
        {
            struct rec *slots = s->slots;
            size_t j = home_of(h, cap);
            while (slots[j].addr && slots[j].addr != addr)
                j = next_slot(j, cap);
            struct rec *r = &slots[j];
            if (ML_LIKELY(r->addr) && ML_LIKELY(state_of(r) != ML_BLOCK_FREED)) {
                fill(r, out);
                set_freed(r, hold, free_stack);
                s->nfreed++;
                if (cell)
                    __atomic_store_n(cell, (void *)addr, __ATOMIC_RELAXED);
                shard_release(&s->lock);
                return 1;
            }
        }
        shard_release(&s->lock);
    }
    return free_slow(addr, free_stack, hold, cell, out);
}

static int free_slow(uintptr_t addr, uint32_t free_stack, uint32_t hold, void **cell,
                     struct ml_block_rec *out)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(addr);
    int rc = -1;
    shard_take(&s->lock);
    struct rec *r = find(s, addr, h);
    if (r) {
        unpack(r, out);
        rc = 0;
        if (ML_LIKELY(out->state != ML_BLOCK_FREED)) {
            set_freed(r, hold, free_stack);
            s->nfreed++;
            if (cell)
                __atomic_store_n(cell, (void *)addr, __ATOMIC_RELAXED);
            rc = 1;
        }
    }
    shard_release(&s->lock);
    return rc;
}

void ml_blocks_set_kind(uintptr_t addr, unsigned kind)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(addr);
    if (!cap_now(s))
        return;
    shard_take(&s->lock);
    struct rec *r = find(s, addr, h);
    if (r && state_of(r) != ML_BLOCK_FREED)
        r->packed = (r->packed & ~(3ull << 60)) | ((uint64_t)(kind & 3) << 60);
    shard_release(&s->lock);
}

int ml_blocks_find_containing(uintptr_t a, struct ml_block_rec *out)
{
    int found = 0;
    for (unsigned i = 0; i < SHARDS; i++) {
        struct shard *s = &shards[i];
        if (!shard_used(i))
            continue;
        shard_take(&s->lock);
        for (size_t j = 0; j < s->cap; j++) {
            const struct rec *r = &s->slots[j];
            uint64_t size = r->packed & SIZE_MASK;
            if (!r->addr || r->addr > a || a - r->addr >= (size ? size : 1) || stale(r))
                continue;
            if (!found || r->addr > out->addr)
                unpack(r, out);
            found = 1;
        }
        shard_release(&s->lock);
    }
    return found ? 0 : -1;
}

int ml_blocks_remove(uintptr_t addr, struct ml_block_rec *out)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(addr);
    if (!cap_now(s))
        return -1;
    shard_take(&s->lock);
    struct rec *r = find(s, addr, h);
    if (r) {
        if (out)
            unpack(r, out);
        erase(s, (size_t)(r - s->slots));
    }
    shard_release(&s->lock);
    return r ? 0 : -1;
}

int ml_blocks_take_live(uintptr_t addr, struct ml_block_rec *out)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(addr);
    int rc = -1;
    if (!cap_now(s))
        return rc;
    shard_take(&s->lock);
    struct rec *r = find(s, addr, h);
    if (r) {
        unpack(r, out);
        rc = 0;
        if (out->state != ML_BLOCK_FREED) {
            erase(s, (size_t)(r - s->slots));
            rc = 1;
        }
    }
    shard_release(&s->lock);
    return rc;
}

void ml_blocks_remove_freed(uintptr_t addr)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(addr);
    if (!cap_now(s))
        return;
    shard_take(&s->lock);
    {
        size_t j = probe(s, addr, h);
        if (s->slots[j].addr && state_of(&s->slots[j]) == ML_BLOCK_FREED)
            erase(s, j);
    }
    shard_release(&s->lock);
}

int ml_blocks_lookup(uintptr_t addr, struct ml_block_rec *out)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(addr);
    if (!cap_now(s))
        return -1;
    shard_take(&s->lock);
    struct rec *r = find(s, addr, h);
    if (r)
        unpack(r, out);
    shard_release(&s->lock);
    return r ? 0 : -1;
}

/* The fork boundary.  In a fork child, a live record whose sequence number
 * is at most inherit_seq was allocated before the fork: it is the parent's
 * (inherited_by_seq).  Told in O(1) at the fork instead of marking every
 * record, which wrote every page of the table and so made the child copy
 * them all (a dash child spent about a twelfth of its time there).  Exact
 * while sequence numbers do not wrap: when 2^32 allocations were made
 * before the fork, or the child's count wraps (its seq reaches 0, see
 * ml_blocks_seq_wrapped), the records are marked one by one as before. */
static int inherit_on;
static uint32_t inherit_seq;

static inline int inherited_by_seq(const struct rec *r)
{
    return inherit_on && r->free_stack <= inherit_seq; /* a live record keeps its seq there */
}

/* Marks every live record up to the boundary, then drops the boundary. */
static void mark_each(void)
{
    for (unsigned i = 0; i < SHARDS; i++) {
        struct shard *s = &shards[i];
        for (size_t j = 0; shard_used(i) && j < s->cap; j++)
            if (s->slots[j].addr && state_of(&s->slots[j]) == ML_BLOCK_LIVE &&
                (!inherit_on || inherited_by_seq(&s->slots[j])))
                set_state(&s->slots[j], ML_BLOCK_INHERITED);
    }
    inherit_on = 0;
}

void ml_blocks_mark_inherited(uint64_t allocs)
{
    if (allocs >> 32) {
        inherit_on = 0; /* the numbers wrapped already: mark them all */
        mark_each();
        return;
    }
    inherit_on = 1;
    inherit_seq = (uint32_t)allocs;
}

void ml_blocks_seq_wrapped(void)
{
    if (!inherit_on)
        return;
    /* every record's seq is still at most 2^32 - 1 and new ones start over:
     * fix the boundary into the states (under the locks: threads run) */
    shard_take(&first_lock);
    for (unsigned i = 0; i < SHARDS; i++)
        if (shard_used(i))
            shard_take(&shards[i].lock);
    mark_each();
    for (unsigned i = 0; i < SHARDS; i++)
        if (shard_used(i))
            shard_release(&shards[i].lock);
    shard_release(&first_lock);
}

size_t ml_blocks_record_count(void)
{
    size_t n = 0;
    for (unsigned i = 0; i < SHARDS; i++)
        if (shard_used(i))
            n += __atomic_load_n(&shards[i].count, __ATOMIC_RELAXED);
    return n;
}

unsigned ml_blocks_shards_used(void)
{
    unsigned n = 0;
    for (unsigned w = 0; w < SHARDS / 64; w++)
        n += (unsigned)__builtin_popcountll(__atomic_load_n(&shards_used[w], __ATOMIC_ACQUIRE));
    return n;
}

size_t ml_blocks_snapshot(struct ml_live *out, size_t cap, int locked)
{
    size_t n = 0;
    for (unsigned i = 0; i < SHARDS; i++) {
        struct shard *s = &shards[i];
        if (!shard_used(i))
            continue;
        if (locked)
            shard_take(&s->lock);
        for (size_t j = 0; j < s->cap && n < cap; j++) {
            const struct rec *r = &s->slots[j];
            uint8_t state = state_of(r);
            if (!r->addr || state == ML_BLOCK_FREED)
                continue;
            out[n++] = (struct ml_live){.addr = r->addr,
                                        .size = r->packed & SIZE_MASK,
                                        .stack = r->stack,
                                        .seq = r->free_stack,
                                        .tag = (uint16_t)(r->packed >> SIZE_BITS),
                                        .flags = (uint8_t)(state == ML_BLOCK_INHERITED ||
                                                           (state == ML_BLOCK_LIVE && inherited_by_seq(r)))};
        }
        if (locked)
            shard_release(&s->lock);
    }
    return n;
}

static void fork_take(shard_lock *l)
{
    if (__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE))
        lock_wait(l);
}

void ml_blocks_atfork(int phase)
{
    /* PREPARE takes first_lock, then every shard that has a table (no other
     * thread is inside one while the process is copied, and none can give
     * a shard its first table), PARENT releases them, CHILD forgets the
     * holders.  The used bits cannot change between the two: first_lock. */
    if (phase == ML_FORK_PREPARE)
        fork_take(&first_lock);
    for (unsigned i = 0; i < SHARDS; i++) {
        if (!shard_used(i))
            continue;
        if (phase == ML_FORK_PREPARE)
            fork_take(&shards[i].lock);
        else
            __atomic_store_n(&shards[i].lock.v, 0, __ATOMIC_RELEASE);
    }
    if (phase != ML_FORK_PREPARE)
        __atomic_store_n(&first_lock.v, 0, __ATOMIC_RELEASE);
}
