/* core/page.c: the guard-page debugging backend (MALLARD_BACKEND=page).
 *
 * Algorithm: Electric Fence's idea, every block on pages of its own next to
 * a PROT_NONE page, laid out so that the kernel does most of the work.
 *   - Blocks whose data and guard fit in 2^1..2^8 pages live in slots of
 *     that many pages, carved from 32 MiB reservations (one per class at a
 *     time) that start out PROT_NONE.  malloc makes only the block's data
 *     pages read-write: one mprotect, no mmap.  Everything else in the slot
 *     stays PROT_NONE, so the guard needs no call of its own.
 *   - 'after' (the default): the data pages end at the slot's last page,
 *     which is the guard; the block ends where the guard begins, rounded up
 *     to its alignment (16, or 1 with MALLARD_PAGE_ALIGN=1).  'before':
 *     the first page is the guard and the block starts on the next one.
 *     The bytes of the data pages that are not the block (slack under the
 *     alignment, the head of the first page, the tail of the last) hold a
 *     canary that free checks.
 *   - Larger blocks, and alignments above a page, get a reservation of
 *     their own laid out the same way (ml_os_map_user, so it is
 *     granule-aligned and aligned to the request).  It is mapped
 *     read-write and then closed around the block, because only a charged
 *     mapping makes the kernel refuse a size it could never back (a
 *     PROT_NONE reservation made writable by mprotect is never charged).
 *   - Metadata never sits next to a block: each reservation has a side
 *     table in the meta heap, found by binary search over the reservations
 *     sorted by address.  The owner map rejects foreign pointers in two
 *     loads; the table then accepts only the exact address of a live block.
 *   - free checks the canary, turns the data pages PROT_NONE, gives them
 *     back (MADV_DONTNEED, so RSS does not grow) and queues the slot in a
 *     FIFO quarantine bounded by MALLARD_PAGE_QUARANTINE bytes of data
 *     pages.  Evicted slots return to their class's LIFO free list; evicted
 *     own reservations are unmapped.  Reused pages read as zero, so zalloc
 *     is malloc.
 *   - When the kernel refuses a reservation, a side table or an mprotect
 *     (vm.max_map_count, RLIMIT_AS, RLIMIT_DATA), the quarantine is flushed
 *     and the request retried once; if that fails too and the freelist
 *     backend can serve it, mallard says so once and every later request
 *     goes to the freelist, unguarded.  Its blocks are told apart by owner.
 *     If the freelist cannot serve it either, memory is really exhausted
 *     and the answer is NULL.
 * Invariants: a slot is FREE (PROT_NONE, no RSS), LIVE (exactly its data
 * pages read-write) or QUARANTINED (PROT_NONE, no RSS, queued).  In a
 * class reservation read-write runs never touch each other, so a live block
 * costs two VMAs and a freed one none: closing a block merges VMAs, never
 * splits one, and cannot fail for want of a map slot.  All state is under
 * one lock.
 * Trade-off: one lock and two or three syscalls per operation, at least a
 * page of RSS and two of address space per block, and about 32k live
 * blocks before vm.max_map_count (65530) forces the unguarded fallback.
 * realloc always moves, so stale pointers to the old block fault.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "fmt.h"
#include "options.h"
#include "lock.h"
#include "meta.h"
#include "os.h"

#define PG_REGION ((size_t)32 << 20)
#define PG_CLASSES 8                  /* slots of 2, 4, ... 256 pages */
#define PG_MAX_SIZE ((size_t)1 << 46) /* above this no request can succeed */

enum pg_state { PG_FREE, PG_LIVE, PG_QUARANTINED };

struct pg_region;

struct pg_slot {
    uintptr_t user;       /* the block, while live or quarantined */
    size_t size;          /* its requested size */
    struct pg_slot *next; /* class free list, or quarantine FIFO */
    struct pg_region *region;
    int state;
};

