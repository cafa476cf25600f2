// C++ new and new[] leaks.
#include <cstdio>
#include "scrub.h"

struct Widget {
    long a, b, c;
};

__attribute__((noinline)) static void leak_new() { new Widget{1, 2, 3}; /* @NEW */ }
__attribute__((noinline)) static void leak_new_array() { new int[50]; /* @NEWARR */ }

int main()
{
    leak_new();
    leak_new_array();
    scrub_stack();
    std::puts("new");
    return 0;
}
