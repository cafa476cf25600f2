/* tests/reach/test_livesort.c: the exit report's sort of the live blocks
 * (report/livesort.c), linked directly.  Each case builds a snapshot of
 * distinct addresses in a shape the report meets (one heap in random
 * order, several far-apart mappings, 8-byte alignment, already sorted,
 * addresses too spread for the 8-byte keys) and checks the result against
 * qsort: every block in address order, with its own size, stack, sequence
 * number and tag. */
#define _GNU_SOURCE
#include "../../core/meta.h"
#include "../../report/livesort.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x6c697665736f7274;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int by_addr(const void *x, const void *y)
{
    uintptr_t a = ((const struct ml_live *)x)->addr, b = ((const struct ml_live *)y)->addr;
    return a < b ? -1 : a > b;
}

/* Every field but addr derives from addr, so a block that lost its own
 * fields shows. */
static struct ml_live block_at(uintptr_t a)
{
    uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ull;
    return (struct ml_live){.addr = a,
                            .size = h >> 40,
                            .stack = (uint32_t)(h >> 7),
                            .seq = (uint32_t)(h >> 21),
                            .tag = (uint16_t)(h >> 3),
                            .flags = (uint8_t)(h >> 50) & 1};
}

/* Shuffles a[0..n), sorts it by ml_live_sort and compares with qsort. */
static void check_sort(struct ml_live *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(next() % i);
        struct ml_live t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
    struct ml_live *want = malloc((n ? n : 1) * sizeof *want);
    ck_assert_ptr_nonnull(want);
    memcpy(want, a, n * sizeof *a);
    qsort(want, n, sizeof *want, by_addr);
    ml_live_sort(a, n);
    for (size_t i = 0; i < n; i++) {
        struct ml_live w = block_at(want[i].addr);
        ck_assert_msg(a[i].addr == want[i].addr, "block %zu of %zu: addr %#lx, want %#lx", i, n,
                      (unsigned long)a[i].addr, (unsigned long)want[i].addr);
        ck_assert(a[i].size == w.size && a[i].stack == w.stack && a[i].seq == w.seq && a[i].tag == w.tag &&
                  a[i].flags == w.flags);
    }
    free(want);
}

/* n distinct addresses: each a random multiple of align in [base, base + span). */
static size_t fill(struct ml_live *a, size_t at, size_t n, uintptr_t base, uintptr_t span, uintptr_t align)
{
    size_t slots = (size_t)(span / align);
    /* distinct by construction: a random odd stride through the slots */
    size_t stride = (size_t)(next() % slots) | 1;
    while (slots % 2 == 0 && stride % 2 == 0)
        stride++;
    size_t start = (size_t)(next() % slots);
    for (size_t i = 0; i < n; i++) {
        size_t s = (start + (size_t)((unsigned __int128)i * stride % slots)) % slots;
        a[at + i] = block_at(base + (uintptr_t)s * align);
    }
    return at + n;
}

START_TEST(one_heap)
{
    /* the freelist heap of a traced exit: 16-byte blocks over 32 MiB */
    size_t sizes[] = {2, 3, 17, 1000, 200000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct ml_live *a = malloc(sizes[k] * sizeof *a);
        fill(a, 0, sizes[k], (uintptr_t)0x7f3a12000000, (uintptr_t)32 << 20, 16);
        check_sort(a, sizes[k]);
        free(a);
    }
}
END_TEST

START_TEST(far_mappings)
{
    /* the heap, big blocks mapped far above it and a few from glibc's
     * brk heap: the keys need more than three passes of 11 bits */
    size_t n = 60000;
    struct ml_live *a = malloc(n * sizeof *a);
    size_t at = fill(a, 0, 50000, (uintptr_t)0x55d0c0000000, (uintptr_t)64 << 20, 16);
    at = fill(a, at, 9000, (uintptr_t)0x7f1200000000, (uintptr_t)8 << 30, 4096);
    at = fill(a, at, 1000, (uintptr_t)0x7ffd00000000, (uintptr_t)1 << 20, 16);
    check_sort(a, at);
    free(a);
}
END_TEST

START_TEST(unaligned_and_sorted)
{
    size_t n = 5000;
    struct ml_live *a = malloc(n * sizeof *a);
    fill(a, 0, n, (uintptr_t)0x10000, (uintptr_t)1 << 20, 8);
    check_sort(a, n);
    fill(a, 0, n, (uintptr_t)0x10001, (uintptr_t)1 << 16, 1); /* odd addresses: no shared low bit */
    check_sort(a, n);
    /* already in order: left as it is */
    for (size_t i = 0; i < n; i++)
        a[i] = block_at((uintptr_t)0x400000 + i * 48);
    ml_live_sort(a, n);
    for (size_t i = 0; i < n; i++)
        ck_assert(a[i].addr == (uintptr_t)0x400000 + i * 48);
    ml_live_sort(a, 1);
    ml_live_sort(a, 0);
    ck_assert(a[0].addr == 0x400000);
}
END_TEST

START_TEST(keys_too_wide)
{
    /* odd addresses over the whole 64-bit range: address bits and index
     * bits do not fit one word, the in-place fallback sorts */
    size_t n = 3000;
    struct ml_live *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = block_at((uintptr_t)(next() | 1));
    for (size_t i = 1; i < n; i++) /* distinct */
        for (size_t j = 0; j < i; j++)
            if (a[j].addr == a[i].addr)
                a[i] = block_at(a[i].addr + 2);
    check_sort(a, n);
    free(a);
}
END_TEST

static Suite *livesort_suite(void)
{
    Suite *s = suite_create("livesort");
    TCase *tc = tcase_create("sort");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, one_heap);
    tcase_add_test(tc, far_mappings);
    tcase_add_test(tc, unaligned_and_sorted);
    tcase_add_test(tc, keys_too_wide);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(livesort_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr) || srunner_ntests_run(sr) == 0;
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
