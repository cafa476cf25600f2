/* core/os.h: mallard's only door to the kernel, and its internal memory.
 *
 * Every mapping that holds user blocks goes through ml_os_map_user, which
 * aligns it to ML_OS_GRANULE and records its owner in a two-level map, so a
 * backend can tell in two loads whether an arbitrary pointer is one of its
 * own before it dereferences anything.  Internal metadata (tables, depots,
 * allocations made by libunwind or libdw while mallard runs) comes from the
 * meta heap, which never touches the host's malloc.
 */
#ifndef ML_CORE_OS_H
#define ML_CORE_OS_H

#include <stddef.h>
#include <stdint.h>

#define ML_OS_GRANULE_SHIFT 16
#define ML_OS_GRANULE ((size_t)1 << ML_OS_GRANULE_SHIFT) /* 64 KiB */

#define ML_LIKELY(x) __builtin_expect(!!(x), 1)
#define ML_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ML_HIDDEN __attribute__((visibility("hidden")))
#define ML_TLS __attribute__((tls_model("initial-exec"))) __thread

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
};

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
/* Bytes of read-write user mappings made through ml_os_map_user and not
 * unmapped yet, the page backend's excluded: what mallinfo reports as the
 * arena.  A backend that resizes a mapping itself (mremap) adds the
 * difference. */
extern long ml_os_user_bytes;

/* Records owner for every granule overlapping [p, p+size). */
void ml_os_set_owner(const void *p, size_t size, enum ml_owner owner);

/* The owner of the granule holding p; ML_OWNER_NONE for any address mallard
 * never registered.  Never faults, whatever p is. */
static inline enum ml_owner ml_os_owner(const void *p);

/* mprotect on whole pages: rw != 0 gives read-write, else PROT_NONE.
 * Returns 0 or an errno value (ENOMEM when vm.max_map_count is reached). */
int ml_os_protect(void *p, size_t size, int rw);
/* Gives the pages back to the kernel; they read as zero when next touched. */
void ml_os_decommit(void *p, size_t size);

/* The internal heap: zeroed, 16-byte aligned blocks for mallard's own data
 * and for libraries called from inside mallard.  Thread-safe, never uses the
 * host's malloc, and its blocks are owned by ML_OWNER_META. */
void *ml_meta_alloc(size_t size);
void ml_meta_free(void *p);
void *ml_meta_realloc(void *p, size_t size);
size_t ml_meta_usable_size(const void *p);
/* Reads the file at path whole (at most max bytes) into a meta-heap buffer
 * with a NUL after the data, with open/read only: for /proc files at
 * report time.  NULL (errno set) when it cannot be opened or memory ran
 * out. */
char *ml_meta_read_file(const char *path, size_t max, size_t *len);

/* atfork: PREPARE takes the meta lock, PARENT/CHILD release it. */
void ml_meta_atfork(int phase);

/* The owner map's internals, exposed only for the inline lookup. */
#define ML_OS_L1_SHIFT 32
#define ML_OS_L1_SIZE ((size_t)1 << (47 - ML_OS_L1_SHIFT))
#define ML_OS_L2_SIZE ((size_t)1 << (ML_OS_L1_SHIFT - ML_OS_GRANULE_SHIFT))
extern uint8_t *ml_os_owner_l1[ML_OS_L1_SIZE];

static inline enum ml_owner ml_os_owner(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (ML_UNLIKELY(a >> 47))
        return ML_OWNER_NONE;
    uint8_t *l2 = __atomic_load_n(&ml_os_owner_l1[a >> ML_OS_L1_SHIFT], __ATOMIC_ACQUIRE);
    if (!l2)
        return ML_OWNER_NONE;
    return (enum ml_owner)l2[(a >> ML_OS_GRANULE_SHIFT) & (ML_OS_L2_SIZE - 1)];
}

/* A lock for paths that are never hot: cheap, fork-safe when taken in
 * atfork PREPARE, and usable before pthreads is initialised. */
typedef struct {
    int v;
} ml_mutex;
#define ML_MUTEX_INIT                                                                                        \
    {                                                                                                        \
        0                                                                                                    \
    }
void ml_mutex_lock_slow(ml_mutex *l);
void ml_mutex_unlock_slow(ml_mutex *l);
static inline void ml_mutex_lock(ml_mutex *l)
{
    /* 0 -> 1 only: an exchange would wipe the "2: sleepers" mark and lose
     * their wake-up. */
    int expected = 0;
    if (ML_LIKELY(__atomic_compare_exchange_n(&l->v, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)))
        return;
    ml_mutex_lock_slow(l);
}
static inline void ml_mutex_unlock(ml_mutex *l)
{
    if (ML_UNLIKELY(__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2))
        ml_mutex_unlock_slow(l);
}
/* After fork the child is single-threaded: forget any holder. */
static inline void ml_mutex_reset(ml_mutex *l) { l->v = 0; }

#endif