struct pg_region {
    uintptr_t base;
    size_t bytes; /* the reservation, a multiple of ML_OS_GRANULE */
    size_t slot_bytes;
    size_t nslots;
    size_t carved; /* slots [0, carved) have been handed out at least once */
    int cls;       /* -1: a single block with a reservation of its own */
    struct pg_slot slot[];
};

static struct {
    ml_mutex lock;
    int fallback;                /* 1: serve everything from fb, forever */
    const struct ml_backend *fb; /* the unguarded backend, or NULL */
    size_t page;
    size_t align;          /* default alignment: 16, or 1 */
    int before;            /* guard in front of the block */
    size_t q_max, q_bytes; /* quarantine bound and content */
    struct pg_slot *q_head, *q_tail;
    struct pg_slot *free[PG_CLASSES];
    struct pg_region *carving[PG_CLASSES];
    struct pg_region **regions; /* sorted by base */
    size_t nregions, cap;
    size_t live;       /* guarded blocks open now: each splits off up to two VMAs */
    size_t live_bytes; /* their sizes, for mallinfo */
    size_t map_budget; /* open blocks allowed before the unguarded fallback */
} pg;

static uintptr_t round_up(uintptr_t n, uintptr_t a) { return (n + a - 1) & ~(a - 1); }

/* Position-dependent, never zero, so a stray NUL or a shifted copy shows.
 * It repeats every 16 bytes, so aligned runs are filled and checked a
 * word at a time: the head of a block's first page can be nearly a page. */
static uint8_t canary_at(uintptr_t a) { return (uint8_t)(0xa0 | (a & 0x0f)); }
#define PG_CANARY_LO 0xa7a6a5a4a3a2a1a0ull /* bytes 0-7 of a 16-byte run */
#define PG_CANARY_HI 0xafaeadacabaaa9a8ull /* bytes 8-15 */

static void canary_fill(uintptr_t lo, uintptr_t hi)
{
    for (; lo < hi && (lo & 15); lo++)
        *(uint8_t *)lo = canary_at(lo);
    for (; hi - lo >= 16; lo += 16) {
        ((uint64_t *)lo)[0] = PG_CANARY_LO;
        ((uint64_t *)lo)[1] = PG_CANARY_HI;
    }
    for (; lo < hi; lo++)
        *(uint8_t *)lo = canary_at(lo);
}

static int canary_intact(uintptr_t lo, uintptr_t hi)
{
    uint8_t bad = 0;
    for (; lo < hi && (lo & 15); lo++)
        bad |= *(const uint8_t *)lo ^ canary_at(lo);
    uint64_t badw = 0;
    for (; hi - lo >= 16; lo += 16)
        badw |= (((const uint64_t *)lo)[0] ^ PG_CANARY_LO) | (((const uint64_t *)lo)[1] ^ PG_CANARY_HI);
    for (; lo < hi; lo++)
        bad |= *(const uint8_t *)lo ^ canary_at(lo);
    return !bad && !badw;
}

/* ---- reservations and their side tables ------------------------------- */

static struct pg_region *region_find(uintptr_t a)
{
    size_t lo = 0, hi = pg.nregions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pg.regions[mid]->base <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo)
        return NULL;
    struct pg_region *r = pg.regions[lo - 1];
    return a - r->base < r->bytes ? r : NULL;
}

static int region_insert(struct pg_region *r)
{
    if (pg.nregions == pg.cap) {
        size_t cap = pg.cap ? pg.cap * 2 : 64;
        struct pg_region **grown = ml_meta_realloc(pg.regions, cap * sizeof *grown);
        if (!grown)
            return ENOMEM;
        pg.regions = grown;
        pg.cap = cap;
    }
    size_t i = pg.nregions;
    while (i && pg.regions[i - 1]->base > r->base) {
        pg.regions[i] = pg.regions[i - 1];
        i--;
    }
    pg.regions[i] = r;
    pg.nregions++;
    return 0;
}

