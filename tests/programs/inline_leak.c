/* Leaks made inside inlined code (-O1 -g): glibc's getline wrapper from
 * <stdio.h> inlined into read_first, itself inlined into main, and a
 * static function of ours forced inline.  Each frame of the inline chain
 * is reported, innermost first, with the line of each call. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "scrub.h"

static char *volatile sink;

static inline __attribute__((always_inline)) char *dup_word(const char *w)
{
    char *s = malloc(strlen(w) + 1); /* @DUPMALLOC */
    strcpy(s, w);
    return s;
}

__attribute__((noinline)) static char *outer(const char *w)
{
    return dup_word(w); /* @DUPCALL */
}

static inline __attribute__((always_inline)) ssize_t read_first(FILE *f, char **line, size_t *n)
{
    return getline(line, n, f); /* @GETLINE */
}

int main(void)
{
    FILE *f = fopen("/proc/self/cmdline", "r");
    if (!f)
        return 1;
    char *line = NULL;
    size_t n = 0;
    ssize_t got = read_first(f, &line, &n); /* @READFIRST */
    fclose(f);
    sink = outer("sixteen-bytes!!"); /* @OUTER */
    printf("%d\n", got > 0);
    line = NULL;
    sink = NULL;
    scrub_stack();
    return 0;
}
