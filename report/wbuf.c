/* report/wbuf.c: the writers' fixed output buffer over write(2), and the
 * names every format shares (wbuf.h). */
#define _GNU_SOURCE
#include "wbuf.h"

#include "../core/fmt.h"

#include <string.h>

void ml_wbuf_init(struct ml_wbuf *o, int fd)
{
    o->fd = fd;
    o->err = 0;
    o->len = 0;
}

static void wbuf_flush(struct ml_wbuf *o)
{
    if (!o->err && o->len)
        o->err = ml_write_all(o->fd, o->buf, o->len);
    o->len = 0;
}

/* A full buffer goes out up to its last newline, the rest stays: each
 * write(2) then holds whole lines (at most PIPE_BUF bytes), so reports of
 * processes that exit together on one stderr interleave by lines, never
 * inside one. */
static void wbuf_flush_lines(struct ml_wbuf *o)
{
    const char *nl = memrchr(o->buf, '\n', o->len);
    if (!nl || o->err) {
        wbuf_flush(o);
        return;
    }
    size_t k = (size_t)(nl - o->buf) + 1;
    o->err = ml_write_all(o->fd, o->buf, k);
    memmove(o->buf, o->buf + k, o->len - k);
    o->len -= k;
}

void ml_wbuf_mem(struct ml_wbuf *o, const char *s, size_t n)
{
    while (n) {
        if (o->len == sizeof o->buf)
            wbuf_flush_lines(o);
        size_t room = sizeof o->buf - o->len;
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

void ml_wbuf_str(struct ml_wbuf *o, const char *s) { ml_wbuf_mem(o, s, strlen(s)); }

void ml_wbuf_chr(struct ml_wbuf *o, char c) { ml_wbuf_mem(o, &c, 1); }

void ml_wbuf_u64(struct ml_wbuf *o, uint64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    ml_wbuf_mem(o, p, (size_t)(tmp + sizeof tmp - p));
}

void ml_wbuf_i64(struct ml_wbuf *o, int64_t v)
{
    if (v < 0) {
        ml_wbuf_chr(o, '-');
        ml_wbuf_u64(o, 0 - (uint64_t)v);
    } else {
        ml_wbuf_u64(o, (uint64_t)v);
    }
}

void ml_wbuf_hex(struct ml_wbuf *o, uint64_t v)
{
    char tmp[20];
    char *p = tmp + sizeof tmp;
    do
        *--p = "0123456789abcdef"[v & 15];
    while (v >>= 4);
    *--p = 'x';
    *--p = '0';
    ml_wbuf_mem(o, p, (size_t)(tmp + sizeof tmp - p));
}

/* Right-aligns an unsigned number in width columns (the tag table). */
void ml_wbuf_u64_w(struct ml_wbuf *o, uint64_t v, unsigned width)
{
    unsigned digits = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        digits++;
    for (; digits < width; digits++)
        ml_wbuf_chr(o, ' ');
    ml_wbuf_u64(o, v);
}

int ml_wbuf_done(struct ml_wbuf *o)
{
    wbuf_flush(o);
    return o->err;
}

const char *ml_report_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

const char *ml_report_kind_name(enum ml_kind k)
{
    switch (k) {
    case ML_KIND_DEFINITE:
        return "definite";
    case ML_KIND_INDIRECT:
        return "indirect";
    case ML_KIND_REACHABLE:
        return "reachable";
    }
    return "definite";
}

const char *ml_report_error_name(enum ml_error_kind k)
{
    switch (k) {
    case ML_ERR_DOUBLE_FREE:
        return "double-free";
    case ML_ERR_INVALID_FREE:
        return "invalid-free";
    case ML_ERR_INVALID_REALLOC:
        return "invalid-realloc";
    case ML_ERR_OVERFLOW:
        return "overflow";
    case ML_ERR_USE_AFTER_FREE:
        return "use-after-free";
    case ML_ERR_MISMATCH:
        return "mismatched-free";
    }
    return "invalid-free";
}

const char *ml_report_exit_name(enum ml_exit_how h)
{
    switch (h) {
    case ML_EXIT_EXIT:
        return "exit";
    case ML_EXIT__EXIT:
        return "_exit";
    case ML_EXIT_EXEC:
        return "exec";
    case ML_EXIT_SIGNAL:
        return "signal";
    case ML_EXIT_LIVE:
        return "live";
    }
    return "exit";
}
