/* core/backend.c: the backend registry. */
#include "backend.h"

#include <string.h>

const struct ml_backend *const ml_backends[] = {
    &ml_backend_freelist, &ml_backend_bump, &ml_backend_arena, &ml_backend_page, &ml_backend_system, NULL,
};

const struct ml_backend *ml_backend_find(const char *name)
{
    for (const struct ml_backend *const *b = ml_backends; *b; b++)
        if (!strcmp((*b)->name, name))
            return *b;
    return NULL;
}

__attribute__((weak)) void ml_backend_watch_thread(void) {}
