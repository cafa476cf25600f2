/* tests/fuzz/fuzz_options.c: libFuzzer on the MALLARD_* option parser.
 *
 * Input: environment entries separated by '\n' (each given a "MALLARD_"
 * prefix half of the time).  Checked: the parse never reads or writes out of
 * bounds (run under the sanitizers CI uses), every field stays in its
 * documented range, path fields are NUL-terminated, and parsing is
 * deterministic.  Warnings are formatted and written to /dev/null.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/backend.h"
#include "../../core/fmt.h"
#include "../../core/options.h"

#define ENTRIES 16

static size_t count_backends(void)
{
    size_t n = 0;
    while (ml_backends[n])
        n++;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int devnull = -2;
    if (devnull == -2) {
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        ml_say_to(devnull);
    }
    if (size > 64 * 1024)
        return 0;
    char *buf = malloc(size + 1);
    char *env_store[ENTRIES];
    char *envp[ENTRIES + 1];
    size_t ne = 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (char *s = buf; ne < ENTRIES && s <= buf + size;) {
        char *nl = memchr(s, '\n', (size_t)(buf + size - s));
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        int prefix = len && (s[0] & 1);
        char *e = malloc(len + 9);
        memcpy(e, "MALLARD_", prefix ? 8 : 0);
        memcpy(e + (prefix ? 8 : 0), s, len);
        e[len + (prefix ? 8 : 0)] = '\0';
        env_store[ne] = e;
        envp[ne++] = e;
        if (!nl)
            break;
        s = nl + 1;
    }
    envp[ne] = NULL;

    struct ml_options a, b;
    ml_options_parse(&a, envp, 1);
    ml_options_parse(&b, envp, 0);
    if (memcmp(&a, &b, sizeof a) != 0)
        abort(); /* not deterministic, or reads uninitialised memory */
    if (a.backend < 0 || (size_t)a.backend >= count_backends())
        abort();
    if (strlen(a.report) >= ML_PATH_MAX || strlen(a.suppressions) >= ML_PATH_MAX)
        abort();
    for (size_t i = 0; i < ml_option_count; i++) {
        const struct ml_option *row = &ml_option_table[i];
        if (row->type == ML_OPT_INT) {
            int v = *(const int *)((const char *)&a + row->offset);
            if (v < row->min || v > row->max)
                abort();
        }
        if (row->type == ML_OPT_BOOL) {
            int v = *(const int *)((const char *)&a + row->offset);
            if (v != 0 && v != 1)
                abort();
        }
    }
    for (size_t i = 0; i < ne; i++)
        free(env_store[i]);
    free(buf);
    return 0;
}
