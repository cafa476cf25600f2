/* core/compiler.h: the compiler annotations every layer uses. */
#ifndef ML_CORE_COMPILER_H
#define ML_CORE_COMPILER_H

#define ML_LIKELY(x) __builtin_expect(!!(x), 1)
#define ML_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ML_HIDDEN __attribute__((visibility("hidden")))
/* Thread-local storage in the static TLS block: one %fs-relative access, no
 * __tls_get_addr call (which may allocate) even in a preloaded library. */
#define ML_TLS __attribute__((tls_model("initial-exec"))) __thread

#endif
