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
/* Thread-local storage in the static TLS block: one %fs-relative access, no
 * __tls_get_addr call (which may allocate) even in a preloaded library. */
#define ML_TLS __attribute__((tls_model("initial-exec"))) __thread

#endif
