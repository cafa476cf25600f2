/* core/owner.c: the owner map.  See owner.h. */
#include "owner.h"

#include "os.h"

struct ml_os_owner_map ml_os_owner_map ML_LARGE_BSS;

/* The first level-2 table is static: a process's mappings usually all lie
 * in one 4 GiB, and a short program then makes no mapping for the map
 * (untouched, the array costs no memory). */
static uint8_t owner_l2_first[ML_OS_L2_SIZE] ML_LARGE_BSS;
/* 1: owner_l2_first is in use.  Written once by every process that maps:
 * in .data's last page (core/compiler.h). */
static int first_taken ML_STARTUP_DATA;

/* Returns the level-2 table for address a, creating it if create. */
static uint8_t *owner_l2(uintptr_t a, int create)
{
    uint8_t **slot = &ml_os_owner_map.l1[a >> ML_OS_L1_SHIFT];
    uint8_t *l2 = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (l2 || !create)
        return l2;
    int stat = !__atomic_exchange_n(&first_taken, 1, __ATOMIC_ACQ_REL);
    uint8_t *fresh = stat ? owner_l2_first : ml_os_map(ML_OS_L2_SIZE);
    if (!fresh)
        return NULL;
    uint8_t *expected = NULL;
    if (!__atomic_compare_exchange_n(slot, &expected, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        if (stat)
            __atomic_store_n(&first_taken, 0, __ATOMIC_RELEASE);
        else
            ml_os_unmap(fresh, ML_OS_L2_SIZE);
        return expected;
    }
    return fresh;
}

void ml_os_set_owner(const void *p, size_t size, enum ml_owner owner)
{
    /* Taking the level-1 slot's page by a write first (once a mapping)
     * spares the zero-page fault of a read before the first table goes in. */
    int create = owner != ML_OWNER_NONE && owner != ML_OWNER_GONE;
    if (create && !((uintptr_t)p >> 47))
        ML_WRITE_TOUCH(&ml_os_owner_map.l1[(uintptr_t)p >> ML_OS_L1_SHIFT]);
    uintptr_t a = (uintptr_t)p & ~(ML_OS_GRANULE - 1);
    uintptr_t end = (uintptr_t)p + size;
    for (; a < end; a += ML_OS_GRANULE) {
        uint8_t *l2 = owner_l2(a, create);
        if (l2)
            __atomic_store_n(&l2[(a >> ML_OS_GRANULE_SHIFT) & (ML_OS_L2_SIZE - 1)], (uint8_t)owner,
                             __ATOMIC_RELEASE);
    }
}

void ml_os_clear_gone(const void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p & ~(ML_OS_GRANULE - 1);
    uintptr_t end = (uintptr_t)p + size;
    for (; a < end; a += ML_OS_GRANULE) {
        uint8_t *l2 = owner_l2(a, 0);
        if (!l2)
            continue;
        uint8_t was = ML_OWNER_GONE;
        __atomic_compare_exchange_n(&l2[(a >> ML_OS_GRANULE_SHIFT) & (ML_OS_L2_SIZE - 1)], &was,
                                    (uint8_t)ML_OWNER_NONE, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    }
}
