/* report/suppress.c: suppression patterns (suppress.h).
 *
 * Loaded once, at exit, into the meta heap.  Matching is LSan's glob, in
 * linear time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "../core/fmt.h"
#include "../core/meta.h"
#include "outfile.h"
#include "suppress.h"

struct supp {
    const char **pat;
    struct ml_supp_use *use; /* per pattern: what it suppressed */
    size_t n, cap;
    size_t user; /* patterns from user_from on came from the file */
};

static struct supp supps;

/* Built in: the one-time allocations of ld.so, libc and libstdc++ that no
 * program can free.  Matched like user patterns. */
static const char *const default_supps[] = {
    "_dl_allocate_tls", /* ld.so: TLS blocks of threads */
    "_dl_map_object",   /* ld.so: link maps */
    "_dl_new_object",   /* ld.so */
    "_dl_check_map_versions",
    "__libc_dlerror_result", /* dlerror's per-thread buffer */
    "_dlerror_run",
    "__gconv_open", /* iconv/locale tables */
    "__gconv_read_conf",
    "_nl_load_locale",
    "_nl_find_locale",
    "_nl_intern_locale_data",
    "__nss_",            /* name-service modules */
    "__cxa_get_globals", /* libstdc++: per-thread EH globals */
    "__gnu_cxx::__freeres",
};

/* Adds pattern p (len bytes), copied into the meta heap unless it is a
 * built-in one (a string constant already). */
static void supp_add(const char *p, size_t len, int builtin)
{
    if (supps.n == supps.cap) {
        size_t cap = supps.cap ? supps.cap * 2 : 32;
        const char **grown = ml_meta_realloc(supps.pat, cap * sizeof *grown);
        if (!grown)
            return;
        supps.pat = grown;
        struct ml_supp_use *use = ml_meta_realloc(supps.use, cap * sizeof *use);
        if (!use)
            return;
        supps.use = use;
        supps.cap = cap;
    }
    const char *pat = p;
    if (!builtin) {
        char *copy = ml_meta_alloc(len + 1);
        if (!copy)
            return;
        memcpy(copy, p, len);
        copy[len] = '\0';
        pat = copy;
    }
    supps.use[supps.n] = (struct ml_supp_use){pat, 0, 0};
    supps.pat[supps.n++] = pat;
}

void ml_supp_load(const char *path)
{
    for (size_t i = 0; i < sizeof default_supps / sizeof default_supps[0]; i++)
        supp_add(default_supps[i], strlen(default_supps[i]), 1);
    supps.user = supps.n;
    if (!path || !*path)
        return;
    size_t len;
    const char *why = "";
    char *text = ml_outfile_read(path, &len, &why);
    if (!text) {
        ml_say("MALLARD_SUPPRESSIONS=%s is refused (%s); using the built-in list only", path, why);
        return;
    }
    /* Bad lines are counted and named once: a wrong file must not flood
     * stderr with one line each. */
    unsigned long lineno = 0, bad = 0, first_bad = 0;
    char shown[128] = "";
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *end = nl ? nl : text + len;
        lineno++;
        while (line < end && (*line == ' ' || *line == '\t'))
            line++;
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            end--;
        size_t sl = (size_t)(end - line);
        if (sl && *line != '#') {
            if (sl > 5 && !strncmp(line, "leak:", 5) && !memchr(line, '\0', sl)) {
                supp_add(line + 5, sl - 5, 0);
            } else if ((sl > 20 && !strncmp(line, "interceptor_via_fun:", 20)) ||
                       (sl > 16 && !strncmp(line, "called_from_lib:", 16))) {
                /* LSan's other kinds: nothing they name happens here */
            } else if (!bad++) {
                first_bad = lineno;
                size_t k = sl < sizeof shown - 1 ? sl : sizeof shown - 1;
                memcpy(shown, line, k);
                shown[k] = '\0';
                for (size_t i = 0; i < k; i++)
                    if ((unsigned char)shown[i] < ' ')
                        shown[i] = '?';
            }
        }
        line = nl ? nl + 1 : text + len;
    }
    ml_meta_free(text);
    if (bad == 1)
        ml_say("%s:%lu: not a suppression (expected leak:PATTERN): %s", path, first_bad, shown);
    else if (bad)
        ml_say("%s: %lu lines are not suppressions (expected leak:PATTERN), the first at line %lu: %s", path,
               bad, first_bad, shown);
}

/* Linear time, whatever the pattern: the pattern is literal segments
 * between stars; the first is pinned to the start under '^', the last to
 * the end under '$', and each other one is matched at its leftmost
 * occurrence after the previous (leftmost is never worse), found with
 * memmem (two-way: linear).  No backtracking. */
