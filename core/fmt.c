/* core/fmt.c: see fmt.h. */
#include "fmt.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void put_num(struct out *o, unsigned long long v, unsigned base, int neg, unsigned width)
{
    char tmp[32];
    unsigned n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        tmp[n++] = '-';
    for (unsigned i = n; i < width; i++)
        put(o, ' ');
    while (n)
        put(o, tmp[--n]);
}

size_t ml_vfmt(char *buf, size_t cap, const char *fmt, va_list ap)
{
    struct out o = {buf, cap, 0};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&o, *f);
            continue;
        }
        f++;
        unsigned width = 0;
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (unsigned)(*f++ - '0');
        int lng = 0;
        while (*f == 'l' || *f == 'z') {
            lng = (*f == 'z') ? 2 : lng + 1;
            f++;
        }
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t sl = strlen(s);
            for (size_t i = sl; i < width; i++)
                put(&o, ' ');
            while (*s)
                put(&o, *s++);
            break;
        }
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case 'd':
        case 'i': {
            long long v = lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
            put_num(&o, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, 10, v < 0, width);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = lng >= 2   ? va_arg(ap, unsigned long long)
                                   : lng == 1 ? va_arg(ap, unsigned long)
                                              : va_arg(ap, unsigned);
            put_num(&o, v, *f == 'x' ? 16 : 10, 0, width);
            break;
        }
        case 'p':
            put(&o, '0');
            put(&o, 'x');
            put_num(&o, (uintptr_t)va_arg(ap, void *), 16, 0, 0);
            break;
        case '%':
            put(&o, '%');
            break;
        case '\0':
            f--;
            break;
        default:
            put(&o, '%');
            put(&o, *f);
        }
    }
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len < cap ? o.len : (cap ? cap - 1 : 0);
}

size_t ml_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = ml_vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* The raw system call, not write(3): that one is a cancellation point, and
 * a thread with a cancel pending would be cancelled in the middle of
 * malloc_stats, a warning from inside malloc (holding a backend's lock)
 * or the report (glibc's tst-malloc-stats-cancellation). */
int ml_write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = syscall(SYS_write, fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

static int say_fd = 2;

void ml_say_to(int fd) { __atomic_store_n(&say_fd, fd, __ATOMIC_RELAXED); }

void ml_say(const char *fmt, ...)
{
    int fd = __atomic_load_n(&say_fd, __ATOMIC_RELAXED);
    if (fd < 0)
        return;
    char line[1024];
    int saved = errno;
    size_t n = ml_fmt(line, sizeof line - 1, "mallard: ");
    va_list ap;
    va_start(ap, fmt);
    n += ml_vfmt(line + n, sizeof line - 1 - n, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    ml_write_all(fd, line, n);
    errno = saved;
}
