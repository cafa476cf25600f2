/* core/backend.h: the one interface every allocator backend implements.
 *
 * Modelled on SQLite's sqlite3_mem_methods: a struct of function pointers,
 * one const instance per backend, chosen once at start-up.  The preload shim
 * (preload/shim.c) sits in front and hands every slot clean arguments, so
 * backends never see NULL, a zero size, an overflowed product or a bad
 * alignment.  A tracing decorator (report/trace.c) may wrap any instance by
 * exposing a struct of the same type whose slots call the inner ones.
 */
#ifndef ML_CORE_BACKEND_H
#define ML_CORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "lock.h" /* enum ml_fork_phase */

struct ml_options;

/* The block a faulting address hits (describe_fault). */
struct ml_fault_block {
    uintptr_t user; /* the block's start */
    size_t size;    /* its requested size */
    int freed;      /* 1: freed, waiting in the backend's quarantine */
};

#define ML_BACKEND_GUARDS_FREED 1u
#define ML_BACKEND_SPACED 2u     /* no block ever starts where another ends */
#define ML_BACKEND_TAKES_ZERO 4u /* malloc and memalign accept size 0 */
#define ML_FREE_OVERWRITTEN 1

struct ml_backend {
    const char *name; /* the MALLARD_BACKEND value */

    /* Called once, single-threaded, before any other slot.  It may not call
     * the host's malloc.  Returns 0, or an errno value: the shim then falls
     * back to the system backend and says so on stderr. */
    int (*init)(const struct ml_options *opt);

    /* size > 0.  Returns a block of at least size bytes aligned to 16, or
     * NULL on exhaustion (the shim sets errno). */
    void *(*malloc)(size_t size);

    /* Like malloc, but the block reads as zero.  May be NULL: the shim then
     * calls malloc and clears the block itself.  A backend provides it when
     * it can skip the clearing for memory fresh from the kernel. */
    void *(*zalloc)(size_t size);

    /* align is a power of two >= 16, size > 0.  Same contract as malloc,
     * with the block aligned to align. */
    void *(*memalign)(size_t align, size_t size);

    /* p is non-NULL.  p is normally a live block of this backend; a pointer
     * the backend does not own must be ignored, never dereferenced blindly. */
    void (*free)(void *p);

    /* p is a live block of this backend, size > 0.  On failure returns NULL
     * and p stays intact.  The first min(old, size) bytes are preserved. */
    void *(*realloc)(void *p, size_t size);

    /* p is a live block of this backend.  Returns the number of bytes that
     * may be used, >= the requested size; all of them are writable. */
    size_t (*usable_size)(const void *p);

    /* Called on the exiting thread after its last ordinary allocation; the
     * thread may still allocate afterwards, so this must leave it usable.
     * May be NULL. */
    void (*thread_exit)(void);

    /* Gives free memory back to the kernel (malloc_trim); returns 1 when
     * something was released.  May be NULL. */
    int (*trim)(void);

    /* Bytes the backend holds mapped but free, for mallinfo.  May be NULL
     * (counted as none). */
    size_t (*free_bytes)(void);

    /* Bytes in live blocks, for mallinfo, where the backend maps them
     * outside mallard's count and knows the sum exactly.  May be NULL. */
    size_t (*used_bytes)(void);

    /* Like free, for a caller that reports problems itself: returns
     * ML_FREE_OVERWRITTEN when the bytes next to the block were found
     * overwritten (the page backend's canary), else 0, and says nothing.
     * May be NULL. */
    int (*free_checked)(void *p);

    /* For a fault at addr (from a fatal-signal handler, on a thread that
     * is not inside the backend): the block whose guard page or freed
     * pages hold addr.  1 and *out filled, or 0.  May be NULL. */
    int (*describe_fault)(uintptr_t addr, struct ml_fault_block *out);

    /* ML_BACKEND_GUARDS_FREED: a freed block is made inaccessible at once
     * (the page backend), so the trace layer hands frees over immediately
     * instead of delaying them in its quarantine.
     * ML_BACKEND_SPACED: blocks never sit back to back (the page backend
     * puts a guard page after each), so the trace layer needs no spare byte
     * to keep a pointer one past a block's end out of the next block.
     * ML_BACKEND_TAKES_ZERO: set by the trace layer only, which records a
     * request for 0 bytes as 0 bytes; the shim turns 0 into 1 for anyone
     * else. */
    unsigned flags;

    /* Called in each pthread_atfork phase.  PREPARE takes every backend lock
     * so the child inherits none held; PARENT and CHILD release them.
     * May be NULL. */
    void (*atfork)(int phase);
};

/* Provided by the host of the backends (preload/boot.c): a backend calls it
 * when it first creates state for the calling thread, so that the host
 * watches the thread and calls thread_exit when it ends.  Never allocates.
 * A weak no-op stands in when the backends are linked without the preload
 * layer (unit tests). */
void ml_backend_watch_thread(void);

/* The registry, in the order MALLARD_BACKEND documents them. */
extern const struct ml_backend ml_backend_freelist;
extern const struct ml_backend ml_backend_bump;
extern const struct ml_backend ml_backend_arena;
extern const struct ml_backend ml_backend_page;
extern const struct ml_backend ml_backend_system;

/* Returns the backend named name, or NULL. */
const struct ml_backend *ml_backend_find(const char *name);

/* NULL-terminated list of every backend, for the conformance suite. */
extern const struct ml_backend *const ml_backends[];

#endif
