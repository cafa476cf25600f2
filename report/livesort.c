/* report/livesort.c: the exit report's snapshot of live blocks, sorted by
 * address for the reachability scan (reach.c wants blocks[] in address
 * order).  The snapshot comes in the block table's hash order, so the
 * sort sees random addresses; it runs once per report, over every live
 * block, and no second array of blocks is made: at exit the snapshot may
 * be the largest thing mallard holds.
 *
 * A run of up to KEY_RUN blocks (256 KiB of records: the cache holds it)
 * is sorted by key_sort, through 8-byte keys, and its records are moved
 * once each, to random places within the run.  A longer one is first cut
 * by flag_sort's in-place passes, 256 buckets by the top bits of the
 * address, whose writes stay in few lines, until the pieces are that
 * short.  Moving records to random places of a run much larger than the
 * cache, a miss each, made a million-block sort slower than flag_sort
 * alone.  sort_range is the last resort (keys that do not fit a word, no
 * room for them).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../core/meta.h"
#include "livesort.h"

/* In-place quicksort by address (median of three, insertion sort for short
 * runs, recursion on the smaller side): the fallback of flag_sort. */
static void sort_range(struct ml_live *a, size_t lo, size_t hi)
{
    while (hi - lo > 16) {
        size_t mid = lo + (hi - lo) / 2;
        uintptr_t x = a[lo].addr, y = a[mid].addr, z = a[hi - 1].addr;
        uintptr_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t i = lo, j = hi - 1;
        for (;;) {
            while (a[i].addr < pivot)
                i++;
            while (a[j].addr > pivot)
                j--;
            if (i >= j)
                break;
            struct ml_live t = a[i];
            a[i] = a[j];
            a[j] = t;
            i++;
            j--;
        }
        size_t split = j + 1;
        if (split - lo < hi - split) {
            sort_range(a, lo, split);
            lo = split;
        } else {
            sort_range(a, split, hi);
            hi = split;
        }
    }
    for (size_t i = lo + 1; i < hi; i++) {
        struct ml_live v = a[i];
        size_t j = i;
        while (j > lo && a[j - 1].addr > v.addr) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

/* Runs at most this long are key_sort's (see the top). */
#define KEY_RUN ((size_t)8192)
/* Runs at most this long are left to sort_range's insertion sort. */
#define FLAG_MIN 16
/* Buckets per pass: few enough that every bucket's write position stays
 * in cache, so the swaps mostly hit lines just touched. */
#define FLAG_LG 8
#define FLAG_BUCKETS ((size_t)1 << FLAG_LG)
/* Passes at most: each narrows the span by FLAG_LG bits. */
#define FLAG_DEPTH (64 / FLAG_LG + 1)

/* In-place MSD radix sort by address (American flag sort): one pass puts
 * a[0..n) into up to FLAG_BUCKETS buckets by the top bits of addr - min, swapping
 * each block straight into its bucket, then each bucket is sorted the same
 * way (with a span of its own, so a clustered heap narrows level by level)
 * or, short, by insertion.  No second array of blocks: at exit the
 * snapshot may be the largest thing mallard holds.  cnt: 2 * FLAG_BUCKETS
 * words per level left below this one.  A comparison sort of the snapshot
 * was a tenth of a traced exit-heavy run. */
struct key_space;
static int key_sort(struct ml_live *a, size_t n, struct key_space *ks);

static void flag_sort(struct ml_live *a, size_t n, size_t *cnt, unsigned depth, struct key_space *ks)
{
    if (ks && n <= KEY_RUN && key_sort(a, n, ks) == 0)
        return;
    if (n <= FLAG_MIN || !depth) {
        sort_range(a, 0, n);
        return;
    }
    uintptr_t min = a[0].addr, max = a[0].addr;
    for (size_t i = 1; i < n; i++) {
        uintptr_t v = a[i].addr;
        min = v < min ? v : min;
        max = v > max ? v : max;
    }
    if (min == max)
        return; /* one address: nothing to order (the table holds none twice) */
    unsigned bits = 64 - (unsigned)__builtin_clzll((unsigned long long)(max - min));
    /* about two blocks a bucket in a short run: the passes over the
     * buckets cost no more than the blocks */
    unsigned lg = 63 - (unsigned)__builtin_clzll((unsigned long long)n) - 1;
    lg = lg < FLAG_LG ? lg : FLAG_LG;
    size_t nb = (size_t)1 << lg;
    unsigned shift = bits > lg ? bits - lg : 0;
    size_t *next = cnt, *end = cnt + FLAG_BUCKETS;
    memset(next, 0, nb * sizeof *next);
    for (size_t i = 0; i < n; i++)
        next[(a[i].addr - min) >> shift]++;
    size_t at = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t c = next[b];
        next[b] = at;
        at += c;
        end[b] = at;
    }
    for (size_t b = 0; b < nb; b++) {
        while (next[b] < end[b]) {
            struct ml_live v = a[next[b]];
            size_t d = (v.addr - min) >> shift;
            while (d != b) {
                /* the slot v belongs in takes v; its old occupant moves on */
                struct ml_live t = a[next[d]];
                a[next[d]++] = v;
                v = t;
                d = (v.addr - min) >> shift;
            }
            a[next[b]++] = v;
        }
    }
    /* bucket b is now [end[b - 1], end[b]) */
    size_t lo = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t hi = end[b];
        if (hi - lo > 1)
            flag_sort(a + lo, hi - lo, cnt + 2 * FLAG_BUCKETS, depth - 1, ks);
        lo = hi;
    }
}

