/* tests/programs/scratch_regs.c: what the allocation calls leave in the
 * caller-saved registers.  A block's address that mallard leaves in r10,
 * say, stays there in a thread that returns into code that never writes
 * r10, and the leak scan reads a held thread's registers as roots
 * (valgrind reads its threads' too, but its allocator runs outside the
 * program's registers): a leaked block then looks reachable.  Each call is
 * made from assembly and every caller-saved general register but rax is
 * read right after it; none may hold an address inside the block the call
 * returned or took.  Prints "scratch ok", or each register that does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[8] = {"rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"};

/* fn(a, b) from a 16-byte aligned stack; regs gets the 8 registers after */
__attribute__((noinline)) static uintptr_t call2(void *fn, uintptr_t a, uintptr_t b, uintptr_t regs[8])
{
    register void *f __asm__("r12") = fn;
    register uintptr_t *out __asm__("r13") = regs;
    uintptr_t ret;
    __asm__ volatile("mov %%rsp, %%rbx\n\t"
                     "and $-16, %%rsp\n\t"
                     "call *%[f]\n\t"
                     "mov %%rbx, %%rsp\n\t"
                     "mov %%rcx, 0(%[out])\n\t"
                     "mov %%rdx, 8(%[out])\n\t"
                     "mov %%rsi, 16(%[out])\n\t"
                     "mov %%rdi, 24(%[out])\n\t"
                     "mov %%r8, 32(%[out])\n\t"
                     "mov %%r9, 40(%[out])\n\t"
                     "mov %%r10, 48(%[out])\n\t"
                     "mov %%r11, 56(%[out])"
                     : "=a"(ret), "+D"(a), "+S"(b)
                     : [f] "r"(f), [out] "r"(out)
                     : "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
                       "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
                       "xmm15", "memory", "cc");
    return ret;
}

static int bad;

static void check(const char *call, uintptr_t lo, size_t n, const uintptr_t regs[8])
{
    for (int i = 0; i < 8; i++) {
        if (regs[i] >= lo && regs[i] < lo + n) {
            printf("%s left %s = %#lx, inside the block at %#lx\n", call, names[i], (unsigned long)regs[i],
                   (unsigned long)lo);
            bad = 1;
        }
    }
}

int main(void)
{
    uintptr_t regs[8];
    for (int round = 0; round < 200; round++) {
        size_t n = 16 + (size_t)(round % 50) * 24;
        uintptr_t p = call2((void *)malloc, n, 0, regs);
        check("malloc", p, n, regs);
        memset((void *)p, 1, n);
        uintptr_t c = call2((void *)calloc, 3, n, regs);
        check("calloc", c, 3 * n, regs);
        uintptr_t r = call2((void *)realloc, p, 2 * n, regs);
        check("realloc", r, 2 * n, regs);
        uintptr_t a = call2((void *)aligned_alloc, 64, 128, regs);
        check("aligned_alloc", a, 128, regs);
        call2((void *)free, r, 0, regs);
        check("free", r, 2 * n, regs);
        call2((void *)free, c, 0, regs);
        check("free", c, 3 * n, regs);
        call2((void *)free, a, 0, regs);
        check("free", a, 128, regs);
        if (bad)
            return 1;
    }
    puts("scratch ok");
    return 0;
}
