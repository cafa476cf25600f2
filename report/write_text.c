/* report/write_text.c: the text report.
 *
 * Every line starts with ML_TEXT_PREFIX, "==mallard== ", so
 * that `grep '^==mallard=='` pulls the report out of a program's stderr.
 * Layout (valgrind / LSan style):
 *   - a summary: pid, command, backend, how the program ended, then
 *     definitely lost / indirectly lost / still reachable / suppressed
 *     bytes and blocks, and the error count;
 *   - the leak groups in the model's order (total bytes, descending), each
 *     a header "[<rank>] definite leak of 100 bytes in 1 block [tag parser]"
 *     or, for a definite group that owns indirect blocks, valgrind's
 *     "[1] definite leak of 444 (144 direct, 300 indirect) bytes in 3 blocks"
 *     (the blocks are the direct ones), followed by its frames, innermost
 *     first:
 *       "    #0 leak_one simple_leak.c:7 (/path/prog)"   function and line
 *       "    #1 foo (/lib/x.so+0x1234)"                  symbol only
 *       "    #2 0x7f0012345678 (/lib/x.so+0x1234)"       object only
 *       "    #3 0x7f0012345678 (unknown)"                nothing
 *     Reachable groups, and indirect groups that an owner's line already
 *     counts, are listed only when r->show_reachable;
 *   - the errors, each with the bad call's stack, then "  first freed by:"
 *     (double free) or "  freed by:", then "  allocated by:";
 *   - the tag table, then one stats line.
 *
 * Output goes through wbuf.c: no stdio, no malloc.
 */
#include "wbuf.h"

#include <string.h>

#include "../core/fmt.h"

#define ML_TEXT_PREFIX "==mallard== "

static void text_begin(struct ml_wbuf *o) { ml_wbuf_str(o, ML_TEXT_PREFIX); }

static void text_end(struct ml_wbuf *o) { ml_wbuf_chr(o, '\n'); }

static void text_blank(struct ml_wbuf *o)
{
    text_begin(o);
    text_end(o);
}

/* "100 bytes in 1 block" */
static void text_count(struct ml_wbuf *o, uint64_t bytes, uint64_t blocks)
{
    ml_wbuf_u64(o, bytes);
    ml_wbuf_str(o, bytes == 1 ? " byte in " : " bytes in ");
    ml_wbuf_u64(o, blocks);
    ml_wbuf_str(o, blocks == 1 ? " block" : " blocks");
}

static void text_frame(struct ml_wbuf *o, unsigned i, const struct ml_frame *f)
{
    text_begin(o);
    ml_wbuf_str(o, "    #");
    ml_wbuf_u64(o, i);
    ml_wbuf_chr(o, ' ');
    if (f->function)
        ml_wbuf_str(o, f->function);
    else
        ml_wbuf_hex(o, f->addr);
    if (f->file) {
        ml_wbuf_chr(o, ' ');
        ml_wbuf_str(o, ml_report_basename(f->file));
        ml_wbuf_chr(o, ':');
        ml_wbuf_u64(o, (uint64_t)(f->line > 0 ? f->line : 0));
    }
    ml_wbuf_str(o, " (");
    if (!f->object) {
        ml_wbuf_str(o, "unknown");
    } else {
        ml_wbuf_str(o, f->object);
        if (!f->file) {
            ml_wbuf_chr(o, '+');
            ml_wbuf_hex(o, f->offset);
        }
    }
    ml_wbuf_chr(o, ')');
    text_end(o);
}

/* Each address expands into its inline chain; mallard's own frames and
 * libc's start-up frames are left out (the JSON report keeps them). */
static void text_stack(struct ml_wbuf *o, ml_stack_id id)
{
    unsigned n = 0;
    const uintptr_t *frames = id ? ml_stack_frames(id, &n) : NULL;
    unsigned shown = 0;
    for (unsigned i = 0; frames && i < n; i++) {
        /* below main by its symbol alone: libc's DWARF stays closed */
        if (!ml_frame_addr_shown(frames[i]))
            continue;
        struct ml_frame chain[ML_INLINE_MAX];
        unsigned k = ml_symbolize_chain(frames[i], chain, ML_INLINE_MAX);
        for (unsigned j = 0; j < k; j++)
            if (ml_frame_shown(&chain[j]))
                text_frame(o, shown++, &chain[j]);
    }
    if (!shown) {
        text_begin(o);
        ml_wbuf_str(o, "    (no stack recorded)");
        text_end(o);
    }
}

