/* A dropped 10-node list: the head is a definite leak, the other nine
 * nodes are indirect. */
#include <stdio.h>
#include <stdlib.h>

#include "scrub.h"

struct node {
    struct node *next;
    char payload[40];
};

__attribute__((noinline)) struct node *push(struct node *head)
{
    struct node *n = malloc(sizeof *n); /* @NODE */
    n->next = head;
    n->payload[0] = 'n';
    return n;
}

__attribute__((noinline)) static void build_and_drop(void)
{
    struct node *head = NULL;
    for (int i = 0; i < 10; i++)
        head = push(head);
    printf("%c\n", head->payload[0]);
}

int main(void)
{
    build_and_drop();
    scrub_stack();
    return 0;
}
