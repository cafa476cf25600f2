/* report/trace.h: the trace layer as preload/ sees it, all of it.
 *
 * The preload layer reaches report/ through these functions only (as
 * heaptrack keeps its preload in front of one small C API): it wraps the
 * chosen backend while booting, starts the layer from mallard's
 * constructor, tells it about forks, tags and failed execs, asks whether it
 * is on, and has it write the report at each way the process ends.  The
 * options come in as parameters; the trace layer keeps no pointer into
 * preload/ and reads none of its globals.
 */
#ifndef ML_REPORT_TRACE_H
#define ML_REPORT_TRACE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/backend.h"

struct ml_options;

/* Which family allocated a block, and which one freed it (the kind of
 * ml_trace_alloc and ml_trace_free). */
enum ml_alloc_kind { ML_ALLOC_MALLOC, ML_ALLOC_NEW, ML_ALLOC_NEW_ARRAY };

/* How the process is ending, for ml_trace_finish.  ML_EXIT_LIVE: a report
 * of a process that goes on (ml_trace_report_live). */
enum ml_exit_how { ML_EXIT_EXIT, ML_EXIT__EXIT, ML_EXIT_EXEC, ML_EXIT_SIGNAL, ML_EXIT_LIVE };

/* Wraps inner; returns the decorator to install as ml_active.  Called once
 * while booting: it must not allocate through the host's malloc.  It keeps
 * what the decorator itself needs of opt (MALLARD_ON_ERROR). */
const struct ml_backend *ml_trace_wrap(const struct ml_backend *inner, const struct ml_options *opt);

/* 1 once ml_trace_wrap has run: the decorator is installed and records
 * every block; 0 when the bare backend runs (MALLARD_TRACE=0). */
int ml_trace_enabled(void);

/* Work that may not happen inside the first malloc (it may be inside
 * ld.so), done once from mallard's constructor after ml_trace_wrap: load
 * libunwind and record opt->depth frames per stack from now on; take a
 * copy of stderr for the report (programs such as sort close fd 2 before
 * they exit); and note [boot_arena, boot_arena + boot_size), the static
 * bootstrap arena: it lies inside mallard's own data, which the
 * reachability scan skips, but its blocks belong to the program, so the
 * scan reads it. */
void ml_trace_start(const struct ml_options *opt, const void *boot_arena, size_t boot_size);

/* Writes the report once per process, for the way it is ending, as opt
 * says (MALLARD_REPORT, FORMAT, SHOW, SUPPRESSIONS, EXITCODE).  Returns the
 * exit status to use (status, or MALLARD_EXITCODE when leaks or errors
 * were found).  A vfork child (or any process mallard did not see fork)
 * writes nothing. */
int ml_trace_finish(enum ml_exit_how how, int status, const struct ml_options *opt);

/* The exec that ml_trace_finish(ML_EXIT_EXEC) wrote the report for failed:
 * the process goes on, and its real end writes the report again. */
void ml_trace_exec_failed(void);

/* Sets the calling thread's recursion guard, so whatever it allocates
 * comes from the meta heap untraced; returns the previous value, which is
 * 1 when the thread was already inside mallard (a fatal signal raised
 * there writes no report). */
int ml_trace_guard_enter(void);
void ml_trace_guard_leave(int was);

/* A report of the live process, which goes on (the report signal,
 * mallard_report_now, the LSan interface); with final, the last one: the
 * exit report is not written.  Returns 1 when leaks or errors were found,
 * 0 when none, -1 when no report was written (another process image, or
 * the final report is already out). */
int ml_trace_report_live(int final, const struct ml_options *opt);

/* Tags the LSan interface gives blocks that are never leaks. */
#define ML_TAG_LSAN_IGNORED "lsan-ignored"
#define ML_TAG_LSAN_DISABLED "lsan-disabled"
/* __lsan_ignore_object: the live block at p carries ML_TAG_LSAN_IGNORED
 * from now on (its bytes move to that tag's counts); else nothing. */
