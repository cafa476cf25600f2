/* core/options.c: the option table and its parser.  See options.h. */
#include "options.h"

#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "fmt.h"

#define OFF(f) offsetof(struct ml_options, f)

const struct ml_option ml_option_table[] = {
    {"MALLARD_BACKEND", ML_OPT_BACKEND, "freelist", NULL,
     "allocator backend: size classes, bump pointer, arena, guard pages, or glibc", OFF(backend), 0, 0},
    {"MALLARD_ARENA_LIMIT", ML_OPT_SIZE, "0", "SIZE (bytes, K/M/G suffix; 0 = none)",
     "arena backend budget; allocation past it fails with ENOMEM", OFF(arena_limit), 0, 0},
    {"MALLARD_PAGE_GUARD", ML_OPT_ENUM, "after", "after|before",
     "page backend: guard page after the block (overflow) or before it (underflow)", OFF(page_guard), 0, 0},
    {"MALLARD_PAGE_ALIGN", ML_OPT_BOOL, "0", "0|1",
     "page backend: 1 places blocks byte-exact against the guard (alignment 1)", OFF(page_align), 0, 0},
    {"MALLARD_PAGE_QUARANTINE", ML_OPT_SIZE, "64M", "SIZE (bytes, K/M/G suffix)",
     "page backend: bytes of freed blocks kept inaccessible before reuse", OFF(page_quarantine), 0, 0},
    {"MALLARD_TRACE", ML_OPT_BOOL, "1", "0|1",
     "1 records every block and writes the leak report at exit; 0 runs the bare allocator", OFF(trace), 0, 0},
    {"MALLARD_DEPTH", ML_OPT_INT, "32", "1..256", "frames recorded per allocation stack", OFF(depth), 1, 256},
    {"MALLARD_ON_ERROR", ML_OPT_ENUM, "continue", "continue|abort",
     "after a double or invalid free: keep running, or write the report and abort", OFF(on_error), 0, 0},
    {"MALLARD_REPORT", ML_OPT_PATH, "", "PATH (%p pid, %e program name, %n counter; empty = stderr)",
     "where the report goes; a fixed path gets each process's report appended whole", OFF(report), 0, 0},
    {"MALLARD_FORMAT", ML_OPT_ENUM, "text", "text|json", "report format", OFF(format), 0, 0},
    {"MALLARD_SHOW", ML_OPT_ENUM, "leaks", "leaks|all",
     "report (text and JSON): list leak groups only, or reachable groups too", OFF(show), 0, 0},
    {"MALLARD_EXITCODE", ML_OPT_INT, "0", "0..255 (0 = leave the status alone)",
     "exit status to use when definite leaks or errors were found", OFF(exitcode), 0, 255},
    {"MALLARD_REPORT_SIGNAL", ML_OPT_ENUM, "off", "off|SIGUSR1|SIGUSR2",
     "a signal that writes a report of the live process each time it arrives, without stopping it",
     OFF(report_signal), 0, 0},
    {"MALLARD_CHILDREN", ML_OPT_PATH, "yes", "yes|no|PATTERN,... (name or path, * wildcard)",
     "which descendants are traced: all, none (they run without the preload), or matching programs",
     OFF(children), 0, 0},
    {"MALLARD_SUMMARY", ML_OPT_ENUM, "auto", "auto|none|all",
     "one-line summary of a clean process: for the command's own process, for none (-q), for all (-v)",
     OFF(summary), 0, 0},
    {"MALLARD_TOP_PID", ML_OPT_INT, "0", "0..4194304 (set by the mallard command)",
     "the pid the mallard command started: the top of the process tree", OFF(top_pid), 0, 4194304},
    {"MALLARD_STATS", ML_OPT_BOOL, "0", "0|1",
     "1 prints allocations, frees, bytes allocated, current and peak bytes at exit, also with "
     "MALLARD_TRACE=0",
     OFF(stats), 0, 0},
    {"MALLARD_TAGS", ML_OPT_PATH, "", "PATTERN=tag,... (function or object, * wildcard)",
     "tags untagged blocks by their stack's first frame outside libc/libstdc++/mallard matching a pattern",
     OFF(tags), 0, 0},
    {"MALLARD_SUPPRESSIONS", ML_OPT_PATH, "", "PATH of a file of leak:PATTERN lines",
     "leaks whose stack matches a pattern (function or object, * wildcard) are suppressed", OFF(suppressions),
     0, 0},
    {"MALLARD_FAIL", ML_OPT_SIZE, "0", "N (0 = off)",
     "fault injection: the Nth allocation call (malloc family, new) fails with ENOMEM", OFF(fail_nth), 0, 0},
    {"MALLARD_FAIL_RATE", ML_OPT_RATE, "0", "0..1 (a probability, e.g. 0.01)",
     "fault injection: each allocation call fails with this probability", OFF(fail_rate), 0, 0},
    {"MALLARD_SEED", ML_OPT_SIZE, "1", "N",
     "seed of MALLARD_FAIL_RATE's generator (same seed, same failures)", OFF(seed), 0, 0},
    {"MALLARD_LIMIT", ML_OPT_SIZE, "0", "SIZE (bytes, K/M/G suffix; 0 = none)",
     "fault injection, any backend: allocation past this many live bytes fails with ENOMEM", OFF(limit), 0,
     0},
};
const size_t ml_option_count = sizeof ml_option_table / sizeof ml_option_table[0];

