/* report/path.h: the report file name from MALLARD_REPORT.
 *
 *   %p  the pid       %e  the executable's name (basename of /proc/self/exe)
 *   %n  a counter: the opener tries 1, 2, 3... until it creates a new file
 *   %%  a '%'
 *
 * A path with neither %p nor %n is shared by every process of a tree: each
 * one appends its whole report under an exclusive lock, so none is lost.
 */
#ifndef ML_REPORT_PATH_H
#define ML_REPORT_PATH_H

#include <stddef.h>

#define ML_PATH_HAS_PID 1
#define ML_PATH_HAS_COUNTER 2

/* Expands pattern into out (cap bytes) with counter value n.  Returns the
 * ML_PATH_HAS_* flags of the pattern, or -1 when out is too small. */
int ml_report_path(const char *pattern, int pid, const char *exe, unsigned n, char *out, size_t cap);

#endif
