/* Tagged allocations: a leak under the tag "parser", a freed block under
 * "lexer", and an untagged leak.  mallard_tag is reached through a weak
 * reference, so the program also runs without mallard. */
#include <stdio.h>
#include <stdlib.h>

#include "scrub.h"

extern const char *mallard_tag(const char *name) __attribute__((weak));

__attribute__((noinline)) static void parse(void)
{
    if (mallard_tag)
        mallard_tag("parser");
    ((char *)malloc(40))[0] = 1; /* @PARSER */
    if (mallard_tag)
        mallard_tag("lexer");
    char *tmp = malloc(300);
    tmp[0] = 1;
    free(tmp);
    if (mallard_tag)
        mallard_tag(NULL);
    ((char *)malloc(56))[0] = 1; /* @UNTAGGED */
}

int main(void)
{
    parse();
    scrub_stack();
    puts("tagged");
    return 0;
}
