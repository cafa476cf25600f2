/* Lost structures and which of their blocks is definite (valgrind's
 * figures):
 *   - a registry (allocated first) owning 4 nodes that point back into it:
 *     one cycle, the registry definite, 4 nodes indirect:
 *     "224 (64 direct, 160 indirect) bytes in 1 block";
 *   - a pure cycle of two 32-byte blocks: the first allocated definite,
 *     "64 (32 direct, 32 indirect) bytes in 1 block";
 *   - three 24-byte children allocated before the 48-byte array that owns
 *     them: the array definite, "120 (48 direct, 72 indirect)". */
#include <stdio.h>
#include <stdlib.h>

#include "scrub.h"

/* Makes p escape, so that the compiler keeps the allocation and the stores
 * into it (at -O1 GCC drops a malloc whose block is never read). */
static inline void sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

struct node {
    struct node *next;
    void *parent; /* interior pointer into the registry */
    char pad[24];
};
struct registry {
    char header[32];
    struct node *first;
    char pad[24];
};

__attribute__((noinline)) static struct node *make_node(struct registry *r)
{
    struct node *n = calloc(1, sizeof *n); /* @NODE */
    n->parent = r->header + 8;
    n->next = r->first;
    r->first = n;
    return n;
}

__attribute__((noinline)) static void registry_drop(void)
{
    struct registry *r = calloc(1, sizeof *r); /* @REGISTRY */
    for (int i = 0; i < 4; i++)
        make_node(r);
    sink(r);
}

struct pair {
    struct pair *other;
    char pad[24];
};

__attribute__((noinline)) static struct pair *pair_new(void)
{
    return calloc(1, sizeof(struct pair)); /* @PAIR */
}

__attribute__((noinline)) static void cycle_drop(void)
{
    struct pair *a = pair_new(); /* @PAIRA */
    struct pair *b = pair_new(); /* @PAIRB */
    a->other = b;
    b->other = a;
    sink(a);
    sink(b);
}

__attribute__((noinline)) static void *child_new(void)
{
    return calloc(1, 24); /* @CHILD */
}

__attribute__((noinline)) static void array_drop(void)
{
    void *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = child_new();
    void **arr = calloc(6, sizeof *arr); /* @ARRAY */
    for (int i = 0; i < 3; i++)
        arr[i] = c[i];
    sink(arr);
}

int main(void)
{
    registry_drop();
    cycle_drop();
    array_drop();
    scrub_stack();
    puts("dropped");
    return 0;
}