void ml_trace_ignore_object(const void *p);
/* The calling thread installed [lo, hi) as its signal stack (sigaltstack;
 * lo == hi: none): what a handler leaves there below its stack pointer is
 * dead, as on any stack.  Attaches the thread if it has not allocated yet. */
void ml_trace_note_altstack(uintptr_t lo, uintptr_t hi);

/* In the child of a fork made while the process had one thread (no lock
 * was taken): the child's bookkeeping, unless the fork interrupted mallard
 * itself (a signal handler's fork during malloc), in which case the
 * tables may be mid-update and the child writes no report. */
void ml_trace_after_single_fork(void);

/* The C++ allocation functions (preload/cxx.c) while tracing: like the
 * malloc and free slots, recording which family (enum ml_alloc_kind)
 * allocated a block and reporting a free by another family as a
 * mismatch.  n > 0; align is 16 or a larger power of two. */
void *ml_trace_alloc(size_t align, size_t n, unsigned kind);
void ml_trace_free(void *p, unsigned kind);
/* Records kind for the live block p (allocated through malloc on a
 * fallback path). */
void ml_trace_set_kind(void *p, unsigned kind);

/* From a fatal-signal handler, before the report: if the fault hit a
 * guarded block (the page backend), records it as an error naming the
 * access, the block and its stacks (report/fault.c).  si and uctx are the
 * handler's arguments. */
void ml_trace_fault(const siginfo_t *si, const void *uctx);

/* Requested bytes of the blocks live now (mallinfo's in-use bytes). */
size_t ml_trace_current_bytes(void);

/* The calling thread's tag for the allocations it makes next; NULL clears.
 * Returns the previous one. */
const char *ml_trace_set_tag(const char *name);

/* ---- decorators besides the tracer ------------------------------------ */

/* MALLARD_STATS=1 with the tracer off (report/stats.c): a thin decorator in
 * front of the chosen backend, installed at start-up only then (with the
 * tracer on, the trace layer's own counts are printed in its report).
 * Counts live in per-thread slots, so the hot path touches no shared cache
 * line; a thread that ends folds its slot into a global total under a
 * lock, and the exit summary adds the live slots to that total.  Called
 * once, single-threaded. */
const struct ml_backend *ml_stats_wrap(const struct ml_backend *inner, const struct ml_options *opt);

/* Fault injection (report/inject.c): MALLARD_FAIL, MALLARD_FAIL_RATE with
 * MALLARD_SEED, MALLARD_LIMIT.  ml_inject_wanted: opt asks for it.
 * ml_inject_wrap: the decorator around inner (the tracer or the bare
 * backend) to install as ml_active; called once while booting, allocates
 * nothing.  ml_inject_start: from the end of mallard's constructor, calls
 * count from now on (mallard's own start-up requests do not).
 * ml_inject_enabled: 1 once ml_inject_wrap has run. */
int ml_inject_wanted(const struct ml_options *opt);
const struct ml_backend *ml_inject_wrap(const struct ml_backend *inner, const struct ml_options *opt);
void ml_inject_start(void);
int ml_inject_enabled(void);

/* operator new and delete (preload/cxx.c) while injecting: like
 * ml_trace_alloc and ml_trace_free (or the bare backend when not tracing).
 * A failed new makes the next request of the same size on this thread (the
 * C++ runtime's own retry, which then throws std::bad_alloc) fail too. */
void *ml_inject_cxx_alloc(size_t align, size_t n, unsigned kind);
void ml_inject_cxx_free(void *p, unsigned kind);

/* A signal handler that writes a report on a stack of its own first says
 * where it left the thread's stack (sp: the handler's frame; what lies
 * above is live: its frames, the kernel's signal frame with the registers,
 * the interrupted ones), and 0 after.  The scan then reads that thread's
 * stack from sp up only: below lies what returned calls left behind
 * (reach.c). */
void ml_reach_signal_sp(uintptr_t sp);

#endif
