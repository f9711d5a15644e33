// Launchers of the mixed-precision kernels (mixed.cu): the casts around cuDNN's half-precision
// RNN (rnn_half.h) and the dynamic loss scale (common/loss_scale.h). Each kernel's math is
// stated above it in mixed.cu; the loss scale's CPU reference is the same header's rule.
#pragma once
#include <cstdint>

#include "../common/loss_scale.h"

struct CUstream_st;

namespace rnnlm::cuda::kernels {

enum class Half { FP16, BF16 };

// dst[i] = half(src[i]), rounded to nearest even (inf past the format's range).
void toHalf(CUstream_st* s, const float* src, int64_t n, void* dst, Half h);
// dst[i] = float(src[i]) (accumulate: dst[i] += float(src[i])).
void fromHalf(CUstream_st* s, const void* src, int64_t n, float* dst, Half h, bool accumulate);
// x *= S or 1 / S, S = state[0] when the kernel runs.
void scaleBy(CUstream_st* s, float* x, int64_t n, const float* state, bool inverse);
// The loss scale's update (lossScaleUpdate) with finite = guard[0..guardN) all finite; record may be null.
void updateLossScale(CUstream_st* s, float* state, const float* guard, int guardN, const LossScaleParams& p,
                     float* record);

}  // namespace rnnlm::cuda::kernels
