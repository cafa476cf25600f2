/* preload/children.h: MALLARD_CHILDREN, which processes of a tree are
 * traced; see children.c. */
#ifndef ML_PRELOAD_CHILDREN_H
#define ML_PRELOAD_CHILDREN_H

#include <stddef.h>

#include "../core/options.h"

enum { ML_CHILDREN_YES, ML_CHILDREN_NO, ML_CHILDREN_PATTERNS };

int ml_children_mode(const struct ml_options *o);

/* 1 when program (a path or a name) matches one of the comma-separated
 * '*' patterns: against the path for a pattern holding a '/', else
 * against the name. */
int ml_children_match(const char *patterns, const char *program);

/* While booting, right after the options are read: a process that is not
 * to be traced gets the system backend and no tracing. */
void ml_children_boot(struct ml_options *o);
/* From mallard's constructor (environ exists by then): an untraced process
 * under MALLARD_CHILDREN=no takes mallard out of its own LD_PRELOAD. */
void ml_children_ctor(void);

/* 1 when an exec from this process must take mallard out of LD_PRELOAD. */
int ml_children_exec_strips(void);

/* Writes "LD_PRELOAD=..." without mallard's entries into out; returns its
 * length, or 0 when nothing is left (drop the variable). */
size_t ml_children_strip(const char *entry, char *out, size_t cap);

/* envp, or a copy in space (nspace pointers) whose LD_PRELOAD (rewritten
 * into buf) no longer names mallard. */
char *const *ml_children_env(char *const *envp, char **space, size_t nspace, char *buf, size_t cap);

#endif
