/* report/dw.c: dlopen's libdw.so.1 for symbolize.c.  See dw.h. */
#define _GNU_SOURCE
#define ML_DW_NO_MACROS
#include <dlfcn.h>

#include "../core/fmt.h"
#include "dw.h"

struct ml_dw ml_dw;

static int state; /* 0: not tried, 1: loaded, -1: failed or refused */

void ml_dw_refuse(void)
{
    if (!state)
        state = -1;
}

int ml_dw_load(void)
{
    if (state)
        return state > 0 ? 0 : -1;
    state = -1;
    /* lazy: of the ~280 PLT slots of libdw, libelf and libz a report calls
     * a few dozen; binding them all at load was most of this dlopen */
    void *h = dlopen("libdw.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        ml_say("libdw.so.1 cannot be loaded; frames are reported as object+offset (install libdw1)");
        return -1;
    }
#define ML_DW_LOAD(f)                                                                                        \
    *(void **)&ml_dw.f = dlsym(h, #f);                                                                       \
    if (!ml_dw.f) {                                                                                          \
        ml_say("libdw.so.1 has no %s; frames are reported as object+offset", #f);                            \
        return -1;                                                                                           \
    }
    ML_DW_FUNCS(ML_DW_LOAD)
#undef ML_DW_LOAD
    state = 1;
    return 0;
}
