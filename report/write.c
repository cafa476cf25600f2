/* report/write.c: the text and JSON reports.
 *
 * Both writers format into one fixed buffer on the caller's stack and
 * flush it with write(2) whenever it fills: no stdio, no malloc, so they
 * can run at exit, before exec and from a fatal-signal handler.  The first
 * write error stops the output and is returned.
 *
 * Text report: every line starts with ML_TEXT_PREFIX, "==mallard== ", so
 * that `grep '^==mallard=='` pulls the report out of a program's stderr.
 * Layout (valgrind / LSan style):
 *   - a summary: pid, command, backend, how the program ended, then
 *     definitely lost / indirectly lost / still reachable / suppressed
 *     bytes and blocks, and the error count;
 *   - the leak groups in the model's order (bytes, descending), each a
 *     header "[<rank>] definite leak of 100 bytes in 1 block [tag parser]"
 *     followed by its frames, innermost first:
 *       "    #0 leak_one simple_leak.c:7 (/path/prog)"   function and line
 *       "    #1 foo (/lib/x.so+0x1234)"                  symbol only
 *       "    #2 0x7f0012345678 (/lib/x.so+0x1234)"       object only
 *       "    #3 0x7f0012345678 (unknown)"                nothing
 *     Reachable groups are listed only when r->show_reachable;
 *   - the errors, each with the bad call's stack, then "  first freed by:"
 *     (double free) or "  freed by:", then "  allocated by:";
 *   - the tag table, then one stats line.
 *
 * JSON report: the version-1 contract of docs/report.schema.json.  Frames
 * carry, beyond the contract, "path" (the full source path; "file" is its
 * basename) and "offset" (the return address minus the object's load bias).
 * Strings are escaped per RFC 8259; bytes >= 0x80 pass through untouched.
 */
#include "report.h"

#include "../core/fmt.h"

#include <string.h>

#define ML_TEXT_PREFIX "==mallard== "

struct out {
    int fd;
    int err; /* first write error; output stops there */
    size_t len;
    char buf[4096];
};

static void out_flush(struct out *o)
{
    if (!o->err && o->len)
        o->err = ml_write_all(o->fd, o->buf, o->len);
    o->len = 0;
}

static void out_mem(struct out *o, const char *s, size_t n)
{
    while (n) {
        if (o->len == sizeof o->buf)
            out_flush(o);
        size_t room = sizeof o->buf - o->len;
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

static void out_str(struct out *o, const char *s) { out_mem(o, s, strlen(s)); }

static void out_chr(struct out *o, char c) { out_mem(o, &c, 1); }

static void out_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    out_mem(o, p, (size_t)(tmp + sizeof tmp - p));
}

static void out_i64(struct out *o, int64_t v)
{
    if (v < 0) {
        out_chr(o, '-');
        out_u64(o, 0 - (uint64_t)v);
    } else {
        out_u64(o, (uint64_t)v);
    }
}

static void out_hex(struct out *o, uint64_t v)
{
    char tmp[20];
    char *p = tmp + sizeof tmp;
    do
        *--p = "0123456789abcdef"[v & 15];
    while (v >>= 4);
    *--p = 'x';
    *--p = '0';
    out_mem(o, p, (size_t)(tmp + sizeof tmp - p));
}

/* Right-aligns an unsigned number in width columns (the tag table). */
static void out_u64_w(struct out *o, uint64_t v, unsigned width)
{
    unsigned digits = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        digits++;
    for (; digits < width; digits++)
        out_chr(o, ' ');
    out_u64(o, v);
}

static int out_done(struct out *o)
{
    out_flush(o);
    return o->err;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static const char *kind_name(enum ml_kind k)
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

static const char *error_name(enum ml_error_kind k)
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
    }
    return "invalid-free";
}

static const char *exit_name(enum ml_exit_how h)
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
    }
    return "exit";
}

/* ---- text ----------------------------------------------------------- */

static void text_begin(struct out *o) { out_str(o, ML_TEXT_PREFIX); }

