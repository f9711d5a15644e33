// Dynamic loss scaling (fp16 training; PyTorch's GradScaler rule), one definition for the CPU
// op and the CUDA kernel. fp16 flushes gradients below 2^-24 to zero, and a token's share of
// a mean loss is often that small: the loss gradient is multiplied by S before the backward
// pass and the weight gradients by 1/S after it. S is a power of two, so with float32 master
// gradients the scaling is exact and changes no bit of the update.
//
// The state lives on the device (f32 [3]: S, finite steps since the last change, backoffs so
// far) and every op reads it when it runs, so a captured training step replays it (graphs.h).
// After each step, with `finite` = the step's guard (loss, count, gradient norm) all finite:
//   finite:     good += 1; when good == interval: S = min(S * growth, maxScale), good = 0
//   not finite: S = max(S * backoff, minScale), good = 0, backoffs += 1
// A step that is not finite is the one the optimizer skipped (the same guard). The step's record
// (optional, [n + 1]) is its guard's n values and the S it ran with, read by the host in one read:
// a step not finite with a finite loss at S > minScale overflowed; otherwise it is the model's own.
#pragma once
#include <cstdint>

#include "rng.h"  // RNNLM_HD

namespace rnnlm {

struct LossScaleParams {
  float growth, backoff, minScale, maxScale;
  int32_t interval;
};

// T: the network's float type (float; double in the CPU's gradient checks).
template <typename T>
RNNLM_HD void lossScaleUpdate(T* state, const T* guard, int64_t n, bool finite, T* record, const LossScaleParams& p) {
  if (record) {
    for (int64_t i = 0; i < n; ++i) record[i] = guard[i];
    record[n] = state[0];
  }
  if (!finite) {
    const T s = state[0] * T(p.backoff);
    state[0] = s > T(p.minScale) ? s : T(p.minScale);
    state[1] = T(0);
    state[2] += T(1);
  } else if ((state[1] += T(1)) >= T(p.interval)) {
    const T s = state[0] * T(p.growth);
    state[0] = s < T(p.maxScale) ? s : T(p.maxScale);
    state[1] = T(0);
  }
}

// What scaleBy multiplies by: S, or 1 / S (inverse); exact for a power of two S.
template <typename T>
RNNLM_HD T lossScaleFactor(T s, bool inverse) {
  return inverse ? T(1) / s : s;
}

}  // namespace rnnlm
