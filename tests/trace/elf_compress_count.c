/* tests/trace/elf_compress_count.c: preloaded beside libmallard.so, counts
 * the calls libdw makes to libelf's elf_compress (each one inflates a
 * compressed debug section) by writing a line per call to the file named
 * by ML_ELF_COMPRESS_LOG.  libelf is loaded by then (libdw called us), so
 * the real function is found through a no-load dlopen. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int elf_compress(void *scn, int type, unsigned int flags)
{
    const char *log = getenv("ML_ELF_COMPRESS_LOG");
    if (log) {
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            static const char line[] = "elf_compress\n";
            if (write(fd, line, sizeof line - 1) < 0) {
                /* the count is only evidence; nothing to do */
            }
            close(fd);
        }
    }
    void *h = dlopen("libelf.so.1", RTLD_LAZY | RTLD_NOLOAD);
    int (*real)(void *, int, unsigned int) = h ? (int (*)(void *, int, unsigned int))dlsym(h, "elf_compress") : NULL;
    return real ? real(scn, type, flags) : -1;
}
