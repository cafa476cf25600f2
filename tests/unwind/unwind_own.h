/* tests/unwind/unwind_own.h: the request test_unwind.c hands unwind_own.c,
 * the library whose frames play mallard's own in the ml_unwind_skip cases:
 * own_enter recurses depth frames deep, then takes both stacks from its
 * innermost frame, skip's (leading frames of the library dropped) into a,
 * bt's (all of them) into b. */
#ifndef ML_TESTS_UNWIND_OWN_H
#define ML_TESTS_UNWIND_OWN_H

struct ml_unwind_memo;

struct own_req {
    int (*skip)(void **out, int keep, struct ml_unwind_memo *memo);
    int (*bt)(void **out, int max);
    struct ml_unwind_memo *memo;
    void **a, **b;
    int max, keep, n, m, nofp;
};

int own_enter(struct own_req *r, int depth);

#endif
