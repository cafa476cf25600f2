/* report/suppress.c: suppression patterns (suppress.h).
 *
 * Loaded once, at exit, into the meta heap.  Matching is LSan's glob.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "../core/fmt.h"
#include "../core/meta.h"
#include "suppress.h"

struct supp {
    char **pat;
    size_t n, cap;
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

static void supp_add(const char *p, size_t len)
{
    if (supps.n == supps.cap) {
        size_t cap = supps.cap ? supps.cap * 2 : 32;
        char **grown = ml_meta_realloc(supps.pat, cap * sizeof *grown);
        if (!grown)
            return;
        supps.pat = grown;
        supps.cap = cap;
    }
    char *copy = ml_meta_alloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, p, len);
    copy[len] = '\0';
    supps.pat[supps.n++] = copy;
}

void ml_supp_load(const char *path)
{
    for (size_t i = 0; i < sizeof default_supps / sizeof default_supps[0]; i++)
        supp_add(default_supps[i], strlen(default_supps[i]));
    if (!path || !*path)
        return;
    size_t len;
    char *text = ml_meta_read_file(path, (size_t)1 << 20, &len);
    if (!text) {
        ml_say("MALLARD_SUPPRESSIONS=%s cannot be read (errno %d); using the built-in list only", path,
               errno);
        return;
    }
    unsigned lineno = 0;
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
            if (sl > 5 && !strncmp(line, "leak:", 5)) {
                supp_add(line + 5, sl - 5);
            } else {
                char shown[128];
                size_t k = sl < sizeof shown - 1 ? sl : sizeof shown - 1;
                memcpy(shown, line, k);
                shown[k] = '\0';
                ml_say("%s:%u: not a suppression (expected leak:PATTERN): %s", path, lineno, shown);
            }
        }
        line = nl ? nl + 1 : text + len;
    }
    ml_meta_free(text);
}

static int glob_at(const char *p, const char *s, int anchored_end)
{
    for (; *p; p++, s++) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            if (!*p && !anchored_end)
                return 1;
            for (; *s; s++)
                if (glob_at(p, s, anchored_end))
                    return 1;
            return !*p;
        }
        if (*p == '$' && !p[1])
            return !*s;
        if (*s != *p)
            return 0;
    }
    return !anchored_end || !*s;
}

int ml_supp_match(const char *pat, const char *s)
{
    if (!s)
        return 0;
    size_t pl = strlen(pat);
    int end = pl && pat[pl - 1] == '$';
    if (*pat == '^')
        return glob_at(pat + 1, s, end);
    for (; *s; s++)
        if (glob_at(pat, s, end))
            return 1;
    return 0;
}

int ml_supp_frame_matches(const struct ml_supp_frame *f)
{
    for (size_t k = 0; k < supps.n; k++)
        if (ml_supp_match(supps.pat[k], f->function) || ml_supp_match(supps.pat[k], f->mangled) ||
            ml_supp_match(supps.pat[k], f->file) || ml_supp_match(supps.pat[k], f->object))
            return 1;
    return 0;
}

int ml_supp_stack(ml_stack_id id)
{
    if (!id)
        return 1; /* allocated before tracing could capture: ld.so/libc start-up */
    unsigned n;
    const uintptr_t *f = ml_stack_frames(id, &n);
    for (unsigned i = 0; i < n; i++) {
        struct ml_frame chain[ML_INLINE_MAX]; /* inlined frames count too */
        unsigned k = ml_symbolize_chain(f[i], chain, ML_INLINE_MAX);
        for (unsigned j = 0; j < k; j++) {
            struct ml_supp_frame sf = {chain[j].function, chain[j].mangled, chain[j].file, chain[j].object};
            if (ml_supp_frame_matches(&sf))
                return 1;
        }
    }
    return 0;
}
