/* tests/conformance/hz_tls.c: dlopen a library with a 64-byte-aligned
 * __thread array, touch it from 200 short threads, dlclose; three times
 * (HAZARDS §11).  Each thread's copy must be aligned, start as the TLS
 * image (zeros, then 1..16), and hold what the thread writes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char *(*zero_block)(void);
static int *(*init_block)(void);
static atomic_int bad;

static void *toucher(void *arg)
{
    char *z = zero_block();
    int *v = init_block();
    if (((uintptr_t)z & 63) || ((uintptr_t)v & 63)) {
        fprintf(stderr, "hz_tls: misaligned TLS block %p %p\n", (void *)z, (void *)v);
        atomic_fetch_add(&bad, 1);
        return NULL;
    }
    for (int i = 0; i < 1000; i++)
        if (z[i] != 0)
            atomic_fetch_add(&bad, 1);
    for (int i = 0; i < 16; i++)
        if (v[i] != i + 1)
            atomic_fetch_add(&bad, 1);
    memset(z, (int)(uintptr_t)arg, 1000);
    for (int i = 0; i < 16; i++)
        v[i] = -(int)(uintptr_t)arg;
    for (int i = 0; i < 1000; i++)
        if (z[i] != (char)(uintptr_t)arg)
            atomic_fetch_add(&bad, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    for (int round = 0; round < 3; round++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "hz_tls: %s\n", dlerror());
            return 3;
        }
        *(void **)&zero_block = dlsym(h, "hz_tls_zero_block");
        *(void **)&init_block = dlsym(h, "hz_tls_init_block");
        if (!zero_block || !init_block)
            return 4;
        toucher((void *)(uintptr_t)99); /* the main thread's copy too */
        for (uintptr_t i = 0; i < 200; i += 8) {
            pthread_t t[8];
            for (uintptr_t j = 0; j < 8; j++)
                if (pthread_create(&t[j], NULL, toucher, (void *)(i + j + 1)) != 0)
                    return 5;
            for (int j = 0; j < 8; j++)
                pthread_join(t[j], NULL);
        }
        if (dlclose(h) != 0)
            return 6;
    }
    if (atomic_load(&bad)) {
        fprintf(stderr, "hz_tls: %d bad TLS bytes or blocks\n", atomic_load(&bad));
        return 1;
    }
    return 0;
}
