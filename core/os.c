/* core/os.c: mmap, mremap, mprotect and madvise.  See os.h. */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

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
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
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
        munmap(p, round_up(size, ml_os_page_size()));
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
    char *p = mmap(NULL, size, prot, flags, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t at = (uintptr_t)p;
    if (!(at & (align - 1)))
        return p;
    munmap(p, size);
    uintptr_t down = at & ~(uintptr_t)(align - 1);
    uintptr_t try[] = {down, down + align, down - align, down - 2 * align};
    for (size_t i = 0; i < sizeof try / sizeof try[0]; i++) {
        if (try[i] < align || try[i] + size < try[i])
            continue;
        char *q = mmap((void *)try[i], size, prot, flags | MAP_FIXED_NOREPLACE, -1, 0);
        if (q == (char *)try[i])
            return q;
        if (q != MAP_FAILED)
            munmap(q, size);
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
    char *raw = mmap(NULL, span, prot, flags, -1, 0);
    char *base;
    if (raw != MAP_FAILED) {
        base = (char *)round_up((uintptr_t)raw, align);
        if (base > raw)
            munmap(raw, (size_t)(base - raw));
        char *end = base + size;
        if (raw + span > end)
            munmap(end, (size_t)(raw + span - end));
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
    if (o != ML_OWNER_META && o != ML_OWNER_PAGE && o != ML_OWNER_NONE)
        __atomic_sub_fetch(&user_bytes, (long)size, __ATOMIC_RELAXED);
    ml_os_set_owner(p, size, ML_OWNER_NONE);
    int saved = errno;
    munmap(p, size);
    errno = saved;
}

void *ml_os_remap_user(void *p, size_t old_size, size_t new_size, enum ml_owner owner)
{
    void *q = mremap(p, old_size, new_size, 0);
    if (q == MAP_FAILED) {
        /* Move the pages to a new granule-aligned place, without copying. */
        void *dst = ml_os_map_user(new_size, 0, owner, 1);
        if (!dst)
            return NULL;
        q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
        if (q == MAP_FAILED) {
            ml_os_unmap_user(dst, new_size);
            return NULL;
        }
        ml_os_set_owner(p, old_size, ML_OWNER_NONE);
    } else if (new_size > old_size) {
        ml_os_set_owner((char *)p + old_size, new_size - old_size, owner);
    } else {
        ml_os_set_owner((char *)p + new_size, old_size - new_size, ML_OWNER_NONE);
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
    if (mprotect((void *)a, len, rw ? PROT_READ | PROT_WRITE : PROT_NONE) != 0)
        rc = errno;
    errno = saved;
    return rc;
}

void ml_os_decommit(void *p, size_t size)
{
    size_t ps = ml_os_page_size();
    uintptr_t a = round_up((uintptr_t)p, ps);
    uintptr_t end = ((uintptr_t)p + size) & ~(ps - 1);
    if (end > a) {
        int saved = errno;
        madvise((void *)a, end - a, MADV_DONTNEED);
        errno = saved;
    }
}
