/* The program's own anonymous memory placed against the allocator's
 * mapping, so that the kernel merges the two into one /proc/self/maps
 * entry; the only pointer to a block lives there.  valgrind: the block is
 * still reachable, nothing lost.  Prints "merged" to stderr when the
 * kernel did merge the mappings (the case this fixture is about). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "scrub.h"

#define REGION ((size_t)256 << 10)

/* The maps entry holding a: [lo, hi). */
static int entry_of(uintptr_t a, uintptr_t *lo, uintptr_t *hi)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long l, h;
        if (sscanf(line, "%lx-%lx", &l, &h) == 2 && a >= l && a < h) {
            *lo = l;
            *hi = h;
            found = 1;
            break;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* Whether region lies in the same maps entry as probe. */
static int merged_with(const void *region, const void *probe)
{
    uintptr_t lo, hi;
    return entry_of((uintptr_t)region, &lo, &hi) && lo <= (uintptr_t)probe && (uintptr_t)probe < hi;
}

/* Maps REGION right after, else right before, the maps entry that holds
 * probe, and keeps it if the kernel merged the two; NULL otherwise. */
static void **place_next_to(const char *probe)
{
    uintptr_t lo, hi;
    if (!entry_of((uintptr_t)probe, &lo, &hi))
        return NULL;
    uintptr_t at[2] = {hi, lo - REGION};
    for (int i = 0; i < 2; i++) {
        void *r = mmap((void *)at[i], REGION, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (r == MAP_FAILED)
            continue;
        if (merged_with(r, probe))
            return r;
        munmap(r, REGION);
    }
    return NULL;
}

__attribute__((noinline)) static void **place(void)
{
    /* blocks of a few sizes: one of them sits in a mapping with room on a
     * side */
    static const size_t sizes[] = {64, 4000, 100000, 3 << 20};
    void **region = NULL;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes && !region; i++) {
        char *probe = malloc(sizes[i]);
        probe[0] = 1;
        region = place_next_to(probe);
        free(probe);
    }
    if (region)
        fputs("merged\n", stderr);
    else
        region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return region;
}

__attribute__((noinline)) static void fill(void **region)
{
    /* the last word: whole granules of the region hold it */
    char *b = malloc(200); /* @ANONKEPT */
    memset(b, 'a', 200);
    region[REGION / sizeof *region - 1] = b;
}

/* the region's address, hidden from the scan */
uintptr_t hidden;

int main(void)
{
    void **region = place();
    fill(region);
    hidden = (uintptr_t)region ^ 0x5555555555555555u;
    region = NULL;
    scrub_stack();
    puts("kept");
    return 0;
}
