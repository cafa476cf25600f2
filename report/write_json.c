/* report/write_json.c: the JSON report.
 *
 * The version-1 contract of docs/report.schema.json.  Frames
 * carry, beyond the contract, "path" (the full source path; "file" is its
 * basename) and "offset" (the return address minus the object's load bias).
 * Strings are escaped per RFC 8259; bytes >= 0x80 pass through untouched.
 *
 * Output goes through wbuf.c: no stdio, no malloc.
 */
#include "wbuf.h"

#include <string.h>

/* A key (with the separator before it) and its unsigned value. */
static void json_u64(struct ml_wbuf *o, const char *key, uint64_t v)
{
    ml_wbuf_str(o, key);
    ml_wbuf_u64(o, v);
}

static void json_str(struct ml_wbuf *o, const char *s)
{
    if (!s) {
        ml_wbuf_str(o, "null");
        return;
    }
    ml_wbuf_chr(o, '"');
    const char *run = s; /* bytes that need no escape go out in one piece */
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ml_wbuf_mem(o, run, (size_t)(s - run));
        run = s + 1;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            ml_wbuf_mem(o, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]};
            ml_wbuf_mem(o, esc, 6);
        }
    }
    ml_wbuf_mem(o, run, (size_t)(s - run));
    ml_wbuf_chr(o, '"');
}

static void json_hex(struct ml_wbuf *o, uint64_t v)
{
    ml_wbuf_chr(o, '"');
    ml_wbuf_hex(o, v);
    ml_wbuf_chr(o, '"');
}

static void json_count(struct ml_wbuf *o, const char *key, const struct ml_count *c)
{
    ml_wbuf_str(o, "    \"");
    ml_wbuf_str(o, key);
    json_u64(o, "\": {\"bytes\": ", c->bytes);
    json_u64(o, ", \"blocks\": ", c->blocks);
    ml_wbuf_str(o, "},\n");
}

static void json_frame(struct ml_wbuf *o, const struct ml_frame *f)
{
    ml_wbuf_str(o, "{\"addr\": ");
    json_hex(o, f->addr);
    ml_wbuf_str(o, ", \"function\": ");
    json_str(o, f->function);
    ml_wbuf_str(o, ", \"file\": ");
    json_str(o, f->file ? ml_report_basename(f->file) : NULL);
    ml_wbuf_str(o, ", \"line\": ");
    if (f->file)
        ml_wbuf_i64(o, f->line);
    else
        ml_wbuf_str(o, "null");
    ml_wbuf_str(o, ", \"object\": ");
    json_str(o, f->object);
    ml_wbuf_str(o, ", \"path\": ");
    json_str(o, f->file);
    ml_wbuf_str(o, ", \"offset\": ");
    json_hex(o, f->offset);
    ml_wbuf_str(o, ", \"mangled\": ");
    json_str(o, f->mangled);
    ml_wbuf_str(o, f->inlined ? ", \"inlined\": true}" : ", \"inlined\": false}");
}

/* A stack as an array of frames, each address expanded into its inline
 * chain (the frames of one chain share addr); indent is the frames'
 * indentation. */
static void json_stack(struct ml_wbuf *o, ml_stack_id id, const char *indent)
{
    unsigned n = 0;
    const uintptr_t *frames = id ? ml_stack_frames(id, &n) : NULL;
    if (!frames || !n) {
        ml_wbuf_str(o, "[]");
        return;
    }
    ml_wbuf_str(o, "[\n");
    for (unsigned i = 0; i < n; i++) {
        struct ml_frame chain[ML_INLINE_MAX];
        unsigned k = ml_symbolize_chain(frames[i], chain, ML_INLINE_MAX);
        for (unsigned j = 0; j < k; j++) {
            ml_wbuf_str(o, indent);
            json_frame(o, &chain[j]);
            ml_wbuf_str(o, i + 1 < n || j + 1 < k ? ",\n" : "\n");
        }
    }
    /* close at the indentation of the key that holds the array */
    ml_wbuf_mem(o, indent, strlen(indent) > 2 ? strlen(indent) - 2 : 0);
    ml_wbuf_chr(o, ']');
}

/* The fields that place an error: its thread, the block it concerns, the
 * allocation and deallocation families, and a fault's access. */
