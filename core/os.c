/* core/os.c: mmap, mremap, mprotect and madvise.  See os.h. */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The mapping calls, made through syscall(2) rather than libc's wrappers,
 * which add nothing on x86-64: each wrapper would be one more symbol that
 * ld.so binds at every process start (about 800 instructions each, the
 * lookup of a GLOB_DAT import), while syscall is imported anyway.  Each
 * returns what its wrapper does: MAP_FAILED or -1 with errno set. */
static void *os_mmap(void *addr, size_t len, int prot, int flags)
{
    return (void *)syscall(SYS_mmap, addr, len, (long)prot, (long)flags, -1L, 0L);
}
static int os_munmap(void *addr, size_t len) { return (int)syscall(SYS_munmap, addr, len); }
static void *os_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
    return (void *)syscall(SYS_mremap, old, old_len, new_len, (long)flags, new_addr);
}
static int os_mprotect(void *addr, size_t len, int prot)
{
    return (int)syscall(SYS_mprotect, addr, len, (long)prot);
}
static int os_madvise(void *addr, size_t len, int advice)
{
    return (int)syscall(SYS_madvise, addr, len, (long)advice);
}

static long user_bytes ML_STARTUP_DATA; /* see ml_os_user_bytes */

static size_t os_page_size ML_STARTUP_DATA;

size_t ml_os_page_size(void)
{
    size_t ps = __atomic_load_n(&os_page_size, __ATOMIC_RELAXED);
    if (ML_UNLIKELY(!ps)) {
        ps = (size_t)getauxval(AT_PAGESZ);
        if (!ps)
            ps = 4096;
        __atomic_store_n(&os_page_size, ps, __ATOMIC_RELAXED);
    }
    return ps;
}

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

