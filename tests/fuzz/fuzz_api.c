/* tests/fuzz/fuzz_api.c: libFuzzer driving random sequences of malloc-family
 * calls against one backend, linked directly (no preload), with the trace
 * layer on or off: MALLARD_BACKEND and MALLARD_TRACE from the environment
 * pick them, as for the preload.
 *
 * Input: a sequence of 4-byte operations (op, slot, size lo, size hi) on
 * 64 slots.  Checked after every step: alignment (16, or the memalign
 * request), usable size >= the request and all of it writable, zalloc'ed
 * blocks read as zero, and each block keeps its fill pattern across realloc
 * (the first min(old, new) bytes) until it is freed.  Every block is freed at
 * the end of an input, so nothing carries over from one input to the next.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/backend.h"
#include "../../core/fmt.h"
#include "../../core/options.h"
#include "../../report/report.h"
#include "../../report/trace.h"

extern char **environ;

#define SLOTS 64

static const struct ml_backend *be;
static struct ml_options opts;
static struct {
    unsigned char *p;
    size_t n;
    unsigned char fill;
} slot[SLOTS];
static unsigned long long ops_done;

static void die(const char *what, size_t n)
{
    fprintf(stderr, "fuzz_api [%s, trace %d]: %s (size %zu)\n", ml_backends[opts.backend]->name, opts.trace, what,
            n);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ml_options_parse(&opts, environ, 1);
    const struct ml_backend *b = ml_backends[opts.backend];
    if (!b || b->init(&opts) != 0)
        die("backend init failed", 0);
    if (opts.trace) {
        ml_stack_init(opts.depth, b->describe_fault != NULL); /* eager for the page backend, as trace.c */
        be = ml_trace_wrap(b, &opts);
    } else {
        be = b;
    }
    return 0;
}

/* The bytes checked of an n-byte block: the first and last 64 and every
 * 61st between (a whole-block check makes large blocks dominate the run). */
static size_t next_probe(size_t i, size_t n) { return i < 64 || i + 64 >= n ? i + 1 : i + 61 < n - 64 ? i + 61 : n - 64; }

static void check_fill(size_t k, size_t upto)
{
    const unsigned char *p = slot[k].p;
    for (size_t i = 0; i < upto; i = next_probe(i, upto))
        if (p[i] != slot[k].fill)
            die("contents lost", slot[k].n);
}

static void put(size_t k, unsigned char *p, size_t n, size_t align, int zeroed, unsigned char fill)
{
    if (!p)
        die("allocation failed", n);
    if (align && ((uintptr_t)p & (align - 1)))
        die("misaligned", n);
    size_t us = be->usable_size(p);
    if (us < n)
        die("usable size below the request", n);
    if (zeroed)
        for (size_t i = 0; i < n; i = next_probe(i, n))
            if (p[i])
                die("zalloc block not zero", n);
    memset(p, fill, us); /* all of the usable size is writable */
    slot[k].p = p;
    slot[k].n = n;
    slot[k].fill = fill;
}

static void drop(size_t k)
{
    if (!slot[k].p)
        return;
    check_fill(k, slot[k].n);
    be->free(slot[k].p);
    slot[k].p = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t base_align = opts.page_align ? 1 : 16;
    for (size_t i = 0; i + 4 <= size; i += 4) {
        unsigned op = data[i] % 8;
        size_t k = data[i + 1] % SLOTS;
        size_t n = (size_t)data[i + 2] | (size_t)data[i + 3] << 8;
        if ((data[i] & 0x80) && data[i + 1] >= 0xf0)
            n <<= 4; /* up to 1 MiB now and then */
        if (!n)
            n = 1;
        unsigned char fill = (unsigned char)(data[i] ^ data[i + 2] ^ 0x5a);
        ops_done++;
        switch (op) {
        case 0:
        case 1:
            drop(k);
            put(k, be->malloc(n), n, base_align, 0, fill);
            break;
        case 2:
            drop(k);
            if (be->zalloc)
                put(k, be->zalloc(n), n, base_align, 1, fill);
            break;
        case 3: {
            drop(k);
            size_t align = (size_t)16 << (data[i + 3] % 9); /* 16 .. 4096 */
            put(k, be->memalign(align, n), n, align, 0, fill);
            break;
        }
        case 4:
        case 5:
            if (slot[k].p) {
                size_t keep = slot[k].n < n ? slot[k].n : n;
                unsigned char old = slot[k].fill;
                unsigned char *q = be->realloc(slot[k].p, n);
                if (!q)
                    die("realloc failed", n);
                for (size_t j = 0; j < keep; j = next_probe(j, keep))
                    if (q[j] != old)
                        die("realloc lost contents", n);
                slot[k].p = NULL;
                put(k, q, n, base_align, 0, fill);
            } else {
                put(k, be->malloc(n), n, base_align, 0, fill);
            }
            break;
        case 6:
            drop(k);
            break;
        case 7:
            if (slot[k].p) {
                check_fill(k, slot[k].n);
                if (be->usable_size(slot[k].p) < slot[k].n)
                    die("usable size shrank", slot[k].n);
            }
            break;
        }
    }
    for (size_t k = 0; k < SLOTS; k++)
        drop(k);
    return 0;
}

/* Printed at exit by run.sh's caller through stderr: how much was done. */
__attribute__((destructor)) static void say_ops(void)
{
    char line[128];
    size_t n = ml_fmt(line, sizeof line, "fuzz_api: %llu operations\n", ops_done);
    if (write(2, line, n) < 0)
        return;
}
