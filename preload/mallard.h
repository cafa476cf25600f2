/* mallard.h: the public API of libmallard.so.
 *
 * Tags group allocations for the report's per-tag statistics and leak
 * groups.  The tag is per thread: every block the calling thread allocates
 * after mallard_tag("parser") carries "parser" until the tag changes.
 *
 * Call these through weak references (or dlsym) so the program still runs
 * without mallard:
 *     extern const char *mallard_tag(const char *) __attribute__((weak));
 *     if (mallard_tag) mallard_tag("parser");
 */
#ifndef MALLARD_H
#define MALLARD_H

#ifdef __cplusplus
extern "C" {
#endif

/* Sets the calling thread's tag (copied; NULL clears it) and returns the
 * previous one (NULL when none).  Without tracing (MALLARD_TRACE=0) it does
 * nothing and returns NULL. */
const char *mallard_tag(const char *name);

#ifdef __cplusplus
}
#endif

#endif