static void text_end(struct out *o) { out_chr(o, '\n'); }

static void text_blank(struct out *o)
{
    text_begin(o);
    text_end(o);
}

/* "100 bytes in 1 block" */
static void text_count(struct out *o, uint64_t bytes, uint64_t blocks)
{
    out_u64(o, bytes);
    out_str(o, bytes == 1 ? " byte in " : " bytes in ");
    out_u64(o, blocks);
    out_str(o, blocks == 1 ? " block" : " blocks");
}

static void text_frame(struct out *o, unsigned i, uintptr_t addr)
{
    struct ml_frame f;
    ml_symbolize(addr, &f);
    text_begin(o);
    out_str(o, "    #");
    out_u64(o, i);
    out_chr(o, ' ');
    if (f.function)
        out_str(o, f.function);
    else
        out_hex(o, addr);
    if (f.file) {
        out_chr(o, ' ');
        out_str(o, base_name(f.file));
        out_chr(o, ':');
        out_u64(o, (uint64_t)(f.line > 0 ? f.line : 0));
    }
    out_str(o, " (");
    if (!f.object) {
        out_str(o, "unknown");
    } else {
        out_str(o, f.object);
        if (!f.file) {
            out_chr(o, '+');
            out_hex(o, f.offset);
        }
    }
    out_chr(o, ')');
    text_end(o);
}

