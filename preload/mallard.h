/* mallard.h: the public API of libmallard.so (see mallard(3)).
 *
 * Every function here is declared weak: a program that includes this
 * header builds without linking mallard, and runs without it.  Without
 * mallard each function's address is NULL, so test it before the call:
 *
 *     #include <mallard.h>
 *     if (mallard_tag)
 *         mallard_tag("parser");
 *
 * Under mallard (LD_PRELOAD=libmallard.so or the mallard command) the
 * calls reach the library.  With tracing off (MALLARD_TRACE=0) they do
 * nothing.
 */
#ifndef MALLARD_H
#define MALLARD_H

#ifndef MALLARD_API
#define MALLARD_API __attribute__((weak))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Tags group allocations for the report's per-tag statistics and leak
 * groups.  The tag is per thread: every block the calling thread allocates
 * after mallard_tag("parser") carries "parser" until the tag changes.
 * Sets the calling thread's tag (copied; NULL clears it) and returns the
 * previous one (NULL when none).  Without tracing it returns NULL. */
MALLARD_API const char *mallard_tag(const char *name);

/* Nested tags: mallard_tag_push sets the calling thread's tag and keeps
 * the one it replaces; mallard_tag_pop brings that back.  Pushes nest 64
 * deep (deeper ones still set the tag; their pops do not change it). */
MALLARD_API void mallard_tag_push(const char *name);
MALLARD_API void mallard_tag_pop(void);

/* Writes a report of the live process now (to stderr or MALLARD_REPORT,
 * as the exit report) and lets it go on: the leaks and the reachable
 * blocks so far.  The exit report is still written at the end.  Returns 1
 * when leaks or errors were found, 0 when none, -1 when nothing was written
 * (tracing off). */
MALLARD_API int mallard_report_now(void);

/* LeakSanitizer's interface (<sanitizer/lsan_interface.h>), so that code
 * written for LSan works under mallard. */

/* The final leak report, now; the exit report is not written again.  With
 * MALLARD_EXITCODE=N the process exits with N when leaks were found. */
MALLARD_API void __lsan_do_leak_check(void);
/* A report of the live process; returns nonzero when leaks were found.
 * May be called any number of times. */
MALLARD_API int __lsan_do_recoverable_leak_check(void);
/* The block that starts at p is never reported as a leak. */
MALLARD_API void __lsan_ignore_object(const void *p);
/* Blocks the calling thread allocates between __lsan_disable and the
 * matching __lsan_enable are never reported as leaks (calls nest). */
MALLARD_API void __lsan_disable(void);
MALLARD_API void __lsan_enable(void);

#ifdef __cplusplus
}
#endif

#endif
