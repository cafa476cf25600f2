/* report/suppress.h: which leaked stacks are not reported.
 *
 * Patterns come from a built-in list (one-time allocations of ld.so, libc
 * and libstdc++ no program can free) and from the MALLARD_SUPPRESSIONS file
 * (lines "leak:PATTERN", as LSan writes them).  A stack is suppressed when a
 * pattern matches any string of any of its frames.  The built-in patterns
 * see each frame's symbol-table name and object (they name out-of-line
 * functions); the file's see every frame of each inline chain, its source
 * file included.
 */
#ifndef ML_REPORT_SUPPRESS_H
#define ML_REPORT_SUPPRESS_H

#include "report.h"

/* Loads the built-in list and the file at path (NULL or "": none); once per
 * report, from the exit path.  Problems with the file go to stderr. */
void ml_supp_load(const char *path);

/* One pattern against one string, LSan's rule: '*' matches any run of
 * characters, a leading '^' anchors the pattern at the start of s and a '$'
 * at the end (what follows a '$' is ignored, as LSan does); otherwise it may
 * match anywhere in s.  So "other*$" matches "other_leaker", "$" matches
 * every name.  A NULL or empty s matches nothing.  Linear time. */
int ml_supp_match(const char *pat, const char *s);

/* Whether a loaded pattern matches a frame of the stack: 0, or the first
 * matching pattern's number.  Stack 0 (taken before tracing could
 * capture: ld.so/libc start-up) counts as suppressed: ML_SUPP_NO_STACK. */
#define ML_SUPP_NO_STACK 0x7fffffff
int ml_supp_stack(ml_stack_id id);

/* Counts a block of bytes against pattern number which (as returned
 * above); the report lists each file pattern's use, LSan's "Suppressions
 * used", and the unused ones. */
void ml_supp_count(int which, uint64_t bytes);
/* The patterns from the file, in file order, with their use. */
size_t ml_supp_user(const struct ml_supp_use **out);
/* Zeroes the counts (before each live report). */
void ml_supp_reset_counts(void);

#endif
