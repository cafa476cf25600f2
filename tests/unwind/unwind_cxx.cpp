// tests/unwind/unwind_cxx.cpp: C++ frames (templates, a lambda through
// std::function, a virtual call, a frame with a live try block) for test_unwind.
#include <functional>
#include <stdexcept>

#include "unwind_test.h"

namespace {
struct Base {
    virtual ~Base() = default;
    virtual int go(probe_fn probe, int depth) = 0;
};

template <int N> struct Step : Base {
    int go(probe_fn probe, int depth) override
    {
        std::function<int(int)> f = [probe, this](int d) { return d > 0 ? next(probe, d - 1) : probe(N); };
        try {
            return f(depth);
        } catch (const std::runtime_error &) {
            return -1;
        }
    }
    __attribute__((noinline)) int next(probe_fn probe, int d);
};

template <int N> int Step<N>::next(probe_fn probe, int d)
{
    Step<N + 1 < 4 ? N + 1 : 0> s;
    Base *b = &s;
    int r = b->go(probe, d);
    if (r < -100)
        throw std::runtime_error("never");
    return r;
}
} // namespace

extern "C" int cxx_run(probe_fn probe, int depth)
{
    Step<0> s;
    return s.go(probe, depth);
}
