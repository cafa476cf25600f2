/* core/options.h: the MALLARD_* option table.
 *
 * One row per variable: name, type, default, accepted values and a one-line
 * doc.  ml_options_parse reads the table once, straight from an environment
 * array, without allocating.  The same rows feed `mallard --help`, the
 * README table and the man page (see preload/cli.c).  The backend names are
 * not written here: MALLARD_BACKEND accepts the names of the registry
 * (core/backend.c), so adding a backend adds its name everywhere.
 */
#ifndef ML_CORE_OPTIONS_H
#define ML_CORE_OPTIONS_H

#include <stddef.h>

#define ML_PATH_MAX 4096

enum ml_page_guard { ML_GUARD_AFTER, ML_GUARD_BEFORE };

struct ml_options {
    int backend;            /* index into ml_backends[] */
    size_t arena_limit;     /* bytes; 0 means no limit */
    int page_guard;         /* enum ml_page_guard */
    int page_align;         /* 1: byte-exact placement (no 16-byte rounding) */
    size_t page_quarantine; /* bytes of freed blocks kept PROT_NONE */
    int trace;              /* 1: the trace layer wraps the backend */
    int depth;              /* frames per allocation stack */
    int on_error;           /* enum ml_on_error */
    int format;             /* enum ml_format */
    int show;               /* enum ml_show */
    int exitcode;           /* 0: leave the exit status alone */
    /* The path-valued options (ML_OPT_PATH): never NULL once parsed; each
     * points at its row's default or at the value it was set from (see
     * ml_options_parse), under ML_PATH_MAX bytes. */
    const char *report;       /* "" : stderr; %p becomes the pid */
    const char *suppressions; /* "" : built-in list only */
    const char *children;     /* MALLARD_CHILDREN: "yes", "no" or patterns (preload/children.c) */
    int summary;              /* enum ml_summary */
    int report_signal;        /* 0: off, 1: SIGUSR1, 2: SIGUSR2 */
    int top_pid;              /* the process the mallard command started; 0: unknown */
    const char *tags;         /* MALLARD_TAGS: PATTERN=tag,... (report/finish.c) */
    int stats;                /* 1: print allocation statistics at exit (report/stats.c) */
    size_t fail_nth;          /* MALLARD_FAIL: the Nth allocation fails; 0: off */
    double fail_rate;         /* MALLARD_FAIL_RATE: probability 0..1 each allocation fails */
    size_t seed;              /* MALLARD_SEED: seed of MALLARD_FAIL_RATE's generator */
    size_t limit;             /* MALLARD_LIMIT: live-bytes budget; 0: none */
};

enum ml_on_error { ML_ON_ERROR_CONTINUE, ML_ON_ERROR_ABORT };
enum ml_format { ML_FORMAT_TEXT, ML_FORMAT_JSON };
enum ml_show { ML_SHOW_LEAKS, ML_SHOW_ALL };
enum ml_summary { ML_SUMMARY_AUTO, ML_SUMMARY_NONE, ML_SUMMARY_ALL };

/* ML_OPT_BACKEND: a name from the backend registry, stored as its index. */
enum ml_opt_type {
    ML_OPT_ENUM,
    ML_OPT_BOOL,
    ML_OPT_SIZE,
    ML_OPT_INT,
    ML_OPT_PATH,
    ML_OPT_BACKEND,
    ML_OPT_RATE
};

struct ml_option {
    const char *name; /* the environment variable */
    enum ml_opt_type type;
    const char *def;      /* default, as a user would write it */
    const char *accepted; /* accepted values, '|'-separated for ML_OPT_ENUM; NULL for ML_OPT_BACKEND
                             (ml_option_accepted writes them) */
    const char *doc;      /* one line */
    size_t offset;        /* field in struct ml_options */
    long min, max;        /* ML_OPT_INT bounds */
};

extern const struct ml_option ml_option_table[];
extern const size_t ml_option_count;

/* The accepted-values text of row, as --help, the README table and the
 * warnings show it: row->accepted, or for ML_OPT_BACKEND the registry's
 * names joined by '|' into buf (cap bytes).  Allocates nothing. */
const char *ml_option_accepted(const struct ml_option *row, char *buf, size_t cap);

/* Fills *o with the defaults, then applies every MALLARD_* entry of envp.
 * A bad value gets one stderr line naming the variable and the accepted
 * values (when warn), and the default stays.  Allocates nothing and writes
 * nothing but *o: a path-valued field points into envp's strings (or at
 * the table's default), so envp must outlive o, or ml_options_keep must
 * copy them first. */
void ml_options_parse(struct ml_options *o, char *const *envp, int warn);

/* Copies the path-valued fields that were set from a value (not left at
 * their default) into pool, packed, and points them at the copies, so that
 * o no longer depends on the strings it was parsed from (a program may
 * overwrite its environment: setproctitle).  A process that sets none
 * writes no byte of pool.  With cap >= ML_OPT_POOL_SIZE every value fits;
 * one that does not keeps pointing at its source. */
void ml_options_keep(struct ml_options *o, char *pool, size_t cap);
#define ML_OPT_POOL_SIZE (4 * ML_PATH_MAX) /* the ML_OPT_PATH rows, each under ML_PATH_MAX */

/* Applies one value to its field; returns 0, or -1 (field unchanged) when
 * the value is not one the row accepts.  A path-valued field then points at
 * value itself.  The mallard command checks its options with it. */
int ml_option_set(struct ml_options *o, const struct ml_option *row, const char *value);

/* Parses "123", "64K", "10M", "2G" into bytes; returns 0 on success. */
int ml_parse_size(const char *s, size_t *out);

#endif
