// cxx_threads: a C++ program for the real-program preload tests (tests/real).
//
// It exercises what C++ allocates through operator new and the malloc family:
// iostreams and string streams, std::string, containers, shared_ptr, exceptions
// (the exception object comes from __cxa_allocate_exception), thread_local
// objects with destructors, std::thread and std::async.  Threads compute into
// their own slots and the main thread prints in a fixed order, so the output
// is deterministic and must not change under mallard.
//
// usage: cxx_threads [n]     (n, the work size, defaults to 20000)
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Lcg {
    std::uint32_t x;
    std::uint32_t next() { return x = x * 1103515245u + 12345u; }
    std::string word()
    {
        std::uint32_t r = next() >> 4;
        std::string w(3 + r % 8, 'a');
        for (std::size_t k = 0; k < w.size(); k++)
            w[k] = static_cast<char>('a' + (r >> (2 * k)) % 26);
        return w;
    }
};

struct Summary {
    std::size_t distinct = 0;
    std::size_t longest = 0;
    std::string first, last;
    std::uint64_t checksum = 0;
    int errors = 0;
};

// Counts thread_local constructions that reached their destructor, which runs
// at thread exit, after the thread's last ordinary allocation.
std::mutex g_tls_mutex;
int g_tls_destroyed = 0;

struct PerThread {
    std::vector<std::string> scratch;
    PerThread() { scratch.reserve(64); }
    ~PerThread()
    {
        // Allocating and freeing here is legal and must keep working.
        std::string s(256, 'x');
        std::lock_guard<std::mutex> lock(g_tls_mutex);
        g_tls_destroyed += static_cast<int>(s.size() / 256);
    }
};
thread_local PerThread t_state;

Summary work(std::uint32_t seed, int n)
{
    Lcg rng{seed};
    Summary s;
    std::map<std::string, int> counts;
    std::unordered_map<std::string, std::vector<int>> where;
    std::vector<std::shared_ptr<std::string>> keep;
    for (int i = 0; i < n; i++) {
        std::string w = rng.word();
        counts[w]++;
        where[w].push_back(i);
        if (i % 7 == 0)
            keep.push_back(std::make_shared<std::string>(w + "/" + std::to_string(i)));
        t_state.scratch.push_back(w);
        if (t_state.scratch.size() > 64)
            t_state.scratch.clear();
        if (i % 997 == 0) {
            try {
                throw std::runtime_error("bad word " + w);
            } catch (const std::runtime_error &e) {
                s.errors += e.what()[0] == 'b';
            }
        }
    }
    std::ostringstream os;
    for (const auto &kv : counts) {
        os << kv.first << '=' << kv.second << ';';
        s.longest = std::max(s.longest, where[kv.first].size());
    }
    std::string text = os.str();
    for (unsigned char c : text)
        s.checksum = s.checksum * 131 + c;
    s.distinct = counts.size();
    s.first = counts.begin()->first;
    s.last = counts.rbegin()->first;
    std::sort(keep.begin(), keep.end(), [](const auto &a, const auto &b) { return *a < *b; });
    s.checksum ^= keep.size();
    return s;
}

std::ostream &operator<<(std::ostream &os, const Summary &s)
{
    return os << "distinct " << s.distinct << ", longest " << s.longest << ", first " << s.first << ", last "
              << s.last << ", errors " << s.errors << ", checksum " << std::hex << s.checksum << std::dec;
}

} // namespace

int main(int argc, char **argv)
{
    int n = argc > 1 ? std::atoi(argv[1]) : 20000;
    if (n < 100) {
        std::cerr << "cxx_threads: n must be at least 100\n";
        return 2;
    }

    std::cout << "main: " << work(1, n) << '\n';

    const int nthreads = 4;
    std::vector<Summary> results(nthreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < nthreads; t++)
        threads.emplace_back([t, n, &results] { results[t] = work(100 + t, n / 2); });
    for (auto &th : threads)
        th.join();
    for (int t = 0; t < nthreads; t++)
        std::cout << "thread " << t << ": " << results[t] << '\n';

    // std::async with a shared queue: blocks allocated by one thread and
    // freed by another.
    std::vector<std::future<std::vector<std::string>>> futures;
    for (int t = 0; t < nthreads; t++)
        futures.push_back(std::async(std::launch::async, [t, n] {
            Lcg rng{static_cast<std::uint32_t>(500 + t)};
            std::vector<std::string> v;
            for (int i = 0; i < n / 8; i++)
                v.push_back(rng.word() + rng.word());
            return v;
        }));
    std::size_t total = 0;
    std::string longest;
    for (auto &f : futures) {
        std::vector<std::string> v = f.get();
        for (const auto &w : v) {
            total += w.size();
            if (w.size() > longest.size() || (w.size() == longest.size() && w < longest))
                longest = w;
        }
    }
    std::cout << "async: " << total << " chars, longest " << longest << '\n';

    // Many short threads: per-thread state comes and goes.
    std::vector<std::thread> shorts;
    for (int t = 0; t < 32; t++)
        shorts.emplace_back([t] { work(1000 + t, 200); });
    for (auto &th : shorts)
        th.join();
    {
        std::lock_guard<std::mutex> lock(g_tls_mutex);
        std::cout << "thread_local destructors: " << g_tls_destroyed << '\n';
    }

    std::cout << std::fixed << std::setprecision(3) << "ratio " << static_cast<double>(total) / n << std::endl;
    return 0;
}
