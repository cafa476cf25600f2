/* A small tree lost from the caller's frames: a root and 4 children of
 * 120 bytes each, whose only pointers lie in lose_tree's own frame, dead
 * once it returns (valgrind: the root definitely lost, the children
 * indirectly).  For fixtures that check which dead frames the leak scan
 * reads: heap_stack.c, altstack_leak.c. */
#ifndef LOSE_TREE_H
#define LOSE_TREE_H
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *kids[4];
    char pad[88];
};

static inline void sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

__attribute__((noinline)) static void lose_tree(void)
{
    volatile struct node *copies[16];
    struct node *root = malloc(sizeof *root); /* @ROOT */
    for (int i = 0; i < 4; i++) {
        root->kids[i] = malloc(sizeof *root); /* @KID */
        memset(root->kids[i], 0, sizeof *root);
    }
    for (int i = 0; i < 16; i++)
        copies[i] = root;
    sink((void *)copies);
}
#endif
