/* core/lock.h: mallard's mutex, and the fork protocol for it.
 *
 * ml_mutex is a futex mutex (Drepper, "Futexes are tricky", mutex 2): the
 * word is 0 free, 1 held, 2 held with sleepers.  Taking a free mutex and
 * releasing one nobody waits for are one atomic instruction each, inline.
 * A contended lock spins briefly, then sleeps in the kernel (FUTEX_WAIT)
 * until an unlock that saw the sleepers' mark wakes one (FUTEX_WAKE).  It
 * needs no pthreads and allocates nothing, so it works before libc has set
 * up threads and inside the allocator itself.  It is on hot paths: every
 * traced call takes a block-table shard's mutex, and the backends guard
 * their shared free lists with one.  Not recursive, not fair.
 */
#ifndef ML_CORE_LOCK_H
#define ML_CORE_LOCK_H

#include "compiler.h"

typedef struct {
    int v;
} ml_mutex;
#define ML_MUTEX_INIT                                                                                        \
    {                                                                                                        \
        0                                                                                                    \
    }

/* The contended halves of lock and unlock (lock.c). */
void ml_mutex_lock_slow(ml_mutex *l);
void ml_mutex_unlock_slow(ml_mutex *l);

/* Returns with l held by the caller.  l must not already be held by it. */
static inline void ml_mutex_lock(ml_mutex *l)
{
    /* 0 -> 1 only: an exchange would wipe the "2: sleepers" mark and lose
     * their wake-up. */
    int expected = 0;
    if (ML_LIKELY(__atomic_compare_exchange_n(&l->v, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)))
        return;
    ml_mutex_lock_slow(l);
}

/* l is held by the caller; releases it and wakes one sleeper if any. */
static inline void ml_mutex_unlock(ml_mutex *l)
{
    if (ML_UNLIKELY(__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2))
        ml_mutex_unlock_slow(l);
}

/* In a fork child, which is single-threaded: forget any holder, without
 * waking anyone (the sleepers stayed in the parent). */
static inline void ml_mutex_reset(ml_mutex *l) { l->v = 0; }

/* Phases passed to the atfork slots, in the order pthread_atfork runs
 * them. */
enum ml_fork_phase { ML_FORK_PREPARE, ML_FORK_PARENT, ML_FORK_CHILD };

/* The fork protocol for one mutex: PREPARE takes l (so that no other thread
 * holds it while the process is copied), PARENT releases it, CHILD resets
 * it.  A caller with several mutexes takes them in its lock order in
 * PREPARE and releases them in the reverse order. */
void ml_lock_atfork(ml_mutex *l, enum ml_fork_phase phase);

#endif