static void region_remove(struct pg_region *r)
{
    size_t i = 0;
    while (i < pg.nregions && pg.regions[i] != r)
        i++;
    if (i == pg.nregions)
        return;
    memmove(&pg.regions[i], &pg.regions[i + 1], (pg.nregions - i - 1) * sizeof *pg.regions);
    pg.nregions--;
}

/* A reservation of bytes aligned to align (0: the granule), PROT_NONE or
 * read-write, cut into slots of slot_bytes, with its side table; NULL if
 * refused. */
static struct pg_region *region_new(size_t bytes, size_t align, int cls, size_t slot_bytes, int prot_none)
{
    bytes = round_up(bytes, ML_OS_GRANULE);
    size_t nslots = bytes / slot_bytes;
    struct pg_region *r = ml_meta_alloc(sizeof *r + nslots * sizeof r->slot[0]);
    if (!r)
        return NULL;
    void *base = ml_os_map_user(bytes, align, ML_OWNER_PAGE, prot_none);
    if (!base) {
        ml_meta_free(r);
        return NULL;
    }
    r->base = (uintptr_t)base;
    r->bytes = bytes;
    r->slot_bytes = slot_bytes;
    r->nslots = nslots;
    r->cls = cls;
    if (region_insert(r) != 0) {
        ml_os_unmap_user(base, bytes);
        ml_meta_free(r);
        return NULL;
    }
    return r;
}

/* Only for reservations of their own: class reservations are kept. */
static void region_drop(struct pg_region *r)
{
    region_remove(r);
    ml_os_unmap_user((void *)r->base, r->bytes);
    ml_meta_free(r);
}

/* ---- slots ------------------------------------------------------------ */

static uintptr_t slot_base(const struct pg_slot *s)
{
    const struct pg_region *r = s->region;
    return r->base + (size_t)(s - r->slot) * r->slot_bytes;
}

/* Bytes of slot a block of size bytes aligned to align needs: its data
 * pages and the guard, plus the room to reach an alignment above a page. */
static size_t slot_need(size_t align, size_t size)
{
    size_t p = pg.page;
    if (align > p) /* the reservation is aligned to align */
        return pg.before ? align + round_up(size, p) : round_up(size, p) + p;
    return round_up(pg.before ? size : round_up(size, align), p) + p;
}

/* A slot of at least need bytes: reused, carved, or a reservation of its
 * own; NULL when the kernel or the meta heap refuses. */
static struct pg_slot *slot_take(size_t need, size_t align)
{
    if (align <= pg.page && need <= pg.page << PG_CLASSES) {
        int c = 0;
        while ((pg.page << (c + 1)) < need)
            c++;
        struct pg_slot *s = pg.free[c];
        if (s) {
            pg.free[c] = s->next;
            return s;
        }
        struct pg_region *r = pg.carving[c];
        if (!r || r->carved == r->nslots) {
            r = region_new(PG_REGION, 0, c, pg.page << (c + 1), 1);
            if (!r)
                return NULL;
            pg.carving[c] = r;
        }
        s = &r->slot[r->carved++];
        s->region = r;
        return s;
    }
    size_t bytes = round_up(need, ML_OS_GRANULE);
    struct pg_region *r = region_new(bytes, align > pg.page ? align : 0, -1, bytes, 0);
    if (!r)
        return NULL;
    r->carved = 1;
    r->slot[0].region = r;
    return &r->slot[0];
}

/* A slot that holds no block any more: back to its class, or unmapped. */
static void slot_release(struct pg_slot *s)
{
    s->state = PG_FREE;
    s->user = 0;
    struct pg_region *r = s->region;
    if (r->cls < 0) {
        region_drop(r);
        return;
    }
    s->next = pg.free[r->cls];
    pg.free[r->cls] = s;
}

/* The block's data pages: from the page holding its start to the end of
 * the page holding its last byte.  In 'after' mode that end is the guard. */
static uintptr_t data_lo(const struct pg_slot *s) { return s->user & ~(pg.page - 1); }
static uintptr_t data_hi(const struct pg_slot *s) { return round_up(s->user + s->size, pg.page); }

