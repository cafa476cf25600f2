/* core/owner.h: the owner map, which tells who owns any address.
 *
 * Every mapping that holds user blocks (ml_os_map_user) and every chunk of
 * the meta heap records its owner here, one byte per ML_OS_GRANULE, so a
 * backend or the trace layer can tell in two loads whether an arbitrary
 * pointer is one of its own before it dereferences anything.
 *
 * Two levels keyed by address: level 1 is a static array of 2^15 pointers,
 * one per 4 GiB of the 47-bit user address space; level 2 is a 64 KiB byte
 * array, one byte per 64 KiB granule, mapped on first use and installed
 * with a CAS.  Lookups never fault.
 */
#ifndef ML_CORE_OWNER_H
#define ML_CORE_OWNER_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

#define ML_OS_GRANULE_SHIFT 16
#define ML_OS_GRANULE ((size_t)1 << ML_OS_GRANULE_SHIFT) /* 64 KiB */

/* Who owns a granule.  0 means nobody mallard knows of. */
enum ml_owner {
    ML_OWNER_NONE = 0,
    ML_OWNER_META,
    ML_OWNER_FREELIST,
    ML_OWNER_FREELIST_LARGE,
    ML_OWNER_BUMP,
    ML_OWNER_BUMP_LARGE,
    ML_OWNER_ARENA,
    ML_OWNER_PAGE,
    ML_OWNER_ARENA_LARGE,
    /* Being given back: mallard owns it still, for the instant between
     * leaving the map and leaving the address space.  Anything that reads
     * granules of no owner as the program's (the leak scan's roots) skips
     * it, and the address cannot yet belong to another mapping. */
    ML_OWNER_GONE,
};

/* Records owner for every granule overlapping [p, p+size).  Recording
 * ML_OWNER_NONE or ML_OWNER_GONE never maps a level-2 table. */
void ml_os_set_owner(const void *p, size_t size, enum ml_owner owner);

/* Sets each granule of [p, p+size) still marked ML_OWNER_GONE to
 * ML_OWNER_NONE, and leaves any other alone: once the range is out of the
 * address space, another thread's new mapping may already have claimed
 * its granules, and clearing them would disown that mapping. */
void ml_os_clear_gone(const void *p, size_t size);

/* The owner of the granule holding p; ML_OWNER_NONE for any address mallard
 * never registered.  Never faults, whatever p is. */
static inline enum ml_owner ml_os_owner(const void *p);

/* The owner map's internals, exposed only for the inline lookup. */
#define ML_OS_L1_SHIFT 32
#define ML_OS_L1_SIZE ((size_t)1 << (47 - ML_OS_L1_SHIFT))
#define ML_OS_L2_SIZE ((size_t)1 << (ML_OS_L1_SHIFT - ML_OS_GRANULE_SHIFT))
struct ml_os_owner_map {
    uint8_t *l1[ML_OS_L1_SIZE];
};
extern struct ml_os_owner_map ml_os_owner_map;

static inline enum ml_owner ml_os_owner(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (ML_UNLIKELY(a >> 47))
        return ML_OWNER_NONE;
    uint8_t *l2 = __atomic_load_n(&ml_os_owner_map.l1[a >> ML_OS_L1_SHIFT], __ATOMIC_ACQUIRE);
    if (!l2)
        return ML_OWNER_NONE;
    return (enum ml_owner)l2[(a >> ML_OS_GRANULE_SHIFT) & (ML_OS_L2_SIZE - 1)];
}

#endif
