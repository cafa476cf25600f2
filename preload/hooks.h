/* preload/hooks.h: the exit, exec and dlopen hooks (hooks.c). */
#ifndef ML_PRELOAD_HOOKS_H
#define ML_PRELOAD_HOOKS_H

/* From mallard's constructor, once READY: when tracing, starts the trace
 * layer and installs the exit handler and the fatal-signal handlers. */
void ml_hooks_start(void);

/* The mode dlopen really gets (RTLD_DEEPBIND dropped); called from the
 * assembly dlopen wrapper in hooks.c, so it needs external linkage. */
int ml_dlopen_mode(const char *file, int mode);

#endif
