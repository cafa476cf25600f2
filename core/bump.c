/* core/bump.c: placeholder until the backend lands; init fails, so the shim
 * falls back to the system backend. */
#include <errno.h>

#include "backend.h"

static int stub_init(const struct ml_options *opt)
{
    (void)opt;
    return ENOSYS;
}

const struct ml_backend ml_backend_bump = {
    .name = "bump",
    .init = stub_init,
};
