/* preload/cli.c: the mallard command.
 *
 *   mallard [options] [--] program [args...]
 *   mallard report [report options] FILE...      (scripts/mallard-report)
 *
 * Each MALLARD_* variable is an option: MALLARD_PAGE_GUARD is --page-guard,
 * given as --page-guard=before or --page-guard before.  The command checks
 * every option and value first (a mistake is a usage error, exit status 2,
 * before the program starts), checks that libmallard.so is there and that
 * the program can be traced at all, then sets the variables, puts the
 * library first in LD_PRELOAD and execs the program, so the program's exit
 * status is the command's.  --help, --version, --list-backends (from the
 * backend registry, ml_backends[]); --markdown and --man print the option
 * table for README.md and man/mallard.1; --backends prints the backend
 * names, one a line, for the tests and bench/run.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/backend.h"
#include "../core/backend.h"
#include "../core/options.h"

#ifndef ML_VERSION
#define ML_VERSION "unknown"
#endif
#ifndef ML_LIBEXECDIR
#define ML_LIBEXECDIR "/usr/local/libexec"
#endif
#ifndef ML_LIBDIR
#define ML_LIBDIR "/usr/local/lib"
#endif

/* Exit statuses of the command itself (the program's own otherwise). */
enum { EXIT_USAGE = 2, EXIT_NO_LIBRARY = 125, EXIT_CANNOT_RUN = 126, EXIT_NOT_FOUND = 127 };

/* One "use it when" line per backend, looked up by name. */
static const struct {
    const char *name, *when;
} backend_when[] = {
    {"freelist", "the default: size classes with per-thread caches; fast, use it for everyday runs"},
    {"bump", "short-lived programs that free little: a bump pointer, free reuses nothing"},
    {"arena", "budget tests: one arena, --arena-limit makes allocation past it fail with ENOMEM"},
    {"page", "finding overflows and use after free: each block against a guard page (slow, big)"},
    {"system", "comparing with glibc: glibc's own malloc underneath, mallard only traces"},
};

static const char *when_of(const char *name)
{
    for (size_t i = 0; i < sizeof backend_when / sizeof backend_when[0]; i++)
        if (!strcmp(backend_when[i].name, name))
            return backend_when[i].when;
    return "(no description)";
}

/* The command-line form of a variable: MALLARD_PAGE_GUARD -> page-guard. */
static void long_name(const char *var, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *s = var + 8; *s && k + 1 < cap; s++)
        out[k++] = *s == '_' ? '-' : (char)tolower((unsigned char)*s);
    out[k] = '\0';
}

/* A value placeholder for --help: NAME, PATH, SIZE, N or the enum words. */
static const char *metavar(const struct ml_option *o)
{
    if (!strcmp(o->name, "MALLARD_BACKEND"))
        return "NAME";
    if (!strcmp(o->name, "MALLARD_CHILDREN"))
        return "yes|no|PATTERN,...";
    switch (o->type) {
    case ML_OPT_BACKEND:
        return "NAME";
    case ML_OPT_ENUM:
        return o->accepted;
    case ML_OPT_BOOL:
        return "0|1";
    case ML_OPT_SIZE:
        return o->accepted[0] == 'N' ? "N" : "SIZE";
    case ML_OPT_RATE:
        return "P";
    case ML_OPT_INT:
        return "N";
    case ML_OPT_PATH:
        break;
    }
    return "PATH";
}

static char short_of(const char *var)
{
    if (!strcmp(var, "MALLARD_BACKEND"))
        return 'b';
    if (!strcmp(var, "MALLARD_REPORT"))
        return 'o';
    if (!strcmp(var, "MALLARD_FORMAT"))
        return 'f';
    if (!strcmp(var, "MALLARD_SUPPRESSIONS"))
        return 's';
    return 0;
}

/* "  flag   doc" wrapped to 79 columns, the doc in a column of its own. */
static void help_line(FILE *out, const char *flag, const char *doc, const char *def)
{
    enum { COL = 32, WIDTH = 79 };
    int col = fprintf(out, "  %s", flag);
    if (col >= COL) {
        fputc('\n', out);
        col = 0;
    }
    char text[512];
    snprintf(text, sizeof text, "%s%s%s%s", doc, def && *def ? " (default " : "", def && *def ? def : "",
             def && *def ? ")" : "");
    for (const char *w = text; *w;) {
        size_t len = strcspn(w, " ");
        if (col > COL && col + 1 + (int)len > WIDTH) {
            fputc('\n', out);
            col = 0;
        }
        if (col < COL) {
            fprintf(out, "%*s", COL - col, "");
            col = COL;
        } else {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)len, w);
        col += (int)len;
        w += len;
        while (*w == ' ')
            w++;
    }
    fputc('\n', out);
}

