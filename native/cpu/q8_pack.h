// Packed copies of int8 weight matrices for the lone-row product (batch-1 generation; the kernel
// is gemm_q8_simd.inc's gemvQ8Packed, on CPUs with AVX-512 VNNI).
//
//   W [N, K] (row stride ldw) -> ceil(N / 16) blocks of 16 columns, in groups of 8 blocks (the last
//   group may have fewer, G): group g (blocks 8g .. 8g + G - 1) starts at byte 8g K4 64 and holds,
//   for each of K4 = ceil(K / 4) groups of k, its blocks' 64 bytes one after the other:
//   P[8g K4 64 + ((k4 G + i) 16 + j) 4 + t] = (W[16 (8g + i) + j, 4 k4 + t] ^ 0x80)  (0 ^ 0x80 past N or K)
//
// The row-major tiles sum each column across a vector and add the lanes at the end; packed, one
// vector holds 16 columns' sums and the activations are broadcast, so a lone row needs about half
// the instructions, and a group's eight blocks are read as one stream (measured alone on this CPU:
// zaremba-small's 10,000 x 200 decoder 46 -> 24 us, a 800 x 200 gate matrix 3x faster).
// A copy is made at a matrix's first lone-row product and kept while int8 memory is unchanged:
// every write, fill or copy into an int8 buffer (as it runs) and every int8 buffer's release
// (before the memory goes) calls int8Changed (common/tensor.h), which drops every copy; ops of a
// stream run in order, so no later product reads a copy of memory that has changed. The copies
// (about the size of the int8 weights) are held outside the allocation statistics, up to
// kMaxBytes in all; past that a matrix is not packed and takes the row-major kernel.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "../common/tensor.h"

namespace rnnlm::cpu {

// The longest row whose offset sum cannot overflow int32: K * 255 * 127 < 2^31.
constexpr int64_t kQ8OffsetMaxK = (int64_t(1) << 31) / (255 * 127);

inline void packQ8(const int8_t* W, int64_t ldw, int64_t N, int64_t K, uint8_t* P) {
  const int64_t K4 = (K + 3) / 4, blocks = (N + 15) / 16;
  for (int64_t b0 = 0; b0 < blocks; b0 += 8) {
    const int64_t G = blocks - b0 < 8 ? blocks - b0 : 8;
    uint8_t* group = P + b0 * K4 * 64;
    for (int64_t k4 = 0; k4 < K4; ++k4)
      for (int64_t i = 0; i < G; ++i)
        for (int64_t j = 0; j < 16; ++j)
          for (int64_t t = 0; t < 4; ++t) {
            const int64_t n = (b0 + i) * 16 + j, k = k4 * 4 + t;
            const int8_t w = n < N && k < K ? W[n * ldw + k] : int8_t(0);
            group[((k4 * G + i) * 16 + j) * 4 + t] = uint8_t(uint8_t(w) ^ 0x80u);
          }
  }
}

class Q8Packs {
 public:
  using Pack = std::shared_ptr<const std::vector<uint8_t>>;
  static constexpr size_t kMaxBytes = size_t(1) << 30;

  static Q8Packs& get() {
    static Q8Packs* packs = [] {
      auto* p = new Q8Packs();  // never destroyed: stream threads may use it at exit
      int8Listener().store(&Q8Packs::dropAll);
      return p;
    }();
    return *packs;
  }

  // The packed copy of W [N, K] (row stride ldw), made now if there is none; null past kMaxBytes.
  // The caller holds the returned pointer for the product, so a concurrent drop cannot free it.
  Pack find(const int8_t* W, int64_t ldw, int64_t N, int64_t K) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto key = std::make_tuple(W, ldw, N, K);
    if (auto it = packs_.find(key); it != packs_.end()) return it->second;
    const size_t n = size_t((N + 15) / 16) * size_t((K + 3) / 4) * 64;
    if (bytes_ + n > kMaxBytes) return nullptr;
    auto p = std::make_shared<std::vector<uint8_t>>(n);
    packQ8(W, ldw, N, K, p->data());
    bytes_ += n;
    return packs_[key] = std::move(p);
  }

 private:
  // Copies still in use by a product stay alive with it (shared_ptr).
  static void dropAll() {
    Q8Packs& p = get();
    std::lock_guard<std::mutex> lock(p.mu_);
    p.packs_.clear();
    p.bytes_ = 0;
  }

  std::mutex mu_;
  size_t bytes_ = 0;
  std::map<std::tuple<const int8_t*, int64_t, int64_t, int64_t>, Pack> packs_;
};

}  // namespace rnnlm::cpu