static void text_stack(struct out *o, ml_stack_id id)
{
    unsigned n = 0;
    const uintptr_t *frames = id ? ml_stack_frames(id, &n) : NULL;
    if (!frames || !n) {
        text_begin(o);
        out_str(o, "    (no stack recorded)");
        text_end(o);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        text_frame(o, i, frames[i]);
}

static void text_exit(struct out *o, const struct ml_report *r)
{
    static const char *const signames[] = {
        [1] = "SIGHUP",   [2] = "SIGINT",   [3] = "SIGQUIT",  [4] = "SIGILL",   [5] = "SIGTRAP",
        [6] = "SIGABRT",  [7] = "SIGBUS",   [8] = "SIGFPE",   [9] = "SIGKILL",  [10] = "SIGUSR1",
        [11] = "SIGSEGV", [12] = "SIGUSR2", [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM",
        [24] = "SIGXCPU", [25] = "SIGXFSZ", [31] = "SIGSYS",
    };
    switch (r->exit_how) {
    case ML_EXIT_EXIT:
    case ML_EXIT__EXIT:
        out_str(o, r->exit_how == ML_EXIT_EXIT ? "exit(" : "_exit(");
        out_i64(o, r->exit_status);
        out_chr(o, ')');
        break;
    case ML_EXIT_EXEC:
        out_str(o, "exec");
        break;
    case ML_EXIT_SIGNAL:
        out_str(o, "signal ");
        out_i64(o, r->exit_status);
        if (r->exit_status > 0 && (size_t)r->exit_status < sizeof signames / sizeof *signames &&
            signames[r->exit_status]) {
            out_str(o, " (");
            out_str(o, signames[r->exit_status]);
            out_chr(o, ')');
        }
        break;
    }
}

static void text_summary_row(struct out *o, const char *label, const struct ml_count *c)
{
    text_begin(o);
    out_str(o, label);
    text_count(o, c->bytes, c->blocks);
    text_end(o);
}

static void text_summary(struct out *o, const struct ml_report *r)
{
    text_begin(o);
    out_str(o, "mallard report for pid ");
    out_i64(o, r->pid);
    out_str(o, " (parent ");
    out_i64(o, r->ppid);
    out_str(o, "):");
    if (r->argv && r->argv[0]) {
        for (const char *const *a = r->argv; *a; a++) {
            out_chr(o, ' ');
            out_str(o, *a);
        }
    } else if (r->exe) {
        out_chr(o, ' ');
        out_str(o, r->exe);
    }
    text_end(o);
    text_begin(o);
    out_str(o, "backend ");
    out_str(o, r->backend ? r->backend : "unknown");
    out_str(o, ", program ended by ");
    text_exit(o, r);
    text_end(o);
    text_blank(o);
    text_begin(o);
    out_str(o, "LEAK SUMMARY:");
    text_end(o);
    text_summary_row(o, "   definitely lost: ", &r->definite);
    text_summary_row(o, "   indirectly lost: ", &r->indirect);
    text_summary_row(o, "   still reachable: ", &r->reachable);
    text_summary_row(o, "        suppressed: ", &r->suppressed);
    text_begin(o);
    out_str(o, "            errors: ");
    out_u64(o, r->nerrors);
    text_end(o);
    if (r->reachable.blocks && !r->show_reachable) {
        text_begin(o);
        out_str(o, "reachable blocks are counted, not listed (MALLARD_SHOW=all lists them)");
        text_end(o);
    }
}

static void text_groups(struct out *o, const struct ml_report *r)
{
    unsigned rank = 0;
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct ml_leak_group *g = &r->groups[i];
        if (g->kind == ML_KIND_REACHABLE && !r->show_reachable)
            continue;
        text_blank(o);
        text_begin(o);
        out_chr(o, '[');
        out_u64(o, ++rank);
        out_chr(o, ']');
        if (g->kind == ML_KIND_REACHABLE) {
            out_str(o, " still reachable: ");
        } else {
            out_chr(o, ' ');
            out_str(o, kind_name(g->kind));
            out_str(o, " leak of ");
        }
        text_count(o, g->bytes, g->blocks);
        if (g->tag) {
            out_str(o, " [tag ");
            out_str(o, g->tag);
            out_chr(o, ']');
        }
        text_end(o);
        text_stack(o, g->stack);
    }
}

static void text_errors(struct out *o, const struct ml_report *r)
{
    static const char *const titles[] = {
        [ML_ERR_DOUBLE_FREE] = "double free of ",         [ML_ERR_INVALID_FREE] = "invalid free of ",
        [ML_ERR_INVALID_REALLOC] = "invalid realloc of ", [ML_ERR_OVERFLOW] = "heap overflow at ",
        [ML_ERR_USE_AFTER_FREE] = "use after free of ",
    };
    for (size_t i = 0; i < r->nerrors_listed; i++) {
        const struct ml_error *e = &r->errors[i];
        text_blank(o);
        text_begin(o);
        out_str(o, (unsigned)e->kind < sizeof titles / sizeof *titles ? titles[e->kind] : "error at ");
        out_hex(o, e->address);
        if (e->bytes) {
            out_str(o, " (");
            out_u64(o, e->bytes);
            out_str(o, e->bytes == 1 ? " byte)" : " bytes)");
        }
        text_end(o);
        text_stack(o, e->stack);
        if (e->free_stack) {
            text_begin(o);
            out_str(o, e->kind == ML_ERR_DOUBLE_FREE ? "  first freed by:" : "  freed by:");
            text_end(o);
            text_stack(o, e->free_stack);
        }
        if (e->alloc_stack) {
            text_begin(o);
            out_str(o, "  allocated by:");
            text_end(o);
            text_stack(o, e->alloc_stack);
        }
    }
    if (r->nerrors > r->nerrors_listed) {
        text_blank(o);
        text_begin(o);
        out_u64(o, r->nerrors - r->nerrors_listed);
        out_str(o, " more errors not listed");
        text_end(o);
    }
}

static void text_tags(struct out *o, const struct ml_report *r)
{
    if (!r->ntags)
        return;
    text_blank(o);
    text_begin(o);
    out_str(o, "tag                        allocs   current bytes      peak bytes");
    text_end(o);
    for (size_t i = 0; i < r->ntags; i++) {
        const struct ml_tag_stats *t = &r->tags[i];
        const char *name = t->tag ? t->tag : "(untagged)";
        size_t len = strlen(name);
        text_begin(o);
        out_str(o, name);
        for (; len < 20; len++)
            out_chr(o, ' ');
        out_u64_w(o, t->allocs, 13);
        out_u64_w(o, t->current_bytes, 16);
        out_u64_w(o, t->peak_bytes, 16);
        text_end(o);
    }
}

int ml_write_text(int fd, const struct ml_report *r)
{
    struct out o;
    o.fd = fd;
    o.err = 0;
    o.len = 0;
    text_summary(&o, r);
    text_groups(&o, r);
    text_errors(&o, r);
    text_tags(&o, r);
    text_blank(&o);
    text_begin(&o);
    out_str(&o, "stats: ");
    out_u64(&o, r->allocs);
    out_str(&o, " allocs, ");
    out_u64(&o, r->frees);
    out_str(&o, " frees, ");
    out_u64(&o, r->bytes_allocated);
    out_str(&o, " bytes allocated, peak ");
    out_u64(&o, r->peak_bytes);
    out_str(&o, " bytes in use, ");
    out_u64(&o, r->current_bytes);
    out_str(&o, " bytes in use at the end");
    text_end(&o);
    return out_done(&o);
}

/* ---- JSON ----------------------------------------------------------- */

static void json_str(struct out *o, const char *s)
{
    if (!s) {
        out_str(o, "null");
        return;
    }
    out_chr(o, '"');
    const char *run = s; /* bytes that need no escape go out in one piece */
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        out_mem(o, run, (size_t)(s - run));
        run = s + 1;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            out_mem(o, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]};
            out_mem(o, esc, 6);
        }
    }
    out_mem(o, run, (size_t)(s - run));
    out_chr(o, '"');
}

