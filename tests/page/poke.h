/* tests/page/poke.h: the one bad access each fixture makes.
 *
 * A locked read-modify-write that leaves the byte unchanged: it needs write
 * access, so a PROT_NONE (or read-only) page faults, yet under any other
 * allocator no byte of data or metadata changes, so the fixture runs on
 * normally whatever that allocator keeps next to its blocks.  The pointer
 * goes through an empty asm so the compiler can neither see the bad access
 * coming nor warn about it.
 */
#ifndef ML_TESTS_PAGE_POKE_H
#define ML_TESTS_PAGE_POKE_H

static inline void *ml_launder(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

static inline void ml_poke(void *p)
{
    __atomic_fetch_or((volatile unsigned char *)ml_launder(p), 0, __ATOMIC_SEQ_CST);
}

#endif
