/* tests/cli/lsan_api.c: code written for LSan (and mallard.h), built
 * without linking mallard.  Without mallard: every function is NULL and the
 * program says so.  Under mallard: A and D leak; B (allocated while
 * disabled) and C (ignored) are never leaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"
#include <mallard.h>

static void *volatile sink;

__attribute__((noinline)) static void leak_a(void) { sink = memset(malloc(111), 1, 111); sink = 0; }
__attribute__((noinline)) static void leak_b(void) { sink = memset(malloc(222), 2, 222); sink = 0; }
__attribute__((noinline)) static void leak_c(void)
{
    void *p = memset(malloc(333), 3, 333);
    __lsan_ignore_object(p);
    sink = 0;
}
__attribute__((noinline)) static void leak_d(void) { sink = memset(malloc(444), 4, 444); sink = 0; }

int main(void)
{
    if (!mallard_tag || !mallard_report_now || !__lsan_do_leak_check || !__lsan_do_recoverable_leak_check ||
        !__lsan_ignore_object || !__lsan_disable || !__lsan_enable) {
        printf("no mallard\n");
        return 0;
    }
    leak_a();
    __lsan_disable();
    __lsan_disable(); /* nested */
    leak_b();
    __lsan_enable();
    __lsan_enable();
    leak_c();
    leak_d();
    scrub_stack();
    int r = __lsan_do_recoverable_leak_check();
    printf("recoverable %d\n", r);
    r = mallard_report_now();
    printf("report_now %d\n", r);
    fflush(stdout);
    __lsan_do_leak_check();
    printf("after check\n");
    return 0;
}
