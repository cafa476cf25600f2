/* tests/unit/unit_backends.c: every backend's slots, called directly (no
 * preload), from several threads at once.  This is the suite the TSan build
 * runs: 4 threads x 50k random operations with cross-thread frees through
 * shared slots, each block carrying a pattern that is checked before it is
 * freed, plus realloc and memalign under the same traffic. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/backend.h"
#include "../../core/options.h"

#define THREADS 4
#define OPS 50000
#define SLOTS 1024

static const struct ml_backend *be;
static struct slot {
    unsigned char *p;
    size_t n;
} slots[SLOTS];
static pthread_mutex_t slot_lock[SLOTS / 64];
static int errors;

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int check_block(const unsigned char *p, size_t n)
{
    unsigned char want = (unsigned char)(((uintptr_t)p >> 4) ^ n);
    for (size_t i = 0; i < n; i += 61)
        if (p[i] != want)
            return 0;
    return p[n - 1] == want;
}

static void fill_block(unsigned char *p, size_t n) { memset(p, (unsigned char)(((uintptr_t)p >> 4) ^ n), n); }

static void *worker(void *arg)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
    for (int i = 0; i < OPS; i++) {
        uint64_t r = next(&x);
        unsigned k = (unsigned)(r % SLOTS);
        size_t n = 1 + (size_t)((r >> 16) % ((r >> 40) & 1 ? 4096 : 256));
        pthread_mutex_lock(&slot_lock[k / 64]);
        struct slot s = slots[k];
        slots[k].p = NULL;
        pthread_mutex_unlock(&slot_lock[k / 64]);
        if (s.p) {
            if (!check_block(s.p, s.n))
                __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
            if ((r >> 50) % 8 == 0) {
                unsigned char *q = be->realloc(s.p, n);
                if (!q) {
                    __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
                    continue;
                }
                s.p = q;
                s.n = n;
                fill_block(q, n);
                pthread_mutex_lock(&slot_lock[k / 64]);
                if (!slots[k].p) {
                    slots[k] = s;
                    s.p = NULL;
                }
                pthread_mutex_unlock(&slot_lock[k / 64]);
                if (s.p)
                    be->free(s.p);
                continue;
            }
            be->free(s.p);
        }
        size_t align = (r >> 56) % 16 == 0 ? (size_t)64 << ((r >> 60) % 4) : 16;
        unsigned char *p = align > 16 ? be->memalign(align, n) : be->malloc(n);
        if (!p || ((uintptr_t)p & (align - 1)) || be->usable_size(p) < n) {
            __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
            continue;
        }
        fill_block(p, n);
        pthread_mutex_lock(&slot_lock[k / 64]);
        if (!slots[k].p) {
            slots[k].p = p;
            slots[k].n = n;
            p = NULL;
        }
        pthread_mutex_unlock(&slot_lock[k / 64]);
        if (p)
            be->free(p);
    }
    if (be->thread_exit)
        be->thread_exit();
    return NULL;
}

static void run_backend(const struct ml_backend *b)
{
    be = b;
    ck_assert_ptr_nonnull(be);
    struct ml_options o;
    ml_options_parse(&o, NULL, 0);
    ck_assert_int_eq(be->init(&o), 0);
    for (unsigned i = 0; i < SLOTS / 64; i++)
        pthread_mutex_init(&slot_lock[i], NULL);
    errors = 0;
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (unsigned k = 0; k < SLOTS; k++) {
        if (slots[k].p) {
            ck_assert(check_block(slots[k].p, slots[k].n));
            be->free(slots[k].p);
            slots[k].p = NULL;
        }
    }
    ck_assert_int_eq(errors, 0);
}

/* One run per registry entry (_i indexes ml_backends[]). */
START_TEST(threads_each) { run_backend(ml_backends[_i]); }
END_TEST

int main(void)
{
    Suite *s = suite_create("backend threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 240);
    int nbackends = 0;
    while (ml_backends[nbackends])
        nbackends++;
    tcase_add_loop_test(tc, threads_each, 0, nbackends);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
