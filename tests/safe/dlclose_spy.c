/* tests/safe/dlclose_spy.c: preloaded before libmallard.so, it interposes
 * dlclose and says on stderr when one is called after exit() began.
 *
 * glibc's _dl_fini, running in whichever thread took it off the exit
 * handler list, bumps every object's l_direct_opencount under the loader
 * lock and takes the bump back without it; a dlopen of a loaded object
 * and its dlclose in another thread at that moment (the exit report, in a
 * thread that called exit() beside it) can lose an update and unmap an
 * object still in use (tests/safe/exit_race crashed in libunwind that
 * way, about 1 run in 2000 under load).  So the exit report must close
 * nothing, which this spy checks deterministically. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

static volatile int exiting;

static void mark(void) { exiting = 1; }

__attribute__((constructor)) static void spy_init(void) { atexit(mark); }

int dlclose(void *h)
{
    static const char msg[] = "dlclose_spy: dlclose after exit began\n";
    if (exiting)
        (void)!write(2, msg, sizeof msg - 1);
    int (*real)(void *) = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
    return real ? real(h) : -1;
}