static void text_suppressions(struct ml_wbuf *o, const struct ml_report *r);
static void text_partial(struct ml_wbuf *o, const struct ml_report *r);

static void text_exit(struct ml_wbuf *o, const struct ml_report *r)
{
    static const char *const signames[] = {
        [1] = "SIGHUP",   [2] = "SIGINT",   [3] = "SIGQUIT",  [4] = "SIGILL",   [5] = "SIGTRAP",
        [6] = "SIGABRT",  [7] = "SIGBUS",   [8] = "SIGFPE",   [9] = "SIGKILL",  [10] = "SIGUSR1",
        [11] = "SIGSEGV", [12] = "SIGUSR2", [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM",
        [24] = "SIGXCPU", [25] = "SIGXFSZ", [31] = "SIGSYS",
    };
    switch (r->exit_how) {
    case ML_EXIT_EXIT:
    case ML_EXIT__EXIT:
        ml_wbuf_str(o, r->exit_how == ML_EXIT_EXIT ? "exit(" : "_exit(");
        ml_wbuf_i64(o, r->exit_status);
        ml_wbuf_chr(o, ')');
        break;
    case ML_EXIT_EXEC:
        ml_wbuf_str(o, "exec");
        break;
    case ML_EXIT_LIVE:
        ml_wbuf_str(o, "still running (a live report)");
        break;
    case ML_EXIT_SIGNAL:
        ml_wbuf_str(o, "signal ");
        ml_wbuf_i64(o, r->exit_status);
        if (r->exit_status > 0 && (size_t)r->exit_status < sizeof signames / sizeof *signames &&
            signames[r->exit_status]) {
            ml_wbuf_str(o, " (");
            ml_wbuf_str(o, signames[r->exit_status]);
            ml_wbuf_chr(o, ')');
        }
        break;
    }
}

static void text_summary_row(struct ml_wbuf *o, const char *label, const struct ml_count *c)
{
    text_begin(o);
    ml_wbuf_str(o, label);
    text_count(o, c->bytes, c->blocks);
    text_end(o);
}

static void text_summary(struct ml_wbuf *o, const struct ml_report *r)
{
    text_begin(o);
    ml_wbuf_str(o, "mallard report for pid ");
    ml_wbuf_i64(o, r->pid);
    ml_wbuf_str(o, " (parent ");
    ml_wbuf_i64(o, r->ppid);
    ml_wbuf_str(o, "):");
    if (r->argv && r->argv[0]) {
        for (const char *const *a = r->argv; *a; a++) {
            ml_wbuf_chr(o, ' ');
            /* a newline in an argument (ruby -e 'script') would start a
             * line without the ==mallard== prefix: written as \n */
            for (const char *c = *a; *c; c++) {
                if (*c == '\n')
                    ml_wbuf_str(o, "\\n");
                else
                    ml_wbuf_chr(o, *c);
            }
        }
    } else if (r->exe) {
        ml_wbuf_chr(o, ' ');
        ml_wbuf_str(o, r->exe);
    }
    text_end(o);
    text_begin(o);
    ml_wbuf_str(o, "backend ");
    ml_wbuf_str(o, r->backend ? r->backend : "unknown");
    ml_wbuf_str(o, r->exit_how == ML_EXIT_LIVE ? ", program " : ", program ended by ");
    text_exit(o, r);
    text_end(o);
    text_partial(o, r);
    text_blank(o);
    text_begin(o);
    ml_wbuf_str(o, "LEAK SUMMARY:");
    text_end(o);
    text_summary_row(o, "   definitely lost: ", &r->definite);
    text_summary_row(o, "   indirectly lost: ", &r->indirect);
    text_summary_row(o, "   still reachable: ", &r->reachable);
    text_summary_row(o, "        suppressed: ", &r->suppressed);
    text_begin(o);
    ml_wbuf_str(o, "            errors: ");
    ml_wbuf_u64(o, r->nerrors);
    text_end(o);
    if (r->injected) {
        text_begin(o);
        ml_wbuf_str(o, " injected failures: ");
        ml_wbuf_u64(o, r->injected);
        ml_wbuf_str(o, r->inject_stack ? ", the first at:" : "");
        text_end(o);
        if (r->inject_stack)
            text_stack(o, r->inject_stack);
    }
    if (r->reachable.blocks && !r->show_reachable) {
        text_begin(o);
        ml_wbuf_str(o, "reachable blocks are counted, not listed (MALLARD_SHOW=all lists them)");
        text_end(o);
    }
    text_suppressions(o, r);
}

/* What a partial report lacks (report/pressure.h), where a reader sees it
 * first. */
static void text_partial(struct ml_wbuf *o, const struct ml_report *r)
{
    if (r->stopped_why) {
        text_begin(o);
        ml_wbuf_str(o, "PARTIAL REPORT: out of memory for tracer metadata (");
        ml_wbuf_str(o, r->stopped_why);
        ml_wbuf_str(o, "), tracing stopped after ");
        ml_wbuf_u64(o, r->allocs);
        ml_wbuf_str(o, " allocations; ");
        ml_wbuf_u64(o, r->untraced_allocs);
        ml_wbuf_str(o, " made after that were not traced");
        text_end(o);
        text_begin(o);
        ml_wbuf_str(
            o, "PARTIAL REPORT: their leaks and errors are not listed, and a traced block that only they "
               "point to counts as lost");
        text_end(o);
    }
    for (size_t i = 0; i < r->nshort; i++) {
        text_begin(o);
        ml_wbuf_str(o, "PARTIAL REPORT: not enough memory at report time for ");
        ml_wbuf_str(o, r->short_of[i]);
        text_end(o);
    }
}

/* LSan's "Suppressions used:" table for the MALLARD_SUPPRESSIONS patterns,
 * then the ones that matched nothing, so that a dead line shows. */
static void text_suppressions(struct ml_wbuf *o, const struct ml_report *r)
{
    size_t used = 0;
    for (size_t i = 0; i < r->nsupps; i++)
        used += r->supps[i].blocks != 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0 ? !used : used == r->nsupps)
            continue;
        text_begin(o);
        ml_wbuf_str(o, pass == 0 ? "Suppressions used:" : "Suppressions not used:");
        text_end(o);
        if (pass == 0) {
            text_begin(o);
            ml_wbuf_str(o, "  count      bytes template");
            text_end(o);
        }
        for (size_t i = 0; i < r->nsupps; i++) {
            const struct ml_supp_use *u = &r->supps[i];
            if ((u->blocks != 0) != (pass == 0))
                continue;
            char cells[64];
            text_begin(o);
            if (pass == 0) {
                ml_fmt(cells, sizeof cells, "%7lu %10lu ", (unsigned long)u->blocks, (unsigned long)u->bytes);
                ml_wbuf_str(o, cells);
                ml_wbuf_str(o, u->pattern);
            } else {
                ml_wbuf_str(o, "  leak:");
                ml_wbuf_str(o, u->pattern);
            }
            text_end(o);
        }
    }
}

