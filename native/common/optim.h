// Optimizer hyperparameters, as both backends' fused update ops take them, and the per-step
// scalars of the Adam update, computed here once for both (and for CUDA's kernels).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "rng.h"  // RNNLM_HD, joinHalves

namespace rnnlm {

// PyTorch SGD: d = g + wd p; buf = step == 1 ? d : momentum buf + (1 - dampening) d;
// d = nesterov ? d + momentum buf : buf (when momentum > 0); p -= lr d.
struct SgdParams {
  double lr, momentum, dampening, weightDecay;
  bool nesterov;
  int64_t step;
};
// PyTorch Adam / AdamW at step t (>= 1):
//   Adam:  g += wd p.   AdamW: p *= 1 - lr wd.
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
struct AdamParams {
  double lr, beta1, beta2, eps, weightDecay;
  bool decoupled;
  int64_t step;
};

// The same update with the bias corrections folded into scalars (in double, once per step),
// as the fused kernels compute it (cpu::adamImpl, kernels::adamKernel):
//   g' = g + l2 p;  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;
//   p = p shrink - stepSize m / (sqrt(v) invSqrtBc2 + eps)
// with l2 = wd (Adam) or 0, shrink = 1 - lr wd (AdamW) or 1, stepSize = lr / (1-b1^t),
// invSqrtBc2 = 1 / sqrt(1-b2^t).
struct AdamScalars {
  double l2, shrink, stepSize, invSqrtBc2;
};
// On the host, and in a CUDA kernel that reads the step from the device (a graph's replay).
RNNLM_HD AdamScalars adamScalars(const AdamParams& a) {
  const double bc1 = 1 - ::pow(a.beta1, double(a.step));
  const double bc2 = 1 - ::pow(a.beta2, double(a.step));
  return {a.decoupled ? 0 : a.weightDecay, a.decoupled ? 1 - a.lr * a.weightDecay : 1, a.lr / bc1,
          1 / ::sqrt(bc2)};
}

// A step's values read when the update runs rather than when it is queued (so that a captured
// graph's replay takes this step's): `live` is i32 [4] on the op's device, the little-endian
// halves of lr's float64 bits and of the int64 step, so the update is the same to the last bit.
// False when they are not an lr in [0, 1e6] (the options' range) and a step >= 1: the update is
// then not made, and the op's error says why.
RNNLM_HD bool applyLive(const int32_t* live, double& lr, int64_t& step) {
  if (!live) return true;
  const uint64_t bits = joinHalves(live);
  memcpy(&lr, &bits, sizeof lr);
  step = int64_t(joinHalves(live + 2));
  return lr >= 0 && lr <= 1e6 && step >= 1;  // false for a NaN lr too
}
inline const char* kLiveError = "an optimizer's live values (lr, step) are out of range: lr must be in [0, 1e6], step >= 1";

}  // namespace rnnlm
