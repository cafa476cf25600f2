/* preload/hooks.c: the ways a process ends, for the exit report.
 *
 * - exit(): an on_exit handler registered from mallard's constructor.  The
 *   constructor runs inside ld.so's _dl_init, before __libc_start_main
 *   registers _dl_fini, so the handler runs after every atexit handler,
 *   every C++ static destructor and every library destructor: a block freed
 *   in any of them is not a leak.  It learns the exit status; the report
 *   itself waits for glibc's exit-time stdio flush (see late_seek).
 * - _exit/_Exit and the exec family are interposed here (the only names
 *   besides the malloc family that libmallard.so exports): the report is
 *   written, then the real call proceeds.  libc's own internal calls to
 *   _exit (from exit()) use a hidden alias and never reach these.
 * - quick_exit(): an at_quick_exit handler registered first, so it runs
 *   last; quick_exit itself is interposed only to learn the status.
 * - Fatal signals (SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS) whose disposition
 *   is still the default get a one-shot handler that writes the report (on
 *   a stack of its own: the program's sigaltstack may be tiny) and
 *   re-raises the signal, so the process dies exactly as it would have.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "../core/os.h"
#include "../report/trace.h"
#include "boot.h"
#include "hooks.h"
#include "children.h"
#include "signals.h"

#define ML_EXPORT __attribute__((visibility("default")))

static int tracing(void) { return ml_traced; } /* ml_trace_enabled(), without a fault (boot.h) */

/* ---- exit() --------------------------------------------------------- */

/* glibc's exit() runs the atexit/on_exit handlers (mallard's on_exit
 * handler last of all), then _IO_cleanup, which flushes every stdio stream
 * (a first pass over the stream list under the list lock) and then makes
 * every used stream unbuffered (a second pass, still under that lock),
 * then _exit.  The report has to follow the program's last output, so it
 * is written from inside that second pass: a private fopencookie stream,
 * made at start-up and left with one unread byte in its buffer, is synced
 * there, and syncing a read stream with unread input seeks it back, which
 * calls late_seek.  By then every stream was flushed; and since the list
 * lock is held, a second thread in exit() cannot reach _exit before the
 * report is whole (it waits for that lock in its own _IO_cleanup).
 *
 * The on_exit handler records the status and notes that the process is
 * exiting: fcloseall() is _IO_cleanup too, and a call to it before exit
 * (late_seek sees no exit yet) or a closed stream disarms the hook, in
 * which case the handler writes the report itself, after flushing stdout
 * and stderr (each only if no other thread holds its lock: a thread
 * blocked reading stdin holds stdin's lock, and glibc's own exit-time
 * flush takes no lock either). */
static FILE *late_fp;
static int late_armed;
static int exit_seen, exit_status_saved;

static ssize_t late_read(void *cookie, char *buf, size_t n)
{
    (void)cookie;
    size_t k = n < 2 ? n : 2;
    memset(buf, 0, k);
    return (ssize_t)k;
}

static int late_report(int status)
{
    int code = ml_trace_finish(ML_EXIT_EXIT, status, &ml_opts);
    if (code != status)
        syscall(SYS_exit_group, code); /* stdio is flushed: nothing is lost */
    return code;
}

static void no_op_handler(void *unused) { (void)unused; }

int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

/* Whether glibc's exit() has run its whole handler list: from then on it
 * refuses new handlers.  Otherwise (fcloseall before exit) the probe adds
 * a handler that does nothing. */
static int exit_handlers_done(void) { return __cxa_atexit(no_op_handler, NULL, NULL) != 0; }

#define LATE_WAIT_MS 2000

static int late_seek(void *cookie, off64_t *pos, int whence)
{
    (void)cookie;
    (void)whence;
    *pos = 0;
    if (!__atomic_exchange_n(&late_armed, 0, __ATOMIC_ACQ_REL))
        return 0;
    /* Two threads in exit(): the one that took mallard's handler off the
     * list may not have run it yet when the other, finding the list empty,
     * gets here; that one's _exit would end the process before any report.
     * So when exit's handlers are done, wait (bounded) for ours to say so. */
    if (!__atomic_load_n(&exit_seen, __ATOMIC_ACQUIRE) && exit_handlers_done()) {
        struct timespec ms = {0, 1000000};
        for (int i = 0; i < LATE_WAIT_MS && !__atomic_load_n(&exit_seen, __ATOMIC_ACQUIRE); i++)
            syscall(SYS_nanosleep, &ms, NULL);
        __atomic_store_n(&exit_seen, 1, __ATOMIC_RELEASE);
    }
    if (__atomic_load_n(&exit_seen, __ATOMIC_ACQUIRE))
        late_report(__atomic_load_n(&exit_status_saved, __ATOMIC_RELAXED));
    return 0;
}

