/* core/meta.c: the meta heap.  See meta.h.
 *
 * Power-of-two classes from 16 bytes to 64 KiB on per-class free lists
 * under one lock, carved from 1 MiB chunks; larger requests get their own
 * mapping.  Each block carries a 16-byte header with its class.  It is
 * slow and simple on purpose: it serves mallard's tables and whatever
 * libunwind or libdw allocate while mallard is inside itself.
 *
 * Packed blocks (ml_meta_alloc_packed) are carved from the same chunks
 * back to back, with no header and no class: the stack depot's entries,
 * which are never freed, take the bytes they need, where a class block
 * (header and power-of-two rounding) took about half as much again (a
 * typical entry of 80 bytes was a block of 128).
 *
 * The reserve: with the first chunk, a 2 MiB PROT_NONE mapping is set
 * aside (address space only: no page, no commit charge).  When memory is
 * refused later (ulimit -v, a cgroup, vm.max_map_count) the tracer stops,
 * but the report must still be written; once ml_meta_reserve_open has been
 * called (at report time) requests are carved from the reserve first and
 * mapped only when it is used up, so that the address space left goes to
 * the stack and to ld.so.  Class blocks carved from it are freed and reused like
 * any other; a large block carved from it is never given back.
 */
#include "meta.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "os.h"
#include "owner.h"

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

#define META_MIN_SHIFT 4
#define META_MAX_SHIFT 16
#define META_CLASSES (META_MAX_SHIFT - META_MIN_SHIFT + 1)
#define META_CHUNK ((size_t)1 << 20)
#define META_HDR 16
#define META_BIG 0xffffffffu
#define META_KEPT 0xfffffffeu /* a large block carved from the reserve */
#define META_RESERVE ((size_t)2 << 20)

struct meta_hdr {
    uint32_t cls; /* class index, or META_BIG */
    uint32_t magic;
    uint64_t size; /* mapping size for META_BIG, block size for META_KEPT */
};
#define META_MAGIC 0x6d6c6d74u

static struct {
    ml_mutex lock;
    void *free[META_CLASSES];
    char *cur, *end;
    char *res, *res_end; /* the reserve's unused part; NULL: none */
    int res_state;       /* 0: not mapped yet, 1: set aside, 2: open */
} meta;

/* Caller holds meta.lock. */
static void reserve_set_aside(void)
{
    if (meta.res_state)
        return;
    meta.res_state = 1;
    meta.res = ml_os_map_user(META_RESERVE, 0, ML_OWNER_META, 1);
    meta.res_end = meta.res ? meta.res + META_RESERVE : NULL;
}

/* size bytes from the reserve, once open; NULL when closed or used up.
 * Caller holds meta.lock. */
static char *reserve_take(size_t size)
{
    if (meta.res_state != 2 || !meta.res || (size_t)(meta.res_end - meta.res) < size)
        return NULL;
    char *p = meta.res;
    meta.res += size;
    return p;
}

void ml_meta_reserve_open(size_t give_back)
{
    ml_mutex_lock(&meta.lock);
    if (meta.res_state == 1 && meta.res) {
        give_back = round_up(give_back, ML_OS_GRANULE);
        if (give_back && give_back < META_RESERVE) {
            meta.res_end -= give_back;
            ml_os_unmap_user(meta.res_end, give_back);
        }
        if (ml_os_protect(meta.res, (size_t)(meta.res_end - meta.res), 1) == 0)
            meta.res_state = 2;
    }
    ml_mutex_unlock(&meta.lock);
}

/* size bytes, aligned to align (8 or 16), from the current chunk, a fresh
 * one when it has no room (the rest of the old one is left unused), or the
 * reserve once open; NULL when memory is refused.  Zero: chunk memory is
 * carved once and never handed out again but through the free lists.
 * Caller holds meta.lock. */
static char *carve(size_t size, size_t align)
{
    char *at = (char *)round_up((uintptr_t)meta.cur, align);
    if (!meta.cur || at > meta.end || (size_t)(meta.end - at) < size) {
        reserve_set_aside();
        char *chunk = reserve_take(round_up(size, 16));
        if (chunk) {
            meta.cur = chunk; /* one block at a time: the rest stays for larger ones */
            meta.end = chunk + round_up(size, 16);
        } else if ((chunk = ml_os_map_user(META_CHUNK, 0, ML_OWNER_META, 0))) {
            meta.cur = chunk;
            meta.end = chunk + META_CHUNK;
        } else {
            return NULL;
        }
        at = meta.cur;
    }
    meta.cur = at + size;
    return at;
}

void *ml_meta_alloc_packed(size_t size)
{
    if (size > META_CHUNK / 16) {
        errno = ENOMEM;
        return NULL;
    }
    ml_mutex_lock(&meta.lock);
    char *p = carve(round_up(size ? size : 1, 8), 8);
    ml_mutex_unlock(&meta.lock);
    if (!p)
        errno = ENOMEM;
    return p;
}

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
        /* once open, the reserve goes first: at report time the address
         * space the kernel still has is left to the stack and ld.so */
        size_t total = round_up(size + META_HDR, 16);
        ml_mutex_lock(&meta.lock);
        struct meta_hdr *h = (struct meta_hdr *)reserve_take(total);
        ml_mutex_unlock(&meta.lock);
        if (h) {
            h->cls = META_KEPT;
        } else {
            total = round_up(size + META_HDR, ML_OS_GRANULE);
            if (!(h = ml_os_map_user(total, 0, ML_OWNER_META, 0))) {
                errno = ENOMEM;
                return NULL;
            }
            h->cls = META_BIG;
        }
        h->magic = META_MAGIC;
        h->size = total;
        return (char *)h + META_HDR;
    }
    unsigned c = meta_class(size);
    size_t bsize = (size_t)1 << (c + META_MIN_SHIFT);
    ml_mutex_lock(&meta.lock);
    struct meta_hdr *h = meta.free[c];
    int reused = h != NULL;
    if (h) {
        meta.free[c] = *(void **)((char *)h + META_HDR);
    } else {
        h = (struct meta_hdr *)carve(bsize, 16);
        if (!h) {
            ml_mutex_unlock(&meta.lock);
            errno = ENOMEM;
            return NULL;
        }
    }
    ml_mutex_unlock(&meta.lock);
    h->cls = c;
    h->magic = META_MAGIC;
    void *p = (char *)h + META_HDR;
    /* a block carved afresh is straight from the kernel, zero already:
     * clearing it would only fault its pages in before they are needed */
    if (reused)
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
    if (h->cls == META_BIG || h->cls == META_KEPT)
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
    if (h->cls == META_KEPT) {
        h->magic = 0; /* the reserve is not given back */
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

void ml_meta_atfork(int phase) { ml_lock_atfork(&meta.lock, phase); }

/* ---- whole files (/proc) ---------------------------------------------- */

char *ml_meta_read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    /* an 8 KiB class block (header and NUL included): a small process's
     * /proc/self/maps (traced ls: 5.5 KB) takes three reads (the kernel
     * hands out about a page a read) and no copy, where a 4 KiB start took
     * four and a copy into a grown block; its pages fault in as filled */
    size_t cap = 8192 - 16 - 1, n = 0;
    if (cap > max)
        cap = max;
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
