/* tests/conformance/hz_introspect.c: glibc's malloc introspection calls
 * answer for mallard's heap (HAZARDS §10): mallinfo2's in-use bytes grow by
 * at least what was allocated (glibc's tst-mallinfo2 rule), malloc_trim
 * and mallopt succeed, malloc_info writes a well-formed <malloc> document to
 * the stream it is given, and malloc_stats writes to stderr, not stdout. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile void *sink;

int main(void)
{
    struct mallinfo2 a = mallinfo2();
    size_t total = 0;
    for (int i = 1; i < 20; i++) {
        sink = malloc(160 * (size_t)i);
        total += 160 * (size_t)i;
    }
    struct mallinfo2 b = mallinfo2();
    if (b.uordblks < a.uordblks + total) {
        fprintf(stderr, "hz_introspect: uordblks %zu -> %zu after %zu bytes\n", a.uordblks, b.uordblks, total);
        return 1;
    }
    if (b.arena < b.uordblks) {
        fprintf(stderr, "hz_introspect: arena %zu < in use %zu\n", b.arena, b.uordblks);
        return 2;
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo old = mallinfo(); /* deprecated, still called by old programs */
#pragma GCC diagnostic pop
    if (old.uordblks <= 0)
        return 3;
    if (mallopt(M_MMAP_THRESHOLD, 1 << 20) != 1 || mallopt(M_ARENA_MAX, 2) != 1)
        return 4;
    void *big[64];
    for (int i = 0; i < 64; i++)
        big[i] = malloc(100000);
    for (int i = 0; i < 64; i++)
        free(big[i]);
    int trimmed = malloc_trim(0);
    if (trimmed != 0 && trimmed != 1)
        return 5;
    char *doc = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&doc, &len);
    if (!f || malloc_info(0, f) != 0)
        return 6;
    fclose(f);
    if (strncmp(doc, "<malloc version=\"1\">", 20) != 0 || !strstr(doc, "</malloc>\n"))
        return 7;
    free(doc);
    errno = 0;
    if (malloc_info(1, stdout) != EINVAL || errno != 0) /* glibc 2.36: the error is the result */
        return 8;
    malloc_stats(); /* stderr only: the test compares stdout */
    puts("introspect ok");
    return 0;
}
