// Objects that own a std::map<std::string, std::vector<int>>, created with
// new in a loop and dropped (-O1 -g): one definite record of 3 blocks that
// owns the map nodes and vectors, as valgrind counts it, with the frames of
// the inlined library code named as valgrind names them.
#include <cstdio>
#include <map>
#include <string>
#include <vector>
#include "scrub.h"

namespace app {
struct Index {
    std::map<std::string, std::vector<int>> by_name;
    long hits = 0;
};
} // namespace app

__attribute__((noinline)) static app::Index *make_index(int i)
{
    app::Index *ix = new app::Index; /* @NEWINDEX */
    ix->by_name["k"].push_back(i);   /* @PUSH */
    return ix;
}

int main()
{
    long total = 0;
    for (int i = 0; i < 3; i++) {
        app::Index *ix = make_index(i);
        total += ix->by_name.size();
    }
    scrub_stack();
    std::printf("%ld\n", total);
    return 0;
}