/* Digits of key_sort's passes: at most this many bits. */
#define KEY_LG 11
#define KEY_DIGITS ((size_t)1 << KEY_LG)

/* key_sort's work space, for runs of up to KEY_RUN blocks. */
struct key_space {
    size_t cnt[3 * KEY_DIGITS];
    uint64_t *key, *tmp; /* room for cap keys each, after the struct */
    size_t cap;
};

/* Sorts a run of n <= KEY_RUN blocks through one 8-byte key per block:
 * the address less the lowest, less the low bits every address shares,
 * above the block's index.  An LSD radix sort of the keys (stable, so the
 * index bits need no pass; a pass whose digit is the same in every key is
 * skipped), then the blocks are put in place by following the cycles of
 * the permutation: each record moves once.  0, or -1 when the keys do not
 * fit a word or need more than three passes. */
static int key_sort(struct ml_live *a, size_t n, struct key_space *ks)
{
    if (n < 2)
        return 0;
    uintptr_t min = a[0].addr, max = min, diff = 0;
    int sorted = 1;
    for (size_t i = 1; i < n; i++) {
        uintptr_t v = a[i].addr;
        sorted &= a[i - 1].addr < v;
        min = v < min ? v : min;
        max = v > max ? v : max;
        diff |= v ^ a[0].addr;
    }
    if (sorted)
        return 0;
    unsigned ashift = (unsigned)__builtin_ctzll((unsigned long long)diff);
    uintptr_t top = (max - min) >> ashift;
    unsigned kbits = 64 - (unsigned)__builtin_clzll((unsigned long long)top);
    unsigned ibits = 64 - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
    unsigned passes = (kbits + KEY_LG - 1) / KEY_LG;
    if (kbits + ibits > 64 || passes > 3 || n > ks->cap)
        return -1; /* flag_sort cuts the run further */
    /* equal digits, as narrow as the passes allow: fewer counts to clear
     * and sum in a short run */
    unsigned lg = (kbits + passes - 1) / passes;
    size_t digits = (size_t)1 << lg, dmask = digits - 1;
    size_t *c0 = ks->cnt, *c1 = c0 + digits, *c2 = c1 + digits;
    memset(ks->cnt, 0, 3 * digits * sizeof *ks->cnt);
    uint64_t *key = ks->key;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = (uint64_t)((a[i].addr - min) >> ashift);
        key[i] = d << ibits | i;
        c0[d & dmask]++;
        c1[(d >> lg) & dmask]++;
        c2[(d >> 2 * lg) & dmask]++;
    }
    uint64_t *from = key, *to = ks->tmp;
    for (unsigned p = 0; p < passes; p++) {
        size_t *c = ks->cnt + p * digits;
        unsigned lo = ibits + p * lg;
        if (c[(from[0] >> lo) & dmask] == n)
            continue; /* one digit in every key: the order stands */
        size_t at = 0;
        for (size_t d = 0; d < digits; d++) {
            size_t k = c[d];
            c[d] = at;
            at += k;
        }
        for (size_t i = 0; i < n; i++)
            to[c[(from[i] >> lo) & dmask]++] = from[i];
        uint64_t *t = from;
        from = to;
        to = t;
    }
    /* from[k]'s index bits: the block that goes to position k; a placed
     * position is marked by its own index with no key bits */
    uint64_t imask = ((uint64_t)1 << ibits) - 1;
    for (size_t k = 0; k < n; k++) {
        if ((from[k] & imask) == k)
            continue;
        struct ml_live v = a[k];
        size_t j = k;
        for (;;) {
            size_t src = (size_t)(from[j] & imask);
            from[j] = j;
            if (src == k) {
                a[j] = v;
                break;
            }
            a[j] = a[src];
            j = src;
        }
    }
    return 0;
}

/* At most this many blocks (a short process's) are sorted by sort_range:
 * no work space to map and clear. */
#define SMALL_RUN 256

void ml_live_sort(struct ml_live *a, size_t n)
{
    if (n <= SMALL_RUN) {
        sort_range(a, 0, n);
        return;
    }
    size_t cap = n < KEY_RUN ? n : KEY_RUN;
    struct key_space *ks = ml_meta_alloc(sizeof *ks + 2 * cap * sizeof(uint64_t));
    if (ks) {
        ks->key = (uint64_t *)(ks + 1);
        ks->tmp = ks->key + cap;
        ks->cap = cap;
    }
    size_t *cnt = n > KEY_RUN || !ks ? ml_meta_alloc(FLAG_DEPTH * 2 * FLAG_BUCKETS * sizeof *cnt) : NULL;
    if (ks && n <= KEY_RUN && key_sort(a, n, ks) == 0) {
        /* done */
    } else if (cnt) {
        flag_sort(a, n, cnt, FLAG_DEPTH, ks);
    } else {
        sort_range(a, 0, n);
    }
    ml_meta_free(cnt);
    ml_meta_free(ks);
}