/* Places a block in slot s, opens its data pages and fills the canary.
 * Returns 0 or the errno of the refused mprotect. */
static int block_open(struct pg_slot *s, size_t align, size_t size)
{
    uintptr_t base = slot_base(s), end = base + s->region->slot_bytes;
    uintptr_t u;
    if (pg.before)
        u = round_up(base + pg.page, align > pg.page ? align : pg.page);
    else if (align > pg.page)
        u = round_up(base, align);
    else
        u = (end - pg.page - size) & ~(uintptr_t)(align - 1);
    s->user = u;
    s->size = size;
    uintptr_t lo = data_lo(s), hi = data_hi(s);
    int rc;
    if (s->region->cls < 0) {
        /* A reservation of its own is mapped read-write, so the kernel
         * charges it and refuses what it could never back, as it would for
         * glibc; close everything around the block. */
        rc = lo > base ? ml_os_protect((void *)base, lo - base, 0) : 0;
        if (rc == 0)
            rc = ml_os_protect((void *)hi, end - hi, 0);
    } else {
        rc = ml_os_protect((void *)lo, hi - lo, 1);
    }
    if (rc != 0)
        return rc;
    canary_fill(lo, u);
    canary_fill(u + size, hi);
    s->state = PG_LIVE;
    pg.live++;
    __atomic_add_fetch(&pg.live_bytes, size, __ATOMIC_RELAXED);
    return 0;
}

static void quarantine_evict(void)
{
    struct pg_slot *s = pg.q_head;
    pg.q_head = s->next;
    if (!pg.q_head)
        pg.q_tail = NULL;
    pg.q_bytes -= data_hi(s) - data_lo(s);
    slot_release(s);
}

/* Checks the canary, closes the data pages, and queues the slot.  Returns
 * ML_FREE_OVERWRITTEN when the canary was damaged; says so unless quiet. */
static int block_close(struct pg_slot *s, int quiet)
{
    uintptr_t lo = data_lo(s), hi = data_hi(s);
    int bad = 0;
    if (!canary_intact(lo, s->user) || !canary_intact(s->user + s->size, hi)) {
        bad = ML_FREE_OVERWRITTEN;
        if (!quiet)
            ml_say(
                "page backend: the bytes next to block %p (%zu bytes) were overwritten (out-of-bounds write)",
                (void *)s->user, s->size);
    }
    /* The run is a VMA of its own, so this merges rather than splits and
     * does not fail for want of a map slot. */
    ml_os_protect((void *)lo, hi - lo, 0);
    ml_os_decommit((void *)lo, hi - lo);
    s->state = PG_QUARANTINED;
    pg.live--;
    __atomic_sub_fetch(&pg.live_bytes, s->size, __ATOMIC_RELAXED);
    s->next = NULL;
    if (pg.q_tail)
        pg.q_tail->next = s;
    else
        pg.q_head = s;
    pg.q_tail = s;
    pg.q_bytes += hi - lo;
    while (pg.q_bytes > pg.q_max)
        quarantine_evict();
    return bad;
}

/* The slot whose block starts exactly at p; NULL for anything else.  With
 * complain, says why a pointer into our reservations is not a live block. */
static struct pg_slot *slot_live(const void *p, int complain)
{
    uintptr_t a = (uintptr_t)p;
    struct pg_region *r = region_find(a);
    if (!r)
        return NULL;
    struct pg_slot *s = &r->slot[(a - r->base) / r->slot_bytes];
    if (s < r->slot + r->carved && s->state == PG_LIVE && s->user == a)
        return s;
    if (complain) {
        if (s < r->slot + r->carved && s->state == PG_QUARANTINED && s->user == a)
            ml_say("page backend: double free of %p (%zu bytes); ignored", p, s->size);
        else
            ml_say("page backend: free of %p, which is not the start of a live block; ignored", p);
    }
    return NULL;
}

/* ---- the interface ---------------------------------------------------- */

