/* bench/cxx.cpp: a C++ program using new and delete.
 *
 * The allocation pattern of C++ containers: a std::map of std::string keys
 * to node objects held in std::unique_ptr, with inserts, lookups and
 * erasures at random, and a std::vector rebuilt now and then.  Every node,
 * string and vector buffer goes through operator new/delete, which
 * libstdc++ sends to malloc, so an allocator that exports its own operator
 * new saves that hop.
 *
 * Usage: bench_cxx [OPS]   (default 2000000 operations)
 */
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench.h"

namespace {
struct Node {
    uint64_t value;
    std::vector<uint32_t> refs;
};
} // namespace

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, 1, 2000000, "bench_cxx [OPS]");
    std::map<std::string, std::unique_ptr<Node>> m;
    uint64_t rng = 0x637878;
    uint64_t sum = 0;
    for (long i = 0; i < ops; i++) {
        uint64_t r = bench_rng_next(&rng);
        std::string key = "key-" + std::to_string(r % 20000) + std::string(r >> 60, 'x');
        auto it = m.find(key);
        if (it == m.end()) {
            std::unique_ptr<Node> n(new Node{r, {}});
            n->refs.resize((r >> 8) % 12);
            for (size_t j = 0; j < n->refs.size(); j++)
                n->refs[j] = (uint32_t)(r >> j);
            m.emplace(std::move(key), std::move(n));
        } else if ((r >> 20) % 3 == 0) {
            sum = bench_mix(sum, it->second->value + it->second->refs.size());
            m.erase(it);
        } else {
            it->second->refs.push_back((uint32_t)r);
            sum = bench_mix(sum, it->second->refs.size());
        }
        if (i % 100000 == 99999) {
            std::vector<uint64_t> snapshot;
            for (auto &kv : m)
                snapshot.push_back(kv.second->value);
            sum = bench_mix(sum, snapshot.size());
        }
    }
    for (auto &kv : m)
        sum = bench_mix(sum, kv.second->value ^ kv.first.size());
    printf("bench=cxx ops=%ld checksum=%016llx\n", ops, (unsigned long long)sum);
    return 0;
}
