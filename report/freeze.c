/* report/freeze.c: the other threads held still while the leak scan reads
 * their stacks.
 *
 * A thread's stack below its stack pointer is dead: returned frames, signal
 * frames, mallard's own work (a block table's slot copied through an xmm
 * register, saved by the kernel in the frame of a signal that came next).
 * valgrind reads none of it, and reading it made a leaked block reachable
 * through a stale copy (hostile_gcsegv's leak went missing in about one run
 * in 200 under load).  And a thread that runs while the scan reads its
 * stack and the heap can move a pointer from where the scan has not been
 * yet to where it already was.  So, as LSan stops every thread (by ptrace)
 * and valgrind runs one at a time, the report holds each attached thread
 * still in a handler of mallard's while reach.c scans, and learns its
 * registers and its stack pointer: the scan reads the registers and the
 * stack from the red zone below the stack pointer up.
 *
 * Nothing the program can see:
 * - A thread blocked in a system call is sent the signal only when that
 *   call is restarted after a handler installed with SA_RESTART, as if
 *   nothing had happened: a read of a pipe or FIFO, wait4, waitid, flock,
 *   and futex waits without a timeout (pthread_mutex_lock,
 *   pthread_cond_wait, pthread_join).  Any other call would show it: a
 *   write returns the part of its buffer it copied, a terminal's read the
 *   bytes it has, a socket's with a timeout, nanosleep, poll, epoll_wait or
 *   a timed wait EINTR.  Such a thread is sent nothing, and the stack pointer that
 *   /proc/self/task/TID/syscall shows while it is blocked is enough to skip
 *   its dead stack (its registers are not seen, as before).  A thread that
 *   runs is interrupted between two instructions, which it cannot tell.
 *   Left open: /proc says "running" of a thread in the kernel too, and one
 *   caught on its way into such a call (poll, epoll_wait) before it sleeps
 *   returns EINTR from it, as it would for any signal of the program's.
 *   The signal goes out right after /proc is read, which leaves that a
 *   window of microseconds.
 * - The signal is SIGURG, or else SIGWINCH: the first the program leaves at
 *   its default (ignore) or ignores, with mallard's handler only while the
 *   threads are held, so a late delivery is ignored as ever.  If the
 *   program handles both, or a thread blocks the signal, that thread is
 *   not held (its stack pointer is still used if it is blocked in a call).
 * - A thread inside mallard (the trace layer's guard or lock count set) is
 *   not held there, where it may hold a lock the scan needs: its handler
 *   returns at once and the thread is asked again a millisecond later, for
 *   up to FREEZE_WAIT_MS in all; after that its whole stack block is read,
 *   as before.
 * - A thread held longer than FREEZE_HOLD_MS goes on by itself: a scan that
 *   waits for a lock such a thread holds after all is late, never hung.
 *   (reach.c holds from inside dl_iterate_phdr, so no held thread holds
 *   the loader's lock the scan takes.)
 *
 * Only the reporting thread calls begin and end, with the trace layer's
 * guard set; the handler touches the slot table only while fz.active is
 * set, and end waits for every handler to leave before it frees the table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "../core/meta.h"
#include "busy.h"
#include "report.h"
#include "trace.h"

#define FREEZE_WAIT_MS 100   /* asking the threads, at most */
#define FREEZE_HOLD_MS 10000 /* a thread held, at most */

enum slot_state { S_NONE, S_ASKED, S_BUSY, S_HELD, S_SP, S_LEFT };

struct slot {
    uintptr_t tp;
    int tid;
    int state; /* enum slot_state; the handler writes S_BUSY, S_HELD, S_LEFT */
    enum ml_freeze_how how;
    uintptr_t sp;
    uintptr_t regs[ML_FREEZE_NREGS];
};

struct table {
    size_t n;
    struct slot s[];
};

static struct {
    struct table *tab; /* meta heap */
    int active;        /* futex word: 1 while asked threads are to stay held */
    int inside;        /* handlers running */
    int sig;           /* the signal installed, 0 for none */
    struct sigaction old;
    int depth;    /* begin calls not yet ended: only the outermost holds */
    int all_held; /* every other attached thread is held (or there is none) */
} fz;

