/* report/trace.h: the tracing decorator and the exit report. */
#ifndef ML_REPORT_TRACE_H
#define ML_REPORT_TRACE_H

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

/* In the child of a fork made while the process had one thread (no lock
 * was taken): the child's bookkeeping, unless the fork interrupted mallard
 * itself (a signal handler's fork during malloc), in which case the
 * tables may be mid-update and the child writes no report. */
void ml_trace_after_single_fork(void);

/* 1 once ml_trace_wrap has run: the decorator is installed and records
 * every block; 0 when the bare backend runs (MALLARD_TRACE=0). */
int ml_trace_enabled(void);

/* Requested bytes of the blocks live now (mallinfo's in-use bytes). */
size_t ml_trace_current_bytes(void);

/* The calling thread's tag for the allocations it makes next; NULL clears.
 * Returns the previous one. */
const char *ml_trace_set_tag(const char *name);

#endif
