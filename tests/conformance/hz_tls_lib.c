/* tests/conformance/hz_tls_lib.c: a dlopen'd library with over-aligned
 * dynamic TLS (HAZARDS §11).  ld.so allocates each thread's copy lazily
 * through the interposed malloc and frees it at thread exit or dlclose. */
#include <stddef.h>

__thread char hz_tls_zero[1000] __attribute__((aligned(64)));
__thread int hz_tls_init[16] __attribute__((aligned(64))) = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

char *hz_tls_zero_block(void);
int *hz_tls_init_block(void);
char *hz_tls_zero_block(void) { return hz_tls_zero; }
int *hz_tls_init_block(void) { return hz_tls_init; }
