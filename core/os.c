/* core/os.c: mmap, mprotect and madvise, the owner map, and the meta heap.
 *
 * Owner map: two levels keyed by address.  Level 1 is a static array of
 * 2^15 pointers, one per 4 GiB of the 47-bit user address space; level 2 is
 * a 64 KiB byte array, one byte per 64 KiB granule, mapped on first use and
 * installed with a CAS.  Lookups take two loads and never fault.
 *
 * Meta heap: power-of-two classes from 16 bytes to 64 KiB on per-class free
 * lists under one lock, carved from 1 MiB chunks; larger requests get their
 * own mapping.  Each block carries a 16-byte header with its class.  It is
 * slow and simple on purpose: it serves mallard's tables and whatever
 * libunwind or libdw allocate while mallard is inside itself.
 */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

uint8_t *ml_os_owner_l1[ML_OS_L1_SIZE];
long ml_os_user_bytes;

static size_t os_page_size;

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

/* free() must leave errno alone (POSIX 2024, glibc's tst-free-errno), and
 * an munmap or madvise that fails (no map slot left to split a mapping)
 * sets it: every release below saves and restores it. */
void ml_os_unmap(void *p, size_t size)
{
    int saved = errno;
    if (p)
        munmap(p, round_up(size, ml_os_page_size()));
    errno = saved;
}

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
    if (raw == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    char *base = (char *)round_up((uintptr_t)raw, align);
    if (base > raw)
        munmap(raw, (size_t)(base - raw));
    char *end = base + size;
    if (raw + span > end)
        munmap(end, (size_t)(raw + span - end));
    ml_os_set_owner(base, size, owner);
    if (!prot_none && owner != ML_OWNER_META && owner != ML_OWNER_PAGE)
        __atomic_add_fetch(&ml_os_user_bytes, (long)size, __ATOMIC_RELAXED);
    return base;
}

void ml_os_unmap_user(void *p, size_t size)
{
    size = round_up(size, ML_OS_GRANULE);
    enum ml_owner o = ml_os_owner(p);
    if (o != ML_OWNER_META && o != ML_OWNER_PAGE && o != ML_OWNER_NONE)
        __atomic_sub_fetch(&ml_os_user_bytes, (long)size, __ATOMIC_RELAXED);
    ml_os_set_owner(p, size, ML_OWNER_NONE);
    int saved = errno;
    munmap(p, size);
    errno = saved;
}

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

/* A futex mutex (Drepper, "Futexes are tricky", mutex 2): 0 free, 1 held,
 * 2 held with waiters.  No pthreads, no allocation. */
