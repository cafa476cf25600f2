/* preload/api.c: the API of mallard.h beyond mallard_tag, and LeakSanitizer's
 * interface, so that code written for LSan works under mallard.
 *
 *   mallard_report_now()                a report of the live process
 *   __lsan_do_leak_check()              the final report, now; with
 *                                       MALLARD_EXITCODE the process then
 *                                       exits with it when leaks were found
 *   __lsan_do_recoverable_leak_check()  a live report; nonzero when leaks
 *   __lsan_ignore_object(p)             the block at p is never a leak
 *   __lsan_disable() / __lsan_enable()  blocks the calling thread allocates
 *                                       in between are never leaks (nested)
 *
 * Ignored blocks carry the tag "lsan-ignored", blocks allocated while
 * disabled "lsan-disabled"; the report counts both as suppressed.  While
 * disabled, the thread's own mallard_tag is set aside and comes back at
 * the matching __lsan_enable.
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "../core/os.h"
#include "../report/blocks.h"
#include "../report/finish.h"
#include "../report/trace.h"
#include "boot.h"
#define MALLARD_API __attribute__((visibility("default")))
#include "mallard.h"

#define ML_EXPORT MALLARD_API

static int tracing(void)
{
    return __atomic_load_n(&ml_state, __ATOMIC_ACQUIRE) == ML_READY && ml_trace_enabled();
}

ML_EXPORT int mallard_report_now(void)
{
    if (!tracing())
        return -1;
    return ml_trace_report_live(0, &ml_opts);
}

ML_EXPORT void __lsan_do_leak_check(void)
{
    if (!tracing())
        return;
    int found = ml_trace_report_live(1, &ml_opts);
    if (found > 0 && ml_opts.exitcode)
        _exit(ml_opts.exitcode);
}

ML_EXPORT int __lsan_do_recoverable_leak_check(void)
{
    if (!tracing())
        return 0;
    return ml_trace_report_live(0, &ml_opts) > 0;
}

ML_EXPORT void __lsan_ignore_object(const void *p)
{
    if (!tracing() || !p)
        return;
    int was = ml_trace_guard_enter();
    struct ml_block_rec rec;
    if (ml_blocks_lookup((uintptr_t)p, &rec) == 0 && rec.state == ML_BLOCK_LIVE) {
        /* register the tag by name, then find its id */
        ml_trace_guard_leave(was);
        const char *prev = ml_trace_set_tag(ML_TAG_LSAN_IGNORED);
        ml_trace_set_tag(prev);
        was = ml_trace_guard_enter();
        uint16_t id = 0;
        for (uint16_t i = 1; i <= ml_tr.ntags; i++)
            if (ml_tr.tags[i].name && !__builtin_strcmp(ml_tr.tags[i].name, ML_TAG_LSAN_IGNORED))
                id = i;
        if (id && rec.tag != id) {
            /* move the block's bytes between the tags' current counts, as
             * its free will take them from the new tag */
            if (rec.tag)
                __atomic_sub_fetch(&ml_tr.tags[rec.tag].current, rec.size, __ATOMIC_RELAXED);
            __atomic_add_fetch(&ml_tr.tags[id].current, rec.size, __ATOMIC_RELAXED);
            ml_blocks_insert(rec.addr, rec.size, rec.stack, id, rec.seq, rec.kind);
        }
    }
    ml_trace_guard_leave(was);
}

static ML_TLS int disabled_depth;
static ML_TLS const char *saved_tag;

ML_EXPORT void __lsan_disable(void)
{
    if (!tracing())
        return;
    if (disabled_depth++ == 0)
        saved_tag = ml_trace_set_tag(ML_TAG_LSAN_DISABLED);
}

ML_EXPORT void __lsan_enable(void)
{
    if (!tracing() || disabled_depth == 0)
        return;
    if (--disabled_depth == 0)
        ml_trace_set_tag(saved_tag);
}

/* ---- nested tags ------------------------------------------------------ */

#define TAG_STACK_MAX 64
static ML_TLS const char *tag_stack[TAG_STACK_MAX];
static ML_TLS unsigned tag_depth; /* may pass TAG_STACK_MAX: those levels keep their tag */

ML_EXPORT void mallard_tag_push(const char *name)
{
    if (!tracing())
        return;
    const char *prev = ml_trace_set_tag(name);
    if (tag_depth < TAG_STACK_MAX)
        tag_stack[tag_depth] = prev;
    tag_depth++;
}

ML_EXPORT void mallard_tag_pop(void)
{
    if (!tracing() || tag_depth == 0)
        return;
    tag_depth--;
    if (tag_depth < TAG_STACK_MAX)
        ml_trace_set_tag(tag_stack[tag_depth]);
}
