/* tests/report/report_dso.c: a library the tests dlopen, record a stack
 * in, then dlclose before symbolizing.  Built with -g. */
#include <stdint.h>

uintptr_t report_dso_site(int *line);

static __attribute__((noinline)) uintptr_t dso_return_address(void)
{
    uintptr_t ra = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return ra;
}

/* Returns the return address of a call made on the line stored in *line. */
__attribute__((noinline)) uintptr_t report_dso_site(int *line)
{
    *line = __LINE__ + 1;
    uintptr_t ra = dso_return_address();
    __asm__ volatile("" ::: "memory");
    return ra;
}
