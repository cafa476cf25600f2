// C++ names (demangled in text, JSON and suppressions) and operator new /
// new[] exported by mallard: frame 0 of each leak is the C++ function that
// called new, named as valgrind names it.  Built -O1 -g.
#include <cstdio>
#include <cstring>
#include "scrub.h"

namespace app {
class Registry {
public:
    __attribute__((noinline)) int *add(int n);
    __attribute__((noinline)) long *add(long n);
};

int *Registry::add(int n)
{
    int *slots = new int[n]; /* @ADDINT */
    std::memset(slots, 0, sizeof(int) * n);
    return slots;
}

long *Registry::add(long n)
{
    long *one = new long(n); /* @ADDLONG */
    return one;
}
} // namespace app

static int *volatile sink_int;
static long *volatile sink_long;

int main()
{
    app::Registry *r = new app::Registry; /* @NEWREG */
    sink_int = r->add(12);
    sink_long = r->add(7L);
    std::printf("%d %ld\n", sink_int[0], *sink_long);
    delete r;
    sink_int = nullptr;
    sink_long = nullptr;
    scrub_stack();
    return 0;
}
