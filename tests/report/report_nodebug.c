/* tests/report/report_nodebug.c: a library built without -g and linked
 * with --strip-all, so only .dynsym knows its exported functions and
 * nothing at all names its static ones. */
#include <stdint.h>

uintptr_t report_nodebug_exported(void);
uintptr_t report_nodebug_hidden_site(void);

static __attribute__((noinline)) uintptr_t nodebug_return_address(void)
{
    uintptr_t ra = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return ra;
}

/* Not exported and not in any symbol table after stripping. */
static __attribute__((noinline, used)) uintptr_t nodebug_static_caller(void)
{
    uintptr_t ra = nodebug_return_address();
    __asm__ volatile("" ::: "memory");
    return ra;
}

/* An address inside a function no symbol table names. */
uintptr_t report_nodebug_hidden_site(void) { return nodebug_static_caller(); }

/* The return address of a call made from this exported function. */
__attribute__((noinline)) uintptr_t report_nodebug_exported(void)
{
    uintptr_t ra = nodebug_return_address();
    __asm__ volatile("" ::: "memory");
    return ra;
}