static void print_help(FILE *out)
{
    fprintf(out, "usage: mallard [options] [--] program [args...]\n"
                 "       mallard report [--diff OLD NEW | --gen-suppressions FILE | FILE...]\n"
                 "\n"
                 "Runs program with libmallard.so preloaded: a replacement malloc and a leak\n"
                 "tracer.  At exit (and on SIGTERM, SIGINT, SIGHUP, SIGQUIT and fatal signals)\n"
                 "each traced process writes its leak report to stderr or to --report.\n"
                 "\n"
                 "example:\n"
                 "  mallard --backend=page -o leaks.%%p.txt -- ./myprog --its-args\n"
                 "\n"
                 "options (--name=VALUE or --name VALUE):\n");
    for (size_t i = 0; i < ml_option_count; i++) {
        const struct ml_option *o = &ml_option_table[i];
        if (!strcmp(o->name, "MALLARD_TOP_PID"))
            continue; /* the command's own business */
        char name[64], flag[112];
        long_name(o->name, name, sizeof name);
        char s = short_of(o->name);
        if (s)
            snprintf(flag, sizeof flag, "-%c, --%s=%s", s, name, metavar(o));
        else
            snprintf(flag, sizeof flag, "    --%s=%s", name, metavar(o));
        help_line(out, flag, o->doc, o->def);
    }
    help_line(out, "-q, --quiet", "nothing at all for a process with no leak and no error", NULL);
    help_line(out, "-v, --verbose", "a one-line summary for every process of the tree", NULL);
    help_line(out, "    --lib=PATH", "the libmallard.so to preload", NULL);
    help_line(out, "    --list-backends", "the backends, with when to use each", NULL);
    help_line(out, "-h, --help", "this text", NULL);
    help_line(out, "    --version", "the version", NULL);
    fprintf(out, "\n"
                 "Each option is also an environment variable (--backend=page is\n"
                 "MALLARD_BACKEND=page) for LD_PRELOAD=libmallard.so without the command.\n"
                 "\n"
                 "exit status: the program's own status (or death by its signal); with\n"
                 "--exitcode=N, N when a definite leak or an error was found;\n"
                 "  2 a bad option or value, 125 libmallard.so missing or unusable,\n"
                 "  126 the program cannot be executed, 127 the program was not found.\n"
                 "See mallard(1) and mallard(3).\n");
}

static void list_backends(void)
{
    for (const struct ml_backend *const *b = ml_backends; *b; b++)
        printf("%-10s %s\n", (*b)->name, when_of((*b)->name));
}

/* A table cell: '|' would end the cell even inside backticks. */
static void md_cell(const char *s, int code)
{
    if (!*s) {
        fputs(" (empty) |", stdout);
        return;
    }
    fputs(code ? " `" : " ", stdout);
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', stdout);
        fputc(*s, stdout);
    }
    fputs(code ? "` |" : " |", stdout);
}

static void print_markdown(void)
{
    printf("| variable | accepted values | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < ml_option_count; i++) {
        const struct ml_option *o = &ml_option_table[i];
        char names[256];
        fputc('|', stdout);
        md_cell(o->name, 1);
        md_cell(ml_option_accepted(o, names, sizeof names), 1);
        md_cell(o->def, 1);
        md_cell(o->doc, 0);
        fputc('\n', stdout);
    }
}

/* roff text: a leading '.' or '\'' would be a request, '\' an escape. */
static void man_text(const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", stdout);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            fputc(*s, stdout);
    }
}

static void print_man(void)
{
    for (size_t i = 0; i < ml_option_count; i++) {
        const struct ml_option *o = &ml_option_table[i];
        char name[64];
        long_name(o->name, name, sizeof name);
        char s = short_of(o->name);
        printf(".TP\n.BR %s \" or \" \\-\\-", o->name);
        man_text(name);
        if (s)
            printf(" \", \" \\-%c", s);
        printf("\n");
        man_text(o->doc);
        printf(".\nAccepted: ");
        char names[256];
        man_text(ml_option_accepted(o, names, sizeof names));
        printf(".  Default: ");
        man_text(o->def[0] ? o->def : "(empty)");
        printf(".\n");
    }
}

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fputs("mallard: ", stderr);
    fprintf(stderr, fmt, a, b);
    fputs("\nmallard: `mallard --help` lists the options\n", stderr);
    return EXIT_USAGE;
}

/* The library next to this executable (build tree: same directory;
 * installed: ../lib or ../lib/<multiarch>), else the configured libdir. */
