/* core/os.h: mallard's only door to the kernel for memory.
 *
 * Plain mappings (ml_os_map) for mallard's own tables, and user mappings
 * (ml_os_map_user) for blocks: aligned to ML_OS_GRANULE, recorded in the
 * owner map (owner.h), counted in ml_os_user_bytes().  The releasing calls
 * (ml_os_unmap, ml_os_unmap_user, ml_os_protect, ml_os_decommit) leave
 * errno as they found it: free() must not change errno (POSIX 2024,
 * glibc's tst-free-errno), and an munmap or madvise that fails (no map slot
 * left to split a mapping) sets it.
 */
#ifndef ML_CORE_OS_H
#define ML_CORE_OS_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "owner.h"

/* Page size, read once from the auxiliary vector. */
size_t ml_os_page_size(void);

/* Anonymous private read-write mapping of size bytes (rounded up to pages).
 * Returns NULL with errno ENOMEM when the kernel refuses. Not registered. */
void *ml_os_map(size_t size);
/* Unmaps what ml_os_map returned; size is the size passed to it. */
void ml_os_unmap(void *p, size_t size);

/* A mapping for user blocks: size rounded up to ML_OS_GRANULE, base aligned
 * to max(align, ML_OS_GRANULE), every granule recorded as owned by owner.
 * prot_none reserves address space only (PROT_NONE).  NULL/ENOMEM when the
 * kernel refuses. */
void *ml_os_map_user(size_t size, size_t align, enum ml_owner owner, int prot_none);
/* Forgets the owner of [p, p+size) and unmaps it.  p and size as returned
 * by / passed to ml_os_map_user. */
void ml_os_unmap_user(void *p, size_t size);
/* Resizes the read-write user mapping [p, p+old_size) (granule multiples,
 * from ml_os_map_user) to new_size bytes (a granule multiple) keeping its
 * first min(old_size, new_size) bytes, without copying: in place when the
 * kernel can, else at a fresh granule-aligned place.  The owner map (owner
 * for the granules gained, none for those given up) and ml_os_user_bytes()
 * follow.  Returns the mapping's address, or NULL (errno set) with
 * [p, p+old_size) intact. */
void *ml_os_remap_user(void *p, size_t old_size, size_t new_size, enum ml_owner owner);
/* Bytes of read-write user mappings made through ml_os_map_user and not
 * unmapped yet, the page backend's excluded: what mallinfo reports as the
 * arena.  A relaxed read: other threads may be mapping meanwhile. */
long ml_os_user_bytes(void);

/* mprotect on whole pages: rw != 0 gives read-write, else PROT_NONE.
 * Returns 0 or an errno value (ENOMEM when vm.max_map_count is reached). */
int ml_os_protect(void *p, size_t size, int rw);
/* Gives the whole pages inside [p, p + size) back to the kernel; they read
 * as zero when next touched.  0, or -1 when the kernel refused (a locked
 * mapping): the pages then keep what they held. */
int ml_os_decommit(void *p, size_t size);
/* Makes the pages of [p, p + size) resident and writable in one call, where
 * touching them would fault once a page; a hint (nothing on old kernels). */
void ml_os_populate(void *p, size_t size);

#endif