static int late_close(void *cookie)
{
    (void)cookie;
    __atomic_store_n(&late_armed, 0, __ATOMIC_RELEASE);
    return 0;
}

static void late_arm(void)
{
    int was = ml_trace_guard_enter(); /* its FILE and buffer come from the meta heap */
    cookie_io_functions_t io = {.read = late_read, .seek = late_seek, .close = late_close};
    late_fp = fopencookie(NULL, "r", io);
    if (late_fp && fgetc(late_fp) != EOF)
        __atomic_store_n(&late_armed, 1, __ATOMIC_RELEASE);
    ml_trace_guard_leave(was);
}

static void flush_if_free(FILE *f)
{
    if (ftrylockfile(f) == 0) {
        fflush_unlocked(f);
        funlockfile(f);
    }
}

static void on_exit_handler(int status, void *unused)
{
    (void)unused;
    __atomic_store_n(&exit_status_saved, status, __ATOMIC_RELAXED);
    __atomic_store_n(&exit_seen, 1, __ATOMIC_RELEASE);
    if (__atomic_load_n(&late_armed, __ATOMIC_ACQUIRE))
        return; /* _IO_cleanup reports, after the flush (late_seek) */
    flush_if_free(stdout);
    flush_if_free(stderr);
    late_report(status);
}

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};

/* The fault's details, for fatal_report on mallard's own stack. */
static ML_TLS siginfo_t *fatal_si;
static ML_TLS void *fatal_uc;

static void fatal_report(int sig)
{
    if (!ml_trace_guard_enter()) { /* not crashed inside mallard itself */
        if ((sig == SIGSEGV || sig == SIGBUS) && fatal_si)
            ml_trace_fault(fatal_si, fatal_uc); /* a guard page or a freed block: name it */
        ml_trace_finish(ML_EXIT_SIGNAL, sig, &ml_opts);
    }
}

/* Calls fn(arg) with the stack pointer at top, then returns on the old
 * stack; the CFA stays in rbp so the unwinder can walk out of it. */
void ml_call_on_stack(void (*fn)(int), int arg, void *top);
__asm__(".text\n"
        ".globl ml_call_on_stack\n"
        ".hidden ml_call_on_stack\n"
        ".type ml_call_on_stack, @function\n"
        "ml_call_on_stack:\n"
        "    .cfi_startproc\n"
        "    push %rbp\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    .cfi_rel_offset %rbp, 0\n"
        "    mov %rsp, %rbp\n"
        "    .cfi_def_cfa_register %rbp\n"
        "    mov %rdx, %rsp\n"
        "    mov %rdi, %rax\n"
        "    mov %esi, %edi\n"
        "    call *%rax\n"
        "    mov %rbp, %rsp\n"
        "    .cfi_def_cfa_register %rsp\n"
        "    pop %rbp\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    .cfi_restore %rbp\n"
        "    ret\n"
        "    .cfi_endproc\n"
        ".size ml_call_on_stack, .-ml_call_on_stack\n");

#define ML_FATAL_STACK ((size_t)1 << 20)

static void on_fatal_signal(int sig, siginfo_t *si, void *uc)
{
    fatal_si = si;
    fatal_uc = uc;
    /* SA_RESETHAND already restored the default action.  The handler may
     * run on the program's alternate stack, which can be as small as
     * MINSIGSTKSZ: the report runs on a stack of mallard's own. */
    void *stack = ml_os_map(ML_FATAL_STACK);
    if (stack)
        ml_call_on_stack(fatal_report, sig, (char *)stack + ML_FATAL_STACK - 64);
    else
        fatal_report(sig);
    raise(sig);
}

