/* core/compiler.h: the compiler annotations every layer uses. */
#ifndef ML_CORE_COMPILER_H
#define ML_CORE_COMPILER_H

#define ML_LIKELY(x) __builtin_expect(!!(x), 1)
#define ML_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ML_HIDDEN __attribute__((visibility("hidden")))
/* For small variables that every process writes at start-up: .data's last
 * page is written anyway (ld.so clears what follows .data in it), while a
 * .bss page read before it is written faults twice (the zero page, then a
 * copy), and each such variable tends to get a .bss page of its own among
 * the big tables. */
#define ML_STARTUP_DATA __attribute__((section(".data")))
/* For zero-initialised arrays of a page or more: .lbss, which the linker
 * places after all of .bss (still no file bytes), so that they do not sit
 * between the small variables and spread them over pages.  A page of such
 * an array costs nothing until it is touched. */
#define ML_LARGE_BSS __attribute__((section(".lbss")))
/* For constant tables that every process reads, fork children included:
 * among the relro data, whose pages ld.so writes (relocations), so that
 * they are anonymous and a fork copies their page-table entries; a page of
 * .rodata is file-backed and a fork child reads it in again (a fault). */
#define ML_CONST_TABLE __attribute__((section(".data.rel.ro.ml_tables")))
/* Takes the page holding p by a write that changes nothing (an atomic OR of
 * 0 into its byte): a .bss page read before its first write faults twice
 * (the shared zero page, then a copy), one taken by a write faults once.
 * Safe beside concurrent atomic readers and writers of that byte. */
#define ML_WRITE_TOUCH(p) ((void)__atomic_fetch_or((unsigned char *)(p), 0, __ATOMIC_RELAXED))
/* Thread-local storage in the static TLS block: one %fs-relative access, no
 * __tls_get_addr call (which may allocate) even in a preloaded library. */
#define ML_TLS __attribute__((tls_model("initial-exec"))) __thread

/* Clears the caller-saved general registers but rax, at the end of a traced
 * allocation call: what the work inside left there (the block's address,
 * its neighbours') would stay in a thread that returns into code that never
 * writes them, and the leak scan reads a held thread's registers as roots,
 * as valgrind reads its threads' (whose allocator runs outside the
 * program's registers): a leaked block would look reachable
 * (tests/programs/scratch_regs.c; thread_deadstack spin built with UBSan
 * kept its leaked block in r10).  The result stays in rax or a callee-saved
 * register across it. */
static inline __attribute__((always_inline)) void ml_scrub_scratch(void)
{
#if defined(__x86_64__)
    __asm__ volatile("xor %%ecx, %%ecx\n\t"
                     "xor %%edx, %%edx\n\t"
                     "xor %%esi, %%esi\n\t"
                     "xor %%edi, %%edi\n\t"
                     "xor %%r8d, %%r8d\n\t"
                     "xor %%r9d, %%r9d\n\t"
                     "xor %%r10d, %%r10d\n\t"
                     "xor %%r11d, %%r11d" ::
                         : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "cc");
#endif
}

#endif
