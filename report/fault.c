/* report/fault.c: a fatal signal that hit a guarded block becomes an error.
 *
 * The page backend surrounds blocks with PROT_NONE pages and keeps freed
 * blocks PROT_NONE, so an overflow, an underflow or a use after free dies
 * of SIGSEGV.  Before the exit report is written from the signal handler,
 * the faulting address is matched to the block it hits (the backend's
 * describe_fault slot), and the error names the access (read or write,
 * from the page-fault error code), its stack (unwound from the handler
 * through the signal frame, frame 0 being the faulting instruction), the
 * block's size, where the address lies relative to it, its allocation
 * stack and, once freed, its free stack, as valgrind and ASan do.  Then
 * the signal does its work as before.
 *
 * Runs on the faulting thread with the trace layer's guard set, and only
 * when that thread was not inside mallard (preload/hooks.c checks), so no
 * lock it takes can be one this thread already holds.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <ucontext.h>

#include "../core/backend.h"
#include "blocks.h"
#include "finish.h"
#include "trace.h"

void ml_trace_fault(const siginfo_t *si, const void *uctx)
{
    const struct ml_backend *b = ml_trace_inner();
    if (!b || !b->describe_fault || !si)
        return;
    uintptr_t a = (uintptr_t)si->si_addr;
    struct ml_fault_block fb;
    if (!b->describe_fault(a, &fb))
        return;
    const ucontext_t *uc = uctx;
    uintptr_t pc = uc ? (uintptr_t)uc->uc_mcontext.gregs[REG_RIP] : 0;
    struct ml_error e = {
        .kind = fb.freed ? ML_ERR_USE_AFTER_FREE : ML_ERR_OVERFLOW,
        .address = a,
        .bytes = fb.size,
        .block = fb.user,
        .offset = (int64_t)(a - fb.user),
        /* x86 page-fault error code: bit 1 is set for a write */
        .access = (uint8_t)(uc && (uc->uc_mcontext.gregs[REG_ERR] & 2) ? ML_ACCESS_WRITE : ML_ACCESS_READ),
        .stack = pc ? ml_stack_capture_fault(pc) : 0,
    };
    struct ml_block_rec r;
    if (ml_blocks_lookup(fb.user, &r) == 0) {
        e.alloc_stack = r.stack;
        e.alloc_kind = r.kind;
        if (r.state == ML_BLOCK_FREED)
            e.free_stack = r.free_stack;
    }
    ml_trace_record_error(&e);
}
