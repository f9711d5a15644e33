// How a model's float math runs on its device (the `precision` option of create and load;
// lib/backend/types.ts PRECISIONS is the same list). Parameters, gradients, optimizer state and
// checkpoints are float32 whatever the precision; it only says what the products may round to.
//   fp32  float32 products with float32 accumulation (the default; the CPU's only one)
//   tf32  CUDA tensor cores: products of operands rounded to TF32 (10-bit mantissa),
//         float32 accumulation (cuBLAS TF32 math mode, cuDNN's default math)
//   bf16, fp16  CUDA mixed precision: cuDNN's RNN on half copies of its data (weights, inputs,
//         outputs, states) with float math where cuDNN allows it (cuda/rnn_half.h); the
//         decoder's GEMMs round their float operands to the half format, float32 sums
//         (cublasGemmEx's 32F_FAST_16BF / _16F); fp16 training scales the loss (loss_scale.h)
// Each device says what it supports (D::supports); the binding refuses the rest.
#pragma once
#include <string>

#include "status.h"

namespace rnnlm {

enum class Precision { FP32 = 0, TF32 = 1, BF16 = 2, FP16 = 3 };

inline constexpr const char* kPrecisionNames[] = {"fp32", "tf32", "bf16", "fp16"};
inline const char* precisionName(Precision p) { return kPrecisionNames[int(p)]; }
inline Precision parsePrecision(const std::string& s) { return Precision(parseName(kPrecisionNames, s, "precision")); }

// The device's check, with the message the binding throws.
template <class D>
void checkPrecision(Precision p) {
  if (!D::supports(p))
    fail(Code::InvalidArgument, "the %s backend does not compute in precision '%s' (it supports %s)", D::kName,
         precisionName(p), D::kPrecisions);
}

}  // namespace rnnlm
