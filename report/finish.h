/* report/finish.h: state shared by the decorator (trace.c) and the exit
 * report (finish.c). */
#ifndef ML_REPORT_FINISH_H
#define ML_REPORT_FINISH_H

#include <stdint.h>

#include "../core/lock.h"
#include "report.h"

struct ml_tag_slot {
    const char *name;
    uint64_t allocs, current, peak;
    uint64_t frees, bytes; /* frees of its blocks, bytes allocated */
};

struct ml_trace_state {
    const char *backend_name;
    int on_error;
    int pid;                              /* this process, as mallard last saw it (fork updates it) */
    int forked_child;                     /* a fork child: blocks from before the fork are the parent's */
    int finished;                         /* the report was started (ml_trace_finish ran) */
    int report_tid;                       /* the thread writing it */
    int report_done;                      /* ... and it is over: a thread ending the process waits for this */
    int stderr_fd;                        /* a copy of stderr taken at start-up (when stderr_known), or -1 */
    unsigned long stderr_dev, stderr_ino; /* what stderr_fd was, to notice it being reused */
    int stderr_known;                     /* stderr_dev/ino were taken (fd 2 was open at start-up) */
    uintptr_t boot_lo, boot_hi;           /* the bootstrap arena (ml_trace_start): scanned, not skipped */
    uint64_t allocs, frees, bytes_allocated; /* of exited threads (trace.c keeps the rest per thread) */
    /* the live balance less the threads' unflushed shares, and its peak
     * (trace.c); each on its own line, written rarely, read often */
    int64_t current_bytes __attribute__((aligned(64)));
    int64_t peak_bytes;
    uint64_t seq __attribute__((aligned(64))); /* sequence numbers handed out, in batches */
    char seq_pad[56];
    ml_mutex tag_lock;
    uint16_t ntags;
    struct ml_tag_slot tags[1024];
    ml_mutex error_lock;
    struct ml_error *errors;
    size_t nerrors, errors_cap, nerrors_inherited;
    uint64_t allocs_at_fork; /* allocs when this process was forked */
};

extern struct ml_trace_state ml_tr;

/* Records an error made by the calling thread (its tid and name are
 * filled in).  For callers outside trace.c: the fatal-signal path. */
void ml_trace_record_error(struct ml_error *e);

/* Allocations, frees, bytes allocated and live bytes so far: ml_tr's plus
 * the live threads' own counts (trace.c keeps those per thread).  Any
 * pointer may be NULL. */
void ml_trace_counts(uint64_t *allocs, uint64_t *frees, uint64_t *bytes_allocated, uint64_t *current);

/* The backend the decorator wraps. */
const struct ml_backend *ml_trace_inner(void);

#endif
