/* preload/shim.c: the exported malloc family.
 *
 * Each function checks its arguments once, the way glibc 2.36 does, and
 * makes one indirect call through ml_active.  Backends therefore never see
 * NULL, size 0, an overflowed product or a bad alignment.  Until the state
 * is READY every request detours through preload/boot.c.
 *
 * The bare freelist, bump and arena backends (no decorator) are fused
 * (fast.h): malloc, calloc and free of small blocks pop or push the
 * thread's state inline before anything else; whatever that cannot finish
 * takes the ordinary path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "../core/os.h"
#include "../report/trace.h"
#include "boot.h"
#include "fast.h"
#define MALLARD_API __attribute__((visibility("default"))) /* defined here, not weak */
#include "mallard.h"

#define ML_EXPORT __attribute__((visibility("default")))
#define ML_READY_NOW() ML_LIKELY(__atomic_load_n(&ml_state, __ATOMIC_RELAXED) == ML_READY)

/* A request for 0 bytes: 1 for a backend, 0 for the trace layer, which
 * reports the size the program asked for (ML_BACKEND_TAKES_ZERO). */
static inline size_t zero_request(void) { return !(ml_active->flags & ML_BACKEND_TAKES_ZERO); }

static inline void *alloc_aligned(size_t align, size_t size)
{
    if (!ML_READY_NOW())
        return ml_boot_alloc(align, size ? size : 1);
    if (size == 0)
        size = zero_request();
    void *p = align <= 16 ? ml_active->malloc(size) : ml_active->memalign(align, size);
    if (ML_UNLIKELY(!p))
        errno = ENOMEM;
    return p;
}

int ml_fast; /* see fast.h */

/* malloc past the fast path: sizes above 1 KiB or 0, an empty bin,
 * another configuration, the bootstrap.  Out of line, so that malloc's fast
 * path needs no stack frame. */
static __attribute__((noinline)) void *malloc_slow(size_t size)
{
    if (ML_LIKELY(size) && ML_READY_NOW()) {
        ml_fast_note();
        void *p = ml_active->malloc(size);
        if (ML_UNLIKELY(!p))
            errno = ENOMEM;
        return p;
    }
    return alloc_aligned(16, size);
}

ML_EXPORT void *malloc(size_t size)
{
    void *p = ml_fast_malloc(size);
    if (ML_LIKELY(p))
        return p;
    return malloc_slow(size);
}

static __attribute__((noinline)) void free_slow(void *p)
{
    if (ML_UNLIKELY(!p || ml_boot_owns(p)))
        return;
    if (ML_UNLIKELY(!ML_READY_NOW()))
        return; /* not ours: nothing was handed out but bootstrap blocks */
    ml_active->free(p);
}

ML_EXPORT void free(void *p)
{
    if (ml_fast_free(p))
        return;
    free_slow(p);
}

