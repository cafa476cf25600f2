/* report/blocks.c: the live-block table.
 *
 * Maps a block's address to its requested size, allocation stack id and
 * tag, and keeps the record of a freed block while the block waits in the
 * trace layer's quarantine, so a double free can name all three stacks.
 * 256 shards chosen by a hash of the address, each an open-addressing table
 * with linear probing and backward-shift deletion (no tombstones) under its
 * own spin lock: threads meet only when they touch the same shard at the same
 * moment.  A live record keeps the allocation's sequence number where a
 * freed one keeps its free stack.  A record is 24 bytes and tables stay
 * between 1/2 and 3/4 full (they grow by half): 32 to 48 bytes per record.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/lock.h"
#include "../core/meta.h"
#include "blocks.h"
#include "busy.h"
#include "pressure.h"
#include "report.h"

#define SHARD_BITS 8
#define SHARDS (1u << SHARD_BITS)
#define SIZE_BITS 40
#define SIZE_MASK ((1ull << SIZE_BITS) - 1)

struct rec {
    uintptr_t addr;  /* 0: empty slot */
    uint64_t packed; /* size:40, tag:16, state:4, kind:2 */
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
    struct rec *slots;
    size_t cap, count;
} __attribute__((aligned(64))); /* one cache line each (the lock's padding made them 72 bytes) */

_Static_assert(sizeof(struct shard) == 64, "a shard is one cache line");
static struct shard shards[SHARDS];

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

static inline uint64_t mix(uintptr_t a)
{
    uint64_t h = (uint64_t)a >> 4;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static inline struct shard *shard_of(uint64_t h) { return &shards[h >> (64 - SHARD_BITS)]; }

static inline uint64_t pack(uint64_t size, uint16_t tag, uint8_t state, unsigned kind)
{
    if (size > SIZE_MASK)
        size = SIZE_MASK;
    return size | ((uint64_t)tag << SIZE_BITS) | ((uint64_t)(state & 15) << 56) |
           ((uint64_t)(kind & 3) << 60);
}

static inline uint8_t state_of(const struct rec *r) { return (uint8_t)((r->packed >> 56) & 15); }

static inline uint8_t kind_of(const struct rec *r) { return (uint8_t)((r->packed >> 60) & 3); }

static inline void set_state(struct rec *r, uint8_t state)
{
    r->packed = (r->packed & ~(0xfull << 56)) | ((uint64_t)(state & 15) << 56);
}

static void unpack(const struct rec *r, struct ml_block_rec *out)
{
    out->addr = r->addr;
    out->size = r->packed & SIZE_MASK;
    out->tag = (uint16_t)(r->packed >> SIZE_BITS);
    out->state = state_of(r);
    out->kind = kind_of(r);
    out->stack = r->stack;
    out->free_stack = out->state == ML_BLOCK_FREED ? r->free_stack : 0;
    out->seq = out->state == ML_BLOCK_FREED ? 0 : r->free_stack;
}

/* A record's home slot in a table of cap slots: the hash's bits below the
 * shard's, scaled to [0, cap) (cap need not be a power of two). */
static inline size_t home_of(uint64_t h, size_t cap)
{
    return (size_t)(((unsigned __int128)(h << SHARD_BITS) * cap) >> 64);
}

static inline size_t next_slot(size_t j, size_t cap) { return j + 1 == cap ? 0 : j + 1; }

/* Tables grow by half (load 3/4 -> 1/2), so a record of 24 bytes costs 32
 * to 48 bytes of table.  A table of 8 KiB or more is a mapping of its own
 * (a meta heap request above its largest class), which goes back to the
 * kernel when the table grows again: from the meta heap's classes, every
 * outgrown table would stay on their free lists (none needs that size
 * again).  The first tables (16 to 256 records) still come from the classes,
 * so a small program's tables take a few pages in all; the outgrown ones
 * stay on the free lists (their classes, 512 B to 4 KiB, add up to 7.5 KiB
 * a shard). */
#define TABLE_MAPPED_MIN ((size_t)8 << 10)
#define META_LARGEST_CLASS ((size_t)64 << 10)

__attribute__((noinline, cold)) static int grow(struct shard *s)
{
    /* 16, doubling up to 256 (256 shards: a short program touches most of
     * them, and the page of each table), then by half: from 256 on, the
     * sizes it always had */
    size_t cap = !s->cap ? 16 : s->cap < 256 ? 2 * s->cap : s->cap + s->cap / 2;
    size_t bytes = cap * sizeof(struct rec);
    int mapped = bytes >= TABLE_MAPPED_MIN && bytes <= META_LARGEST_CLASS;
    struct rec *slots = ml_meta_alloc(mapped ? META_LARGEST_CLASS + 1 : bytes);
    if (!slots) {
        ml_tr_degrade("the block table");
        return -1;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].addr)
            continue;
        size_t j = home_of(mix(s->slots[i].addr), cap);
        while (slots[j].addr)
            j = next_slot(j, cap);
        slots[j] = s->slots[i];
    }
    ml_meta_free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