static int gettid_raw(void) { return (int)syscall(SYS_gettid); }

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    syscall(SYS_nanosleep, &ts, NULL);
}

static void on_freeze(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    int saved = errno;
    __atomic_add_fetch(&fz.inside, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&fz.active, __ATOMIC_SEQ_CST) || !si || si->si_code != SI_TKILL ||
        si->si_pid != (pid_t)syscall(SYS_getpid))
        goto out;
    struct table *tab = __atomic_load_n(&fz.tab, __ATOMIC_ACQUIRE);
    int tid = gettid_raw();
    struct slot *s = NULL;
    for (size_t i = 0; tab && i < tab->n && !s; i++)
        if (tab->s[i].tid == tid)
            s = &tab->s[i];
    if (!s)
        goto out;
    int was = ml_trace_guard_enter();
    ml_trace_guard_leave(was);
    if (was || ml_tr_busy) {
        __atomic_store_n(&s->state, S_BUSY, __ATOMIC_RELEASE);
        goto out;
    }
    const greg_t *g = ((const ucontext_t *)ucv)->uc_mcontext.gregs;
    static const int gp[ML_FREEZE_NREGS] = {REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI,
                                            REG_RDI, REG_RBP, REG_R8,  REG_R9,  REG_R10,
                                            REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
    for (int i = 0; i < ML_FREEZE_NREGS; i++)
        s->regs[i] = (uintptr_t)g[gp[i]];
    s->sp = (uintptr_t)g[REG_RSP];
    __atomic_store_n(&s->state, S_HELD, __ATOMIC_RELEASE);
    struct timespec step = {0, 10 * 1000000L};
    long waited = 0;
    for (; __atomic_load_n(&fz.active, __ATOMIC_ACQUIRE) && waited < FREEZE_HOLD_MS; waited += 10)
        syscall(SYS_futex, &fz.active, FUTEX_WAIT_PRIVATE, 1, &step, NULL, 0);
    if (waited >= FREEZE_HOLD_MS)
        __atomic_store_n(&s->state, S_LEFT, __ATOMIC_RELEASE); /* it goes on: read it whole */
out:
    __atomic_sub_fetch(&fz.inside, 1, __ATOMIC_SEQ_CST);
    errno = saved;
}

/* The first of SIGURG and SIGWINCH the program leaves ignored, or 0. */
static int pick_signal(void)
{
    static const int candidates[] = {SIGURG, SIGWINCH};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        struct sigaction cur;
        if (sigaction(candidates[i], NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO))
            continue;
        if (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN)
            return candidates[i];
    }
    return 0;
}

