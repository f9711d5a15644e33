// cuDNN's RNN in half precision (precision bf16 / fp16, common/precision.h): what the network
// keeps in float32 (weights, gradients, activations, states) stays float32; cuDNN runs on half
// copies with float math. The copies live at the end of the caller's reserve and workspace,
// which spaces() makes that much larger (so lib/ sizes them as ever):
//   reserve:   [ cuDNN's reserve | W16 | x16 | y16 | hx16 | cx16 ]  written by forward, read by
//              the backward passes (the forward's inputs and output, as cuDNN needs them)
//   workspace: [ cuDNN's workspace | dy16 | dx16 | dhy16 | dcy16 | dhx16 | dcx16 | hy16 | cy16 | dW16 ]
// Forward casts W and x in (W every call: the float32 weights are the master copy the
// optimizer updates) and y, hy, cy out; backward-data casts dy, dhy, dcy in and dx, dhx, dcx out;
// backward-weights accumulates its half dW16 into the float32 dW.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../common/rnn_layout.h"
#include "mixed.h"

namespace rnnlm::cuda {

class HalfParts {
 public:
  static constexpr size_t kAlign = 256;
  static size_t round(size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

  // Bytes the half copies add to the reserve and to the workspace for T x B (with slack for alignment).
  static size_t reserveBytes(const RnnConfig& c, int64_t weights, int64_t T, int64_t B) {
    return kAlign + round(size_t(weights) * 2) + round(size_t(T * B * c.inputSize) * 2) +
           round(size_t(T * B * c.hiddenSize) * 2) + 2 * round(state(c, B));
  }
  static size_t workspaceBytes(const RnnConfig& c, int64_t weights, int64_t T, int64_t B) {
    return kAlign + round(size_t(T * B * c.hiddenSize) * 2) + round(size_t(T * B * c.inputSize) * 2) +
           6 * round(state(c, B)) + round(size_t(weights) * 2);
  }

  // The parts of a reserve (bytes long at p): cuDNN's from p, ours at the end.
  struct Reserve {
    void *W, *x, *y, *hx, *cx;
    size_t cudnnBytes;
  };
  static Reserve reserve(const RnnConfig& c, int64_t weights, int64_t T, int64_t B, void* p, size_t bytes) {
    Cursor k(c, p, bytes, reserveBytes(c, weights, T, B));
    Reserve r{};
    r.W = k.take(size_t(weights) * 2);
    r.x = k.take(size_t(T * B * c.inputSize) * 2);
    r.y = k.take(size_t(T * B * c.hiddenSize) * 2);
    r.hx = k.take(state(c, B));
    r.cx = k.take(state(c, B));
    r.cudnnBytes = k.front;
    return r;
  }
  struct Workspace {
    void *dy, *dx, *dhy, *dcy, *dhx, *dcx, *hy, *cy, *dW;
    size_t cudnnBytes;
  };
  static Workspace workspace(const RnnConfig& c, int64_t weights, int64_t T, int64_t B, void* p, size_t bytes) {
    Cursor k(c, p, bytes, workspaceBytes(c, weights, T, B));
    Workspace w{};
    w.dy = k.take(size_t(T * B * c.hiddenSize) * 2);
    w.dx = k.take(size_t(T * B * c.inputSize) * 2);
    w.dhy = k.take(state(c, B));
    w.dcy = k.take(state(c, B));
    w.dhx = k.take(state(c, B));
    w.dcx = k.take(state(c, B));
    w.hy = k.take(state(c, B));
    w.cy = k.take(state(c, B));
    w.dW = k.take(size_t(weights) * 2);
    w.cudnnBytes = k.front;
    return w;
  }

 private:
  static size_t state(const RnnConfig& c, int64_t B) { return size_t(c.layers * B * c.hiddenSize) * 2; }
  // Hands out aligned parts of the last `ours` bytes of [p, p + bytes); front: the bytes before them.
  struct Cursor {
    char* at;
    size_t front;
    Cursor(const RnnConfig&, void* p, size_t bytes, size_t ours) {
      if (bytes < ours) fail(Code::InvalidArgument, "the RNN's reserve or workspace is too small for its half-precision copies");
      const uintptr_t base = reinterpret_cast<uintptr_t>(p);
      const uintptr_t start = (base + (bytes - ours) + kAlign - 1) / kAlign * kAlign;
      at = reinterpret_cast<char*>(start);
      front = size_t(start - base);
    }
    void* take(size_t b) {
      void* q = at;
      at += round(b);
      return q;
    }
  };
};

}  // namespace rnnlm::cuda
