/* tests/bumparena/fused.c: the shim's fused bump and arena paths, preloaded.
 *
 * Run by fused.sh under LD_PRELOAD with MALLARD_BACKEND=bump or arena and
 * MALLARD_TRACE=0, where malloc, calloc and free of small blocks are done
 * inline in preload/shim.c (preload/fast.h) instead of by the backend's
 * slots.  Each check below is a contract the slots keep and the inline
 * path must keep too; the program exits 1 naming the first one broken.
 * fused.sh checks the stderr lines the bad frees must give (one).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;
#define CHECK(c)                                                                                             \
    do {                                                                                                     \
        if (!(c)) {                                                                                          \
            fprintf(stderr, "fused: check failed, line %d: %s\n", __LINE__, #c);                             \
            failed = 1;                                                                                      \
        }                                                                                                    \
    } while (0)

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* p's address, out of the compiler's sight: it takes any two blocks from
 * malloc as distinct, and would fold the comparisons away.  Taken before
 * a block is freed. */
static uintptr_t at(void *p)
{
    volatile uintptr_t a = (uintptr_t)p;
    return a;
}

static void *free_it(void *p)
{
    free(p);
    return NULL;
}

static void *alloc_one(void *arg)
{
    (void)arg;
    return malloc(200);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "all";

    if (!strcmp(mode, "limit")) {
        /* MALLARD_ARENA_LIMIT=1M: the inline path must not carve past the
         * budget (it stands aside when one is set). */
        size_t got = 0;
        void *p;
        while ((p = malloc(100)) != NULL && got < ((size_t)64 << 20))
            got += 100;
        CHECK(p == NULL && errno == ENOMEM);
        CHECK(got < ((size_t)2 << 20));
        return failed;
    }

    /* A freed block of one class serves the next request of that class. */
    void *keep = malloc(48); /* so the next one is not rolled back */
    void *a = malloc(100), *guard = malloc(16);
    uintptr_t a_at = at(a);
    free(a);
    void *b = malloc(100);
    CHECK(at(b) == a_at);

    /* calloc of a reused block reads as zero. */
    memset(b, 0xab, 100);
    uintptr_t b_at = at(b);
    free(b);
    unsigned char *z = calloc(1, 100);
    CHECK(at(z) == b_at && all_zero(z, 100));

    /* The most recent block rolls back, and calloc of memory carved again
     * over written bytes reads as zero. */
    unsigned char *top = malloc(512);
    memset(top, 0xcd, 512);
    uintptr_t top_at = at(top);
    free(top);
    unsigned char *again = calloc(2, 256);
    CHECK(at(again) == top_at && all_zero(again, 512));

    /* A double free of a block that was rolled back: ignored (reported
     * below), so it is handed out once. */
    void *top2 = malloc(64);
    void *volatile again_top2 = top2;
    free(top2);
    free(again_top2);
    void *r1 = malloc(64), *r2 = malloc(64);
    CHECK(at(r1) != at(r2));
    free(r2);
    free(r1);
    /* A block freed by another thread, and one of another thread's chunk
     * freed here: both kept apart from this thread's lists. */
    void *mine = malloc(200);
    uintptr_t mine_at = at(mine);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, free_it, mine) == 0);
    pthread_join(th, NULL);
    void *theirs = NULL;
    CHECK(pthread_create(&th, NULL, alloc_one, NULL) == 0);
    pthread_join(th, &theirs);
    CHECK(theirs != NULL);
    uintptr_t theirs_at = at(theirs);
    free(theirs);
    void *next = malloc(200);
    CHECK(at(next) != mine_at && at(next) != theirs_at);

    /* Churn: contents intact across reuse. */
    enum { N = 4096 };
    static unsigned char *slot[N];
    static size_t len[N];
    uint64_t r = 42;
    for (int op = 0; op < 200000; op++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        size_t k = (size_t)(r >> 33) % N;
        if (slot[k]) {
            CHECK(slot[k][0] == (unsigned char)k && slot[k][len[k] - 1] == (unsigned char)(k >> 3));
            free(slot[k]);
        }
        len[k] = 2 + (size_t)(r >> 20) % 1500;
        slot[k] = op % 3 ? malloc(len[k]) : calloc(1, len[k]);
        CHECK(slot[k] != NULL && malloc_usable_size(slot[k]) >= len[k]);
        slot[k][0] = (unsigned char)k;
        slot[k][len[k] - 1] = (unsigned char)(k >> 3);
    }
    for (int k = 0; k < N; k++)
        free(slot[k]);

    /* Bad frees are ignored, the first one said on stderr: a double free,
     * a pointer inside a block, the chunk's first byte below a block. */
    void *d = malloc(64), *after = malloc(64);
    void *volatile again_d = d; /* the compiler would see the double free */
    char *volatile inside = (char *)after + 8;
    const char *be = getenv("MALLARD_BACKEND");
    uintptr_t chunk = (uintptr_t)(be && !strcmp(be, "arena") ? 4 : 1) << 20; /* ML_ARENA_CHUNK, ML_BUMP_CHUNK */
    void *volatile base = (void *)((uintptr_t)after & ~(chunk - 1));
    uintptr_t d_at = at(d);
    free(d);
    free(again_d);
    free(inside);
    free(base);
    void *e = malloc(64);
    CHECK(at(e) == d_at); /* the double free pushed it once: taken once */
    void *f = malloc(64);
    CHECK(at(f) != d_at && at(f) != at(after));
    memset(after, 1, 64);
    free(after);
    free(NULL);

    free(keep);
    free(guard);
    free(next);
    free(z);
    free(again);
    free(e);
    free(f);
    if (!failed)
        puts("fused: ok");
    return failed;
}
