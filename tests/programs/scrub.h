/* Clears the dead stack below the caller, so a pointer left there by a
 * returned function cannot make a leaked block look reachable to a
 * conservative scan (the same precaution LSan's own tests take). */
#ifndef SCRUB_H
#define SCRUB_H
__attribute__((noinline)) static void scrub_stack(void)
{
    volatile char junk[16384];
    for (unsigned i = 0; i < sizeof junk; i++)
        junk[i] = 0;
    __asm__ volatile("" ::: "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
                     "r14", "r15", "memory");
}
#endif
