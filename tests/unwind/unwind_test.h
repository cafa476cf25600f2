/* tests/unwind/unwind_test.h: what the fixtures of test_unwind share. */
#ifndef ML_TEST_UNWIND_H
#define ML_TEST_UNWIND_H
#ifdef __cplusplus
extern "C" {
#endif
typedef int (*probe_fn)(int tag);
int o0_recurse(probe_fn probe, int depth, int kind);
int o2_recurse(probe_fn probe, int depth, int kind);
int cxx_run(probe_fn probe, int depth);
int many_sites(probe_fn probe); /* 4096 call sites */
#ifdef __cplusplus
}
#endif
#endif
