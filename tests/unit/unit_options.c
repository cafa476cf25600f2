/* tests/unit/unit_options.c: the path-valued options and ml_options_keep.
 *
 * The preload parses its options straight from the environment, then keeps
 * the path values in a pool of its own: a program may overwrite its
 * environment strings (setproctitle), and a process that sets none must
 * not write a byte of the pool (its pages then cost nothing).  Prints
 * "options ok" or the first failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/options.h"

static int failures;

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                           \
            failures++;                                                                                      \
        }                                                                                                    \
    } while (0)

static char pool[ML_OPT_POOL_SIZE];

static int in_pool(const char *p) { return p >= pool && p < pool + sizeof pool; }

static size_t untouched(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof pool; i++)
        n += pool[i] == 0x55;
    return n;
}

int main(void)
{
    /* the table's path rows all fit in the pool at their longest */
    size_t paths = 0;
    for (size_t i = 0; i < ml_option_count; i++)
        paths += ml_option_table[i].type == ML_OPT_PATH;
    CHECK(paths * ML_PATH_MAX <= ML_OPT_POOL_SIZE);

    /* nothing set: defaults, and not a byte of the pool written */
    struct ml_options o;
    memset(pool, 0x55, sizeof pool);
    char *none[] = {"HOME=/root", NULL};
    ml_options_parse(&o, none, 0);
    ml_options_keep(&o, pool, sizeof pool);
    CHECK(!strcmp(o.report, "") && !strcmp(o.suppressions, "") && !strcmp(o.tags, ""));
    CHECK(!strcmp(o.children, "yes"));
    CHECK(!in_pool(o.report) && !in_pool(o.children));
    CHECK(untouched() == sizeof pool);

    /* set values survive their strings being overwritten; the last of two
     * entries wins, as before */
    char e1[] = "MALLARD_REPORT=/tmp/first.%p", e2[] = "MALLARD_TAGS=parse*=parser",
         e3[] = "MALLARD_CHILDREN=no", e4[] = "MALLARD_REPORT=/tmp/r.%p", e5[] = "MALLARD_TRACE=0";
    char *env[] = {e1, e2, e3, e4, e5, NULL};
    ml_options_parse(&o, env, 0);
    CHECK(o.report == e4 + strlen("MALLARD_REPORT=")); /* parse alone points into envp */
    ml_options_keep(&o, pool, sizeof pool);
    memset(e1, 'x', sizeof e1 - 1);
    memset(e2, 'x', sizeof e2 - 1);
    memset(e3, 'x', sizeof e3 - 1);
    memset(e4, 'x', sizeof e4 - 1);
    CHECK(!strcmp(o.report, "/tmp/r.%p") && in_pool(o.report));
    CHECK(!strcmp(o.tags, "parse*=parser") && in_pool(o.tags));
    CHECK(!strcmp(o.children, "no") && in_pool(o.children));
    CHECK(!strcmp(o.suppressions, "") && !in_pool(o.suppressions));
    CHECK(o.trace == 0);
    /* packed: the three values take their lengths and no more */
    CHECK(sizeof pool - untouched() == sizeof "/tmp/r.%p" + sizeof "parse*=parser" + sizeof "no");

    /* every path at its longest still fits; one byte more is refused */
    static char big[4][ML_PATH_MAX + 32];
    const char *names[] = {"MALLARD_REPORT=", "MALLARD_SUPPRESSIONS=", "MALLARD_CHILDREN=", "MALLARD_TAGS="};
    char *env2[5];
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(names[i]);
        memcpy(big[i], names[i], n);
        memset(big[i] + n, 'a' + i, ML_PATH_MAX - 1);
        big[i][n + ML_PATH_MAX - 1] = '\0';
        env2[i] = big[i];
    }
    env2[4] = NULL;
    memset(pool, 0x55, sizeof pool);
    ml_options_parse(&o, env2, 0);
    ml_options_keep(&o, pool, sizeof pool);
    const char *got[] = {o.report, o.suppressions, o.children, o.tags};
    for (int i = 0; i < 4; i++) {
        CHECK(in_pool(got[i]) && strlen(got[i]) == ML_PATH_MAX - 1);
        CHECK(got[i][0] == 'a' + i && got[i][ML_PATH_MAX - 2] == 'a' + i);
    }
    big[0][strlen(names[0]) + ML_PATH_MAX - 1] = 'a'; /* ML_PATH_MAX bytes: too long */
    big[0][strlen(names[0]) + ML_PATH_MAX] = '\0';
    ml_options_parse(&o, env2, 0);
    CHECK(!strcmp(o.report, ""));

    if (failures)
        return 1;
    printf("options ok\n");
    return 0;
}