static void json_hex(struct out *o, uint64_t v)
{
    out_chr(o, '"');
    out_hex(o, v);
    out_chr(o, '"');
}

static void json_count(struct out *o, const char *key, const struct ml_count *c)
{
    out_str(o, "    \"");
    out_str(o, key);
    out_str(o, "\": {\"bytes\": ");
    out_u64(o, c->bytes);
    out_str(o, ", \"blocks\": ");
    out_u64(o, c->blocks);
    out_str(o, "},\n");
}

/* A stack as an array of frames; indent is the frames' indentation. */
static void json_stack(struct out *o, ml_stack_id id, const char *indent)
{
    unsigned n = 0;
    const uintptr_t *frames = id ? ml_stack_frames(id, &n) : NULL;
    if (!frames || !n) {
        out_str(o, "[]");
        return;
    }
    out_str(o, "[\n");
    for (unsigned i = 0; i < n; i++) {
        struct ml_frame f;
        ml_symbolize(frames[i], &f);
        out_str(o, indent);
        out_str(o, "{\"addr\": ");
        json_hex(o, frames[i]);
        out_str(o, ", \"function\": ");
        json_str(o, f.function);
        out_str(o, ", \"file\": ");
        json_str(o, f.file ? base_name(f.file) : NULL);
        out_str(o, ", \"line\": ");
        if (f.file)
            out_i64(o, f.line);
        else
            out_str(o, "null");
        out_str(o, ", \"object\": ");
        json_str(o, f.object);
        out_str(o, ", \"path\": ");
        json_str(o, f.file);
        out_str(o, ", \"offset\": ");
        json_hex(o, f.offset);
        out_str(o, i + 1 < n ? "},\n" : "}\n");
    }
    /* close at the indentation of the key that holds the array */
    out_mem(o, indent, strlen(indent) > 2 ? strlen(indent) - 2 : 0);
    out_chr(o, ']');
}