/* A small /proc file of the thread tid, read whole: its length, or -1. */
static ssize_t task_file(int tid, const char *name, char *buf, size_t cap)
{
    char path[64];
    ml_fmt(path, sizeof path, "/proc/self/task/%d/%s", tid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    close(fd);
    buf[n] = '\0';
    return (ssize_t)n;
}

static const char *parse_num(const char *p, long long *out)
{
    while (*p == ' ')
        p++;
    int neg = *p == '-';
    p += neg;
    unsigned long long v = 0;
    int base = 10;
    if (p[0] == '0' && p[1] == 'x') {
        base = 16;
        p += 2;
    }
    const char *start = p;
    for (;; p++) {
        unsigned d = *p >= '0' && *p <= '9'   ? (unsigned)(*p - '0')
                     : *p >= 'a' && *p <= 'f' ? (unsigned)(*p - 'a' + 10)
                                              : 99;
        if (d >= (unsigned)base)
            break;
        v = v * (unsigned)base + d;
    }
    if (p == start)
        return NULL;
    *out = neg ? -(long long)v : (long long)v;
    return p;
}

/* Whether the thread blocks sig (its SigBlk line). */
static int blocks_signal(int tid, int sig)
{
    char buf[2048];
    if (task_file(tid, "status", buf, sizeof buf) <= 0)
        return 1; /* cannot tell: do not wait for it */
    const char *p = strstr(buf, "\nSigBlk:");
    if (!p)
        return 1;
    p += 8;
    while (*p == ' ' || *p == '\t')
        p++;
    unsigned long long mask = 0;
    for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
        mask = mask * 16 + (unsigned)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
    return (int)((mask >> (sig - 1)) & 1);
}

/* A call that a handler with SA_RESTART leaves as if it had not come: one
 * that has moved nothing when it blocks, and is started again.  A read of
 * a pipe or FIFO blocks only while there is nothing to read; not a write
 * (a blocked write to a pipe may have copied part of its buffer, and
 * returns that much when a handler runs), not a terminal (a read waiting
 * for VMIN bytes returns the ones it has), not a socket (one with a
 * receive timeout returns EINTR). */
static int restarts_unseen(long long nr, const long long *a)
{
    switch (nr) {
    case SYS_read:
    case SYS_readv: {
        struct stat st;
        return a[0] >= 0 && a[0] <= INT_MAX && fstat((int)a[0], &st) == 0 && S_ISFIFO(st.st_mode);
    }
    case SYS_wait4:
    case SYS_waitid:
    case SYS_flock:
        return 1;
    case SYS_futex: {
        long long op = a[1] & ~(long long)(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
        return (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET) && a[3] == 0;
    }
    default:
        return 0;
    }
}

/* What /proc says of the thread: S_ASKED (to be sent the signal: it runs,
 * or is blocked in a call that restarts unseen), S_SP with *sp (blocked in
 * another call), or S_NONE. */
static int task_state(int tid, int sig, uintptr_t *sp)
{
    char buf[256];
    if (task_file(tid, "syscall", buf, sizeof buf) <= 0)
        return S_NONE;
    int can_ask = sig && !blocks_signal(tid, sig);
    if (!strncmp(buf, "running", 7))
        return can_ask ? S_ASKED : S_NONE;
    long long v[9];
    const char *p = buf;
    int k = 0;
    while (k < 9 && (p = parse_num(p, &v[k])) != NULL)
        k++;
    if (k == 3 && v[0] == -1)
        return can_ask ? S_ASKED : S_NONE; /* blocked, not in a call (a fault) */
    if (k != 9)
        return S_NONE;
    if (can_ask && restarts_unseen(v[0], v + 1))
        return S_ASKED;
    *sp = (uintptr_t)v[7];
    return S_SP;
}

static int ask(const struct slot *s)
{
    return (int)syscall(SYS_tgkill, (pid_t)syscall(SYS_getpid), s->tid, fz.sig);
}

/* Asks slot s's thread, if /proc says it may be asked: just after reading
 * its state, so that a thread seen running has little time to block in a
 * call the signal would end with EINTR. */
static void ask_one(struct slot *s)
{
    int st = task_state(s->tid, fz.sig, &s->sp);
    __atomic_store_n(&s->state, st, __ATOMIC_RELAXED);
    if (st == S_ASKED && ask(s) != 0)
        __atomic_store_n(&s->state, S_NONE, __ATOMIC_RELAXED); /* gone since */
}

void ml_freeze_begin(void)
{
    if (fz.depth++)
        return; /* held already: the report's scan, inside its snapshot's hold */
    fz.all_held = 0;
    size_t nth = ml_threads_list(NULL, 0);
    if (nth < 2) {
        fz.all_held = 1; /* the caller alone, or no one */
        return;
    }
    struct ml_thread_root *th = ml_meta_alloc((nth + 8) * sizeof *th);
    struct table *tab = ml_meta_alloc(sizeof *tab + (nth + 8) * sizeof tab->s[0]);
    if (!th || !tab) {
        ml_meta_free(th);
        ml_meta_free(tab);
        return;
    }
    size_t got = ml_threads_list(th, nth + 8);
    nth = got < nth + 8 ? got : nth + 8;
    int self = gettid_raw();
    size_t n = 0;
    for (size_t i = 0; i < nth; i++) {
        if (th[i].gone || th[i].tid <= 0 || th[i].tid == self)
            continue;
        struct slot *s = &tab->s[n++];
        memset(s, 0, sizeof *s);
        s->tp = th[i].tp;
        s->tid = th[i].tid;
    }
    ml_meta_free(th);
    tab->n = n;
    __atomic_store_n(&fz.tab, tab, __ATOMIC_RELEASE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_freeze;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask); /* nothing else runs on a held thread */
    int sig = pick_signal();
    if (sig && sigaction(sig, &sa, &fz.old) == 0) {
        fz.sig = sig;
        __atomic_store_n(&fz.active, 1, __ATOMIC_SEQ_CST);
    }
    struct slot *v = tab->s;
    for (size_t i = 0; i < n; i++)
        ask_one(&v[i]);
    for (long waited = 0; fz.sig && waited < FREEZE_WAIT_MS; waited++) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++) {
            if (__atomic_load_n(&v[i].state, __ATOMIC_ACQUIRE) == S_BUSY && waited)
                ask_one(&v[i]); /* inside mallard a millisecond ago: again */
            int st = __atomic_load_n(&v[i].state, __ATOMIC_ACQUIRE);
            left += st == S_ASKED || st == S_BUSY;
        }
        if (!left)
            break;
        nap_ms(1);
    }
    /* the program's disposition back: the held threads wait on fz.active,
     * and a signal from elsewhere is ignored again for the rest */
    if (fz.sig)
        sigaction(fz.sig, &fz.old, NULL);
    /* what the scan may use: a thread that answers from now on is held,
     * but its stack is read whole */
    size_t held = 0;
    for (size_t i = 0; i < n; i++) {
        int st = __atomic_load_n(&v[i].state, __ATOMIC_ACQUIRE);
        v[i].how = st == S_HELD ? ML_FREEZE_REGS : st == S_SP ? ML_FREEZE_SP : ML_FREEZE_UNKNOWN;
        held += st == S_HELD;
    }
    fz.all_held = held == n;
}

