// Optimizer hyperparameters, as both backends' fused update ops take them.
#pragma once
#include <cstdint>

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
}  // namespace rnnlm