static void find_library(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            const char *cands[] = {"%s/libmallard.so", "%s/../lib/libmallard.so",
                                   "%s/../lib/x86_64-linux-gnu/libmallard.so"};
            for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
                snprintf(out, cap, cands[i], self);
                if (access(out, R_OK) == 0)
                    return;
            }
        }
    }
    snprintf(out, cap, "%s/libmallard.so", ML_LIBDIR);
}

/* 0 when path is a readable ELF shared object, else an error line. */
static int check_library(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "mallard: cannot open the library %s: %s\n", path, strerror(errno));
        return -1;
    }
    Elf64_Ehdr eh;
    ssize_t r = read(fd, &eh, sizeof eh);
    close(fd);
    if (r != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_type != ET_DYN) {
        fprintf(stderr, "mallard: %s is not a shared library\n", path);
        return -1;
    }
    return 0;
}

/* The file execvp would run for name, or NULL (errno set). */
static const char *resolve_program(const char *name, char *buf, size_t cap)
{
    if (strchr(name, '/'))
        return name;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/bin:/usr/bin";
    int saw_eacces = 0;
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        snprintf(buf, cap, "%.*s%s%s", (int)len, p, len ? "/" : "", name);
        struct stat st;
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(buf, X_OK) == 0)
                return buf;
            saw_eacces = 1;
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    errno = saw_eacces ? EACCES : ENOENT;
    return NULL;
}

/* Why the dynamic loader will not preload into this program, or NULL. */
static const char *untraceable(const char *file)
{
    struct stat st;
    if (stat(file, &st) != 0)
        return NULL; /* execvp will say why */
    if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
        ((st.st_mode & S_ISGID) && st.st_gid != getegid()))
        return "it is set-user-ID or set-group-ID (the loader ignores LD_PRELOAD)";
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    Elf64_Ehdr eh;
    const char *why = NULL;
    if (read(fd, &eh, sizeof eh) == (ssize_t)sizeof eh && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
        eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr)) {
        int interp = 0;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
            Elf64_Phdr ph;
            if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph)
                break;
            interp |= ph.p_type == PT_INTERP;
        }
        if (!interp)
            why = "it is statically linked (nothing can be preloaded into it)";
    }
    close(fd);
    return why;
}

/* Looks an option up by its long name (dashes or underscores). */
static const struct ml_option *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < ml_option_count; i++) {
        char ln[64];
        long_name(ml_option_table[i].name, ln, sizeof ln);
        if (strlen(ln) != len)
            continue;
        size_t k = 0;
        while (k < len && (name[k] == ln[k] || (name[k] == '_' && ln[k] == '-')))
            k++;
        if (k == len)
            return &ml_option_table[i];
    }
    return NULL;
}

static const struct ml_option *find_short(char c)
{
    for (size_t i = 0; i < ml_option_count; i++)
        if (short_of(ml_option_table[i].name) == c)
            return &ml_option_table[i];
    return NULL;
}

static int set_option(const struct ml_option *o, const char *value)
{
    struct ml_options scratch;
    memset(&scratch, 0, sizeof scratch);
    if (ml_option_set(&scratch, o, value) != 0) {
        char ln[64];
        long_name(o->name, ln, sizeof ln);
        char names[256];
        fprintf(stderr, "mallard: --%s=%s is not valid; accepted: %s\n", ln, value,
                ml_option_accepted(o, names, sizeof names));
        fprintf(stderr, "mallard: `mallard --help` lists the options\n");
        return EXIT_USAGE;
    }
    if (setenv(o->name, value, 1) != 0) {
        fprintf(stderr, "mallard: cannot set %s: %s\n", o->name, strerror(errno));
        return EXIT_USAGE;
    }
    return 0;
}

static int run_report(int argc, char **argv)
{
    /* mallard report: the reader of saved JSON reports, a Python script
     * next to the command in a build tree, in libexec/mallard when
     * installed (see scripts/mallard-report). */
    char self[PATH_MAX], script[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    const char *cands[] = {"%s/mallard-report", "%s/../libexec/mallard/mallard-report",
                           ML_LIBEXECDIR "/mallard/mallard-report"};
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
            snprintf(script, sizeof script, cands[i], self);
            if (access(script, R_OK) == 0) {
                char **args = calloc((size_t)argc + 3, sizeof *args);
                if (!args)
                    return EXIT_CANNOT_RUN;
                args[0] = "python3";
                args[1] = script;
                for (int k = 1; k < argc; k++)
                    args[k + 1] = argv[k];
                execvp("python3", args);
                fprintf(stderr, "mallard: cannot run python3 for `mallard report`: %s\n", strerror(errno));
                return errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
            }
        }
    }
    fprintf(stderr, "mallard: the report reader (mallard-report) is not installed next to this command\n");
    return EXIT_NOT_FOUND;
}