/* Slot of addr in s, or of the empty slot ending its probe sequence. */
static inline size_t probe(const struct shard *s, uintptr_t addr, uint64_t h)
{
    size_t j = home_of(h, s->cap);
    while (s->slots[j].addr && s->slots[j].addr != addr)
        j = next_slot(j, s->cap);
    return j;
}

/* Backward-shift deletion keeps every probe sequence unbroken. */
static void erase(struct shard *s, size_t j)
{
    size_t cap = s->cap;
    size_t k = j;
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

int ml_blocks_insert(uintptr_t addr, uint64_t size, uint32_t stack, uint16_t tag, uint32_t seq, unsigned kind)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(h);
    shard_take(&s->lock);
    if ((s->count + 1) * 4 > s->cap * 3 && grow(s) != 0) {
        shard_release(&s->lock);
        return -1;
    }
    size_t j = probe(s, addr, h);
    if (!s->slots[j].addr)
        s->count++;
    s->slots[j] = (struct rec){addr, pack(size, tag, ML_BLOCK_LIVE, kind), stack, seq};
    shard_release(&s->lock);
    return 0;
}

/* The record of addr in its shard, or NULL.  Caller holds s->lock. */
static inline __attribute__((always_inline)) struct rec *find(struct shard *s, uintptr_t addr, uint64_t h)
{
    if (!s->cap)
        return NULL;
    struct rec *r = &s->slots[probe(s, addr, h)];
    return r->addr ? r : NULL;
}

int ml_blocks_free(uintptr_t addr, uint32_t free_stack, struct ml_block_rec *out)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(h);
    int rc = -1;
    shard_take(&s->lock);
    struct rec *r = find(s, addr, h);
    if (r) {
        unpack(r, out);
        rc = 0;
        if (out->state == ML_BLOCK_LIVE || out->state == ML_BLOCK_INHERITED) {
            set_state(r, ML_BLOCK_FREED);
            r->free_stack = free_stack;
            rc = 1;
        }
    }
    shard_release(&s->lock);
    return rc;
}

void ml_blocks_set_kind(uintptr_t addr, unsigned kind)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(h);
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
        shard_take(&s->lock);
        for (size_t j = 0; j < s->cap; j++) {
            const struct rec *r = &s->slots[j];
            uint64_t size = r->packed & SIZE_MASK;
            if (!r->addr || r->addr > a || a - r->addr >= (size ? size : 1))
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
    struct shard *s = shard_of(h);
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

void ml_blocks_remove_freed(uintptr_t addr)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(h);
    shard_take(&s->lock);
    struct rec *r = find(s, addr, h);
    if (r && state_of(r) == ML_BLOCK_FREED)
        erase(s, (size_t)(r - s->slots));
    shard_release(&s->lock);
}

int ml_blocks_lookup(uintptr_t addr, struct ml_block_rec *out)
{
    uint64_t h = mix(addr);
    struct shard *s = shard_of(h);
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
        for (size_t j = 0; j < s->cap; j++)
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
    for (unsigned i = 0; i < SHARDS; i++)
        shard_take(&shards[i].lock);
    mark_each();
    for (unsigned i = 0; i < SHARDS; i++)
        shard_release(&shards[i].lock);
}

size_t ml_blocks_record_count(void)
{
    size_t n = 0;
    for (unsigned i = 0; i < SHARDS; i++)
        n += __atomic_load_n(&shards[i].count, __ATOMIC_RELAXED);
    return n;
}

size_t ml_blocks_snapshot(struct ml_live *out, size_t cap, int locked)
{
    size_t n = 0;
    for (unsigned i = 0; i < SHARDS; i++) {
        struct shard *s = &shards[i];
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

void ml_blocks_atfork(int phase)
{
    /* PREPARE takes every shard (no other thread is inside one while the
     * process is copied), PARENT releases them, CHILD forgets the holders. */
    for (unsigned i = 0; i < SHARDS; i++) {
        if (phase != ML_FORK_PREPARE) {
            __atomic_store_n(&shards[i].lock.v, 0, __ATOMIC_RELEASE);
        } else if (__atomic_exchange_n(&shards[i].lock.v, 1, __ATOMIC_ACQUIRE)) {
            lock_wait(&shards[i].lock);
        }
    }
}
