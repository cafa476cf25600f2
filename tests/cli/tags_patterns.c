/* tests/cli/tags_patterns.c: an unmodified program (no mallard.h) for
 * MALLARD_TAGS: parse_config and parse_line leak (3 blocks, 300 bytes,
 * through a helper and strdup, so the matching frame is not the innermost
 * one), other_work leaks 50 bytes, and 7 blocks of 16 bytes allocated
 * under parse_line are freed; everything else is untagged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"

static void *volatile sink;
__attribute__((noinline)) static void *grab(size_t n) { return memset(malloc(n), 1, n); }
__attribute__((noinline)) void parse_config(void)
{
    sink = grab(100);
    sink = grab(100);
    sink = 0;
}
__attribute__((noinline)) void parse_line(void)
{
    char s[100];
    memset(s, 'x', sizeof s - 1);
    s[sizeof s - 1] = 0;
    sink = strdup(s);
    sink = 0;
    for (int i = 0; i < 7; i++)
        free(grab(16));
}
__attribute__((noinline)) void other_work(void) { sink = grab(50), sink = 0; }

int main(void)
{
    parse_config();
    parse_line();
    other_work();
    scrub_stack();
    printf("done\n");
    return 0;
}