int ml_parse_size(const char *s, size_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == s)
        return -1;
    unsigned shift = 0;
    switch (*p) {
    case 'k':
    case 'K':
        shift = 10;
        p++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        p++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        p++;
        break;
    case 't':
    case 'T':
        shift = 40;
        p++;
        break;
    default:
        break;
    }
    if (shift && (*p == 'b' || *p == 'B'))
        p++;
    if (*p)
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (size_t)(v << shift);
    return 0;
}

/* Index of value among the '|'-separated words of list, or -1. */
static int enum_index(const char *list, const char *value)
{
    size_t vl = strlen(value);
    int i = 0;
    for (const char *w = list; *w; i++) {
        const char *bar = strchr(w, '|');
        size_t wl = bar ? (size_t)(bar - w) : strlen(w);
        if (wl == vl && memcmp(w, value, wl) == 0)
            return i;
        if (!bar)
            break;
        w = bar + 1;
    }
    return -1;
}

const char *ml_option_accepted(const struct ml_option *row, char *buf, size_t cap)
{
    if (row->type != ML_OPT_BACKEND)
        return row->accepted;
    size_t n = 0;
    buf[0] = '\0';
    for (const struct ml_backend *const *b = ml_backends; *b; b++)
        n += ml_fmt(buf + n, cap - n, "%s%s", b == ml_backends ? "" : "|", (*b)->name);
    return buf;
}

/* Index of the backend called value in the registry, or -1. */
static int backend_index(const char *value)
{
    for (int i = 0; ml_backends[i]; i++)
        if (!strcmp(ml_backends[i]->name, value))
            return i;
    return -1;
}

/* "0", "1", "0.01", ".5": a decimal in [0, 1]. */
static int parse_rate(const char *s, double *out)
{
    double v = 0, scale = 1;
    int digits = 0, dot = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '.' && !dot) {
            dot = 1;
        } else if (*p >= '0' && *p <= '9') {
            digits++;
            if (dot)
                v += (*p - '0') * (scale /= 10);
            else
                v = v * 10 + (*p - '0');
        } else {
            return -1;
        }
        if (v > 1)
            return -1;
    }
    if (!digits)
        return -1;
    *out = v;
    return 0;
}

