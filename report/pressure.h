/* report/pressure.h: the trace layer when mallard's own memory runs out.
 *
 * mallard's metadata (the block table, the stack depot, the thread list,
 * the error list) comes from the meta heap, which maps memory as it grows
 * and can be refused it (ulimit -v, a small cgroup, vm.max_map_count).  The
 * program must not notice: its allocations carry on through the backend.
 * So the first failure stops tracing for good (ml_tr_degrade, one stderr
 * line naming what ran short), and from then on:
 *  - an allocation is not recorded (no stack, no record), only counted;
 *  - a free or realloc of a block the table does not know goes to the
 *    backend as if the tracer were off, instead of being reported as an
 *    invalid free (the block may have been allocated after the stop);
 *  - blocks recorded before the stop are still checked and reported;
 *  - the report says it is partial: what ran short, after how many
 *    allocations, how many went untraced.
 * The report itself may be short of memory at exit too (the meta heap then
 * draws on its reserve, ml_meta_reserve_open); what it still cannot do is
 * noted with ml_tr_report_short and the report says so, instead of being
 * dropped. */
#ifndef ML_REPORT_PRESSURE_H
#define ML_REPORT_PRESSURE_H

#include <stddef.h>
#include <stdint.h>

/* Read-mostly: 0 until tracing stops, then 1 forever (fork children too).
 * The hot path reads it once, relaxed. */
extern int ml_tr_stopped;
extern uint64_t ml_tr_untraced;

/* Metadata for what (a short noun phrase: "the stack depot") could not be
 * allocated: the first call stops tracing and writes one stderr line; later
 * calls do nothing.  Safe with any trace-layer lock held (a store, an
 * exchange and a write(2)). */
void ml_tr_degrade(const char *what);

/* An allocation made while tracing is stopped (not recorded). */
static inline void ml_tr_count_untraced(void) { __atomic_add_fetch(&ml_tr_untraced, 1, __ATOMIC_RELAXED); }

/* What ran short when tracing stopped; NULL while it runs. */
const char *ml_tr_stopped_why(void);

/* At report time: the report could not do what (a noun phrase: "the leak
 * scan") for want of memory; the report lists it.  Kept per report. */
void ml_tr_report_short(const char *what);
/* The shortfalls noted since the last reset, in order (at most 8). */
size_t ml_tr_report_shortfalls(const char *const **out);
/* A new report starts. */
void ml_tr_report_reset(void);

#endif
