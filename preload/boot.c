/* preload/boot.c: start-up, the bootstrap arena, fork and thread hooks.
 * See boot.h for the state machine. */
#define _GNU_SOURCE
#include "boot.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "../core/meta.h"
#include "../core/os.h"
#include "../report/trace.h"
#include "hooks.h"
#include "children.h"

/* Every process writes these while it starts: in .data's last page, which
 * ld.so writes anyway (core/compiler.h). */
int ml_state ML_STARTUP_DATA = ML_UNINIT;
const struct ml_backend *ml_active ML_STARTUP_DATA;
const struct ml_backend *ml_chosen ML_STARTUP_DATA;
struct ml_options ml_opts ML_STARTUP_DATA;
/* ml_opts' path values (ml_options_keep); untouched unless one is set. */
static char opts_pool[ML_OPT_POOL_SIZE] ML_LARGE_BSS;

char ml_boot_arena[ML_BOOT_ARENA_SIZE] ML_LARGE_BSS __attribute__((aligned(4096)));
static size_t boot_used;

/* Set on the thread that runs boot_init, so its own nested requests (from
 * dlsym, pthread_atfork, ...) go to the bootstrap arena. */
static ML_TLS int booting_here;

static pthread_key_t thread_key ML_STARTUP_DATA;
static int thread_key_ok ML_STARTUP_DATA;
/* 1: fault injection wraps the backend (boot_init); the constructor asks
 * this rather than report/, whose state shares no page with these. */
static int inject_on ML_STARTUP_DATA;
int ml_traced ML_STARTUP_DATA; /* see boot.h */

/* ---- the bootstrap arena ---------------------------------------------- */

/* Every bootstrap block has a 16-byte header right before it holding the
 * requested size, so realloc and malloc_usable_size work on it. */
