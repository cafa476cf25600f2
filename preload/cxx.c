/* preload/cxx.c: the C++ allocation functions, operator new and delete.
 *
 * Exported under their Itanium-ABI names so that a C++ program's calls
 * bind here rather than to libstdc++'s copies (which would only call
 * malloc and free again: one hop less, and the trace layer learns which
 * family allocated each block).  Plain C: libmallard.so needs nothing but
 * libc.  With tracing on, each block records its family (malloc, new,
 * new[]) and a release by another family is reported as valgrind's
 * "Mismatched free() / delete / delete []".
 *
 * Failure: the throwing forms must run the new-handler loop and throw
 * std::bad_alloc, which C cannot do.  When the backend has no memory, the
 * request goes to the next operator new in the lookup order (libstdc++'s,
 * found with dlsym(RTLD_NEXT)): it calls malloc (mallard's) in the
 * new-handler loop and throws as the program expects.  A block it gets is
 * then re-tagged with its family.  The nothrow forms return NULL after
 * the same loop, because libstdc++'s nothrow operator new is defined as
 * "try { return operator new(n); } catch (...) { return nullptr; }".
 * This file is built with -fexceptions so the exception can unwind
 * through these frames.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "../core/os.h"
#include "../report/trace.h"
#include "boot.h"
#include "fast.h"

#define ML_EXPORT __attribute__((visibility("default")))
#define ML_READY_NOW() ML_LIKELY(__atomic_load_n(&ml_state, __ATOMIC_RELAXED) == ML_READY)

/* std::align_val_t and std::nothrow_t as the ABI passes them. */
typedef size_t ml_align_t;
struct ml_nothrow;

/* The names, in one place: the symbols below and the fallback lookups. */
#define NEW "_Znwm"
#define NEW_ARRAY "_Znam"
#define NEW_ALIGNED "_ZnwmSt11align_val_t"
#define NEW_ARRAY_ALIGNED "_ZnamSt11align_val_t"

/* The allocation itself: NULL when the backend is out of memory. */
static inline void *cxx_alloc(size_t n, size_t align, unsigned kind)
{
    if (ML_LIKELY(n) && ML_READY_NOW()) {
        const struct ml_backend *a = ml_active;
        ml_fast_note();
        if (ML_LIKELY(a == ml_chosen))
            return align <= 16 ? a->malloc(n) : a->memalign(align, n);
        if (ML_UNLIKELY(ml_inject_enabled()))
            return ml_inject_cxx_alloc(align, n, kind);
        if (ml_trace_enabled())
            return ml_trace_alloc(align, n, kind);
        return align <= 16 ? a->malloc(n) : a->memalign(align, n); /* MALLARD_STATS' decorator */
    }
    /* new(0) and the bootstrap: the C entry points know both cases */
    void *p = align <= 16 ? malloc(n) : aligned_alloc(align, n);
    if (p && kind != ML_ALLOC_MALLOC && ML_READY_NOW() && ml_trace_enabled())
        ml_trace_set_kind(p, kind);
    return p;
}

/* glibc 2.36's aligned_alloc takes any power of two; the ABI promises one.
 * Below 16 every block is aligned anyway. */
static inline size_t cxx_align(ml_align_t a) { return a < 16 ? 16 : a; }

static void *cxx_next(const char *name, size_t n, size_t align, unsigned kind)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort(); /* no C++ runtime behind us, yet operator new was called */
    void *p = align ? ((void *(*)(size_t, size_t))f)(n, align) : ((void *(*)(size_t))f)(n);
    /* it allocated through malloc or aligned_alloc: record the family */
    if (ML_READY_NOW() && ml_trace_enabled())
        ml_trace_set_kind(p, kind);
    return p;
}

