/* core/meta.c: the meta heap.  See meta.h.
 *
 * Power-of-two classes from 16 bytes to 64 KiB on per-class free lists
 * under one lock, carved from 1 MiB chunks; larger requests get their own
 * mapping.  Each block carries a 16-byte header with its class.  It is
 * slow and simple on purpose: it serves mallard's tables and whatever
 * libunwind or libdw allocate while mallard is inside itself.
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

void ml_meta_atfork(int phase) { ml_lock_atfork(&meta.lock, phase); }

/* ---- whole files (/proc) ---------------------------------------------- */

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