void ml_mutex_lock_slow(ml_mutex *l)
{
    for (int i = 0; i < 64; i++) {
        __builtin_ia32_pause();
        int expected = 0;
        if (!__atomic_load_n(&l->v, __ATOMIC_RELAXED) &&
            __atomic_compare_exchange_n(&l->v, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
    }
    while (__atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE) != 0)
        syscall(SYS_futex, &l->v, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void ml_mutex_unlock_slow(ml_mutex *l) { syscall(SYS_futex, &l->v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

/* ---- the meta heap ---------------------------------------------------- */

#define META_MIN_SHIFT 4
#define META_MAX_SHIFT 16
#define META_CLASSES (META_MAX_SHIFT - META_MIN_SHIFT + 1)
#define META_CHUNK ((size_t)1 << 20)
#define META_HDR 16
#define META_BIG 0xffffffffu

struct meta_hdr {
    uint32_t cls; /* class index, or META_BIG */
    uint32_t magic;
    uint64_t size; /* mapping size for META_BIG */
};
#define META_MAGIC 0x6d6c6d74u

static struct {
    ml_mutex lock;
    void *free[META_CLASSES];
    char *cur, *end;
} meta;

static unsigned meta_class(size_t n)
{
    size_t need = n + META_HDR;
    unsigned c = 0;
    while (((size_t)1 << (c + META_MIN_SHIFT)) < need)
        c++;
    return c;
}

void *ml_meta_alloc(size_t size)
{
    if (size > ((size_t)1 << META_MAX_SHIFT) - META_HDR) {
        if (size > ((size_t)1 << 46)) {
            errno = ENOMEM;
            return NULL;
        }
        size_t total = round_up(size + META_HDR, ML_OS_GRANULE);
        struct meta_hdr *h = ml_os_map_user(total, 0, ML_OWNER_META, 0);
        if (!h)
            return NULL;
        h->cls = META_BIG;
        h->magic = META_MAGIC;
        h->size = total;
        return (char *)h + META_HDR;
    }
    unsigned c = meta_class(size);
    size_t bsize = (size_t)1 << (c + META_MIN_SHIFT);
    ml_mutex_lock(&meta.lock);
    struct meta_hdr *h = meta.free[c];
    if (h) {
        meta.free[c] = *(void **)((char *)h + META_HDR);
    } else {
        if ((size_t)(meta.end - meta.cur) < bsize) {
            char *chunk = ml_os_map_user(META_CHUNK, 0, ML_OWNER_META, 0);
            if (!chunk) {
                ml_mutex_unlock(&meta.lock);
                return NULL;
            }
            meta.cur = chunk;
            meta.end = chunk + META_CHUNK;
        }
        h = (struct meta_hdr *)meta.cur;
        meta.cur += bsize;
    }
    ml_mutex_unlock(&meta.lock);
    h->cls = c;
    h->magic = META_MAGIC;
    void *p = (char *)h + META_HDR;
    memset(p, 0, bsize - META_HDR);
    return p;
}

static struct meta_hdr *meta_header(const void *p)
{
    if (!p || ((uintptr_t)p & 15) || ml_os_owner(p) != ML_OWNER_META)
        return NULL;
    struct meta_hdr *h = (struct meta_hdr *)((char *)p - META_HDR);
    return h->magic == META_MAGIC ? h : NULL;
}

size_t ml_meta_usable_size(const void *p)
{
    struct meta_hdr *h = meta_header(p);
    if (!h)
        return 0;
    if (h->cls == META_BIG)
        return h->size - META_HDR;
    return ((size_t)1 << (h->cls + META_MIN_SHIFT)) - META_HDR;
}

void ml_meta_free(void *p)
{
    struct meta_hdr *h = meta_header(p);
    if (!h)
        return;
    if (h->cls == META_BIG) {
        h->magic = 0;
        ml_os_unmap_user(h, h->size);
        return;
    }
    unsigned c = h->cls;
    h->magic = 0; /* a second free of p finds no header and is ignored */
    ml_mutex_lock(&meta.lock);
    *(void **)p = meta.free[c];
    meta.free[c] = h;
    ml_mutex_unlock(&meta.lock);
}

void *ml_meta_realloc(void *p, size_t size)
{
    if (!p)
        return ml_meta_alloc(size);
    size_t old = ml_meta_usable_size(p);
    if (size <= old)
        return p;
    void *q = ml_meta_alloc(size);
    if (!q)
        return NULL;
    memcpy(q, p, old);
    ml_meta_free(p);
    return q;
}

void ml_meta_atfork(int phase)
{
    if (phase == 0)
        ml_mutex_lock(&meta.lock);
    else if (phase == 2)
        ml_mutex_reset(&meta.lock);
    else
        ml_mutex_unlock(&meta.lock);
}

char *ml_meta_read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = ml_meta_alloc(cap + 1);
    while (buf && n < max) {
        if (n == cap) {
            char *grown = ml_meta_realloc(buf, cap * 2 + 1);
            if (!grown) {
                ml_meta_free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t want = cap - n < max - n ? cap - n : max - n;
        ssize_t r = read(fd, buf + n, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    if (!buf)
        return NULL;
    buf[n] = '\0';
    *len = n;
    return buf;
}
