// Arguments of the sampling op (both devices): ids[n] is drawn from softmax(z[n] / temperature)
// among the allowed ids, restricted to the topK most likely (topK > 0) and to the smallest
// most-likely set whose probability reaches topP (topP < 1); temperature 0 takes the argmax.
// The uniform of row n is uniform01(seed, n) (rng.h), so CPU and GPU draw alike; with per-row
// seeds (perRow) it is uniform01(seed_n, 0): each row draws as it would sampled alone.
#pragma once
#include <cstdint>

#include "rng.h"

namespace rnnlm {

struct SampleArgs {
  static constexpr int kMaxExclude = 16;
  double temperature = 1;
  int64_t topK = 0;
  double topP = 1;
  uint64_t seed = 0;
  int32_t nExclude = 0;
  int32_t exclude[kMaxExclude] = {};  // by value: a kernel argument, no per-token upload

  RNNLM_HD bool allowed(int64_t v) const {
    for (int32_t i = 0; i < nExclude; ++i)
      if (exclude[i] == v) return false;
    return true;
  }
  bool plain() const { return topK == 0 && topP >= 1; }
  // The seed read when the draw runs (a graph's replay draws with each token's): i32 [2], the
  // little-endian halves of the 64-bit seed, on the op's device; with perRow, i32 [N, 2], one per
  // row (the batched rows of generation, one op for all of them).
  bool perRow = false;
  RNNLM_HD void seedFrom(const int32_t* live) {
    if (live && !perRow) seed = joinHalves(live);
  }
  // Row n's uniform (live: what seedFrom read, needed with perRow).
  RNNLM_HD float uniform(const int32_t* live, int64_t n) const {
    return perRow ? uniform01(joinHalves(live + 2 * n), 0) : uniform01(seed, uint64_t(n));
  }
};

}  // namespace rnnlm
