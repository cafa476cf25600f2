/* report/livesort.h: sorting the exit report's live blocks (livesort.c). */
#ifndef ML_REPORT_LIVESORT_H
#define ML_REPORT_LIVESORT_H

#include <stddef.h>

#include "report.h"

/* Sorts a[0..n) by addr, ascending; the addresses are distinct.  The
 * other fields travel with their block.  Work space from the meta heap
 * (none needed: without it the sort is slower, never wrong). */
void ml_live_sort(struct ml_live *a, size_t n);

#endif
