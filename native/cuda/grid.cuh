// Launch helpers shared by our kernel files (kernels.cu, mixed.cu): a grid-stride loop over n
// elements with kThreads per block, and the guard test of the fused updates.
#pragma once
#include <cstdint>

namespace rnnlm::cuda::kernels {

constexpr int kThreads = 256;

inline unsigned blocksFor(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 65535 * 16 ? (b < 1 ? 1 : b) : 65535 * 16);
}

#define GRID_STRIDE(i, n) for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// Every entry of guard[0..n) finite (the step's loss, count and gradient norm).
__device__ inline bool allFinite(const float* guard, int n) {
  for (int i = 0; i < n; ++i)
    if (!isfinite(guard[i])) return false;
  return true;
}

}  // namespace rnnlm::cuda::kernels