int ml_freeze_all_held(void)
{
    const struct table *tab = __atomic_load_n(&fz.tab, __ATOMIC_ACQUIRE);
    if (!fz.all_held)
        return 0;
    for (size_t i = 0; tab && i < tab->n; i++)
        if (__atomic_load_n(&tab->s[i].state, __ATOMIC_ACQUIRE) != S_HELD)
            return 0; /* one left its hold (FREEZE_HOLD_MS) */
    return 1;
}

void ml_freeze_end(void)
{
    if (--fz.depth)
        return;
    struct table *tab = __atomic_load_n(&fz.tab, __ATOMIC_ACQUIRE);
    if (fz.sig) {
        __atomic_store_n(&fz.active, 0, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, &fz.active, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        for (int i = 0; i < 1000 && __atomic_load_n(&fz.inside, __ATOMIC_SEQ_CST); i++)
            nap_ms(1);
        fz.sig = 0;
        if (__atomic_load_n(&fz.inside, __ATOMIC_SEQ_CST))
            tab = NULL; /* a handler still on its way out may read it: kept */
    }
    __atomic_store_n(&fz.tab, NULL, __ATOMIC_RELEASE);
    ml_meta_free(tab);
}

enum ml_freeze_how ml_freeze_thread(uintptr_t tp, uintptr_t *sp, uintptr_t regs[ML_FREEZE_NREGS])
{
    const struct table *tab = __atomic_load_n(&fz.tab, __ATOMIC_ACQUIRE);
    for (size_t i = 0; tab && i < tab->n; i++) {
        const struct slot *s = &tab->s[i];
        if (s->tp != tp || s->how == ML_FREEZE_UNKNOWN)
            continue;
        if (s->how == ML_FREEZE_REGS && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != S_HELD)
            return ML_FREEZE_UNKNOWN; /* held no longer (FREEZE_HOLD_MS) */
        *sp = s->sp;
        if (s->how == ML_FREEZE_REGS)
            memcpy(regs, s->regs, sizeof s->regs);
        return s->how;
    }
    return ML_FREEZE_UNKNOWN;
}

/* ml_freeze_run's dl_iterate_phdr callback: fn once, the threads held. */
struct held_run {
    void (*fn)(void *);
    void *arg;
    int done;
};

static int held_call(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    struct held_run *r = data;
    if (r->done)
        return 1;
    r->done = 1;
    ml_freeze_begin();
    r->fn(r->arg);
    ml_freeze_end();
    return 1;
}

void ml_freeze_run(void (*fn)(void *), void *arg)
{
    struct held_run r = {fn, arg, 0};
    dl_iterate_phdr(held_call, &r);
    if (!r.done)
        fn(arg); /* no object listed (never so): unheld */
}