/* free()'s rules (preload/shim.c), then the family check when tracing. */
static __attribute__((noinline)) void cxx_free_slow(void *p, unsigned kind)
{
    if (ML_UNLIKELY(!p || ml_boot_owns(p) || !ML_READY_NOW()))
        return;
    const struct ml_backend *a = ml_active;
    if (ML_LIKELY(a == ml_chosen))
        a->free(p);
    else if (ML_UNLIKELY(ml_inject_enabled()))
        ml_inject_cxx_free(p, kind);
    else if (ml_trace_enabled())
        ml_trace_free(p, kind);
    else
        a->free(p); /* MALLARD_STATS' decorator */
}

/* The fused fast path first (fast.h), with no stack frame; the rest out of
 * line. */
static inline __attribute__((always_inline)) void cxx_free(void *p, unsigned kind)
{
    if (ml_fast_free(p))
        return;
    cxx_free_slow(p, kind);
}

/* A throwing operator new past the fast path: the backend, else the next
 * operator new (which runs the new-handler loop and throws). */
static __attribute__((noinline)) void *cxx_new_slow(size_t n, unsigned kind, const char *name)
{
    void *p = cxx_alloc(n, 16, kind);
    return ML_LIKELY(p) ? p : cxx_next(name, n, 0, kind);
}

#define CXX_FAST_NEW(n)                                                                                      \
    do {                                                                                                     \
        void *fast_p = ml_fast_malloc(n);                                                                    \
        if (ML_LIKELY(fast_p))                                                                               \
            return fast_p;                                                                                   \
    } while (0)

/* ---- new --------------------------------------------------------------- */

ML_EXPORT void *_Znwm(size_t n);
ML_EXPORT void *_Znam(size_t n);
ML_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const struct ml_nothrow *nt);
ML_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const struct ml_nothrow *nt);
ML_EXPORT void *_ZnwmSt11align_val_t(size_t n, ml_align_t a);
ML_EXPORT void *_ZnamSt11align_val_t(size_t n, ml_align_t a);
ML_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, ml_align_t a, const struct ml_nothrow *nt);
ML_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, ml_align_t a, const struct ml_nothrow *nt);

ML_EXPORT void *_Znwm(size_t n)
{
    CXX_FAST_NEW(n);
    return cxx_new_slow(n, ML_ALLOC_NEW, NEW);
}

ML_EXPORT void *_Znam(size_t n)
{
    CXX_FAST_NEW(n);
    return cxx_new_slow(n, ML_ALLOC_NEW_ARRAY, NEW_ARRAY);
}

ML_EXPORT void *_ZnwmSt11align_val_t(size_t n, ml_align_t a)
{
    void *p = cxx_alloc(n, cxx_align(a), ML_ALLOC_NEW);
    return ML_LIKELY(p) ? p : cxx_next(NEW_ALIGNED, n, a, ML_ALLOC_NEW);
}

ML_EXPORT void *_ZnamSt11align_val_t(size_t n, ml_align_t a)
{
    void *p = cxx_alloc(n, cxx_align(a), ML_ALLOC_NEW_ARRAY);
    return ML_LIKELY(p) ? p : cxx_next(NEW_ARRAY_ALIGNED, n, a, ML_ALLOC_NEW_ARRAY);
}

/* The nothrow forms call the throwing ones (ours, so the family is right
 * either way) and turn the exception into NULL, as libstdc++ does. */
typedef void *(*ml_nothrow_fn)(size_t, const struct ml_nothrow *);
typedef void *(*ml_nothrow_aligned_fn)(size_t, ml_align_t, const struct ml_nothrow *);

ML_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const struct ml_nothrow *nt)
{
    CXX_FAST_NEW(n);
    void *p = cxx_alloc(n, 16, ML_ALLOC_NEW);
    if (ML_LIKELY(p))
        return p;
    ml_nothrow_fn f = (ml_nothrow_fn)dlsym(RTLD_NEXT, "_ZnwmRKSt9nothrow_t");
    return f ? f(n, nt) : NULL; /* it calls _Znwm, which is ours */
}

