// Batch-1 generation of n tokens as one queued op, over a device D (its ops and D::Rnn): the
// token loop the binding's generate entry point (binding/recurrent.h) queues after checking
// every tensor. For i = 0 .. n-1:
//   ids[i] ~ softmax(logits / temperature)            (sample, seed seeds[i])
//   unless i = n-1 and last:  hx, cx = hy, cy;  logits = W rnn(table[ids[i]], hx, cx) + b
// The same device ops in the same order as sample + copy + embeddingForward + rnnForward
// (inference) + linearForward per token, so the ids and states equal the step-by-step loop's,
// with no JavaScript call per token.
#pragma once
#include <cstdint>
#include <vector>

#include "sample.h"
#include "tensor.h"

namespace rnnlm {

struct Generation {
  View table;                        // [V, E] embedding
  View x, y;                         // [1, 1, E], [1, 1, H]: one step's input and output
  View hx, cx, hy, cy;               // [L, 1, H]; cx and cy for an LSTM only
  View weights, reserve, workspace;  // the recurrent stack's
  View W, b;                         // decoder [V, H], [V] (b optional)
  View logits;                       // [1, V]
  View ids;                          // i32 [n]: the drawn ids
  std::vector<uint64_t> seeds;       // [n]
  SampleArgs sample;                 // seed set per token
  bool last = false;                 // no step after the last draw
};

template <class D, typename T>
void generateTokens(typename D::Context& c, const typename D::Rnn& rnn, const Generation& g) {
  const int64_t V = g.table.shape[0], E = g.table.shape[1], H = g.y.shape[2], n = g.ids.shape[0];
  const size_t stateBytes = size_t(g.hx.numel) * sizeof(T);
  const int32_t one = 1;
  int32_t* ids = g.ids.p<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    SampleArgs s = g.sample;
    s.seed = g.seeds[size_t(i)];
    D::sample(c, g.logits.p<T>(), 1, V, s, ids + i, static_cast<T*>(nullptr));
    if (i == n - 1 && g.last) break;
    D::copy(c, g.hx.p<T>(), g.hy.p<T>(), stateBytes);
    if (g.cx) D::copy(c, g.cx.p<T>(), g.cy.p<T>(), stateBytes);
    D::embeddingForward(c, g.table.p<T>(), V, E, ids + i, 1, g.x.p<T>());
    rnn.forward(c, 1, 1, &one, g.x.p<T>(), g.hx.p<T>(), g.cx.p<T>(), g.weights.p<T>(), g.y.p<T>(), g.hy.p<T>(),
                g.cy.p<T>(), g.reserve.p<T>(), g.reserve.numel, g.workspace.p<T>(), g.workspace.numel, false, 0);
    D::linearForward(c, g.y.p<T>(), g.W.p<T>(), g.b.p<T>(), 1, H, V, g.logits.p<T>());
  }
}

}  // namespace rnnlm
