// Process-wide counters of the device memory this addon allocates (buffers and the backends'
// own scratch): the benchmarks read them to show that no step allocates after warm-up and to
// report the peak footprint. Each addon (cpu, cuda) has its own counters.
#pragma once
#include <atomic>
#include <cstdint>

namespace rnnlm {

struct AllocStats {
  std::atomic<uint64_t> count{0};
  std::atomic<int64_t> live{0}, peak{0};
  void add(int64_t bytes) {
    count.fetch_add(1, std::memory_order_relaxed);
    const int64_t now = live.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    int64_t p = peak.load(std::memory_order_relaxed);
    while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
  }
  void sub(int64_t bytes) { live.fetch_sub(bytes, std::memory_order_relaxed); }
};

inline AllocStats& allocStats() {
  static AllocStats s;
  return s;
}

}  // namespace rnnlm
