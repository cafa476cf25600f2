/* tests/unwind/test_unwind.c: report/unwind.c's stacks equal libunwind's.
 *
 * A probe called at the bottom of each fixture takes both backtraces from
 * the same frame: ml_unwind's and unw_backtrace's.  Frame 0 differs (each is
 * the return address of its own call); every frame after it must be the same
 * address, and the counts equal, whenever ml_unwind answers at all (-1 means
 * "libunwind's business", which stack.c then asks).  Fixtures: -O0 and -O2
 * C, deep recursion (with and without truncation), alloca and a realigned
 * stack, a call to a noreturn function that ends its caller's code, C++ (virtual calls, std::function, try blocks), a dlopen'ed library
 * (twice, across a dlclose), a signal handler, a second thread. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../report/report.h"
#include "unwind_test.h"

#define MAX 256

static int max_frames = MAX;
static int failures, fast, fallback;
static long compared;
static const char *case_name = "?";

static int probe(int tag)
{
    void *a[MAX], *b[MAX];
    int n = ml_unwind(a, max_frames);
    int m = unw_backtrace(b, max_frames);
    if (n < 0) {
        fallback++;
        return tag;
    }
    fast++;
    int bad = n != m;
    for (int i = 1; !bad && i < n; i++)
        bad = a[i] != b[i];
    if (bad) {
        failures++;
        fprintf(stderr, "%s: ml_unwind %d frames, unw_backtrace %d\n", case_name, n, m);
        for (int i = 0; i < (n > m ? n : m); i++)
            fprintf(stderr, "  #%d %p %p\n", i, i < n ? a[i] : NULL, i < m ? b[i] : NULL);
    }
    compared += n - 1;
    return tag;
}

/* Runs one case; need_fast: ml_unwind must have answered it itself. */
static void run(const char *name, int (*f)(void), int need_fast)
{
    case_name = name;
    int fast0 = fast, fb0 = fallback;
    f();
    f(); /* again: from the cache this time */
    printf("%-22s fast %d, fallback %d\n", name, fast - fast0, fallback - fb0);
    if (need_fast && (fallback != fb0 || fast == fast0)) {
        fprintf(stderr, "%s: expected ml_unwind to answer\n", name);
        failures++;
    }
}

static int c_o0(void) { return o0_recurse(probe, 5, 0); }
static int c_o2(void) { return o2_recurse(probe, 5, 0); }
static int c_o0_alloca(void) { return o0_recurse(probe, 3, 1); }
static int c_o2_alloca(void) { return o2_recurse(probe, 3, 1); }
static int c_o0_aligned(void) { return o0_recurse(probe, 3, 2); }
static int c_o2_aligned(void) { return o2_recurse(probe, 3, 2); }
static int c_o0_noret(void) { return o0_recurse(probe, 2, 3); }
static int c_o2_noret(void) { return o2_recurse(probe, 2, 3); }
static int c_deep(void) { return o2_recurse(probe, 300, 0); }
static int c_deep_mixed(void) { return o0_recurse(probe, 100, 0) + o2_recurse(probe, 100, 0); }
static int c_cxx(void) { return cxx_run(probe, 9); }

static int (*lib_call)(probe_fn, int);
static int c_lib(void) { return lib_call(probe, 4); }

static void on_signal(int sig)
{
    (void)sig;
    probe(0);
}
static int c_signal(void)
{
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    return 0;
}

static void *thread_main(void *arg)
{
    (void)arg;
    o2_recurse(probe, 4, 0);
    return NULL;
}
static int c_thread(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0)
        abort();
    pthread_join(t, NULL);
    return 0;
}

static void load_lib(void)
{
    void *h = dlopen(UNWIND_LIB_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        exit(1);
    }
    lib_call = (int (*)(probe_fn, int))dlsym(h, "lib_call");
    run("dlopen'ed library", c_lib, 1);
    dlclose(h);
}

int main(void)
{
    if (ml_unwind_init() != 0) {
        fprintf(stderr, "no _dl_find_object\n");
        return 1;
    }
    run("C -O0", c_o0, 1);
    run("C -O2", c_o2, 1);
    run("C -O0 alloca", c_o0_alloca, 1);
    run("C -O2 alloca", c_o2_alloca, 1);
    run("C -O0 aligned stack", c_o0_aligned, 0);
    run("C -O2 aligned stack", c_o2_aligned, 0);
    run("C -O0 noreturn call", c_o0_noret, 1);
    run("C -O2 noreturn call", c_o2_noret, 1);
    run("deep recursion", c_deep, 1);
    run("deep, -O0 and -O2", c_deep_mixed, 1);
    max_frames = 40;
    run("deep, truncated at 40", c_deep, 1);
    max_frames = MAX;
    run("C++", c_cxx, 1);
    load_lib();
    load_lib(); /* reloaded, perhaps at the same address */
    run("signal handler", c_signal, 0);
    run("second thread", c_thread, 1);
    printf("%ld frames compared, %d mismatches\n", compared, failures);
    return failures || compared < 1000 ? 1 : 0;
}
