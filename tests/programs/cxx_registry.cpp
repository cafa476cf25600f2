// Three objects that own a std::map<std::string, std::vector<int>>, made
// with new in a loop and dropped.  valgrind memcheck at -O1:
// "444 (144 direct, 300 indirect) bytes in 3 blocks are definitely lost".
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace app {
class Registry {
  public:
    void add(int i) { entries_["k" + std::to_string(i)] = std::vector<int>(3, i); }
    size_t size() const { return entries_.size(); }

  private:
    std::map<std::string, std::vector<int>> entries_;
};
} // namespace app

__attribute__((noinline)) static app::Registry *make(int i)
{
    app::Registry *r = new app::Registry; /* @REGNEW */
    r->add(i);
    return r;
}

int main()
{
    size_t total = 0;
    for (int i = 0; i < 3; i++)
        total += make(i)->size();
    std::printf("%zu\n", total);
    return 0;
}
