/* tests/fuzz/fuzz_supp.c: libFuzzer on the suppression matcher
 * (report/suppress.c), against a simple reference matcher.
 *
 * Input: pattern '\0' name.  The reference states the rule directly: a
 * leading '^' anchors the start, the first '$' ends the pattern and
 * anchors the end, '*' matches any run, an unanchored side may have
 * anything beyond it; a NULL or empty name matches nothing, so neither do
 * "$" and "^$" (LSan's TemplateMatch).  It decides by
 * dynamic programming over (pattern position, name position), so it is
 * slow but obviously right; inputs are kept short for it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../report/suppress.h"

#define MAXLEN 200

static int reference(const char *pat, const char *s)
{
    if (!s || !*s)
        return 0;
    int anchor_start = *pat == '^';
    if (anchor_start)
        pat++;
    size_t pl = strcspn(pat, "$");
    int anchor_end = pat[pl] == '$';
    if (anchor_end && !pl)
        return 0; /* "$", "^$": the empty name only, as LSan's TemplateMatch */
    /* the body, with the unanchored sides turned into stars */
    char body[MAXLEN + 3];
    size_t bl = 0;
    if (!anchor_start)
        body[bl++] = '*';
    memcpy(body + bl, pat, pl);
    bl += pl;
    if (!anchor_end)
        body[bl++] = '*';
    size_t sl = strlen(s);
    /* m[j]: body[0..i) matches s[0..j) */
    unsigned char m[MAXLEN + 2], next[MAXLEN + 2];
    memset(m, 0, sizeof m);
    m[0] = 1;
    for (size_t i = 0; i < bl; i++) {
        memset(next, 0, sizeof next);
        for (size_t j = 0; j <= sl; j++) {
            if (body[i] == '*')
                next[j] = m[j] || (j && next[j - 1]);
            else
                next[j] = j && m[j - 1] && s[j - 1] == body[i];
        }
        memcpy(m, next, sizeof m);
    }
    return m[sl];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * MAXLEN)
        return 0;
    const uint8_t *z = memchr(data, '\0', size);
    if (!z)
        return 0;
    size_t pl = (size_t)(z - data), sl = size - pl - 1;
    if (pl > MAXLEN || sl > MAXLEN)
        return 0;
    char pat[MAXLEN + 1], s[MAXLEN + 1];
    memcpy(pat, data, pl);
    pat[pl] = '\0';
    memcpy(s, z + 1, sl);
    s[sl] = '\0';
    if (memchr(s, '\0', sl)) /* a name has no NUL inside */
        return 0;
    int got = ml_supp_match(pat, s), want = reference(pat, s);
    if (got != want) {
        fprintf(stderr, "fuzz_supp: pattern \"%s\" name \"%s\": matcher %d, reference %d\n", pat, s, got, want);
        abort();
    }
    return 0;
}
