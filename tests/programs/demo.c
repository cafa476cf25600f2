/* demo: the program scripts/demo.sh runs under mallard.
 *
 * It does ordinary work (builds a word list, counts it, prints a table) and
 * leaks three things on purpose, each in a way a leak checker must classify
 * differently:
 *   - make_greeting() returns a 64-byte string that main drops:   definite
 *   - build_list() makes a 10-node list of 32-byte nodes, and the
 *     caller drops the head: the head is definite, the 9 nodes it
 *     points to are indirect;
 *   - g_config holds a 128-byte block until exit:               still reachable
 * Everything else is freed.  The output on stdout does not depend on the
 * allocator, so it is the same with and without mallard.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    int value;
    char pad[20]; /* makes a node 32 bytes on x86_64 */
};

/* Still reachable at exit: a global keeps pointing at it. */
static char *g_config;

/* Definite leak: the caller drops the result. */
static char *make_greeting(const char *name)
{
    char *s = malloc(64);
    if (s)
        snprintf(s, 64, "hello, %s", name);
    return s;
}

/* One definite (the head) and nine indirect (reachable only from the head)
 * leaks once the caller drops the head. */
static struct node *build_list(int n)
{
    struct node *head = NULL;
    for (int i = 0; i < n; i++) {
        struct node *nd = malloc(sizeof *nd);
        if (!nd)
            break;
        nd->value = i;
        memset(nd->pad, 0, sizeof nd->pad);
        nd->next = head;
        head = nd;
    }
    return head;
}

static int list_sum(const struct node *nd)
{
    int sum = 0;
    for (; nd; nd = nd->next)
        sum += nd->value;
    return sum;
}

/* Ordinary work that frees everything it allocates. */
static void count_words(void)
{
    static const char *const text[] = {"the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog",
                                       "the", "end"};
    size_t n = sizeof text / sizeof text[0];
    char **uniq = calloc(n, sizeof *uniq);
    int *count = calloc(n, sizeof *count);
    size_t k = 0;
    if (!uniq || !count) {
        free(uniq);
        free(count);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < k && strcmp(uniq[j], text[i]) != 0)
            j++;
        if (j == k)
            uniq[k++] = strdup(text[i]);
        count[j]++;
    }
    printf("%-8s %s\n", "word", "count");
    for (size_t j = 0; j < k; j++) {
        printf("%-8s %d\n", uniq[j], count[j]);
        free(uniq[j]);
    }
    free(uniq);
    free(count);
}

int main(void)
{
    g_config = malloc(128);
    if (!g_config)
        return 1;
    snprintf(g_config, 128, "verbose=0");

    char *greeting = make_greeting("mallard");
    printf("%s\n", greeting ? greeting : "(no memory)");
    greeting = NULL; /* leak 1: dropped */

    struct node *list = build_list(10);
    printf("list sum: %d\n", list_sum(list));
    list = NULL; /* leak 2: head dropped, 9 nodes behind it */

    count_words();
    printf("config: %s\n", g_config);
    return 0;
}
