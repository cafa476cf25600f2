/* tests/safe/exit_race.c: two threads call exit() at the same moment
 * (after leaking one 4242-byte block).  Exactly one whole report must be
 * written, whichever thread wins. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../programs/scrub.h"

static pthread_barrier_t go;

__attribute__((noinline)) static void leak_one(void)
{
    char *p = malloc(4242);
    memset(p, 3, 4242);
    __asm__ volatile("" ::"r"(p) : "memory");
}

static void *racer(void *arg)
{
    pthread_barrier_wait(&go);
    exit((int)(long)arg);
}

int main(void)
{
    leak_one();
    scrub_stack();
    pthread_barrier_init(&go, NULL, 3);
    pthread_t a, b;
    pthread_create(&a, NULL, racer, (void *)0);
    pthread_create(&b, NULL, racer, (void *)0);
    pthread_barrier_wait(&go);
    exit(0);
}
