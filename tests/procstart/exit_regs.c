/* tests/procstart/exit_regs.c: leaks and roots around the exit call, for
 * the exit report's frame search (report/exitframe.c, unwind.c's CFI
 * reader) against valgrind memcheck.
 *
 *   exit   a function drops a 40-byte block and a 3-node list of 16-byte
 *          nodes (1 definite block, 2 indirect), then another calls
 *          exit() with the only pointer to a 72-byte block in rbx, r12
 *          and r13 (callee-saved), so that block is reachable (valgrind:
 *          56 bytes definite in 2 blocks, 32 indirect in 2)
 *   return the same leaks from a function, then main returns
 *   _exit  as exit, but by _exit (mallard's wrapper)
 * Each prints "exit_regs MODE ok" on stdout first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
    struct node *next;
    long v;
};

__attribute__((noinline)) static void drop_some(void)
{
    char *lost = malloc(40); /* @LOST */
    memset(lost, 1, 40);
    struct node *head = NULL;
    for (int i = 0; i < 3; i++) {
        struct node *n = malloc(sizeof *n); /* @LIST */
        n->next = head;
        n->v = i;
        head = n;
    }
    __asm__ volatile("" ::"r"(lost), "r"(head) : "memory");
}

__attribute__((noinline)) static void end_with_reg(int how)
{
    drop_some();
    char *keep = malloc(72); /* @KEPT */
    memset(keep, 2, 72);
    printf("exit_regs %s ok\n", how ? "_exit" : "exit");
    fflush(stdout);
    /* the call made with keep in three callee-saved registers and nowhere
     * else: not in memory the compiler knows of */
    register char *b __asm__("rbx") = keep;
    register char *r12 __asm__("r12") = keep;
    register char *r13 __asm__("r13") = keep;
    keep = NULL;
    if (how)
        __asm__ volatile("xor %%edi, %%edi\n\tcall _exit@PLT" : : "r"(b), "r"(r12), "r"(r13) : "memory", "rdi", "rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11");
    else
        __asm__ volatile("xor %%edi, %%edi\n\tcall exit@PLT" : : "r"(b), "r"(r12), "r"(r13) : "memory", "rdi", "rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11");
    __builtin_unreachable();
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "exit";
    if (!strcmp(mode, "return")) {
        drop_some();
        printf("exit_regs return ok\n");
        return 0;
    }
    end_with_reg(!strcmp(mode, "_exit"));
}