static void json_error_context(struct ml_wbuf *o, const struct ml_error *e)
{
    static const char *const alloc_fn[] = {"malloc", "new", "new[]"};
    static const char *const free_fn[] = {"free", "delete", "delete[]"};
    char name[sizeof e->thread + 1];
    memcpy(name, e->thread, sizeof e->thread);
    name[sizeof e->thread] = '\0';
    ml_wbuf_str(o, ",\n     \"thread\": {\"tid\": ");
    ml_wbuf_i64(o, e->tid);
    ml_wbuf_str(o, ", \"name\": ");
    json_str(o, name[0] ? name : NULL);
    ml_wbuf_str(o, "}, \"block\": ");
    if (e->block) {
        ml_wbuf_str(o, "{\"address\": ");
        json_hex(o, e->block);
        json_u64(o, ", \"bytes\": ", e->bytes);
        ml_wbuf_str(o, ", \"offset\": ");
        ml_wbuf_i64(o, e->offset);
        ml_wbuf_str(o, ", \"allocated_by\": ");
        json_str(o, e->alloc_kind < 3 ? alloc_fn[e->alloc_kind] : NULL);
        ml_wbuf_chr(o, '}');
    } else {
        ml_wbuf_str(o, "null");
    }
    ml_wbuf_str(o, ", \"freed_by\": ");
    int is_free =
        e->kind == ML_ERR_MISMATCH || e->kind == ML_ERR_DOUBLE_FREE || e->kind == ML_ERR_INVALID_FREE;
    json_str(o, is_free && e->free_kind < 3 ? free_fn[e->free_kind] : NULL);
    ml_wbuf_str(o, ", \"access\": ");
    json_str(o, e->access == ML_ACCESS_WRITE ? "write" : e->access == ML_ACCESS_READ ? "read" : NULL);
}

/* The process, how it ended, the summary and the suppressions used. */
static void json_process(struct ml_wbuf *o, const struct ml_report *r)
{
    ml_wbuf_str(o, "{\n  \"mallard\": 1,\n  \"pid\": ");
    ml_wbuf_i64(o, r->pid);
    ml_wbuf_str(o, ", \"ppid\": ");
    ml_wbuf_i64(o, r->ppid);
    ml_wbuf_str(o, ", \"exe\": ");
    json_str(o, r->exe ? r->exe : "");
    ml_wbuf_str(o, ", \"argv\": [");
    for (size_t i = 0; r->argv && r->argv[i]; i++) {
        if (i)
            ml_wbuf_str(o, ", ");
        json_str(o, r->argv[i]);
    }
    json_u64(o, "],\n  \"injected_failures\": ", r->injected);
    ml_wbuf_str(o, ",\n  \"first_injected_failure\": ");
    json_stack(o, r->inject_stack, "   ");
    if (r->stopped_why || r->nshort) {
        /* only in a partial report (report/pressure.h) */
        ml_wbuf_str(o, ",\n  \"partial\": {\"tracing_stopped\": ");
        json_str(o, r->stopped_why);
        json_u64(o, ", \"traced_allocations\": ", r->allocs);
        json_u64(o, ", \"untraced_allocations\": ", r->untraced_allocs);
        ml_wbuf_str(o, ", \"report_short_of\": [");
        for (size_t i = 0; i < r->nshort; i++) {
            if (i)
                ml_wbuf_str(o, ", ");
            json_str(o, r->short_of[i]);
        }
        ml_wbuf_str(o, "]}");
    }
    ml_wbuf_str(o, ",\n  \"backend\": ");
    json_str(o, r->backend ? r->backend : "");
    ml_wbuf_str(o, ",\n  \"exit\": {\"how\": ");
    json_str(o, ml_report_exit_name(r->exit_how));
    ml_wbuf_str(o, ", \"status\": ");
    ml_wbuf_i64(o, r->exit_status);
    ml_wbuf_str(o, "},\n  \"summary\": {\n");
    json_count(o, "definite", &r->definite);
    json_count(o, "indirect", &r->indirect);
    json_count(o, "reachable", &r->reachable);
    json_count(o, "suppressed", &r->suppressed);
    json_u64(o, "    \"errors\": ", r->nerrors);
    /* MALLARD_SHOW=leaks (the default) lists the leak groups only; the
     * reachable ones are counted here, and listed with MALLARD_SHOW=all. */
    size_t nreach = 0;
    for (size_t i = 0; i < r->ngroups; i++)
        nreach += r->groups[i].kind == ML_KIND_REACHABLE;
    json_u64(o, "\n  },\n  \"reachable_groups\": ", nreach);
    ml_wbuf_str(o, ", \"reachable_listed\": ");
    ml_wbuf_str(o, r->show_reachable ? "true" : "false");
    /* each MALLARD_SUPPRESSIONS pattern with what it suppressed; 0: unused */
    ml_wbuf_str(o, ",\n  \"suppressions\": [");
    for (size_t i = 0; i < r->nsupps; i++) {
        ml_wbuf_str(o, i ? ", {\"pattern\": " : "{\"pattern\": ");
        json_str(o, r->supps[i].pattern);
        json_u64(o, ", \"blocks\": ", r->supps[i].blocks);
        json_u64(o, ", \"bytes\": ", r->supps[i].bytes);
        ml_wbuf_chr(o, '}');
    }
    ml_wbuf_str(o, "],\n  \"leaks\": [");
}