void *ml_os_map(size_t size)
{
    size = round_up(size, ml_os_page_size());
    void *p = os_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

/* Every release below saves and restores errno (os.h says why). */
void ml_os_unmap(void *p, size_t size)
{
    int saved = errno;
    if (p)
        os_munmap(p, round_up(size, ml_os_page_size()));
    errno = saved;
}

/* An aligned mapping of exactly size bytes, for when size + align does not
 * fit under RLIMIT_AS (`ulimit -v`: a 4 MiB segment needs an 8 MiB span,
 * and a program left with 4 MiB of headroom must still get its blocks, as
 * it does from glibc's brk heap).  Maps size where the kernel likes, keeps
 * it if it happens to be aligned, else asks for aligned places near it
 * without replacing anything (MAP_FIXED_NOREPLACE; a kernel older than
 * 4.17 takes it as a hint, and an answer elsewhere is given back).  The
 * kernel hands out addresses top down, so the aligned places just below
 * the first answer are the likely free ones.  NULL when none is free. */
static char *map_exact_aligned(size_t size, size_t align, int prot, int flags)
{
    char *p = os_mmap(NULL, size, prot, flags);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t at = (uintptr_t)p;
    if (!(at & (align - 1)))
        return p;
    os_munmap(p, size);
    uintptr_t down = at & ~(uintptr_t)(align - 1);
    uintptr_t try[] = {down, down + align, down - align, down - 2 * align};
    for (size_t i = 0; i < sizeof try / sizeof try[0]; i++) {
        if (try[i] < align || try[i] + size < try[i])
            continue;
        char *q = os_mmap((void *)try[i], size, prot, flags | MAP_FIXED_NOREPLACE);
        if (q == (char *)try[i])
            return q;
        if (q != MAP_FAILED)
            os_munmap(q, size);
    }
    return NULL;
}

void *ml_os_map_user(size_t size, size_t align, enum ml_owner owner, int prot_none)
{
    if (align < ML_OS_GRANULE)
        align = ML_OS_GRANULE;
    if (size > ((size_t)1 << 46) || align > ((size_t)1 << 40)) {
        errno = ENOMEM;
        return NULL;
    }
    size = round_up(size, ML_OS_GRANULE);
    size_t span = size + align - ml_os_page_size();
    int prot = prot_none ? PROT_NONE : PROT_READ | PROT_WRITE;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | (prot_none ? MAP_NORESERVE : 0);
    char *raw = os_mmap(NULL, span, prot, flags);
    char *base;
    if (raw != MAP_FAILED) {
        base = (char *)round_up((uintptr_t)raw, align);
        if (base > raw)
            os_munmap(raw, (size_t)(base - raw));
        char *end = base + size;
        if (raw + span > end)
            os_munmap(end, (size_t)(raw + span - end));
    } else if (!(base = map_exact_aligned(size, align, prot, flags))) {
        errno = ENOMEM;
        return NULL;
    }
    ml_os_set_owner(base, size, owner);
    if (!prot_none && owner != ML_OWNER_META && owner != ML_OWNER_PAGE)
        __atomic_add_fetch(&user_bytes, (long)size, __ATOMIC_RELAXED);
    return base;
}

void ml_os_unmap_user(void *p, size_t size)
{
    size = round_up(size, ML_OS_GRANULE);
    enum ml_owner o = ml_os_owner(p);
    /* GONE until the pages are out of the address space: marked free of
     * owners while still mapped, they read as the program's memory to a
     * leak scan on another thread (a block table's old slots, a freed
     * segment: every block they name looked reachable), and cleared after
     * the munmap, they could wipe the owner of a mapping made there since */
    ml_os_set_owner(p, size, ML_OWNER_GONE);
    int saved = errno;
    int rc = os_munmap(p, size);
    errno = saved;
    if (rc != 0) {
        ml_os_set_owner(p, size, o); /* still mapped (a split past vm.max_map_count): still its owner's */
        return;
    }
    ml_os_clear_gone(p, size);
    if (o != ML_OWNER_META && o != ML_OWNER_PAGE && o != ML_OWNER_NONE && o != ML_OWNER_GONE)
        __atomic_sub_fetch(&user_bytes, (long)size, __ATOMIC_RELAXED);
}

void *ml_os_remap_user(void *p, size_t old_size, size_t new_size, enum ml_owner owner)
{
    /* Pages that leave the address space leave the owner map as
     * ml_os_unmap_user's do: GONE before, cleared after.  A shrink's tail
     * starts at the first granule the smaller mapping no longer touches. */
    uintptr_t tail = round_up((uintptr_t)p + new_size, ML_OS_GRANULE), end = (uintptr_t)p + old_size;
    int shrink = new_size < old_size && tail < end;
    if (shrink)
        ml_os_set_owner((void *)tail, end - tail, ML_OWNER_GONE);
    void *q = os_mremap(p, old_size, new_size, 0, NULL);
    if (q == MAP_FAILED) {
        if (shrink)
            ml_os_set_owner((void *)tail, end - tail, owner);
        /* Move the pages to a new granule-aligned place, without copying. */
        void *dst = ml_os_map_user(new_size, 0, owner, 1);
        if (!dst)
            return NULL;
        ml_os_set_owner(p, old_size, ML_OWNER_GONE);
        q = os_mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
        if (q == MAP_FAILED) {
            ml_os_set_owner(p, old_size, owner);
            ml_os_unmap_user(dst, new_size);
            return NULL;
        }
        ml_os_clear_gone(p, old_size);
    } else if (new_size > old_size) {
        ml_os_set_owner((char *)p + old_size, new_size - old_size, owner);
    } else if (shrink) {
        ml_os_clear_gone((void *)tail, end - tail);
    }
    __atomic_add_fetch(&user_bytes, (long)new_size - (long)old_size, __ATOMIC_RELAXED);
    return q;
}

long ml_os_user_bytes(void) { return __atomic_load_n(&user_bytes, __ATOMIC_RELAXED); }

int ml_os_protect(void *p, size_t size, int rw)
{
    size_t ps = ml_os_page_size();
    uintptr_t a = (uintptr_t)p & ~(ps - 1);
    size_t len = round_up((uintptr_t)p + size - a, ps);
    int saved = errno, rc = 0;
    if (os_mprotect((void *)a, len, rw ? PROT_READ | PROT_WRITE : PROT_NONE) != 0)
        rc = errno;
    errno = saved;
    return rc;
}

void ml_os_populate(void *p, size_t size)
{
    size_t ps = ml_os_page_size();
    uintptr_t a = (uintptr_t)p & ~(ps - 1);
    uintptr_t end = round_up((uintptr_t)p + size, ps);
    int saved = errno;
    /* EINVAL before Linux 5.14: the faults then come one by one */
    os_madvise((void *)a, end - a, MADV_POPULATE_WRITE);
    errno = saved;
}

int ml_os_decommit(void *p, size_t size)
{
    size_t ps = ml_os_page_size();
    uintptr_t a = round_up((uintptr_t)p, ps);
    uintptr_t end = ((uintptr_t)p + size) & ~(ps - 1);
    int rc = 0;
    if (end > a) {
        int saved = errno;
        rc = os_madvise((void *)a, end - a, MADV_DONTNEED) == 0 ? 0 : -1;
        errno = saved;
    }
    return rc;
}