int ml_write_json(int fd, const struct ml_report *r)
{
    struct out o;
    o.fd = fd;
    o.err = 0;
    o.len = 0;

    out_str(&o, "{\n  \"mallard\": 1,\n  \"pid\": ");
    out_i64(&o, r->pid);
    out_str(&o, ", \"ppid\": ");
    out_i64(&o, r->ppid);
    out_str(&o, ", \"exe\": ");
    json_str(&o, r->exe ? r->exe : "");
    out_str(&o, ", \"argv\": [");
    for (size_t i = 0; r->argv && r->argv[i]; i++) {
        if (i)
            out_str(&o, ", ");
        json_str(&o, r->argv[i]);
    }
    out_str(&o, "],\n  \"backend\": ");
    json_str(&o, r->backend ? r->backend : "");
    out_str(&o, ",\n  \"exit\": {\"how\": ");
    json_str(&o, exit_name(r->exit_how));
    out_str(&o, ", \"status\": ");
    out_i64(&o, r->exit_status);
    out_str(&o, "},\n  \"summary\": {\n");
    json_count(&o, "definite", &r->definite);
    json_count(&o, "indirect", &r->indirect);
    json_count(&o, "reachable", &r->reachable);
    json_count(&o, "suppressed", &r->suppressed);
    out_str(&o, "    \"errors\": ");
    out_u64(&o, r->nerrors);
    out_str(&o, "\n  },\n  \"leaks\": [");

    for (size_t i = 0; i < r->ngroups; i++) {
        const struct ml_leak_group *g = &r->groups[i];
        out_str(&o, i ? ",\n    {\"kind\": " : "\n    {\"kind\": ");
        json_str(&o, kind_name(g->kind));
        out_str(&o, ", \"bytes\": ");
        out_u64(&o, g->bytes);
        out_str(&o, ", \"blocks\": ");
        out_u64(&o, g->blocks);
        out_str(&o, ", \"tag\": ");
        json_str(&o, g->tag);
        out_str(&o, ",\n     \"stack\": ");
        json_stack(&o, g->stack, "       ");
        out_chr(&o, '}');
    }
    out_str(&o, r->ngroups ? "\n  ],\n  \"errors\": [" : "],\n  \"errors\": [");

    for (size_t i = 0; i < r->nerrors_listed; i++) {
        const struct ml_error *e = &r->errors[i];
        out_str(&o, i ? ",\n    {\"kind\": " : "\n    {\"kind\": ");
        json_str(&o, error_name(e->kind));
        out_str(&o, ", \"address\": ");
        json_hex(&o, e->address);
        out_str(&o, ", \"bytes\": ");
        out_u64(&o, e->bytes);
        out_str(&o, ",\n     \"stack\": ");
        json_stack(&o, e->stack, "       ");
        out_str(&o, ",\n     \"alloc_stack\": ");
        json_stack(&o, e->alloc_stack, "       ");
        out_str(&o, ",\n     \"free_stack\": ");
        json_stack(&o, e->free_stack, "       ");
        out_chr(&o, '}');
    }
    out_str(&o, r->nerrors_listed ? "\n  ],\n  \"tags\": [" : "],\n  \"tags\": [");

    for (size_t i = 0; i < r->ntags; i++) {
        const struct ml_tag_stats *t = &r->tags[i];
        out_str(&o, i ? ",\n    {\"tag\": " : "\n    {\"tag\": ");
        json_str(&o, t->tag ? t->tag : "");
        out_str(&o, ", \"allocs\": ");
        out_u64(&o, t->allocs);
        out_str(&o, ", \"current_bytes\": ");
        out_u64(&o, t->current_bytes);
        out_str(&o, ", \"peak_bytes\": ");
        out_u64(&o, t->peak_bytes);
        out_chr(&o, '}');
    }
    out_str(&o, r->ntags ? "\n  ],\n  \"stats\": {\"allocs\": " : "],\n  \"stats\": {\"allocs\": ");
    out_u64(&o, r->allocs);
    out_str(&o, ", \"frees\": ");
    out_u64(&o, r->frees);
    out_str(&o, ", \"bytes_allocated\": ");
    out_u64(&o, r->bytes_allocated);
    out_str(&o, ", \"peak_bytes\": ");
    out_u64(&o, r->peak_bytes);
    out_str(&o, ", \"current_bytes\": ");
    out_u64(&o, r->current_bytes);
    out_str(&o, "}\n}\n");
    return out_done(&o);
}