/* The leak groups (reachable ones with MALLARD_SHOW=all). */
static void json_leaks(struct ml_wbuf *o, const struct ml_report *r)
{
    size_t listed = 0;
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct ml_leak_group *g = &r->groups[i];
        if (g->kind == ML_KIND_REACHABLE && !r->show_reachable)
            continue;
        ml_wbuf_str(o, listed++ ? ",\n    {\"kind\": " : "\n    {\"kind\": ");
        json_str(o, ml_report_kind_name(g->kind));
        json_u64(o, ", \"bytes\": ", g->bytes);
        json_u64(o, ", \"blocks\": ", g->blocks);
        ml_wbuf_str(o, ", \"tag\": ");
        json_str(o, g->tag);
        if (g->kind == ML_KIND_DEFINITE) {
            json_u64(o, ",\n     \"indirect_bytes\": ", g->indirect_bytes);
            json_u64(o, ", \"indirect_blocks\": ", g->indirect_blocks);
        } else if (g->kind == ML_KIND_INDIRECT) {
            ml_wbuf_str(o, ",\n     \"owners\": [");
            for (uint32_t k = 0; k < g->nowners; k++) {
                if (k)
                    ml_wbuf_str(o, ", ");
                ml_wbuf_u64(o, g->owners[k]);
            }
            ml_wbuf_chr(o, ']');
        }
        ml_wbuf_str(o, ",\n     \"stack\": ");
        json_stack(o, g->stack, "       ");
        ml_wbuf_chr(o, '}');
    }
    ml_wbuf_str(o, listed ? "\n  ],\n  \"errors\": [" : "],\n  \"errors\": [");
}

/* The bad frees and faults, each with its stacks. */
static void json_errors(struct ml_wbuf *o, const struct ml_report *r)
{
    for (size_t i = 0; i < r->nerrors_listed; i++) {
        const struct ml_error *e = &r->errors[i];
        ml_wbuf_str(o, i ? ",\n    {\"kind\": " : "\n    {\"kind\": ");
        json_str(o, ml_report_error_name(e->kind));
        ml_wbuf_str(o, ", \"address\": ");
        json_hex(o, e->address);
        json_u64(o, ", \"bytes\": ", e->bytes);
        ml_wbuf_str(o, ",\n     \"stack\": ");
        json_stack(o, e->stack, "       ");
        ml_wbuf_str(o, ",\n     \"alloc_stack\": ");
        json_stack(o, e->alloc_stack, "       ");
        ml_wbuf_str(o, ",\n     \"free_stack\": ");
        json_stack(o, e->free_stack, "       ");
        json_error_context(o, e);
        ml_wbuf_chr(o, '}');
    }
    ml_wbuf_str(o, r->nerrors_listed ? "\n  ],\n  \"tags\": [" : "],\n  \"tags\": [");
}

/* The per-tag table. */
static void json_tags(struct ml_wbuf *o, const struct ml_report *r)
{
    for (size_t i = 0; i < r->ntags; i++) {
        const struct ml_tag_stats *t = &r->tags[i];
        ml_wbuf_str(o, i ? ",\n    {\"tag\": " : "\n    {\"tag\": ");
        json_str(o, t->tag ? t->tag : "");
        if (t->by_stack) {
            /* given at report time from the stacks: only the live blocks */
            json_u64(o, ", \"allocs\": null, \"current_bytes\": ", t->current_bytes);
            ml_wbuf_str(
                o, ", \"peak_bytes\": null, \"frees\": null, \"bytes_allocated\": null, \"by_stack\": true"
                   ", \"blocks\": ");
            ml_wbuf_u64(o, t->blocks);
        } else {
            json_u64(o, ", \"allocs\": ", t->allocs);
            json_u64(o, ", \"current_bytes\": ", t->current_bytes);
            json_u64(o, ", \"peak_bytes\": ", t->peak_bytes);
            json_u64(o, ", \"frees\": ", t->frees);
            json_u64(o, ", \"bytes_allocated\": ", t->bytes_allocated);
            ml_wbuf_str(o, ", \"by_stack\": false");
        }
        ml_wbuf_chr(o, '}');
    }
}

/* The totals; closes the document. */
static void json_stats(struct ml_wbuf *o, const struct ml_report *r)
{
    ml_wbuf_str(o, r->ntags ? "\n  ],\n  \"stats\": {\"allocs\": " : "],\n  \"stats\": {\"allocs\": ");
    ml_wbuf_u64(o, r->allocs);
    json_u64(o, ", \"frees\": ", r->frees);
    json_u64(o, ", \"bytes_allocated\": ", r->bytes_allocated);
    json_u64(o, ", \"peak_bytes\": ", r->peak_bytes);
    json_u64(o, ", \"current_bytes\": ", r->current_bytes);
    ml_wbuf_str(o, "}\n}\n");
}

int ml_write_json(int fd, const struct ml_report *r)
{
    struct ml_wbuf o;
    ml_wbuf_init(&o, fd);
    json_process(&o, r);
    json_leaks(&o, r);
    json_errors(&o, r);
    json_tags(&o, r);
    json_stats(&o, r);
    return ml_wbuf_done(&o);
}
