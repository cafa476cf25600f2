/* tests/unwind/unwind_own.c: "own" frames for test_unwind's ml_unwind_skip
 * cases, a dlopen'ed library built as libmallard.so is (-O2, frame
 * pointers), with one frame that has none.  own_enter recurses depth
 * frames deep, then takes both stacks from its innermost frame: r->skip's
 * (which drops the leading frames in this library) and r->bt's (all of
 * them). */
#include "unwind_own.h"

__attribute__((noinline)) static int own_leaf(struct own_req *r)
{
    r->n = r->skip(r->a, r->keep, r->memo);
    r->m = r->bt(r->b, r->max);
    __asm__ volatile("" ::: "memory");
    return r->n;
}

/* rsp-based: stepped by its recipe, never by the frame-pointer bit */
__attribute__((noinline, optimize("omit-frame-pointer"))) static int own_nofp(struct own_req *r, int k)
{
    volatile int v = k;
    int x = own_leaf(r);
    return x + v - k;
}

__attribute__((noinline)) int own_enter(struct own_req *r, int depth)
{
    if (depth == 0)
        return r->nofp ? own_nofp(r, 3) : own_leaf(r);
    int x = own_enter(r, depth - 1);
    __asm__ volatile("" ::: "memory");
    return x;
}
