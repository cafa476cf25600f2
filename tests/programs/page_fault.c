/* Faults the page backend turns into named errors (-O1 -g): argv[1] is
 * "overflow" (write one byte past a 13-byte block, MALLARD_PAGE_ALIGN=1),
 * "underflow" (read one byte before it, MALLARD_PAGE_GUARD=before),
 * "after-free" (read a freed block) or "slack" (write inside the alignment
 * slack past the block, found when it is freed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *volatile keep;

__attribute__((noinline)) static char *make(void) { return malloc(13); /* @MAKE13 */ }
__attribute__((noinline)) static void release(char *p) { free(p); /* @RELEASE */ }
__attribute__((noinline)) static void write_past(char *p) { p[13] = 'x'; /* @WRITEPAST */ }
__attribute__((noinline)) static int read_before(char *p) { return p[-1]; /* @READBEFORE */ }
__attribute__((noinline)) static int read_freed(char *p) { return p[3]; /* @READFREED */ }

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    keep = make();
    memset(keep, 'a', 13);
    fflush(stdout);
    if (!strcmp(what, "overflow")) {
        write_past(keep);
    } else if (!strcmp(what, "underflow")) {
        printf("%d\n", read_before(keep));
    } else if (!strcmp(what, "after-free")) {
        release(keep);
        printf("%d\n", read_freed(keep));
    } else if (!strcmp(what, "slack")) {
        write_past(keep);
        release(keep);
        puts("freed");
        return 0;
    }
    puts("survived");
    return 0;
}
