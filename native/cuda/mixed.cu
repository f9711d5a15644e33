// Mixed-precision kernels: see mixed.h. The casts have no CPU twin (the CPU computes in float32
// only); the GPU check compares the half-precision model they serve with the CPU's float32 one.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "grid.cuh"
#include "mixed.h"

namespace rnnlm::cuda::kernels {
namespace {

// dst = round-to-nearest-even(src) in fp16 / bf16
__global__ void toHalfKernel(const float* src, int64_t n, void* dst, bool bf16) {
  if (bf16) {
    auto* d = static_cast<__nv_bfloat16*>(dst);
    GRID_STRIDE(i, n) d[i] = __float2bfloat16_rn(src[i]);
  } else {
    auto* d = static_cast<__half*>(dst);
    GRID_STRIDE(i, n) d[i] = __float2half_rn(src[i]);
  }
}

// dst (=|+=) float(src)
__global__ void fromHalfKernel(const void* src, int64_t n, float* dst, bool bf16, bool accumulate) {
  GRID_STRIDE(i, n) {
    const float v = bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(src)[i])
                         : __half2float(static_cast<const __half*>(src)[i]);
    dst[i] = accumulate ? dst[i] + v : v;
  }
}

// x *= lossScaleFactor(state[0], inverse)   (CpuDevice::scaleBy)
__global__ void scaleByKernel(float* x, int64_t n, const float* state, bool inverse) {
  const float f = lossScaleFactor(state[0], inverse);
  GRID_STRIDE(i, n) x[i] *= f;
}

// One thread: common/loss_scale.h's rule   (CpuDevice::updateLossScale)
__global__ void updateLossScaleKernel(float* state, const float* guard, int guardN, LossScaleParams p, float* record) {
  lossScaleUpdate(state, guard, guardN, allFinite(guard, guardN), record, p);
}

}  // namespace

void toHalf(CUstream_st* s, const float* src, int64_t n, void* dst, Half h) {
  toHalfKernel<<<blocksFor(n), kThreads, 0, s>>>(src, n, dst, h == Half::BF16);
}
void fromHalf(CUstream_st* s, const void* src, int64_t n, float* dst, Half h, bool accumulate) {
  fromHalfKernel<<<blocksFor(n), kThreads, 0, s>>>(src, n, dst, h == Half::BF16, accumulate);
}
void scaleBy(CUstream_st* s, float* x, int64_t n, const float* state, bool inverse) {
  scaleByKernel<<<blocksFor(n), kThreads, 0, s>>>(x, n, state, inverse);
}
void updateLossScale(CUstream_st* s, float* state, const float* guard, int guardN, const LossScaleParams& p,
                     float* record) {
  updateLossScaleKernel<<<1, 1, 0, s>>>(state, guard, guardN, p, record);
}

}  // namespace rnnlm::cuda::kernels
