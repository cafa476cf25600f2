/* Leaks next to live buffers whose one-past-the-end pointers are kept, as
 * stdio keeps _IO_buf_end and std::vector _M_end_of_storage.  Blocks of a
 * size class sit back to back, so the end of a kept buffer may be the start
 * of a leaked block: that pointer must not keep the leak alive (valgrind:
 * 128 bytes in 2 blocks definitely lost, the kept ones reachable). */
#include <stdio.h>
#include <stdlib.h>

#include "scrub.h"

struct span {
    char *start, *end;
};
struct span kept[3];

__attribute__((noinline)) static char *leak(void)
{
    char *p = malloc(64); /* @LEAK */
    p[0] = 'l';
    return p;
}

__attribute__((noinline)) static void keep(int i)
{
    kept[i].start = malloc(64); /* @KEEP */
    kept[i].start[0] = 'k';
    kept[i].end = kept[i].start + 64;
}

__attribute__((noinline)) static void build(void)
{
    /* kept, leaked, kept, leaked, kept: whichever way the allocator hands
     * out addresses, each leak has a kept neighbour on that side */
    keep(0);
    char *a = leak();
    keep(1);
    char *b = leak();
    keep(2);
    printf("%c%c\n", a[0], b[0]);
}

int main(void)
{
    build();
    scrub_stack();
    return 0;
}