ML_EXPORT void *calloc(size_t n, size_t size)
{
    size_t total;
    if (ML_UNLIKELY(__builtin_mul_overflow(n, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    void *fp = ml_fast_zalloc(total);
    if (ML_LIKELY(fp))
        return fp;
    if (ML_LIKELY(total) && ML_READY_NOW() && ml_active->zalloc) {
        ml_fast_note();
        void *p = ml_active->zalloc(total);
        if (ML_UNLIKELY(!p))
            errno = ENOMEM;
        ml_scrub_scratch(); /* the copy of p this function made, too */
        return p;
    }
    void *p = alloc_aligned(16, total);
    if (p && !ml_boot_owns(p)) /* bootstrap memory is static, hence zero */
        memset(p, 0, total ? total : 1);
    return p;
}

static void *realloc_bootstrap(void *p, size_t size)
{
    void *q = alloc_aligned(16, size);
    if (q) {
        size_t old = ml_boot_usable_size(p);
        memcpy(q, p, old < size ? old : size);
    }
    return q;
}

ML_EXPORT void *realloc(void *p, size_t size)
{
    if (!p)
        return alloc_aligned(16, size);
    if (size == 0) {
        free(p);
        return NULL;
    }
    if (ML_UNLIKELY(ml_boot_owns(p)))
        return realloc_bootstrap(p, size);
    if (ML_UNLIKELY(!ML_READY_NOW())) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = ml_active->realloc(p, size);
    if (ML_UNLIKELY(!q))
        errno = ENOMEM;
    return q;
}

ML_EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

static int is_pow2(size_t a) { return a && !(a & (a - 1)); }

/* glibc 2.36 memalign: alignments below 16 act as 16, others are rounded up
 * to a power of two, absurd ones fail with EINVAL. */
static void *memalign_glibc(size_t align, size_t size)
{
    if (align <= 16) {
        /* An explicit request still goes to memalign: with
         * MALLARD_PAGE_ALIGN=1, malloc's blocks are byte-aligned. */
        if (!ML_READY_NOW())
            return ml_boot_alloc(16, size ? size : 1);
        void *p = ml_active->memalign(16, size ? size : zero_request());
        if (ML_UNLIKELY(!p))
            errno = ENOMEM;
        return p;
    }
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (!is_pow2(align))
        align = (size_t)1 << (64 - __builtin_clzl(align));
    if (size > SIZE_MAX - align - ml_os_page_size()) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_aligned(align, size);
}

ML_EXPORT void *memalign(size_t align, size_t size) { return memalign_glibc(align, size); }

ML_EXPORT void *aligned_alloc(size_t align, size_t size) { return memalign_glibc(align, size); }

ML_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (align % sizeof(void *) != 0 || !is_pow2(align))
        return EINVAL;
    /* glibc leaves errno set to ENOMEM on failure too */
    void *p = memalign_glibc(align, size);
    if (!p)
        return errno;
    *out = p;
    return 0;
}

ML_EXPORT void *valloc(size_t size) { return memalign_glibc(ml_os_page_size(), size); }

ML_EXPORT void *pvalloc(size_t size)
{
    size_t ps = ml_os_page_size();
    if (size > SIZE_MAX - 2 * ps) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (size + ps - 1) & ~(ps - 1);
    return memalign_glibc(ps, rounded ? rounded : ps);
}

ML_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (ml_boot_owns(p))
        return ml_boot_usable_size(p);
    if (!ML_READY_NOW())
        return 0;
    return ml_active->usable_size(p);
}

/* Old names that glibc and some programs still reach. */
void cfree(void *p);
void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
ML_EXPORT void cfree(void *p) { free(p); }
ML_EXPORT void *__libc_malloc(size_t size) { return malloc(size); }
ML_EXPORT void __libc_free(void *p) { free(p); }
ML_EXPORT void *__libc_calloc(size_t n, size_t size) { return calloc(n, size); }
ML_EXPORT void *__libc_realloc(void *p, size_t size) { return realloc(p, size); }
ML_EXPORT void *__libc_memalign(size_t align, size_t size) { return memalign(align, size); }
ML_EXPORT void *__libc_valloc(size_t size) { return valloc(size); }
ML_EXPORT void *__libc_pvalloc(size_t size) { return pvalloc(size); }

/* ---- the public API (mallard.h) ----------------------------------------- */

ML_EXPORT const char *mallard_tag(const char *name)
{
    if (!ML_READY_NOW() || !ml_trace_enabled())
        return NULL;
    return ml_trace_set_tag(name);
}

/* ---- glibc's malloc introspection ---------------------------------------
 * Left to glibc, these would describe glibc's own, unused heap.  mallard's
 * answers: the arena is the read-write memory it has mapped for blocks;
 * in-use bytes are exact when tracing (the requested sizes of live blocks),
 * otherwise the arena less what the backend knows to be free. */

struct mallinfo2 mallinfo2(void);
struct mallinfo mallinfo(void);
int malloc_trim(size_t pad);
int mallopt(int param, int value);
void malloc_stats(void);
int malloc_info(int options, FILE *fp);

static void usage(size_t *arena, size_t *in_use)
{
    long mapped = ml_os_user_bytes();
    size_t a = mapped > 0 ? (size_t)mapped : 0;
    size_t used;
    if (ML_READY_NOW() && ml_trace_enabled()) {
        used = ml_trace_current_bytes();
    } else if (ML_READY_NOW() && ml_chosen->used_bytes) {
        used = ml_chosen->used_bytes();
    } else {
        size_t free_bytes = ML_READY_NOW() && ml_chosen->free_bytes ? ml_chosen->free_bytes() : 0;
        used = a > free_bytes ? a - free_bytes : 0;
    }
    if (used > a)
        a = used; /* system and page backends map outside mallard's count */
    *arena = a;
    *in_use = used;
}

/* The system backend, untraced: glibc's own heap holds the blocks, and
 * glibc's figures describe it. */
static int glibc_mallinfo2(struct mallinfo2 *m)
{
    if (!ML_READY_NOW() || ml_chosen != &ml_backend_system || ml_trace_enabled())
        return 0;
    struct mallinfo2 (*real)(void) = (struct mallinfo2(*)(void))dlsym(RTLD_NEXT, "mallinfo2");
    if (!real)
        return 0;
    *m = real();
    return 1;
}

ML_EXPORT struct mallinfo2 mallinfo2(void)
{
    struct mallinfo2 m;
    if (glibc_mallinfo2(&m))
        return m;
    memset(&m, 0, sizeof m);
    usage(&m.arena, &m.uordblks);
    m.fordblks = m.arena - m.uordblks;
    m.ordblks = 1;
    return m;
}

ML_EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m;
    memset(&m, 0, sizeof m);
    m.arena = (int)m2.arena;
    m.uordblks = (int)m2.uordblks;
    m.fordblks = (int)m2.fordblks;
    m.ordblks = (int)m2.ordblks;
    return m;
}

