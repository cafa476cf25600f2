/* preload/signals.h: reports on termination signals and on demand; see
 * signals.c. */
#ifndef ML_PRELOAD_SIGNALS_H
#define ML_PRELOAD_SIGNALS_H

/* From mallard's constructor, when tracing. */
void ml_signals_start(void);

#endif
