/* report/path.c: MALLARD_REPORT's patterns.  See path.h. */
#include "path.h"

#include <string.h>

#include "../core/fmt.h"

int ml_report_path(const char *pattern, int pid, const char *exe, unsigned n, char *out, size_t cap)
{
    int flags = 0;
    size_t k = 0;
    const char *name = exe ? strrchr(exe, '/') : NULL;
    name = name ? name + 1 : exe ? exe : "";
    if (!*name)
        name = "unknown";
    if (!cap)
        return -1;
    for (const char *s = pattern; *s; s++) {
        char piece[32];
        const char *add = piece;
        size_t len;
        if (s[0] == '%' && s[1] == 'p') {
            len = ml_fmt(piece, sizeof piece, "%d", pid);
            flags |= ML_PATH_HAS_PID;
            s++;
        } else if (s[0] == '%' && s[1] == 'n') {
            len = ml_fmt(piece, sizeof piece, "%u", n);
            flags |= ML_PATH_HAS_COUNTER;
            s++;
        } else if (s[0] == '%' && s[1] == 'e') {
            add = name;
            len = strlen(name);
            s++;
        } else if (s[0] == '%' && s[1] == '%') {
            piece[0] = '%';
            len = 1;
            s++;
        } else {
            piece[0] = *s;
            len = 1;
        }
        if (k + len >= cap)
            return -1;
        for (size_t i = 0; i < len; i++) {
            char c = add[i];
            /* a program name never makes a path component of its own */
            out[k++] = add == name && (c == '/' || c == '\0') ? '_' : c;
        }
    }
    out[k] = '\0';
    return flags;
}
