/* core/meta.h: mallard's internal heap, the meta heap.
 *
 * Zeroed, 16-byte aligned blocks for mallard's own data (tables, depots,
 * the report) and for whatever libunwind, libdw or ld.so allocate while
 * mallard is inside itself.  Thread-safe, never uses the host's malloc,
 * and its blocks are owned by ML_OWNER_META in the owner map, so a free of
 * one is recognised by address.
 */
#ifndef ML_CORE_META_H
#define ML_CORE_META_H

#include <stddef.h>

#include "lock.h"

/* NULL (errno ENOMEM) when out of memory; size 0 gives a minimal block. */
void *ml_meta_alloc(size_t size);
/* A zeroed, 8-byte aligned block of size bytes (at most 64 KiB) that is
 * never freed nor resized: no header, no rounding to a class, so blocks
 * of a table that only grows lie back to back.  NULL (errno ENOMEM) when
 * out of memory.  Not for ml_meta_free, ml_meta_realloc or
 * ml_meta_usable_size. */
void *ml_meta_alloc_packed(size_t size);
/* p NULL, or a block of this heap; anything else, and a second free of the
 * same block, is ignored. */
void ml_meta_free(void *p);
/* Like realloc (p may be NULL); a size that fits keeps the block. */
void *ml_meta_realloc(void *p, size_t size);
/* Usable bytes of a block of this heap; 0 for any other pointer. */
size_t ml_meta_usable_size(const void *p);

/* From now on, requests are carved first from a 2 MiB reserve of address
 * space set aside when the heap first grew: called when the report starts,
 * so that a process short of memory still gets its report.  give_back
 * bytes of it are unmapped first (room for the stack to grow when the
 * address space is nearly used up). */
void ml_meta_reserve_open(size_t give_back);

/* Reads the file at path whole (at most max bytes) into a meta-heap buffer
 * with a NUL after the data, with open/read only: for /proc files at
 * report time.  NULL (errno set) when it cannot be opened or memory ran
 * out. */
char *ml_meta_read_file(const char *path, size_t max, size_t *len);

/* The meta heap's lock under the fork protocol of ml_lock_atfork. */
void ml_meta_atfork(int phase);

#endif
