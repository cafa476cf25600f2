/* preload/children.c: which processes of a tree are traced
 * (MALLARD_CHILDREN), and taking mallard out of the environment of the
 * programs that are not.
 *
 *   yes          every process is traced (the default)
 *   no           only the top process (the one the mallard command started,
 *                MALLARD_TOP_PID, and whatever it execs in place); the
 *                programs its descendants exec run without the preload
 *   PATTERN,...  the top process, and the descendants whose program
 *                (executable path or name, or argv[0]) matches one of the
 *                '*' patterns; the others keep the library loaded so that
 *                their own descendants can still be matched, but run the
 *                system allocator untraced and print nothing
 *
 * Without MALLARD_TOP_PID (LD_PRELOAD set by hand) the first process that
 * loads mallard counts as the top.
 */
#define _GNU_SOURCE
#include "children.h"

#include <string.h>
#include <unistd.h>

#include "../core/backend.h"
#include "../core/meta.h"
#include "boot.h"

static int mode_of(const char *v)
{
    if (!*v || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "all"))
        return ML_CHILDREN_YES;
    if (!strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "none"))
        return ML_CHILDREN_NO;
    return ML_CHILDREN_PATTERNS;
}

int ml_children_mode(const struct ml_options *o) { return mode_of(o->children); }

/* '*' matches any run of characters; the whole of s must match. */
static int glob(const char *p, size_t pl, const char *s)
{
    while (pl) {
        if (*p == '*') {
            while (pl && *p == '*')
                p++, pl--;
            if (!pl)
                return 1;
            for (; *s; s++)
                if (glob(p, pl, s))
                    return 1;
            return 0;
        }
        if (*s != *p)
            return 0;
        p++, pl--, s++;
    }
    return !*s;
}

static const char *base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int ml_children_match(const char *patterns, const char *program)
{
    if (!program || !*program)
        return 0;
    for (const char *p = patterns; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len) {
            /* a pattern with a '/' is matched against the path, else the name */
            int path_pattern = memchr(p, '/', len) != NULL;
            if (glob(p, len, path_pattern ? program : base(program)))
                return 1;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

/* ---- LD_PRELOAD without mallard --------------------------------------- */

static int is_mallard(const char *entry, size_t len)
{
    static const char name[] = "libmallard.so";
    const char *b = entry;
    for (size_t i = 0; i < len; i++)
        if (entry[i] == '/')
            b = entry + i + 1;
    size_t bl = (size_t)(entry + len - b);
    return bl >= sizeof name - 1 && !memcmp(b, name, sizeof name - 1);
}

size_t ml_children_strip(const char *entry, char *out, size_t cap)
{
    /* entry is "LD_PRELOAD=a:b c"; ld.so splits on ':' and ' ' */
    size_t n = 0;
    const char *v = entry + sizeof "LD_PRELOAD=" - 1;
    if (cap < sizeof "LD_PRELOAD=")
        return 0;
    memcpy(out, "LD_PRELOAD=", sizeof "LD_PRELOAD=" - 1);
    n = sizeof "LD_PRELOAD=" - 1;
    size_t kept = 0;
    while (*v) {
        size_t len = strcspn(v, ": ");
        if (len && !is_mallard(v, len)) {
            if (n + len + 2 > cap)
                return 0;
            if (kept++)
                out[n++] = ':';
            memcpy(out + n, v, len);
            n += len;
        }
        v += len;
        if (*v)
            v++;
    }
    out[n] = '\0';
    return kept ? n : 0; /* 0: drop the variable altogether */
}

static int has_mallard(const char *entry)
{
    const char *v = entry + sizeof "LD_PRELOAD=" - 1;
    while (*v) {
        size_t len = strcspn(v, ": ");
        if (len && is_mallard(v, len))
            return 1;
        v += len;
        if (*v)
            v++;
    }
    return 0;
}

static int top ML_STARTUP_DATA; /* MALLARD_TOP_PID, or the first process that loaded mallard */

int ml_children_exec_strips(void)
{
    if (ml_state != ML_READY || ml_children_mode(&ml_opts) != ML_CHILDREN_NO)
        return 0;
    /* the top process execing in place stays the top, and stays traced */
    return (int)getpid() != top;
}

char *const *ml_children_env(char *const *envp, char **space, size_t nspace, char *buf, size_t cap)
{
    if (!envp)
        return envp;
    size_t n = 0, at = (size_t)-1;
    for (; envp[n]; n++)
        if (at == (size_t)-1 && !strncmp(envp[n], "LD_PRELOAD=", 11) && has_mallard(envp[n]))
            at = n;
    if (at == (size_t)-1 || n + 1 > nspace)
        return envp;
    size_t k = 0;
    size_t len = ml_children_strip(envp[at], buf, cap);
    for (size_t i = 0; i < n; i++) {
        if (i != at)
            space[k++] = envp[i];
        else if (len)
            space[k++] = buf;
    }
    space[k] = NULL;
    return space;
}

/* ---- at start-up ------------------------------------------------------ */

static char own_env[4096] ML_LARGE_BSS;

/* Program identity without the host's malloc: /proc/self/exe and argv[0]. */
static int this_program_matches(const char *patterns)
{
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        if (ml_children_match(patterns, exe))
            return 1;
    }
    size_t len = 0;
    char *cmd = ml_meta_read_file("/proc/self/cmdline", 4096, &len);
    int hit = 0;
    if (cmd && len) {
        cmd[len - 1] = '\0';
        hit = ml_children_match(patterns, cmd);
        /* a script: the kernel runs "interpreter script args" */
        size_t a0 = strlen(cmd) + 1;
        if (!hit && a0 < len && !strcmp(base(cmd), base(n > 0 ? exe : cmd)))
            hit = ml_children_match(patterns, cmd + a0);
    }
    if (cmd)
        ml_meta_free(cmd);
    return hit;
}

static int strip_own ML_STARTUP_DATA;

void ml_children_boot(struct ml_options *o)
{
    int me = (int)getpid();
    top = o->top_pid ? o->top_pid : me;
    int mode = mode_of(o->children);
    if (mode == ML_CHILDREN_YES || me == top)
        return;
    if (mode == ML_CHILDREN_PATTERNS && this_program_matches(o->children))
        return;
    /* not traced: the bare system allocator, silent */
    o->trace = 0;
    for (int i = 0; ml_backends[i]; i++)
        if (!strcmp(ml_backends[i]->name, "system"))
            o->backend = i;
    strip_own = mode == ML_CHILDREN_NO;
}

void ml_children_ctor(void)
{
    extern char **environ;
    if (!strip_own || !environ)
        return;
    /* reached without one of mallard's exec hooks (posix_spawn, system):
     * the programs this one starts get no preload either */
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "LD_PRELOAD=", 11) || !has_mallard(*e))
            continue;
        if (ml_children_strip(*e, own_env, sizeof own_env)) {
            *e = own_env;
        } else {
            char **d = e;
            for (; d[1]; d++)
                d[0] = d[1];
            d[0] = NULL;
        }
        break;
    }
}