static void text_groups(struct ml_wbuf *o, const struct ml_report *r)
{
    unsigned rank = 0;
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct ml_leak_group *g = &r->groups[i];
        if (!r->show_reachable &&
            (g->kind == ML_KIND_REACHABLE || (g->kind == ML_KIND_INDIRECT && g->nowners)))
            continue;
        text_blank(o);
        text_begin(o);
        ml_wbuf_chr(o, '[');
        ml_wbuf_u64(o, ++rank);
        ml_wbuf_chr(o, ']');
        if (g->kind == ML_KIND_REACHABLE) {
            ml_wbuf_str(o, " still reachable: ");
        } else {
            ml_wbuf_chr(o, ' ');
            ml_wbuf_str(o, ml_report_kind_name(g->kind));
            ml_wbuf_str(o, " leak of ");
        }
        if (g->kind == ML_KIND_DEFINITE && g->indirect_bytes) {
            ml_wbuf_u64(o, g->bytes + g->indirect_bytes);
            ml_wbuf_str(o, " (");
            ml_wbuf_u64(o, g->bytes);
            ml_wbuf_str(o, " direct, ");
            ml_wbuf_u64(o, g->indirect_bytes);
            ml_wbuf_str(o, " indirect) bytes in ");
            ml_wbuf_u64(o, g->blocks);
            ml_wbuf_str(o, g->blocks == 1 ? " block" : " blocks");
        } else {
            text_count(o, g->bytes, g->blocks);
        }
        if (g->tag) {
            ml_wbuf_str(o, " [tag ");
            ml_wbuf_str(o, g->tag);
            ml_wbuf_chr(o, ']');
        }
        text_end(o);
        text_stack(o, g->stack);
    }
}

