/* preload/boot.h: the bootstrap state machine shared by the shim.
 *
 * UNINIT -> BOOTING -> READY.  The first allocation (or mallard's
 * constructor, whichever comes first) parses the options, initialises the
 * chosen backend and registers the fork and thread-exit hooks.  Requests
 * that arrive while BOOTING on the booting thread (dlsym, pthread_atfork and
 * friends allocate) or before the environment exists are served from a
 * static bootstrap arena; its blocks can be freed (a no-op) and reallocated
 * like any other.
 */
#ifndef ML_PRELOAD_BOOT_H
#define ML_PRELOAD_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/backend.h"
#include "../core/options.h"

enum ml_state { ML_UNINIT, ML_BOOTING, ML_READY };

extern int ml_state;
/* The one pointer every call goes through: the backend, or a decorator
 * wrapping it.  Set once while BOOTING. */
extern const struct ml_backend *ml_active;
/* The backend chosen by MALLARD_BACKEND (or system, if it failed to start),
 * never the decorator: the slots only the allocator itself answers (trim,
 * free_bytes).  Set once while BOOTING. */
extern const struct ml_backend *ml_chosen;
extern struct ml_options ml_opts;
/* 1: the trace layer wraps the backend (what ml_trace_enabled() answers).
 * Set once while BOOTING, in .data's last page: asking it costs no page
 * fault, also in a fork child about to exec or _exit (report/'s flag lies
 * on a page of .bss such a child has never touched). */
extern int ml_traced;

#define ML_BOOT_ARENA_SIZE ((size_t)4 << 20)
extern char ml_boot_arena[ML_BOOT_ARENA_SIZE];

static inline int ml_boot_owns(const void *p)
{
    return (uintptr_t)p - (uintptr_t)ml_boot_arena < ML_BOOT_ARENA_SIZE;
}

/* Called by the shim while not READY: initialises if it can, then serves
 * the request from the backend or from the bootstrap arena.  align >= 16. */
void *ml_boot_alloc(size_t align, size_t size);
size_t ml_boot_usable_size(const void *p);

#endif
