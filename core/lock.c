/* core/lock.c: the contended paths of ml_mutex and its fork protocol.  See
 * lock.h. */
#define _GNU_SOURCE
#include "lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void ml_mutex_lock_slow(ml_mutex *l)
{
    for (int i = 0; i < 64; i++) {
        __builtin_ia32_pause();
        int expected = 0;
        if (!__atomic_load_n(&l->v, __ATOMIC_RELAXED) &&
            __atomic_compare_exchange_n(&l->v, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
    }
    /* Mark "held with sleepers" whether or not it is free now: whoever
     * unlocks next sees 2 and wakes a sleeper, so none is forgotten. */
    while (__atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE) != 0)
        syscall(SYS_futex, &l->v, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void ml_mutex_unlock_slow(ml_mutex *l) { syscall(SYS_futex, &l->v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

void ml_lock_atfork(ml_mutex *l, enum ml_fork_phase phase)
{
    switch (phase) {
    case ML_FORK_PREPARE:
        ml_mutex_lock(l);
        break;
    case ML_FORK_PARENT:
        ml_mutex_unlock(l);
        break;
    case ML_FORK_CHILD:
        ml_mutex_reset(l);
        break;
    }
}
