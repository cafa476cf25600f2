/* tests/safe/slow_on_exit.c: preloaded before libmallard.so, it interposes
 * on_exit so that every handler registered through it starts 300 ms late.
 * That widens, from microseconds to 300 ms, the window in which one thread
 * in exit() has taken mallard's handler off glibc's list but not yet run
 * it, while a second thread in exit(), finding the list empty, goes on to
 * glibc's stdio cleanup and _exit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

#define SLOTS 8

static struct {
    void (*fn)(int, void *);
    void *arg;
} slot[SLOTS];
static int used;

static void late(int status, void *arg)
{
    struct timespec ms300 = {0, 300 * 1000 * 1000};
    nanosleep(&ms300, NULL);
    int i = (int)(long)arg;
    slot[i].fn(status, slot[i].arg);
}

int on_exit(void (*fn)(int, void *), void *arg)
{
    int (*real)(void (*)(int, void *), void *) =
        (int (*)(void (*)(int, void *), void *))dlsym(RTLD_NEXT, "on_exit");
    if (!real)
        return -1;
    if (used == SLOTS)
        return real(fn, arg);
    slot[used].fn = fn;
    slot[used].arg = arg;
    return real(late, (void *)(long)used++);
}
