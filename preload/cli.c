/* preload/cli.c: the mallard command.
 *
 *   mallard [options] -- prog args...
 *
 * Each option is a MALLARD_* variable written as --name=value (for example
 * --backend=page for MALLARD_BACKEND=page).  The command sets the variables,
 * puts libmallard.so first in LD_PRELOAD and execs the program, so the
 * program's exit status is mallard's.  --help prints the option table;
 * --markdown and --man print it for README.md and man/mallard.1.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

static void print_help(FILE *out)
{
    fprintf(out, "usage: mallard [options] -- program [args...]\n\n"
                 "Runs program with libmallard.so preloaded.  Each option sets one variable:\n"
                 "--backend=page is MALLARD_BACKEND=page.  The variables work on their own\n"
                 "with LD_PRELOAD=libmallard.so as well.\n\n");
    for (size_t i = 0; i < ml_option_count; i++) {
        const struct ml_option *o = &ml_option_table[i];
        fprintf(out, "  %-24s %s\n  %-24s accepted: %s; default %s\n", o->name, o->doc, "", o->accepted,
                o->def);
    }
    fprintf(out, "\n  --lib=PATH               the libmallard.so to preload\n"
                 "  --help                   this text\n");
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
        fputc('|', stdout);
        md_cell(o->name, 1);
        md_cell(o->accepted, 1);
        md_cell(o->def, 1);
        md_cell(o->doc, 0);
        fputc('\n', stdout);
    }
}

static void print_man(void)
{
    for (size_t i = 0; i < ml_option_count; i++) {
        const struct ml_option *o = &ml_option_table[i];
        printf(".TP\n.B %s\n%s.\nAccepted: %s.  Default: %s.\n", o->name, o->doc, o->accepted, o->def);
    }
}

/* The library next to this executable (build tree: same directory; installed:
 * ../lib), else the configured install directory. */
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

int main(int argc, char **argv)
{
    char lib[PATH_MAX] = "";
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(stdout);
            return 0;
        }
        if (!strcmp(a, "--markdown")) {
            print_markdown();
            return 0;
        }
        if (!strcmp(a, "--man")) {
            print_man();
            return 0;
        }
        if (!strncmp(a, "--lib=", 6)) {
            snprintf(lib, sizeof lib, "%s", a + 6);
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || !strchr(a, '=')) {
            break; /* the program itself, without a "--" */
        }
        char var[128] = "MALLARD_";
        const char *eq = strchr(a, '=');
        size_t len = (size_t)(eq - (a + 2));
        if (len + 9 > sizeof var) {
            fprintf(stderr, "mallard: option too long: %s\n", a);
            return 2;
        }
        for (size_t k = 0; k < len; k++)
            var[8 + k] = a[2 + k] == '-' ? '_' : (char)toupper((unsigned char)a[2 + k]);
        var[8 + len] = '\0';
        int known = 0;
        for (size_t k = 0; k < ml_option_count; k++)
            known |= !strcmp(ml_option_table[k].name, var);
        if (!known) {
            fprintf(stderr, "mallard: unknown option %s (no variable %s); see mallard --help\n", a, var);
            return 2;
        }
        setenv(var, eq + 1, 1);
    }
    if (i >= argc) {
        print_help(stderr);
        return 2;
    }
    if (!lib[0])
        find_library(lib, sizeof lib);
    const char *old = getenv("LD_PRELOAD");
    char *pre = malloc(strlen(lib) + (old ? strlen(old) : 0) + 2);
    if (!pre)
        return 2;
    strcpy(pre, lib);
    if (old && *old) {
        strcat(pre, ":");
        strcat(pre, old);
    }
    setenv("LD_PRELOAD", pre, 1);
    /* The program keeps this pid: a clean exit of this one process still
     * prints mallard's one-line summary (a bare LD_PRELOAD stays quiet). */
    char top[24];
    snprintf(top, sizeof top, "%d", (int)getpid());
    setenv("_MALLARD_SUMMARY_PID", top, 1);
    execvp(argv[i], argv + i);
    fprintf(stderr, "mallard: cannot run %s: %s\n", argv[i], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
