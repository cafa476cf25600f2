// tests/programs/builtin_supp.cpp: a block lost inside a C++ function that
// the built-in pattern "__gnu_cxx::__freeres" names (libstdc++'s freeres,
// here a stand-in of the same qualified name), and one lost in main.  The
// first must count as suppressed, the second as definitely lost.
#include <cstdlib>
#include <cstring>

namespace __gnu_cxx {
__attribute__((noinline)) void *__freeres_standin(std::size_t n)
{
    void *p = std::malloc(n);
    if (p)
        std::memset(p, 1, n);
    return p;
}
} // namespace __gnu_cxx

static void *volatile sink;

int main()
{
    sink = __gnu_cxx::__freeres_standin(24);
    sink = std::malloc(40);
    if (sink)
        std::memset(sink, 2, 40);
    sink = nullptr;
    return 0;
}
