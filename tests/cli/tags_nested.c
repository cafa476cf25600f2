/* tests/cli/tags_nested.c: mallard_tag_push/pop nest: A "outer", B
 * "inner", C "outer" again, D untagged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"
#include <mallard.h>

static void *volatile sink;
__attribute__((noinline)) static void leak(size_t n) { sink = memset(malloc(n), 1, n), sink = 0; }

int main(void)
{
    if (!mallard_tag_push || !mallard_tag_pop) {
        printf("no mallard\n");
        return 0;
    }
    mallard_tag_push("outer");
    leak(11);
    mallard_tag_push("inner");
    leak(22);
    mallard_tag_pop();
    leak(33);
    mallard_tag_pop();
    leak(44);
    mallard_tag_pop(); /* one too many: nothing happens */
    leak(55);
    scrub_stack();
    return 0;
}