ML_EXPORT int malloc_trim(size_t pad)
{
    (void)pad;
    if (ML_READY_NOW() && ml_chosen->trim)
        return ml_chosen->trim();
    return 0;
}

/* Every mallopt knob is glibc-specific; accepting them keeps programs that
 * tune glibc (M_ARENA_MAX, M_MMAP_THRESHOLD, ...) running unchanged. */
ML_EXPORT int mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1;
}

ML_EXPORT void malloc_stats(void)
{
    size_t arena, used;
    usage(&arena, &used);
    char buf[512];
    size_t n = ml_fmt(buf, sizeof buf,
                      "Arena 0:\nsystem bytes     = %10zu\nin use bytes     = %10zu\nTotal (incl. mmap):\n"
                      "system bytes     = %10zu\nin use bytes     = %10zu\nmax mmap regions = %10d\n"
                      "max mmap bytes   = %10d\n",
                      arena, used, arena, used, 0, 0);
    ml_write_all(2, buf, n);
}

ML_EXPORT int malloc_info(int options, FILE *fp)
{
    if (options != 0)
        return EINVAL; /* as glibc: the error is the result, errno is left alone */
    size_t arena, used;
    usage(&arena, &used);
    fprintf(fp,
            "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n</sizes>\n"
            "<total type=\"fast\" count=\"0\" size=\"0\"/>\n<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n"
            "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
            "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n</heap>\n"
            "<total type=\"fast\" count=\"0\" size=\"0\"/>\n<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n"
            "<total type=\"mmap\" count=\"0\" size=\"0\"/>\n<system type=\"current\" size=\"%zu\"/>\n"
            "<system type=\"max\" size=\"%zu\"/>\n<aspace type=\"total\" size=\"%zu\"/>\n"
            "<aspace type=\"mprotect\" size=\"%zu\"/>\n</malloc>\n",
            arena - used, arena, arena, arena, arena, arena - used, arena, arena, arena, arena);
    return 0;
}
