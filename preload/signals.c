/* preload/signals.c: reports on termination signals and on demand.
 *
 * - SIGTERM, SIGINT, SIGHUP and SIGQUIT whose disposition is still the
 *   default when the program starts get a one-shot handler that writes the
 *   report and re-raises the signal, so the process still dies of it (as
 *   valgrind and heaptrack report on Ctrl-C, timeout and docker stop).
 * - MALLARD_REPORT_SIGNAL=SIGUSR1|SIGUSR2: each delivery writes a report of
 *   the live process, which goes on.
 * - A program asking for a disposition (sigaction, signal) is told SIG_DFL
 *   where mallard's handler sits, so it behaves as without mallard: Python,
 *   for one, installs its KeyboardInterrupt handler only over SIG_DFL.  A
 *   handler the program installs replaces mallard's and runs as ever.
 *
 * The handlers run on the interrupted thread's own stack, never on the
 * program's alternate signal stack (that one can be 2 KiB, MINSIGSTKSZ:
 * the report overflowed it, and a SIGTERM ended the process by SIGSEGV),
 * and write the report from a stack of mallard's own, as the fatal-signal
 * handler does (hooks.c).
 *
 * A signal that interrupts mallard itself on the receiving thread (inside
 * malloc, say) cannot write a report there: mallard's locks may be held.
 * The termination signal then kills the process without one; a report
 * signal says so on stderr and the next delivery tries again.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "../core/fmt.h"
#include "../core/os.h"
#include "../report/trace.h"
#include "boot.h"
#include "signals.h"

#define ML_EXPORT __attribute__((visibility("default")))

static const int term_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static sighandler_t (*real_signal)(int, sighandler_t);

/* hooks.c: calls fn(arg) with the stack pointer at top. */
void ml_call_on_stack(void (*fn)(int), int arg, void *top);

#define ML_SIGNAL_STACK ((size_t)1 << 20)

/* Runs fn(sig) on a fresh stack of mallard's own (on the current one if
 * none can be mapped); unmaps it after unless the process is to die. */
static void on_own_stack(void (*fn)(int), int sig, int keep)
{
    void *stack = ml_os_map(ML_SIGNAL_STACK);
    if (!stack) {
        fn(sig);
        return;
    }
    /* the report reads this thread's stack from here up (report.h) */
    ml_reach_signal_sp((uintptr_t)__builtin_frame_address(0));
    ml_call_on_stack(fn, sig, (char *)stack + ML_SIGNAL_STACK - 64);
    ml_reach_signal_sp(0);
    if (!keep)
        ml_os_unmap(stack, ML_SIGNAL_STACK);
}

static void term_report(int sig) { ml_trace_finish(ML_EXIT_SIGNAL, sig, &ml_opts); }

static void live_report(int sig)
{
    (void)sig;
    ml_trace_report_live(0, &ml_opts);
}

static void on_term_signal(int sig)
{
    /* SA_RESETHAND restored the default action; SA_NODEFER lets the raise
     * below through at once */
    if (!ml_trace_guard_enter())
        on_own_stack(term_report, sig, 1);
    raise(sig);
}

static void on_report_signal(int sig)
{
    int saved = errno;
    int inside = ml_trace_guard_enter();
    ml_trace_guard_leave(inside);
    if (!inside) {
        on_own_stack(live_report, sig, 0);
    } else {
        ml_say("the report signal arrived while this thread was inside mallard; no report this time");
    }
    errno = saved;
}

static int ours(sighandler_t h) { return h == on_term_signal || h == on_report_signal; }

static void resolve(void)
{
    if (!real_sigaction)
        *(void **)&real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    if (!real_signal)
        *(void **)&real_signal = dlsym(RTLD_NEXT, "signal");
}

static void install(int sig, void (*h)(int), int flags)
{
    struct sigaction old;
    if (real_sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    real_sigaction(sig, &sa, NULL);
}

void ml_signals_start(void)
{
    resolve();
    if (!real_sigaction)
        return;
    for (size_t i = 0; i < sizeof term_signals / sizeof term_signals[0]; i++)
        install(term_signals[i], on_term_signal, SA_RESETHAND | SA_NODEFER);
    if (ml_opts.report_signal)
        install(ml_opts.report_signal == 1 ? SIGUSR1 : SIGUSR2, on_report_signal, SA_RESTART);
}

ML_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    resolve();
    if (!real_sigaction) {
        errno = ENOSYS;
        return -1;
    }
    int rc = real_sigaction(sig, act, old);
    if (rc == 0 && old && !(old->sa_flags & SA_SIGINFO) && ours(old->sa_handler)) {
        old->sa_handler = SIG_DFL;
        old->sa_flags = 0;
        sigemptyset(&old->sa_mask);
    }
    return rc;
}

ML_EXPORT sighandler_t signal(int sig, sighandler_t h)
{
    resolve();
    if (!real_signal) {
        errno = ENOSYS;
        return SIG_ERR;
    }
    sighandler_t old = real_signal(sig, h);
    return ours(old) ? SIG_DFL : old;
}
