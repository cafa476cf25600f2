/* tests/procstart/bss_pages.c: how many pages of libmallard's writable
 * segment (relro, .data, .bss and .lbss: 6.8 MiB, nearly all of it zero
 * tables) a short untraced program has touched by the end of its work.
 *
 * Run under LD_PRELOAD=libmallard.so MALLARD_TRACE=0: it does what a small
 * filter (tr, sed) does with the heap, then counts the pages of that
 * segment present in its page table (/proc/self/pagemap, bit 63: the
 * zero page mapped by a read counts too, since it took a fault), and
 * exits 0 when at most MAX (argv[1]) of those past the file's bytes are
 * (.bss and .lbss, which the start-up layout decides; the pages of relro
 * and .data are listed too, but how many of them ld.so's relocations
 * write depends on the build: a UBSan build's type descriptors fill 57).  Each page is a minor
 * fault every process start pays (about 2.5 us written, 0.7 us read).
 * Prints "bss_pages ok: N pages of M" or "bss_pages FAIL: ...". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct seg {
    uintptr_t lo, hi, file_end;
};

static int find_rw(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct seg *s = data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libmallard"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
            s->lo = info->dlpi_addr + ph->p_vaddr;
            s->hi = s->lo + ph->p_memsz;
            s->file_end = s->lo + ph->p_filesz;
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bss_pages MAX\n");
        return 2;
    }
    long max = atol(argv[1]);

    /* a filter's heap: a few dozen small blocks of a dozen sizes, some
     * freed, free(NULL), a realloc, a calloc, a string */
    void *keep[64];
    for (int i = 0; i < 64; i++)
        keep[i] = malloc((size_t)(16 + (i % 12) * 40));
    for (int i = 0; i < 64; i += 2)
        free(keep[i]);
    free(NULL);
    char *s = strdup("abcdefghijklmnopqrstuvwxyz");
    void *c = calloc(10, 100);
    void *r = realloc(NULL, 300);
    r = realloc(r, 3000);
    printf("%s %p %p\n", s, c, r); /* stdio's buffer too */
    fflush(stdout);

    struct seg seg = {0, 0, 0};
    if (!dl_iterate_phdr(find_rw, &seg)) {
        printf("bss_pages FAIL: libmallard is not loaded (run it under LD_PRELOAD)\n");
        return 1;
    }
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = seg.lo & ~(ps - 1), hi = (seg.hi + ps - 1) & ~(ps - 1);
    uintptr_t zero = (seg.file_end + ps - 1) & ~(ps - 1); /* the first page with no file bytes */
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0) {
        printf("bss_pages FAIL: cannot open /proc/self/pagemap\n");
        return 1;
    }
    long present = 0, total = 0, filed = 0;
    char list[4096];
    size_t used = 0;
    for (uintptr_t a = lo; a < hi; a += ps, total++) {
        uint64_t e;
        if (pread(fd, &e, sizeof e, (off_t)(a / ps * sizeof e)) != (ssize_t)sizeof e) {
            printf("bss_pages FAIL: cannot read /proc/self/pagemap\n");
            return 1;
        }
        if (e >> 63) {
            if (a < zero)
                filed++;
            else
                present++;
            if (used < sizeof list - 32)
                used += (size_t)snprintf(list + used, sizeof list - used, " +%#lx",
                                         (unsigned long)(a - (seg.lo & ~(ps - 1))));
        }
    }
    close(fd);
    free(s);
    free(c);
    free(r);
    for (int i = 1; i < 64; i += 2)
        free(keep[i]);
    long nzero = (long)((hi - zero) / ps);
    if (present > max) {
        printf("bss_pages FAIL: %ld of the %ld zero-fill pages present, more than %ld (and %ld of the file's):%s\n",
               present, nzero, max, filed, list);
        return 1;
    }
    printf("bss_pages ok: %ld of the %ld zero-fill pages present (at most %ld; and %ld of the file's):%s\n",
           present, nzero, max, filed, list);
    return 0;
}