/* sigaltstack: a program may give its threads a signal stack smaller than
 * the kernel's signal frame (AT_MINSIGSTKSZ is near 12 KiB with AVX-512 or
 * AMX, MINSIGSTKSZ is 2 KiB).  A fatal signal delivered SA_ONSTACK there
 * cannot even reach a handler: the kernel kills the process, and no report
 * is written.  So, once such a stack is installed, mallard's fatal-signal
 * handlers stop asking for the alternate stack (the report then runs from
 * the thread's own stack, switching at once to a stack of mallard's). */
static void fatal_handlers_off_altstack(void)
{
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        struct sigaction cur;
        if (sigaction(fatal_signals[i], NULL, &cur) != 0 || !(cur.sa_flags & SA_SIGINFO) ||
            cur.sa_sigaction != on_fatal_signal || !(cur.sa_flags & SA_ONSTACK))
            continue;
        cur.sa_flags &= ~SA_ONSTACK;
        sigaction(fatal_signals[i], &cur, NULL);
    }
}

ML_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
    long rc = syscall(SYS_sigaltstack, ss, old);
    if (rc == 0 && ss && tracing()) {
        /* the leak scan reads the stack a handler runs on as a stack, not
         * as the program's memory (report/reach.c) */
        int off = ss->ss_flags & SS_DISABLE;
        ml_trace_note_altstack(off ? 0 : (uintptr_t)ss->ss_sp, off ? 0 : (uintptr_t)ss->ss_sp + ss->ss_size);
    }
    if (rc == 0 && ss && !(ss->ss_flags & SS_DISABLE)) {
        size_t need = getauxval(AT_MINSIGSTKSZ);
        if (need < 2048) /* MINSIGSTKSZ, a sysconf call under _GNU_SOURCE */
            need = 2048;
        if (ss->ss_size < need + 4096)
            fatal_handlers_off_altstack();
    }
    return rc == 0 ? 0 : -1;
}

/* quick_exit: the status, for the at_quick_exit handler registered first
 * (so it runs last, after the program's own, as on_exit for exit). */
static int quick_status;

static void on_quick_exit_handler(void)
{
    int code = ml_trace_finish(ML_EXIT_EXIT, quick_status, &ml_opts);
    if (code != quick_status)
        syscall(SYS_exit_group, code); /* quick_exit flushes nothing either */
}

ML_EXPORT __attribute__((noreturn)) void quick_exit(int status)
{
    quick_status = status;
    void (*real)(int) = (void (*)(int))dlsym(RTLD_NEXT, "quick_exit");
    if (real)
        real(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

void ml_hooks_start(void)
{
    if (!tracing())
        return;
    ml_trace_start(&ml_opts, ml_boot_arena, ML_BOOT_ARENA_SIZE);
    on_exit(on_exit_handler, NULL);
    int quick = at_quick_exit(on_quick_exit_handler); /* fails only out of memory: no report then */
    (void)quick;
    late_arm();
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        struct sigaction old;
        if (sigaction(fatal_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
            (old.sa_flags & SA_SIGINFO))
            continue;
        struct sigaction sa = {0};
        sa.sa_sigaction = on_fatal_signal;
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(fatal_signals[i], &sa, NULL);
    }
    ml_signals_start(); /* termination and report signals: preload/signals.c */
}

ML_EXPORT __attribute__((noreturn)) void _exit(int status)
{
    if (tracing())
        status = ml_trace_finish(ML_EXIT__EXIT, status, &ml_opts);
    for (;;)
        syscall(SYS_exit_group, status);
}

ML_EXPORT __attribute__((noreturn)) void _Exit(int status) { _exit(status); }

/* ---- exec ------------------------------------------------------------- */

/* The real exec function, resolved past mallard; the report is written
 * first.  If the exec fails the process goes on, and its real end reports. */
static void *exec_begin(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort(); /* libc without exec: nothing sensible left to do */
    if (tracing())
        ml_trace_finish(ML_EXIT_EXEC, 0, &ml_opts);
    return f;
}

static int exec_failed(int rc)
{
    ml_trace_exec_failed();
    return rc;
}

typedef int (*ml_execv_fn)(const char *, char *const[]);
typedef int (*ml_execve_fn)(const char *, char *const[], char *const[]);

/* MALLARD_CHILDREN=no: a descendant's exec gets an environment whose
 * LD_PRELOAD no longer names mallard (preload/children.c). */
#define ML_ENV_MAX 4096
#define CHILD_ENV(envp)                                                                                      \
    char *child_space[ML_ENV_MAX];                                                                           \
    char child_buf[4096];                                                                                    \
    if (ml_children_exec_strips())                                                                           \
    envp = ml_children_env(envp, child_space, ML_ENV_MAX, child_buf, sizeof child_buf)

ML_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    CHILD_ENV(envp);
    return exec_failed(((ml_execve_fn)exec_begin("execve"))(path, argv, envp));
}

ML_EXPORT int execv(const char *path, char *const argv[])
{
    if (ml_children_exec_strips())
        return execve(path, argv, environ);
    return exec_failed(((ml_execv_fn)exec_begin("execv"))(path, argv));
}

ML_EXPORT int execvp(const char *file, char *const argv[])
{
    if (ml_children_exec_strips())
        return execvpe(file, argv, environ);
    return exec_failed(((ml_execv_fn)exec_begin("execvp"))(file, argv));
}

ML_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    CHILD_ENV(envp);
    return exec_failed(((ml_execve_fn)exec_begin("execvpe"))(file, argv, envp));
}