int ml_option_set(struct ml_options *o, const struct ml_option *row, const char *value)
{
    char *field = (char *)o + row->offset;
    switch (row->type) {
    case ML_OPT_ENUM: {
        int i = enum_index(row->accepted, value);
        if (i < 0)
            return -1;
        *(int *)field = i;
        return 0;
    }
    case ML_OPT_BACKEND: {
        int i = backend_index(value);
        if (i < 0)
            return -1;
        *(int *)field = i;
        return 0;
    }
    case ML_OPT_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "true"))
            *(int *)field = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "false"))
            *(int *)field = 0;
        else
            return -1;
        return 0;
    case ML_OPT_SIZE:
        return ml_parse_size(value, (size_t *)field);
    case ML_OPT_INT: {
        size_t v;
        if (ml_parse_size(value, &v) != 0 || (long)v < row->min || (long)v > row->max)
            return -1;
        *(int *)field = (int)v;
        return 0;
    }
    case ML_OPT_RATE: {
        double d;
        if (parse_rate(value, &d) != 0)
            return -1;
        memcpy(field, &d, sizeof d);
        return 0;
    }
    case ML_OPT_PATH:
        if (strlen(value) >= ML_PATH_MAX)
            return -1;
        memcpy(field, &value, sizeof value);
        return 0;
    }
    return -1;
}

/* A value echoed in a warning: its head and tail around "...", so that a
 * long value never pushes the rest of the message out of ml_say's line,
 * with every control character shown as '?', so that a value holding a
 * newline cannot forge a line of its own on stderr. */
static const char *option_shorten(const char *v, char *buf, size_t cap)
{
    size_t len = strlen(v);
    if (len < cap) {
        memcpy(buf, v, len + 1);
    } else {
        size_t head = (cap - 4) / 2, tail = cap - 4 - head;
        memcpy(buf, v, head);
        memcpy(buf + head, "...", 3);
        memcpy(buf + head + 3, v + len - tail, tail);
        buf[cap - 1] = '\0';
    }
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return buf;
}

/* Whether name is exactly the n bytes at s (no strlen per table row). */
static int name_is(const char *name, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && name[i] == s[i])
        i++;
    return i == n && !name[n];
}

void ml_options_keep(struct ml_options *o, char *pool, size_t cap)
{
    size_t used = 0;
    for (size_t i = 0; i < ml_option_count; i++) {
        const struct ml_option *row = &ml_option_table[i];
        if (row->type != ML_OPT_PATH)
            continue;
        const char **field = (const char **)(void *)((char *)o + row->offset);
        if (*field == row->def)
            continue; /* the table's own string: it lasts */
        size_t n = strlen(*field) + 1;
        if (n > cap - used)
            continue; /* only when cap < ML_OPT_POOL_SIZE */
        memcpy(pool + used, *field, n);
        *field = pool + used;
        used += n;
    }
}

void ml_options_parse(struct ml_options *o, char *const *envp, int warn)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < ml_option_count; i++)
        ml_option_set(o, &ml_option_table[i], ml_option_table[i].def);
    if (!envp)
        return;
    for (char *const *e = envp; *e; e++) {
        if (**e != 'M' || strncmp(*e, "MALLARD_", 8) != 0) /* most entries fail the first test */
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        size_t nl = (size_t)(eq - *e);
        int known = 0;
        for (size_t i = 0; i < ml_option_count; i++) {
            const struct ml_option *row = &ml_option_table[i];
            if (!name_is(row->name, *e, nl))
                continue;
            known = 1;
            if (ml_option_set(o, row, eq + 1) != 0) {
                ml_option_set(o, row, row->def);
                char names[256], shown[160];
                if (warn)
                    ml_say("%s=%s is not valid%s; accepted: %s; using the default %s", row->name,
                           option_shorten(eq + 1, shown, sizeof shown),
                           row->type == ML_OPT_PATH && strlen(eq + 1) >= ML_PATH_MAX ? " (too long)" : "",
                           ml_option_accepted(row, names, sizeof names), row->def);
            }
        }
        if (!known && warn) {
            char name[64];
            size_t n = nl < sizeof name - 1 ? nl : sizeof name - 1;
            memcpy(name, *e, n);
            name[n] = '\0';
            for (char *c = name; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                    *c = '?';
            ml_say("%s is not a mallard option and is ignored; `mallard --help` lists them", name);
        }
    }
}
