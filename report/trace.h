/* report/trace.h: the tracing decorator and the exit report. */
#ifndef ML_REPORT_TRACE_H
#define ML_REPORT_TRACE_H

#include <signal.h>

#include "../core/backend.h"
#include "report.h"

struct ml_options;

/* Wraps inner; returns the decorator to install as ml_active.  Called once
 * while booting: it must not allocate through the host's malloc. */
const struct ml_backend *ml_trace_wrap(const struct ml_backend *inner, const struct ml_options *opt);

/* Work that may not happen inside the first malloc (it may be inside
 * ld.so): load libunwind, register the exit handler and the fatal-signal
 * handlers.  Called from mallard's constructor. */
void ml_trace_start(void);

/* Writes the report once per process, for the way it is ending.  Returns
 * the exit status to use (status, or MALLARD_EXITCODE when leaks or errors
 * were found).  A vfork child (or any process mallard did not see fork)
 * writes nothing. */
int ml_trace_finish(enum ml_exit_how how, int status);

/* A report of the live process, which goes on (the report signal,
 * mallard_report_now, the LSan interface); with final, the last one: the
 * exit report is not written.  Returns 1 when leaks or errors were found,
 * 0 when none, -1 when no report was written (another process image, or
 * the final report is already out). */
int ml_trace_report_live(int final);

/* Tags the LSan interface gives blocks that are never leaks. */
#define ML_TAG_LSAN_IGNORED "lsan-ignored"
#define ML_TAG_LSAN_DISABLED "lsan-disabled"

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

/* Records an error made by the calling thread (its tid and name are
 * filled in).  For callers outside trace.c: the fatal-signal path. */
void ml_trace_record_error(struct ml_error *e);

/* The backend the decorator wraps. */
const struct ml_backend *ml_trace_inner(void);

/* From a fatal-signal handler, before the report: if the fault hit a
 * guarded block (the page backend), records it as an error naming the
 * access, the block and its stacks (report/fault.c).  si and uctx are the
 * handler's arguments. */
void ml_trace_fault(const siginfo_t *si, const void *uctx);

/* 1 once ml_trace_wrap has run: the decorator is installed and records
 * every block; 0 when the bare backend runs (MALLARD_TRACE=0). */
int ml_trace_enabled(void);

/* Requested bytes of the blocks live now (mallinfo's in-use bytes). */
size_t ml_trace_current_bytes(void);

/* The calling thread's tag for the allocations it makes next; NULL clears.
 * Returns the previous one. */
const char *ml_trace_set_tag(const char *name);

#endif
