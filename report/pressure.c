/* report/pressure.c: stopping the tracer when its memory runs out.  See
 * pressure.h. */
#include "pressure.h"

#include "../core/fmt.h"

int ml_tr_stopped;
uint64_t ml_tr_untraced;
static const char *stopped_why;

#define SHORT_MAX 8
static const char *shortfalls[SHORT_MAX];
static size_t nshort;

void ml_tr_degrade(const char *what)
{
    if (__atomic_load_n(&ml_tr_stopped, __ATOMIC_RELAXED) ||
        __atomic_exchange_n(&ml_tr_stopped, 1, __ATOMIC_ACQ_REL))
        return;
    __atomic_store_n(&stopped_why, what, __ATOMIC_RELEASE);
    ml_say("out of memory for tracer metadata (%s); tracing stopped, the report will be partial", what);
}

const char *ml_tr_stopped_why(void)
{
    if (!__atomic_load_n(&ml_tr_stopped, __ATOMIC_ACQUIRE))
        return NULL;
    const char *why = __atomic_load_n(&stopped_why, __ATOMIC_ACQUIRE);
    return why ? why : "metadata";
}

void ml_tr_report_short(const char *what)
{
    for (size_t i = 0; i < nshort; i++)
        if (shortfalls[i] == what)
            return;
    if (nshort < SHORT_MAX)
        shortfalls[nshort++] = what;
}

size_t ml_tr_report_shortfalls(const char *const **out)
{
    *out = shortfalls;
    return nshort;
}

void ml_tr_report_reset(void) { nshort = 0; }