ML_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const struct ml_nothrow *nt)
{
    CXX_FAST_NEW(n);
    void *p = cxx_alloc(n, 16, ML_ALLOC_NEW_ARRAY);
    if (ML_LIKELY(p))
        return p;
    ml_nothrow_fn f = (ml_nothrow_fn)dlsym(RTLD_NEXT, "_ZnamRKSt9nothrow_t");
    return f ? f(n, nt) : NULL;
}

ML_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, ml_align_t a, const struct ml_nothrow *nt)
{
    void *p = cxx_alloc(n, cxx_align(a), ML_ALLOC_NEW);
    if (ML_LIKELY(p))
        return p;
    ml_nothrow_aligned_fn f = (ml_nothrow_aligned_fn)dlsym(RTLD_NEXT, "_ZnwmSt11align_val_tRKSt9nothrow_t");
    return f ? f(n, a, nt) : NULL;
}

ML_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, ml_align_t a, const struct ml_nothrow *nt)
{
    void *p = cxx_alloc(n, cxx_align(a), ML_ALLOC_NEW_ARRAY);
    if (ML_LIKELY(p))
        return p;
    ml_nothrow_aligned_fn f = (ml_nothrow_aligned_fn)dlsym(RTLD_NEXT, "_ZnamSt11align_val_tRKSt9nothrow_t");
    return f ? f(n, a, nt) : NULL;
}

/* ---- delete ------------------------------------------------------------ */

ML_EXPORT void _ZdlPv(void *p);
ML_EXPORT void _ZdaPv(void *p);
ML_EXPORT void _ZdlPvm(void *p, size_t n);
ML_EXPORT void _ZdaPvm(void *p, size_t n);
ML_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const struct ml_nothrow *nt);
ML_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const struct ml_nothrow *nt);
ML_EXPORT void _ZdlPvSt11align_val_t(void *p, ml_align_t a);
ML_EXPORT void _ZdaPvSt11align_val_t(void *p, ml_align_t a);
ML_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, ml_align_t a);
ML_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, ml_align_t a);
ML_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, ml_align_t a, const struct ml_nothrow *nt);
ML_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, ml_align_t a, const struct ml_nothrow *nt);

ML_EXPORT void _ZdlPv(void *p) { cxx_free(p, ML_ALLOC_NEW); }
ML_EXPORT void _ZdaPv(void *p) { cxx_free(p, ML_ALLOC_NEW_ARRAY); }
ML_EXPORT void _ZdlPvm(void *p, size_t n)
{
    (void)n;
    cxx_free(p, ML_ALLOC_NEW);
}
ML_EXPORT void _ZdaPvm(void *p, size_t n)
{
    (void)n;
    cxx_free(p, ML_ALLOC_NEW_ARRAY);
}
ML_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const struct ml_nothrow *nt)
{
    (void)nt;
    cxx_free(p, ML_ALLOC_NEW);
}
ML_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const struct ml_nothrow *nt)
{
    (void)nt;
    cxx_free(p, ML_ALLOC_NEW_ARRAY);
}
ML_EXPORT void _ZdlPvSt11align_val_t(void *p, ml_align_t a)
{
    (void)a;
    cxx_free(p, ML_ALLOC_NEW);
}
ML_EXPORT void _ZdaPvSt11align_val_t(void *p, ml_align_t a)
{
    (void)a;
    cxx_free(p, ML_ALLOC_NEW_ARRAY);
}
ML_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, ml_align_t a)
{
    (void)n;
    (void)a;
    cxx_free(p, ML_ALLOC_NEW);
}
ML_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, ml_align_t a)
{
    (void)n;
    (void)a;
    cxx_free(p, ML_ALLOC_NEW_ARRAY);
}
ML_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, ml_align_t a, const struct ml_nothrow *nt)
{
    (void)a;
    (void)nt;
    cxx_free(p, ML_ALLOC_NEW);
}
ML_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, ml_align_t a, const struct ml_nothrow *nt)
{
    (void)a;
    (void)nt;
    cxx_free(p, ML_ALLOC_NEW_ARRAY);
}
