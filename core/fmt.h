/* core/fmt.h: formatting and stderr messages without stdio or malloc.
 *
 * mallard may not call printf-family functions from inside the allocator:
 * glibc's stdio locks and may allocate.  ml_fmt understands the handful of
 * conversions mallard needs: %s %c %d %i %u %x %p %% with the l, ll and z
 * length modifiers, and a field width (digits only, right-aligned).
 */
#ifndef ML_CORE_FMT_H
#define ML_CORE_FMT_H

#include <stdarg.h>
#include <stddef.h>

/* Writes at most cap-1 bytes and a NUL; returns the length written. */
size_t ml_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
size_t ml_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One line "mallard: <text>\n" on stderr, written with a single write(2). */
void ml_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Where ml_say writes from now on: fd 2 by default; -1 for nowhere (at exit,
 * when fd 2 has become one of the program's own files). */
void ml_say_to(int fd);

/* write(2) all of buf to fd, retrying on EINTR and short writes.
 * Returns 0, or an errno value. */
int ml_write_all(int fd, const char *buf, size_t len);

#endif