static void fallback_engage(int rc)
{
    if (!__atomic_exchange_n(&pg.fallback, 1, __ATOMIC_ACQ_REL))
        ml_say("page backend: %s (%s); blocks are unguarded from now on",
               rc == ENOMEM && pg.live >= pg.map_budget
                   ? "so many guarded blocks are open that vm.max_map_count is near"
                   : "the kernel refused another guarded mapping (vm.max_map_count or a memory rlimit)",
               strerrordesc_np(rc) ? strerrordesc_np(rc) : "unknown error");
}

static void *fb_alloc(size_t align, size_t size, int zero)
{
    if (!pg.fb)
        return NULL;
    if (align > 16)
        return pg.fb->memalign(align, size);
    if (zero && pg.fb->zalloc)
        return pg.fb->zalloc(size);
    void *p = pg.fb->malloc(size);
    if (p && zero)
        memset(p, 0, size);
    return p;
}

static void *pg_alloc(size_t align, size_t size, int zero)
{
    if (ML_UNLIKELY(__atomic_load_n(&pg.fallback, __ATOMIC_ACQUIRE)))
        return fb_alloc(align, size, zero);
    if (size > PG_MAX_SIZE)
        return NULL;
    int rc = ENOMEM;
    ml_mutex_lock(&pg.lock);
    if (ML_UNLIKELY(pg.live >= pg.map_budget)) {
        /* Stop guarding while the kernel still has map slots for the
         * fallback allocator, the program's own mmaps and thread stacks:
         * waiting for the refusal would leave none for them. */
        ml_mutex_unlock(&pg.lock);
        fallback_engage(ENOMEM);
        return fb_alloc(align, size, zero);
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        struct pg_slot *s = slot_take(slot_need(align, size), align);
        if (s) {
            rc = block_open(s, align, size);
            if (rc == 0) {
                ml_mutex_unlock(&pg.lock);
                return (void *)s->user;
            }
            slot_release(s);
        }
        /* Quarantined reservations of their own hold address space and a
         * map slot each; giving them back may be all it takes. */
        if (!pg.q_head)
            break;
        while (pg.q_head)
            quarantine_evict();
    }
    ml_mutex_unlock(&pg.lock);
    /* If the unguarded backend can serve it, the kernel refused the guards,
     * not the memory: degrade for good.  Otherwise it is out of memory. */
    void *p = fb_alloc(align, size, zero);
    if (p)
        fallback_engage(rc);
    return p;
}

/* Guarded blocks allowed open at once: each may split two VMAs off its
 * region, and a quarter of vm.max_map_count (at least 8192) stays free for
 * everything else. */
static size_t map_budget(void)
{
    long max = 65530;
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[32];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        size_t v;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
            n--;
        if (n > 0) {
            buf[n] = '\0';
            if (ml_parse_size(buf, &v) == 0 && v > 0 && v < ((size_t)1 << 31))
                max = (long)v;
        }
    }
    long margin = max / 4 > 8192 ? max / 4 : 8192;
    long budget = (max - margin) / 2;
    return budget > 64 ? (size_t)budget : 64;
}

static int pg_init(const struct ml_options *opt)
{
    pg.page = ml_os_page_size();
    pg.before = opt->page_guard == ML_GUARD_BEFORE;
    pg.align = opt->page_align ? 1 : 16;
    pg.q_max = opt->page_quarantine;
    pg.map_budget = map_budget();
    if (ml_backend_freelist.init(opt) == 0) {
        pg.fb = &ml_backend_freelist;
        /* Map its first segment now: when guards run out, map slots may
         * have run out too, and small requests must still be served. */
        void *warm = pg.fb->malloc(16);
        if (warm)
            pg.fb->free(warm);
    }
    return 0;
}

static void *pg_malloc(size_t size) { return pg_alloc(pg.align, size, 0); }

static void *pg_zalloc(size_t size) { return pg_alloc(pg.align, size, 1); }

static void *pg_memalign(size_t align, size_t size) { return pg_alloc(align, size, 0); }