static const char *const alloc_fn[] = {"malloc", "new", "new[]"};
static const char *const free_fn[] = {"free", "delete", "delete[]"};

/* "  0x1234 is 16 bytes inside a 96-byte block allocated at:" */
static void text_block(struct ml_wbuf *o, const struct ml_error *e)
{
    text_begin(o);
    ml_wbuf_str(o, "  ");
    ml_wbuf_hex(o, e->address);
    ml_wbuf_str(o, " is ");
    uint64_t dist;
    const char *where;
    if (e->offset < 0) {
        dist = (uint64_t)-e->offset;
        where = " before a ";
    } else if ((uint64_t)e->offset >= e->bytes && e->bytes) {
        dist = (uint64_t)e->offset - e->bytes;
        where = " after a ";
    } else {
        dist = (uint64_t)e->offset;
        where = " inside a ";
    }
    ml_wbuf_u64(o, dist);
    ml_wbuf_str(o, dist == 1 ? " byte" : " bytes");
    ml_wbuf_str(o, where);
    ml_wbuf_u64(o, e->bytes);
    ml_wbuf_str(o, "-byte block allocated at:");
    text_end(o);
}

static void text_error_title(struct ml_wbuf *o, const struct ml_error *e)
{
    static const char *const titles[] = {
        [ML_ERR_DOUBLE_FREE] = "double free of ",         [ML_ERR_INVALID_FREE] = "invalid free of ",
        [ML_ERR_INVALID_REALLOC] = "invalid realloc of ", [ML_ERR_OVERFLOW] = "heap overflow at ",
        [ML_ERR_USE_AFTER_FREE] = "use after free of ",   [ML_ERR_MISMATCH] = "mismatched free of ",
    };
    if (e->access) {
        ml_wbuf_str(o, e->access == ML_ACCESS_WRITE ? "invalid write at " : "invalid read at ");
        ml_wbuf_hex(o, e->address);
        ml_wbuf_str(o, e->kind == ML_ERR_USE_AFTER_FREE ? " (use after free)" : " (heap overflow)");
    } else if (e->kind == ML_ERR_OVERFLOW) {
        ml_wbuf_str(o, "heap overflow: the bytes next to block ");
        ml_wbuf_hex(o, e->block);
        ml_wbuf_str(o, " (");
        ml_wbuf_u64(o, e->bytes);
        ml_wbuf_str(o, " bytes) were overwritten, found when it was freed");
    } else {
        ml_wbuf_str(o, (unsigned)e->kind < sizeof titles / sizeof *titles ? titles[e->kind] : "error at ");
        ml_wbuf_hex(o, e->address);
        if (e->bytes && (!e->block || e->offset == 0)) {
            ml_wbuf_str(o, " (");
            ml_wbuf_u64(o, e->bytes);
            ml_wbuf_str(o, e->bytes == 1 ? " byte)" : " bytes)");
        }
        if (e->kind == ML_ERR_MISMATCH && e->alloc_kind < 3 && e->free_kind < 3) {
            ml_wbuf_str(o, ": allocated by ");
            ml_wbuf_str(o, alloc_fn[e->alloc_kind]);
            ml_wbuf_str(o, ", freed by ");
            ml_wbuf_str(o, free_fn[e->free_kind]);
        }
    }
    if (e->tid) {
        ml_wbuf_str(o, " in thread ");
        ml_wbuf_u64(o, (uint64_t)e->tid);
        if (e->thread[0]) {
            char name[sizeof e->thread + 1];
            memcpy(name, e->thread, sizeof e->thread);
            name[sizeof e->thread] = '\0';
            ml_wbuf_str(o, " (");
            ml_wbuf_str(o, name);
            ml_wbuf_chr(o, ')');
        }
    }
}