static void *boot_carve(size_t align, size_t size)
{
    if (size > ML_BOOT_ARENA_SIZE || align > ML_BOOT_ARENA_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t used = __atomic_load_n(&boot_used, __ATOMIC_RELAXED);
    size_t start, end;
    do {
        start = (used + 16 + align - 1) & ~(align - 1);
        end = start + ((size + 15) & ~(size_t)15);
        if (end > ML_BOOT_ARENA_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
    } while (!__atomic_compare_exchange_n(&boot_used, &used, end, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    *(size_t *)(ml_boot_arena + start - 16) = size;
    return ml_boot_arena + start;
}

size_t ml_boot_usable_size(const void *p) { return *(const size_t *)((const char *)p - 16); }

/* ---- the environment -------------------------------------------------- */

/* environ is normally set by the time anything allocates; when it is not
 * (an allocation from ld.so before libc's initialiser), read the MALLARD_*
 * entries out of /proc/self/environ into static storage instead. */
#define PROC_ENV_BYTES 16384
#define PROC_ENV_ENTRIES 64
static char proc_env_buf[PROC_ENV_BYTES] ML_LARGE_BSS;
static char *proc_env[PROC_ENV_ENTRIES + 1];

static char *const *boot_environment(void)
{
    extern char **environ;
    if (environ)
        return environ;
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    /* Keep only MALLARD_ entries; stream through the file in pieces. */
    char chunk[4096], entry[1024];
    size_t elen = 0, used = 0, n = 0;
    ssize_t r;
    int skipping = 0;
    while ((r = read(fd, chunk, sizeof chunk)) > 0) {
        for (ssize_t i = 0; i < r; i++) {
            char c = chunk[i];
            if (c != '\0') {
                if (!skipping && elen < sizeof entry - 1)
                    entry[elen++] = c;
                else
                    skipping = 1;
                continue;
            }
            if (!skipping && elen > 8 && !memcmp(entry, "MALLARD_", 8) && used + elen + 1 <= PROC_ENV_BYTES &&
                n < PROC_ENV_ENTRIES) {
                memcpy(proc_env_buf + used, entry, elen);
                proc_env_buf[used + elen] = '\0';
                proc_env[n++] = proc_env_buf + used;
                used += elen + 1;
            }
            elen = 0;
            skipping = 0;
        }
    }
    close(fd);
    proc_env[n] = NULL;
    return proc_env;
}

/* ---- hooks ------------------------------------------------------------ */

static void thread_dtor(void *unused)
{
    (void)unused;
    if (ml_active->thread_exit)
        ml_active->thread_exit();
}

void ml_backend_watch_thread(void)
{
    if (__atomic_load_n(&thread_key_ok, __ATOMIC_ACQUIRE))
        pthread_setspecific(thread_key, (void *)1);
}

/* A single-threaded process may fork from a signal handler that
 * interrupted malloc (glibc's tst-mallocfork2), and the interrupted frame
 * may hold one of mallard's locks: taking them all would deadlock on it.
 * With one thread nobody else can hold a lock, so, as glibc does for its
 * own heap, PREPARE takes none and the child resets none. */
static int fork_single;

/* glibc's stdio list lock (exported since 2.2.5; a recursive lock). */
void _IO_list_lock(void);
void _IO_list_unlock(void);

/* glibc's fork takes the stdio list lock after the atfork prepare
 * handlers and its own malloc's locks after that, because a thread inside
 * stdio may hold a FILE lock and call malloc (getline), while another
 * holds the list lock and waits for that FILE (fflush(NULL)): an allocator
 * that locks first waits for the list lock, which waits for the FILE,
 * which waits for the allocator (glibc bug 19431).  mallard gets glibc's
 * order by taking the list lock itself before its own locks; fork takes
 * it again (it is recursive), and the parent handler drops this level
 * after glibc has dropped its own.  In the child glibc resets the lock
 * before the child handlers run, so the child handler leaves it alone. */
static void fork_prepare(void)
{
    fork_single = __libc_single_threaded;
    if (fork_single)
        return;
    _IO_list_lock();
    if (ml_active->atfork)
        ml_active->atfork(ML_FORK_PREPARE);
    ml_meta_atfork(ML_FORK_PREPARE);
}

static void fork_parent(void)
{
    if (fork_single)
        return;
    ml_meta_atfork(ML_FORK_PARENT);
    if (ml_active->atfork)
        ml_active->atfork(ML_FORK_PARENT);
    _IO_list_unlock();
}

static void fork_child(void)
{
    if (fork_single) {
        if (ml_traced)
            ml_trace_after_single_fork();
        return;
    }
    ml_meta_atfork(ML_FORK_CHILD);
    if (ml_active->atfork)
        ml_active->atfork(ML_FORK_CHILD);
}

/* ---- start-up --------------------------------------------------------- */

static void boot_init(void)
{
    int expected = ML_UNINIT;
    if (!__atomic_compare_exchange_n(&ml_state, &expected, ML_BOOTING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
    booting_here = 1;
    ml_os_page_size();
    ml_options_parse(&ml_opts, boot_environment(), 1);
    ml_options_keep(&ml_opts, opts_pool, sizeof opts_pool);
    ml_children_boot(&ml_opts);

    const struct ml_backend *b = ml_backends[ml_opts.backend];
    int rc = b->init(&ml_opts);
    if (rc != 0) {
        ml_say("the %s backend failed to start (%s); using system", b->name,
               strerrordesc_np(rc) ? strerrordesc_np(rc) : "unknown error");
        b = &ml_backend_system;
        if (b->init(&ml_opts) != 0) {
            ml_say("the system backend failed to start; giving up");
            _exit(127);
        }
    }
    ml_chosen = b;
    /* MALLARD_STATS with the tracer off: the counting decorator; the trace
     * layer counts for itself. */
    ml_active = ml_opts.trace ? ml_trace_wrap(b, &ml_opts) : ml_opts.stats ? ml_stats_wrap(b, &ml_opts) : b;
    ml_traced = ml_opts.trace;
    /* MALLARD_FAIL, _FAIL_RATE, _LIMIT: fault injection in front of both */
    if (ml_inject_wanted(&ml_opts)) {
        ml_active = ml_inject_wrap(ml_active, &ml_opts);
        inject_on = 1;
    }

    if (pthread_key_create(&thread_key, thread_dtor) == 0)
        __atomic_store_n(&thread_key_ok, 1, __ATOMIC_RELEASE);
    pthread_atfork(fork_prepare, fork_parent, fork_child);

    booting_here = 0;
    __atomic_store_n(&ml_state, ML_READY, __ATOMIC_RELEASE);
}

void *ml_boot_alloc(size_t align, size_t size)
{
    if (__atomic_load_n(&ml_state, __ATOMIC_ACQUIRE) == ML_UNINIT)
        boot_init();
    if (!booting_here) {
        while (__atomic_load_n(&ml_state, __ATOMIC_ACQUIRE) != ML_READY)
            syscall(SYS_sched_yield); /* not libc's: one import fewer (core/os.c) */
        void *p = align <= 16 ? ml_active->malloc(size) : ml_active->memalign(align, size);
        if (!p)
            errno = ENOMEM;
        return p;
    }
    return boot_carve(align, size);
}

__attribute__((constructor(101))) static void ml_boot_ctor(void)
{
    if (__atomic_load_n(&ml_state, __ATOMIC_ACQUIRE) == ML_UNINIT)
        boot_init();
    while (__atomic_load_n(&ml_state, __ATOMIC_ACQUIRE) != ML_READY)
        syscall(SYS_sched_yield);
    ml_children_ctor();
    if (ml_traced)
        ml_hooks_start(); /* it does nothing untraced */
    if (inject_on)
        ml_inject_start();
}
