// Counter-based random numbers for dropout masks and sampling: the number at `index` of a
// draw with `seed` is a pure function of (seed, index), so draws are reproducible, need no
// state, and come out the same on both backends (the CPU ops, and our CUDA kernels).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define RNNLM_HD __host__ __device__ __forceinline__
#else
#define RNNLM_HD inline
#endif

namespace rnnlm {

// A 64-bit value JavaScript wrote as two int32s, low half first (a seed, a step, a float64's
// bits: what an op reads from the device when it runs; lib/util/int64.ts writes them).
RNNLM_HD uint64_t joinHalves(const int32_t* halves) {
  return (uint64_t(uint32_t(halves[1])) << 32) | uint32_t(halves[0]);
}

// splitmix64 finaliser over seed and index: a good 64-bit mix for counters.
RNNLM_HD uint64_t mix64(uint64_t seed, uint64_t index) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + index + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 random bits (exact in float).
RNNLM_HD float uniform01(uint64_t seed, uint64_t index) {
  return static_cast<float>(mix64(seed, index) >> 40) * (1.0f / 16777216.0f);
}

// Inverted dropout: keep with probability 1-p, scaled by 1/(1-p).
template <typename T>
RNNLM_HD T dropoutScale(uint64_t seed, uint64_t index, double p) {
  return uniform01(seed, index) >= static_cast<float>(p) ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
}

// Which random number masks element i of a dropout (all keys < 2^62):
//   key(i) = index(i / stride) mod period,  index(j) = ids ? ids[j] : j   (period 0: no mod).
// stride 1, no period: plain dropout, a number per element. period B*C over [T, B, C]: locked
// (variational) dropout, one mask per sequence shared by every time step. stride E with the token
// ids over [N, E]: embedding dropout, one mask per word of the vocabulary, whole rows.
struct DropoutKeys {
  const int32_t* ids = nullptr;
  int64_t stride = 1;
  int64_t period = 0;
  RNNLM_HD uint64_t operator()(int64_t i) const {
    const int64_t j = i / stride;
    const uint64_t k = ids ? uint64_t(uint32_t(ids[j])) : uint64_t(j);
    return period > 0 ? k % uint64_t(period) : k;
  }
};

}  // namespace rnnlm