int ml_supp_match(const char *pat, const char *s)
{
    if (!pat || !s || !*s)
        return 0;
    size_t len = strlen(s);
    int anchor_start = *pat == '^';
    if (anchor_start)
        pat++;
    size_t plen = strcspn(pat, "$"); /* as LSan: '$' ends the pattern */
    int anchor_end = pat[plen] == '$';
    /* Nothing to match: "^" (or "") matches every name; "$" and "^$" would
     * match the empty name only, and no name is empty, so they match none,
     * as LSan's TemplateMatch decides: a '$' met before any '*' or literal
     * needs the name to be over ("leak:$" suppresses nothing there). */
    if (!plen)
        return !anchor_end;
    const char *p = pat, *pend = pat + plen;
    size_t pos = 0, limit = len;
    if (anchor_start && p < pend && *p != '*') {
        const char *e = memchr(p, '*', (size_t)(pend - p));
        size_t sl = (size_t)((e ? e : pend) - p);
        if (sl > len || memcmp(s, p, sl))
            return 0;
        pos = sl;
        p += sl;
        if (p == pend)
            return !anchor_end || pos == len;
    }
    if (anchor_end && pend > p && pend[-1] != '*') {
        const char *q = memrchr(p, '*', (size_t)(pend - p));
        const char *seg = q ? q + 1 : p;
        size_t sl = (size_t)(pend - seg);
        if (len - pos < sl || memcmp(s + len - sl, seg, sl))
            return 0;
        if (!q)
            return 1;
        limit = len - sl;
        pend = q;
    }
    while (p < pend) {
        if (*p == '*') {
            p++;
            continue;
        }
        const char *e = memchr(p, '*', (size_t)(pend - p));
        if (!e)
            e = pend;
        size_t sl = (size_t)(e - p);
        const char *f = limit - pos >= sl ? memmem(s + pos, limit - pos, p, sl) : NULL;
        if (!f)
            return 0;
        pos = (size_t)(f - s) + sl;
        p = e;
    }
    return 1;
}

/* The first of patterns [from, to) that matches a string of f (its
 * demangled and mangled names, its source file, its object): 0, or its
 * number (1-based, for ml_supp_count). */
static int supp_frame_range(const struct ml_frame *f, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++)
        if (ml_supp_match(supps.pat[k], f->function) || ml_supp_match(supps.pat[k], f->mangled) ||
            ml_supp_match(supps.pat[k], f->file) || ml_supp_match(supps.pat[k], f->object))
            return (int)k + 1;
    return 0;
}

/* A symbol-table name (and its demangled form, for C++) against the
 * built-in patterns: the number of the first that matches, or 0. */
static int supp_builtin_name(const char *name, const char *demangled)
{
    for (size_t k = 0; k < supps.user; k++)
        if (ml_supp_match(supps.pat[k], name) || ml_supp_match(supps.pat[k], demangled))
            return (int)k + 1;
    return 0;
}

/* The built-in patterns name out-of-line functions of ld.so, libc and
 * libstdc++, so they are matched against the symbol-table names of the
 * function each frame is in (ml_symbolize_symtab_which: a scan of the
 * object's symbol table in place per frame, a sorted index once an object
 * has been asked about many; symfns.c), which leaves those
 * objects' DWARF unopened: with libc6-dbg installed, opening libc's
 * inflates megabytes of compressed debug sections, most of a short
 * program's traced run.  The file's patterns see every frame of each
 * inline chain, its file included, as before; the order is the chain's,
 * innermost first, with the built-in patterns tried at the out-of-line
 * frame ahead of the file's. */
int ml_supp_stack(ml_stack_id id)
{
    if (!id)
        return ML_SUPP_NO_STACK; /* allocated before tracing could capture: ld.so/libc start-up */
    unsigned n;
    const uintptr_t *f = ml_stack_frames(id, &n);
    int user = supps.n > supps.user;
    for (unsigned i = 0; i < n; i++) {
        struct ml_frame chain[ML_INLINE_MAX]; /* inlined frames count too */
        unsigned k = user ? ml_symbolize_chain(f[i], chain, ML_INLINE_MAX) : 0;
        for (unsigned j = 0; j + 1 < k; j++) {
            int m = supp_frame_range(&chain[j], supps.user, supps.n);
            if (m)
                return m;
        }
        int m = ml_symbolize_symtab_which(f[i], supp_builtin_name);
        if (m)
            return m;
        if (k) {
            m = supp_frame_range(&chain[k - 1], supps.user, supps.n);
            if (m)
                return m;
        }
    }
    return 0;
}

void ml_supp_count(int which, uint64_t bytes)
{
    if (which <= 0 || (size_t)which > supps.n)
        return;
    supps.use[which - 1].blocks++;
    supps.use[which - 1].bytes += bytes;
}

size_t ml_supp_user(const struct ml_supp_use **out)
{
    *out = supps.use ? supps.use + supps.user : NULL;
    return supps.n - supps.user;
}

void ml_supp_reset_counts(void)
{
    for (size_t k = 0; k < supps.n; k++)
        supps.use[k].blocks = supps.use[k].bytes = 0;
}