/* For parse_args: the command ends here, with status code. */
static int command_done(int *exit_code, int code)
{
    *exit_code = code;
    return -1;
}

/* The command's own options, up to the program: the index of the
 * program's argv[0], or -1 when the command is done (--help, --version, a
 * usage error...) and *exit_code says how it ends.  lib has PATH_MAX bytes. */
static int parse_args(int argc, char **argv, char *lib, int *quiet, int *verbose, int *exit_code)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-' || !a[1])
            break; /* the program itself, without a "--" */
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(stdout);
            return command_done(exit_code, 0);
        }
        if (!strcmp(a, "--version")) {
            printf("mallard %s\n", ML_VERSION);
            return command_done(exit_code, 0);
        }
        if (!strcmp(a, "--list-backends")) {
            list_backends();
            return command_done(exit_code, 0);
        }
        if (!strcmp(a, "--backends")) {
            for (const struct ml_backend *const *b = ml_backends; *b; b++)
                printf("%s\n", (*b)->name);
            return command_done(exit_code, 0);
        }
        if (!strcmp(a, "--markdown")) {
            print_markdown();
            return command_done(exit_code, 0);
        }
        if (!strcmp(a, "--man")) {
            print_man();
            return command_done(exit_code, 0);
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            *quiet = 1;
            *verbose = 0;
            continue;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            *verbose = 1;
            *quiet = 0;
            continue;
        }
        const struct ml_option *o = NULL;
        const char *value = NULL;
        if (a[1] != '-') { /* -b NAME, -bNAME */
            o = find_short(a[1]);
            if (!o)
                return command_done(exit_code, usage_error("unknown option %s%s", a, ""));
            value = a[2] ? a + 2 : NULL;
        } else {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (len == 3 && !strncmp(name, "lib", 3)) {
                const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
                if (!v || !*v)
                    return command_done(exit_code, usage_error("--lib needs a PATH%s%s", "", ""));
                snprintf(lib, PATH_MAX, "%s", v);
                continue;
            }
            o = find_option(name, len);
            if (!o)
                return command_done(exit_code, usage_error("unknown option %s%s", a, ""));
            value = eq ? eq + 1 : NULL;
        }
        if (!value) {
            if (i + 1 >= argc)
                return command_done(exit_code, usage_error("%s needs a value%s", a, ""));
            value = argv[++i];
        }
        int rc = set_option(o, value);
        if (rc)
            return command_done(exit_code, rc);
    }
    return i;
}

/* Checks the library and the program, then execs argv[i] under the
 * preload; returns only on failure, with the exit status. */
static int run_program(int argc, char **argv, int i, char *lib, int quiet, int verbose)
{
    if (i >= argc) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (!lib[0])
        find_library(lib, PATH_MAX);
    if (check_library(lib) != 0)
        return EXIT_NO_LIBRARY;
    char abs[PATH_MAX];
    if (lib[0] != '/' && realpath(lib, abs))
        snprintf(lib, PATH_MAX, "%s", abs); /* the program may chdir before it execs */

    char found[PATH_MAX];
    const char *file = resolve_program(argv[i], found, sizeof found);
    if (!file) {
        fprintf(stderr, "mallard: cannot run %s: %s\n", argv[i], strerror(errno));
        return errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
    }
    const char *why = untraceable(file);
    if (why)
        fprintf(stderr, "mallard: %s cannot be traced: %s; running it untraced\n", argv[i], why);

    /* The process the command starts is the top of the tree: it alone
     * prints the one-line summary when it has nothing to report, unless -q
     * (nothing) or -v (every process) says otherwise. */
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("MALLARD_TOP_PID", pid, 1);
    if (quiet || verbose)
        setenv("MALLARD_SUMMARY", quiet ? "none" : "all", 1);

    const char *old = getenv("LD_PRELOAD");
    char *pre = malloc(strlen(lib) + (old ? strlen(old) : 0) + 2);
    if (!pre) {
        fprintf(stderr, "mallard: %s\n", strerror(ENOMEM));
        return EXIT_CANNOT_RUN;
    }
    strcpy(pre, lib);
    if (old && *old) {
        strcat(pre, ":");
        strcat(pre, old);
    }
    setenv("LD_PRELOAD", pre, 1);
    execv(file, argv + i);
    fprintf(stderr, "mallard: cannot run %s: %s\n", argv[i], strerror(errno));
    return errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "report"))
        return run_report(argc - 1, argv + 1);
    char lib[PATH_MAX] = "";
    int quiet = 0, verbose = 0, code = 0;
    int i = parse_args(argc, argv, lib, &quiet, &verbose, &code);
    if (i < 0)
        return code;
    return run_program(argc, argv, i, lib, quiet, verbose);
}