static int pg_free_quiet(void *p, int quiet)
{
    enum ml_owner o = ml_os_owner(p);
    int bad = 0;
    if (o == ML_OWNER_PAGE) {
        ml_mutex_lock(&pg.lock);
        struct pg_slot *s = slot_live(p, !quiet);
        if (s)
            bad = block_close(s, quiet);
        ml_mutex_unlock(&pg.lock);
        return bad;
    }
    if (pg.fb && (o == ML_OWNER_FREELIST || o == ML_OWNER_FREELIST_LARGE))
        pg.fb->free(p);
    return 0;
}

static void pg_free(void *p) { pg_free_quiet(p, 0); }

static int pg_free_checked(void *p) { return pg_free_quiet(p, 1); }

static size_t pg_usable_size(const void *p)
{
    enum ml_owner o = ml_os_owner(p);
    if (o == ML_OWNER_PAGE) {
        ml_mutex_lock(&pg.lock);
        struct pg_slot *s = slot_live(p, 0);
        size_t n = s ? s->size : 0;
        ml_mutex_unlock(&pg.lock);
        return n;
    }
    if (pg.fb && (o == ML_OWNER_FREELIST || o == ML_OWNER_FREELIST_LARGE))
        return pg.fb->usable_size(p);
    return 0;
}

static void *pg_realloc(void *p, size_t size)
{
    enum ml_owner o = ml_os_owner(p);
    if (o != ML_OWNER_PAGE) {
        if (pg.fb && (o == ML_OWNER_FREELIST || o == ML_OWNER_FREELIST_LARGE))
            return pg.fb->realloc(p, size);
        return NULL;
    }
    size_t old = pg_usable_size(p);
    if (!old)
        return NULL;
    void *q = pg_alloc(pg.align, size, 0);
    if (!q)
        return NULL;
    memcpy(q, p, old < size ? old : size);
    pg_free(p);
    return q;
}

/* Every page of a slot that is not the live block's data pages is
 * PROT_NONE, so a fault in a slot belongs to the block placed in it: past
 * its end or before its start while it is live, anywhere in it once it is
 * quarantined. */
static int pg_describe_fault(uintptr_t a, struct ml_fault_block *out)
{
    int found = 0;
    ml_mutex_lock(&pg.lock);
    struct pg_region *r = region_find(a);
    if (r) {
        struct pg_slot *s = &r->slot[(a - r->base) / r->slot_bytes];
        if (s < r->slot + r->carved && (s->state == PG_LIVE || s->state == PG_QUARANTINED) && s->user) {
            out->user = s->user;
            out->size = s->size;
            out->freed = s->state == PG_QUARANTINED;
            found = 1;
        }
    }
    ml_mutex_unlock(&pg.lock);
    return found;
}

static void pg_thread_exit(void)
{
    if (pg.fb && pg.fb->thread_exit)
        pg.fb->thread_exit();
}

static void pg_atfork(int phase)
{
    /* pg.lock first, the fallback's locks inside it; released in reverse. */
    if (phase == ML_FORK_PREPARE)
        ml_lock_atfork(&pg.lock, phase);
    if (pg.fb && pg.fb->atfork)
        pg.fb->atfork(phase);
    if (phase != ML_FORK_PREPARE)
        ml_lock_atfork(&pg.lock, phase);
}

static size_t pg_used_bytes(void) { return __atomic_load_n(&pg.live_bytes, __ATOMIC_RELAXED); }

const struct ml_backend ml_backend_page = {
    .name = "page",
    .init = pg_init,
    .malloc = pg_malloc,
    .zalloc = pg_zalloc,
    .memalign = pg_memalign,
    .free = pg_free,
    .free_checked = pg_free_checked,
    .describe_fault = pg_describe_fault,
    .realloc = pg_realloc,
    .usable_size = pg_usable_size,
    .used_bytes = pg_used_bytes,
    .thread_exit = pg_thread_exit,
    .atfork = pg_atfork,
    .flags = ML_BACKEND_GUARDS_FREED | ML_BACKEND_SPACED,
};