static void text_errors(struct ml_wbuf *o, const struct ml_report *r)
{
    for (size_t i = 0; i < r->nerrors_listed; i++) {
        const struct ml_error *e = &r->errors[i];
        text_blank(o);
        text_begin(o);
        text_error_title(o, e);
        text_end(o);
        text_stack(o, e->stack);
        int context = e->block && (e->offset != 0 || e->access);
        if (context) {
            text_block(o, e);
            text_stack(o, e->alloc_stack);
        }
        if (e->free_stack) {
            text_begin(o);
            ml_wbuf_str(o, e->kind == ML_ERR_DOUBLE_FREE ? "  first freed by:" : "  freed by:");
            text_end(o);
            text_stack(o, e->free_stack);
        }
        if (e->alloc_stack && !context) {
            text_begin(o);
            ml_wbuf_str(o, "  allocated by:");
            text_end(o);
            text_stack(o, e->alloc_stack);
        }
    }
    if (r->nerrors > r->nerrors_listed) {
        text_blank(o);
        text_begin(o);
        ml_wbuf_u64(o, r->nerrors - r->nerrors_listed);
        ml_wbuf_str(o, " more errors not listed");
        text_end(o);
    }
}

static void text_tags(struct ml_wbuf *o, const struct ml_report *r)
{
    if (!r->ntags)
        return;
    text_blank(o);
    text_begin(o);
    ml_wbuf_str(
        o, "tag                        allocs       frees bytes allocated   current bytes      peak bytes");
    text_end(o);
    for (size_t i = 0; i < r->ntags; i++) {
        const struct ml_tag_stats *t = &r->tags[i];
        const char *name = t->tag ? t->tag : "(untagged)";
        size_t len = strlen(name);
        text_begin(o);
        ml_wbuf_str(o, name);
        for (; len < 20; len++)
            ml_wbuf_chr(o, ' ');
        if (t->by_stack) {
            /* given at report time from the stacks: only the live blocks */
            ml_wbuf_str(o, "            -           -               -");
            ml_wbuf_u64_w(o, t->current_bytes, 16);
            ml_wbuf_str(o, "               -  (tagged by stack: ");
            ml_wbuf_u64(o, t->blocks);
            ml_wbuf_str(o, t->blocks == 1 ? " live block)" : " live blocks)");
        } else {
            ml_wbuf_u64_w(o, t->allocs, 13);
            ml_wbuf_u64_w(o, t->frees, 12);
            ml_wbuf_u64_w(o, t->bytes_allocated, 16);
            ml_wbuf_u64_w(o, t->current_bytes, 16);
            ml_wbuf_u64_w(o, t->peak_bytes, 16);
        }
        text_end(o);
    }
}

int ml_write_text(int fd, const struct ml_report *r)
{
    struct ml_wbuf o;
    ml_wbuf_init(&o, fd);
    text_summary(&o, r);
    text_groups(&o, r);
    text_errors(&o, r);
    text_tags(&o, r);
    text_blank(&o);
    text_begin(&o);
    ml_wbuf_str(&o, "stats: ");
    ml_wbuf_u64(&o, r->allocs);
    ml_wbuf_str(&o, " allocs, ");
    ml_wbuf_u64(&o, r->frees);
    ml_wbuf_str(&o, " frees, ");
    ml_wbuf_u64(&o, r->bytes_allocated);
    ml_wbuf_str(&o, " bytes allocated, peak ");
    ml_wbuf_u64(&o, r->peak_bytes);
    ml_wbuf_str(&o, " bytes in use, ");
    ml_wbuf_u64(&o, r->current_bytes);
    ml_wbuf_str(&o, " bytes in use at the end");
    text_end(&o);
    return ml_wbuf_done(&o);
}
