/* gcc_input.c: the C file the real_gcc_* tests compile with gcc under mallard
 * and then run.  It is ordinary code with enough in it (macros, structs,
 * recursion, function pointers, inline functions, switch tables, variadic
 * functions) to make cc1, as and ld allocate; its output is deterministic. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
#define SWAP(T, a, b) do { T tmp_ = (a); (a) = (b); (b) = tmp_; } while (0)

struct rng { uint64_t s; };

static inline uint32_t rng_next(struct rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 11);
}

struct item {
    char name[16];
    int weight;
    int value;
};

static int by_ratio(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    long l = (long)x->value * y->weight, r = (long)y->value * x->weight;
    if (l != r)
        return l > r ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* 0/1 knapsack by dynamic programming. */
static int knapsack(const struct item *it, int n, int cap)
{
    int *best = calloc((size_t)cap + 1, sizeof *best);
    if (!best)
        return -1;
    for (int i = 0; i < n; i++)
        for (int c = cap; c >= it[i].weight; c--)
            if (best[c - it[i].weight] + it[i].value > best[c])
                best[c] = best[c - it[i].weight] + it[i].value;
    int r = best[cap];
    free(best);
    return r;
}

/* A tiny stack machine, to give the compiler a switch to lower. */
enum op { OP_PUSH, OP_ADD, OP_MUL, OP_DUP, OP_OVER, OP_SWAP, OP_ROT, OP_DROP, OP_JNZ, OP_DEC, OP_HALT };
struct insn { enum op op; int arg; };

static long run_vm(const struct insn *prog, size_t len)
{
    long stack[64];
    int sp = 0;
    for (size_t pc = 0; pc < len;) {
        const struct insn *in = &prog[pc++];
        switch (in->op) {
        case OP_PUSH: stack[sp++] = in->arg; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_OVER: stack[sp] = stack[sp - 2]; sp++; break;
        case OP_SWAP: SWAP(long, stack[sp - 1], stack[sp - 2]); break;
        case OP_ROT: { long a = stack[sp - 3]; stack[sp - 3] = stack[sp - 2]; stack[sp - 2] = stack[sp - 1]; stack[sp - 1] = a; break; }
        case OP_DROP: sp--; break;
        case OP_DEC: stack[sp - 1]--; break;
        case OP_JNZ: if (stack[sp - 1]) pc = (size_t)in->arg; break;
        case OP_HALT: return stack[sp - 1];
        }
    }
    return sp ? stack[sp - 1] : 0;
}

static unsigned long fib_memo(int n, unsigned long *memo)
{
    if (n < 2)
        return (unsigned long)n;
    if (memo[n])
        return memo[n];
    return memo[n] = fib_memo(n - 1, memo) + fib_memo(n - 2, memo);
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

typedef int (*reducer)(int, int);
static int add(int a, int b) { return a + b; }
static int max(int a, int b) { return a > b ? a : b; }
static int xor(int a, int b) { return a ^ b; }

static int reduce(const int *v, size_t n, reducer f, int init)
{
    for (size_t i = 0; i < n; i++)
        init = f(init, v[i]);
    return init;
}

int main(void)
{
    struct rng r = {0x9E3779B97F4A7C15ull};
    struct item items[40];
    for (size_t i = 0; i < COUNT_OF(items); i++) {
        snprintf(items[i].name, sizeof items[i].name, "item%02zu", i);
        items[i].weight = 1 + (int)(rng_next(&r) % 30);
        items[i].value = 1 + (int)(rng_next(&r) % 100);
    }
    qsort(items, COUNT_OF(items), sizeof items[0], by_ratio);
    say("best ratio: %s (%d/%d)", items[0].name, items[0].value, items[0].weight);
    say("knapsack(100): %d", knapsack(items, (int)COUNT_OF(items), 100));

    /* 10! by a loop in the stack machine, keeping "acc n" on the stack. */
    const struct insn prog[] = {
        {OP_PUSH, 1}, {OP_PUSH, 10},
        {OP_OVER, 0}, {OP_OVER, 0}, {OP_MUL, 0}, /* acc n acc*n */
        {OP_SWAP, 0}, {OP_ROT, 0}, {OP_DROP, 0}, /* acc*n n */
        {OP_DEC, 0}, {OP_JNZ, 2},
        {OP_DROP, 0}, {OP_HALT, 0},
    };
    say("vm: %ld", run_vm(prog, COUNT_OF(prog)));

    unsigned long memo[91] = {0};
    say("fib(90): %lu", fib_memo(90, memo));

    int v[1000];
    for (size_t i = 0; i < COUNT_OF(v); i++)
        v[i] = (int)(rng_next(&r) % 100000);
    say("reduce: add %d max %d xor %d", reduce(v, COUNT_OF(v), add, 0), reduce(v, COUNT_OF(v), max, 0),
        reduce(v, COUNT_OF(v), xor, 0));

    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return 1;
    for (int i = 0; i < 500; i++)
        fprintf(mem, "%d,", v[i] % 97);
    fclose(mem);
    unsigned h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)buf[i]) * 16777619u;
    say("memstream: %zu bytes, fnv %08x", len, h);
    free(buf);
    return 0;
}
