/* core/system.c: glibc's own allocator underneath.
 *
 * For tracing with the native allocator's behaviour.  The glibc entry
 * points are found with dlsym(RTLD_NEXT) at init, while the shim is still
 * BOOTING, so dlsym's own allocations land in the bootstrap arena.  glibc
 * cannot tell a foreign pointer from its own, so with this backend a bad
 * free is only caught when the trace layer is on.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>

#include "backend.h"

static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void (*free)(void *);
    void *(*realloc)(void *, size_t);
    size_t (*usable_size)(void *);
} sys;

static int sys_init(const struct ml_options *opt)
{
    (void)opt;
    if (sys.malloc)
        return 0;
    *(void **)&sys.malloc = dlsym(RTLD_NEXT, "malloc");
    *(void **)&sys.calloc = dlsym(RTLD_NEXT, "calloc");
    *(void **)&sys.memalign = dlsym(RTLD_NEXT, "memalign");
    *(void **)&sys.free = dlsym(RTLD_NEXT, "free");
    *(void **)&sys.realloc = dlsym(RTLD_NEXT, "realloc");
    *(void **)&sys.usable_size = dlsym(RTLD_NEXT, "malloc_usable_size");
    if (!sys.malloc || !sys.calloc || !sys.memalign || !sys.free || !sys.realloc || !sys.usable_size) {
        sys.malloc = 0;
        return ENOSYS;
    }
    return 0;
}

static void *sys_malloc(size_t size) { return sys.malloc(size); }
static void *sys_zalloc(size_t size) { return sys.calloc(1, size); }
static void *sys_memalign(size_t align, size_t size) { return sys.memalign(align, size); }
static void sys_free(void *p) { sys.free(p); }
static void *sys_realloc(void *p, size_t size) { return sys.realloc(p, size); }
static size_t sys_usable_size(const void *p) { return sys.usable_size((void *)p); }

const struct ml_backend ml_backend_system = {
    .name = "system",
    .init = sys_init,
    .malloc = sys_malloc,
    .zalloc = sys_zalloc,
    .memalign = sys_memalign,
    .free = sys_free,
    .realloc = sys_realloc,
    .usable_size = sys_usable_size,
};
