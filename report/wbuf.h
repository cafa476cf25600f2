/* report/wbuf.h: the writers' output buffer and the names they share.
 *
 * Every report format (write_text.c, write_json.c, and any new one: one
 * file that formats a struct ml_report through these calls) writes into one
 * fixed buffer on the caller's stack, flushed with write(2) whenever it
 * fills: no stdio, no malloc, so a writer can run at exit, before exec and
 * from a fatal-signal handler.  The first write error stops the output;
 * ml_wbuf_done returns it.
 */
#ifndef ML_REPORT_WBUF_H
#define ML_REPORT_WBUF_H

#include "report.h"

#include <stddef.h>
#include <stdint.h>

struct ml_wbuf {
    int fd;
    int err; /* first write error; output stops there */
    size_t len;
    char buf[4096];
};

void ml_wbuf_init(struct ml_wbuf *o, int fd);
void ml_wbuf_mem(struct ml_wbuf *o, const char *s, size_t n);
void ml_wbuf_str(struct ml_wbuf *o, const char *s);
void ml_wbuf_chr(struct ml_wbuf *o, char c);
void ml_wbuf_u64(struct ml_wbuf *o, uint64_t v);
void ml_wbuf_i64(struct ml_wbuf *o, int64_t v);
/* "0x" and lower-case hex digits, no leading zeros. */
void ml_wbuf_hex(struct ml_wbuf *o, uint64_t v);
/* v right-aligned in width columns. */
void ml_wbuf_u64_w(struct ml_wbuf *o, uint64_t v, unsigned width);
/* Flushes; 0 or the first write error (an errno value). */
int ml_wbuf_done(struct ml_wbuf *o);

/* The part of path after its last '/'. */
const char *ml_report_basename(const char *path);
/* "definite", "indirect", "reachable". */
const char *ml_report_kind_name(enum ml_kind k);
/* "double-free", "invalid-free", ...: the JSON "kind" of an error. */
const char *ml_report_error_name(enum ml_error_kind k);
/* "exit", "_exit", "exec", "signal". */
const char *ml_report_exit_name(enum ml_exit_how h);

#endif