ML_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    CHILD_ENV(envp);
    int (*real)(int, char *const[], char *const[]) =
        (int (*)(int, char *const[], char *const[]))exec_begin("fexecve");
    return exec_failed(real(fd, argv, envp));
}

/* execl, execlp, execle: collect the variadic list, then the v forms. */
#define ML_EXEC_ARGS_MAX 4096
#define COLLECT_ARGS(arg0, ap, argv, n)                                                                      \
    do {                                                                                                     \
        argv[0] = (char *)(arg0);                                                                            \
        for (n = 1; n < ML_EXEC_ARGS_MAX - 1 && (argv[n] = va_arg(ap, char *)); n++)                         \
            ;                                                                                                \
        argv[n] = NULL;                                                                                      \
    } while (0)

ML_EXPORT int execl(const char *path, const char *arg, ...)
{
    char *argv[ML_EXEC_ARGS_MAX];
    size_t n;
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv, n);
    va_end(ap);
    return execv(path, argv);
}

ML_EXPORT int execlp(const char *file, const char *arg, ...)
{
    char *argv[ML_EXEC_ARGS_MAX];
    size_t n;
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv, n);
    va_end(ap);
    return execvp(file, argv);
}

ML_EXPORT int execle(const char *path, const char *arg, ...)
{
    char *argv[ML_EXEC_ARGS_MAX];
    size_t n;
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv, n);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}

/* ---- dlopen(RTLD_DEEPBIND) ------------------------------------------- */

/* A library opened with RTLD_DEEPBIND binds its own malloc and free to
 * glibc's, while glibc's strdup & co. allocate through mallard: the first
 * pointer that crosses over makes glibc abort.  No allocator can survive
 * that binding, so dlopen drops the flag (saying so once) and the library
 * resolves malloc and free like everyone else.  dlopen finds the caller's
 * RPATH and namespace from its return address, so the wrapper must reach
 * the real dlopen by a jump, not a call: it is written in assembly. */
int (*ml_real_dlopen)(const char *, int);
int ml_dlopen_mode(const char *file, int mode)
{
    if (!ml_real_dlopen)
        *(void **)&ml_real_dlopen = dlsym(RTLD_NEXT, "dlopen");
    if (mode & RTLD_DEEPBIND) {
        static int said;
        if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
            ml_say("dlopen(%s, RTLD_DEEPBIND): the flag is dropped so that the library's malloc and free "
                   "stay mallard's (glibc would abort on the first pointer that crosses over)",
                   file ? file : "NULL");
        mode &= ~RTLD_DEEPBIND;
    }
    return mode;
}

__asm__(".text\n"
        ".globl dlopen\n"
        ".type dlopen, @function\n"
        "dlopen:\n"
        "    .cfi_startproc\n"
        "    push %rdi\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    push %rsi\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    sub $8, %rsp\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    call ml_dlopen_mode\n"
        "    add $8, %rsp\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    pop %rsi\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    pop %rdi\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    mov %eax, %esi\n"
        "    jmp *ml_real_dlopen(%rip)\n"
        "    .cfi_endproc\n"
        ".size dlopen, .-dlopen\n");
