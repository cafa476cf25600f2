/* core/owner.c: the owner map.  See owner.h. */
#include "owner.h"

#include "os.h"

uint8_t *ml_os_owner_l1[ML_OS_L1_SIZE];

/* Returns the level-2 table for address a, creating it if create. */
static uint8_t *owner_l2(uintptr_t a, int create)
{
    uint8_t **slot = &ml_os_owner_l1[a >> ML_OS_L1_SHIFT];
    uint8_t *l2 = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (l2 || !create)
        return l2;
    uint8_t *fresh = ml_os_map(ML_OS_L2_SIZE);
    if (!fresh)
        return NULL;
    uint8_t *expected = NULL;
    if (!__atomic_compare_exchange_n(slot, &expected, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        ml_os_unmap(fresh, ML_OS_L2_SIZE);
        return expected;
    }
    return fresh;
}

void ml_os_set_owner(const void *p, size_t size, enum ml_owner owner)
{
    uintptr_t a = (uintptr_t)p & ~(ML_OS_GRANULE - 1);
    uintptr_t end = (uintptr_t)p + size;
    for (; a < end; a += ML_OS_GRANULE) {
        uint8_t *l2 = owner_l2(a, owner != ML_OWNER_NONE);
        if (l2)
            __atomic_store_n(&l2[(a >> ML_OS_GRANULE_SHIFT) & (ML_OS_L2_SIZE - 1)], (uint8_t)owner,
                             __ATOMIC_RELEASE);
    }
}
