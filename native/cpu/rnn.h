// Stacked LSTM / GRU / tanh-RNN / relu-RNN on the CPU, structured as cuDNN
// does it (and with cuDNN's calling convention: forward, backward-data, then
// backward-weights, sharing a reserve space):
//   forward   one GEMM for the input projection of all T steps of a layer,
//             then per step one GEMM for the recurrence with the gate math fused after it;
//   backward  per step the fused gate derivatives and one GEMM for dh_{t-1}, then after
//             the loop one GEMM for dx and one per weight gradient over all steps.
// Layout is time-major: x [T, B, I], y [T, B, H], h/c [L, B, H].
// Padded batches: lengths[b] in [1, T]; for t >= lengths[b] the state of sequence b is
// carried unchanged, y[t, b] = 0, and no gradient flows through those steps.
// The cells' elementwise math (PyTorch's nn.LSTM / nn.GRU / nn.RNN) is in lstmCell, gruCell,
// rnnCell and their backward below, each headed by its equations; this is also the reference
// for the CUDA backend, where cuDNN computes the cells (native/cuda/rnn.h).
// Between layers (training only) inverted dropout with a counter-based mask: per element, or
// locked (one mask per sequence, the same at every time step: Gal & Ghahramani's variational dropout).
// batchInvariant (inference): the forward GEMMs use the fixed-order kernel of gemmForward
// (blas.h), so that a sequence's outputs do not depend on the batch it runs in.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../common/rng.h"
#include "../common/rnn_layout.h"
#include "blas.h"
#include "quant.h"
#include "vecmath.h"

namespace rnnlm::cpu {

// Offsets (in elements) of one layer's slices of the reserve space.
struct LayerSlots {
  int64_t xin, mask, hs, cs, gates, hn, dG, dGh;
};

// Where everything lives for a given (T, B). The reserve holds what backward
// needs from forward (and the gate gradients backward-data leaves for
// backward-weights); the workspace is scratch.
struct RnnSpaces {
  RnnConfig c;
  int64_t T, B;
  int64_t reserveSize = 0, workspaceSize = 0;
  int64_t wsDyA = 0, wsDyB = 0, wsDh = 0, wsDc = 0, wsGh = 0, wsTmp = 0;

  RnnSpaces(const RnnConfig& cfg, int64_t T_, int64_t B_) : c(cfg), T(T_), B(B_) {
    const int64_t H = c.hiddenSize, GH = c.gates() * H, TBH = T * B * H;
    wsDyA = 0;
    wsDyB = TBH;
    wsDh = 2 * TBH;
    wsDc = wsDh + B * H;
    wsGh = wsDc + B * H;
    wsTmp = wsGh + B * GH;
    workspaceSize = wsTmp + H;
    reserveSize = 0;
    for (int64_t l = 0; l < c.layers; ++l) reserveSize += layerReserve(l, H, GH);
  }

  LayerSlots layer(int64_t l) const {
    const int64_t H = c.hiddenSize, GH = c.gates() * H;
    int64_t off = 0;
    for (int64_t k = 0; k < l; ++k) off += layerReserve(k, H, GH);
    LayerSlots s{};
    const int64_t TBH = T * B * H, TBGH = T * B * GH;
    s.xin = off;
    off += l > 0 ? TBH : 0;
    s.mask = off;
    off += (l > 0 && c.dropout > 0) ? TBH : 0;
    s.hs = off;
    off += (T + 1) * B * H;
    s.cs = off;
    off += c.cell == Cell::LSTM ? (T + 1) * B * H : 0;
    s.gates = off;
    off += TBGH;
    s.hn = off;
    off += c.cell == Cell::GRU ? TBH : 0;
    s.dG = off;
    off += TBGH;
    s.dGh = c.cell == Cell::GRU ? off : s.dG;
    return s;
  }

 private:
  int64_t layerReserve(int64_t l, int64_t H, int64_t GH) const {
    const int64_t TBH = T * B * H, TBGH = T * B * GH;
    int64_t n = (T + 1) * B * H + 2 * TBGH;  // hs, gates, dG
    if (l > 0) n += TBH;                      // xin
    if (l > 0 && c.dropout > 0) n += TBH;     // mask
    if (c.cell == Cell::LSTM) n += (T + 1) * B * H;
    if (c.cell == Cell::GRU) n += TBH + TBGH;  // hn, dGh
    return n;
  }
};

inline bool stepValid(const int32_t* lengths, int64_t t, int64_t b) { return t < lengths[b]; }

inline uint64_t layerSeed(uint64_t seed, int64_t l) { return mix64(seed, 0xD0D0ull + uint64_t(l)); }

// --- cells: one sequence, one step, H units --------------------------------------------------
// Forward: a holds the gate pre-activations from the GEMMs, gate blocks of H in PyTorch's order,
// and is left holding the activations that backward reads. Backward: from those, the gradient
// dy of the step's output and the carried dh (and dc) = dL/dh' (dL/dc') from the step after,
// writes the pre-activation gradients da and leaves in dh (dc) what carries to the step before;
// the caller's GEMM adds the part of dh through W_hh.

// LSTM, a = x W_ih^T + b_ih + h W_hh^T + b_hh in blocks (i, f, g, o):
//   i = sigma(a_i), f = sigma(a_f), g = tanh(a_g), o = sigma(a_o)
//   c' = f c + i g,  h' = o tanh(c')
template <typename T>
inline void lstmCell(int64_t H, T* a, const T* c, T* cNew, T* hNew) {
  sigmoidInPlace(a, 2 * H);      // i, f
  tanhInPlace(a + 2 * H, H);     // g
  sigmoidInPlace(a + 3 * H, H);  // o
  for (int64_t j = 0; j < H; ++j) cNew[j] = a[H + j] * c[j] + a[j] * a[2 * H + j];
  std::memcpy(hNew, cNew, sizeof(T) * H);
  tanhInPlace(hNew, H);
  for (int64_t j = 0; j < H; ++j) hNew[j] *= a[3 * H + j];
}

//   dh' = dh + dy,  tc = tanh(c'),  dc' = dc + dh' o (1 - tc^2)
//   da_i = dc' g i (1 - i),  da_f = dc' c f (1 - f),  da_g = dc' i (1 - g^2),  da_o = dh' tc o (1 - o)
//   dc = dc' f,  dh = 0.   tc: scratch of H.
template <typename T>
inline void lstmCellBackward(int64_t H, const T* a, const T* c, const T* cNew, const T* dy, T* dh, T* dc, T* tc,
                             T* da) {
  std::memcpy(tc, cNew, sizeof(T) * H);
  tanhInPlace(tc, H);
  for (int64_t j = 0; j < H; ++j) {
    const T i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j];
    const T dht = dh[j] + dy[j];
    const T dct = dc[j] + dht * o * (T(1) - tc[j] * tc[j]);
    da[j] = dct * gg * i * (T(1) - i);
    da[H + j] = dct * c[j] * f * (T(1) - f);
    da[2 * H + j] = dct * i * (T(1) - gg * gg);
    da[3 * H + j] = dht * tc[j] * o * (T(1) - o);
    dc[j] = dct * f;
    dh[j] = T(0);
  }
}

// GRU, the reset gate applied after the hidden GEMM: a = x W_ih^T + b_ih and
// ah = h W_hh^T + b_hh, both in blocks (r, z, n):
//   r = sigma(a_r + ah_r),  z = sigma(a_z + ah_z),  n = tanh(a_n + r hn) with hn = ah_n (kept)
//   h' = (1 - z) n + z h
template <typename T>
inline void gruCell(int64_t H, T* a, const T* ah, const T* h, T* hn, T* hNew) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] += ah[j];
  sigmoidInPlace(a, 2 * H);  // r, z
  for (int64_t j = 0; j < H; ++j) {
    hn[j] = ah[2 * H + j];
    a[2 * H + j] += a[j] * hn[j];
  }
  tanhInPlace(a + 2 * H, H);  // n
  for (int64_t j = 0; j < H; ++j) hNew[j] = (T(1) - a[H + j]) * a[2 * H + j] + a[H + j] * h[j];
}

//   dh' = dh + dy,  da_n = dh' (1 - z) (1 - n^2),  da_r = da_n hn r (1 - r),  da_z = dh' (h - n) z (1 - z)
//   da = (da_r, da_z, da_n) for the input GEMM,  dah = (da_r, da_z, da_n r) for the hidden one
//   dh = dh' z
template <typename T>
inline void gruCellBackward(int64_t H, const T* a, const T* h, const T* hn, const T* dy, T* dh, T* da, T* dah) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = a[j], z = a[H + j], n = a[2 * H + j];
    const T dht = dh[j] + dy[j];
    const T dnp = dht * (T(1) - z) * (T(1) - n * n);
    const T drp = dnp * hn[j] * r * (T(1) - r);
    const T dzp = dht * (h[j] - n) * z * (T(1) - z);
    da[j] = drp, da[H + j] = dzp, da[2 * H + j] = dnp;
    dah[j] = drp, dah[H + j] = dzp, dah[2 * H + j] = dnp * r;
    dh[j] = dht * z;
  }
}

// tanh / relu RNN, a = x W_ih^T + b_ih + h W_hh^T + b_hh:   h' = tanh(a) | max(a, 0)
template <typename T>
inline void rnnCell(int64_t H, bool relu, const T* a, T* hNew) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) hNew[j] = std::max(a[j], T(0));
  } else {
    std::memcpy(hNew, a, sizeof(T) * H);
    tanhInPlace(hNew, H);
  }
}

//   dh' = dh + dy,  da = dh' (1 - h'^2) | dh' [h' > 0],  dh = 0
template <typename T>
inline void rnnCellBackward(int64_t H, bool relu, const T* hNew, const T* dy, T* dh, T* da) {
  for (int64_t j = 0; j < H; ++j) {
    const T dht = dh[j] + dy[j];
    da[j] = relu ? (hNew[j] > T(0) ? dht : T(0)) : dht * (T(1) - hNew[j] * hNew[j]);
    dh[j] = T(0);
  }
}

// --- the stack -------------------------------------------------------------------------------

// Wq, side (float only, inference): a quantized stack (rnn_layout.h: quantSideOffset; quant.h) in
// place of W, whose GEMMs are then int8 products (batch-invariant by construction).
template <typename T>
void rnnForward(const RnnSpaces& sp, const int32_t* lengths, const T* x, const T* hx, const T* cx,
                const T* W, T* y, T* hy, T* cy, T* reserve, T* ws, bool training, uint64_t seed,
                bool batchInvariant, const int8_t* Wq = nullptr, const float* side = nullptr) {
  const RnnConfig& c = sp.c;
  const int64_t Tn = sp.T, B = sp.B, H = c.hiddenSize, G = c.gates(), GH = G * H;
  const bool lstm = c.cell == Cell::LSTM, gru = c.cell == Cell::GRU;
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerSlots s = sp.layer(l);
    const int64_t in = c.layerInput(l);
    const ParamRef pWih = weightParam(c, l, 0), pWhh = weightParam(c, l, 1);
    const ParamRef pBih = weightParam(c, l, 2), pBhh = weightParam(c, l, 3);
    const T *Wih = W ? W + pWih.offset : nullptr, *Whh = W ? W + pWhh.offset : nullptr;
    const T *bih = W ? W + pBih.offset : nullptr, *bhh = W ? W + pBhh.offset : nullptr;
    if constexpr (std::is_same_v<T, float>) {
      if (Wq) bih = side + quantSideOffset(c, l, 2), bhh = side + quantSideOffset(c, l, 3);
    }
    // C[M, GH] += A[M, K] times weight id's transpose (0: weight_ih, 1: weight_hh).
    auto project = [&](int id, int64_t M, int64_t K, const T* A, T* C) {
      if constexpr (std::is_same_v<T, float>) {
        if (Wq)
          return gemmForwardQ8(M, GH, K, A, K, Wq + (id == 0 ? pWih : pWhh).offset, side + quantSideOffset(c, l, id),
                               true, C, GH);
      }
      gemmForward(batchInvariant, M, GH, K, A, K, id == 0 ? Wih : Whh, K, true, C, GH);
    };

    // This layer's input: x, or the previous layer's output (zero at padding) with dropout.
    const T* X = x;
    if (l > 0) {
      const T* prev = reserve + sp.layer(l - 1).hs;
      T* xin = reserve + s.xin;
      const bool drop = training && c.dropout > 0;
      T* mask = reserve + s.mask;
      const uint64_t ls = layerSeed(seed, l);
      for (int64_t t = 0; t < Tn; ++t)
        for (int64_t b = 0; b < B; ++b) {
          const int64_t o = (t * B + b) * H;
          const bool valid = stepValid(lengths, t, b);
          for (int64_t j = 0; j < H; ++j) {
            T v = valid ? prev[(t + 1) * B * H + b * H + j] : T(0);
            if (c.dropout > 0) {
              const T m = drop ? dropoutScale<T>(ls, uint64_t(c.locked ? b * H + j : o + j), c.dropout) : T(1);
              mask[o + j] = m;
              v *= m;
            }
            xin[o + j] = v;
          }
        }
      X = xin;
    }

    T* hs = reserve + s.hs;
    T* cs = reserve + s.cs;
    T* gates = reserve + s.gates;
    if (hx) std::memcpy(hs, hx + l * B * H, sizeof(T) * B * H);
    else std::fill(hs, hs + B * H, T(0));
    if (lstm) {
      if (cx) std::memcpy(cs, cx + l * B * H, sizeof(T) * B * H);
      else std::fill(cs, cs + B * H, T(0));
    }

    // Input projection for all steps: gates[T*B, GH] = X W_ih^T + bias.
    for (int64_t r = 0; r < Tn * B; ++r) {
      T* row = gates + r * GH;
      for (int64_t k = 0; k < GH; ++k) row[k] = gru ? bih[k] : bih[k] + bhh[k];
    }
    project(0, Tn * B, in, X, gates);

    T* gh = ws + sp.wsGh;
    T* hnAll = reserve + s.hn;
    for (int64_t t = 0; t < Tn; ++t) {
      const T* hp = hs + t * B * H;
      T* hc = hs + (t + 1) * B * H;
      T* Gt = gates + t * B * GH;
      if (gru) {
        for (int64_t b = 0; b < B; ++b) std::memcpy(gh + b * GH, bhh, sizeof(T) * GH);
        project(1, B, H, hp, gh);
      } else {
        project(1, B, H, hp, Gt);
      }
      for (int64_t b = 0; b < B; ++b) {
        const T* hpb = hp + b * H;
        T* hcb = hc + b * H;
        T* g = Gt + b * GH;
        if (!stepValid(lengths, t, b)) {
          std::memcpy(hcb, hpb, sizeof(T) * H);
          if (lstm) std::memcpy(cs + (t + 1) * B * H + b * H, cs + t * B * H + b * H, sizeof(T) * H);
          continue;
        }
        if (lstm) lstmCell(H, g, cs + t * B * H + b * H, cs + (t + 1) * B * H + b * H, hcb);
        else if (gru) gruCell(H, g, gh + b * GH, hpb, hnAll + (t * B + b) * H, hcb);
        else rnnCell(H, c.cell == Cell::RNN_RELU, g, hcb);
      }
    }
    if (hy) std::memcpy(hy + l * B * H, hs + Tn * B * H, sizeof(T) * B * H);
    if (lstm && cy) std::memcpy(cy + l * B * H, cs + Tn * B * H, sizeof(T) * B * H);
    if (l == c.layers - 1) {
      for (int64_t t = 0; t < Tn; ++t)
        for (int64_t b = 0; b < B; ++b) {
          T* yo = y + (t * B + b) * H;
          if (stepValid(lengths, t, b)) std::memcpy(yo, hs + (t + 1) * B * H + b * H, sizeof(T) * H);
          else std::fill(yo, yo + H, T(0));
        }
    }
  }
}

// Gradients with respect to x, hx and cx from dy, dhy and dcy (each may be null = zero).
// Leaves the gate gradients in the reserve for rnnBackwardWeights.
template <typename T>
void rnnBackwardData(const RnnSpaces& sp, const int32_t* lengths, const T* W, const T* dy,
                     const T* dhy, const T* dcy, T* dx, T* dhx, T* dcx, T* reserve, T* ws) {
  const RnnConfig& c = sp.c;
  const int64_t Tn = sp.T, B = sp.B, H = c.hiddenSize, G = c.gates(), GH = G * H;
  const bool lstm = c.cell == Cell::LSTM, gru = c.cell == Cell::GRU;
  const T* dY = dy;  // gradient w.r.t. this layer's output
  for (int64_t l = c.layers - 1; l >= 0; --l) {
    const LayerSlots s = sp.layer(l);
    const int64_t in = c.layerInput(l);
    const T* Wih = W + weightParam(c, l, 0).offset;
    const T* Whh = W + weightParam(c, l, 1).offset;
    const T* hs = reserve + s.hs;
    const T* cs = reserve + s.cs;
    const T* gates = reserve + s.gates;
    const T* hnAll = reserve + s.hn;
    T* dG = reserve + s.dG;
    T* dGh = reserve + s.dGh;
    T* dh = ws + sp.wsDh;
    T* dc = ws + sp.wsDc;
    if (dhy) std::memcpy(dh, dhy + l * B * H, sizeof(T) * B * H);
    else std::fill(dh, dh + B * H, T(0));
    if (lstm) {
      if (dcy) std::memcpy(dc, dcy + l * B * H, sizeof(T) * B * H);
      else std::fill(dc, dc + B * H, T(0));
    }

    for (int64_t t = Tn - 1; t >= 0; --t) {
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        T* dg = dG + row * GH;
        T* dgh = dGh + row * GH;
        if (!stepValid(lengths, t, b)) {
          std::fill(dg, dg + GH, T(0));
          if (gru) std::fill(dgh, dgh + GH, T(0));
          continue;  // dh, dc pass through the carried state unchanged
        }
        const T* g = gates + row * GH;
        const T* dyb = dY + row * H;
        T* dhb = dh + b * H;
        if (lstm)
          lstmCellBackward(H, g, cs + t * B * H + b * H, cs + (t + 1) * B * H + b * H, dyb, dhb, dc + b * H,
                           ws + sp.wsTmp, dg);
        else if (gru) gruCellBackward(H, g, hs + t * B * H + b * H, hnAll + row * H, dyb, dhb, dg, dgh);
        else rnnCellBackward(H, c.cell == Cell::RNN_RELU, hs + (t + 1) * B * H + b * H, dyb, dhb, dg);
      }
      // dh_{t-1} += dGh_t W_hh  (rows of finished sequences are zero and add nothing)
      gemm(false, false, B, H, GH, T(1), dGh + t * B * GH, GH, Whh, H, T(1), dh, H);
    }
    if (dhx) std::memcpy(dhx + l * B * H, dh, sizeof(T) * B * H);
    if (lstm && dcx) std::memcpy(dcx + l * B * H, dc, sizeof(T) * B * H);

    // Gradient w.r.t. this layer's input, for all steps at once: dX = dG W_ih.
    if (l > 0) {
      T* dX = ws + ((c.layers - 1 - l) % 2 == 0 ? sp.wsDyA : sp.wsDyB);
      gemm(false, false, Tn * B, in, GH, T(1), dG, GH, Wih, in, T(0), dX, in);
      if (c.dropout > 0) {
        const T* mask = reserve + s.mask;
        for (int64_t k = 0; k < Tn * B * H; ++k) dX[k] *= mask[k];
      }
      dY = dX;
    } else if (dx) {
      gemm(false, false, Tn * B, in, GH, T(1), dG, GH, Wih, in, T(0), dx, in);
    }
  }
}

// dW += weight gradients from the gate gradients left by rnnBackwardData.
template <typename T>
void rnnBackwardWeights(const RnnSpaces& sp, const T* x, const T* reserve, T* dW) {
  const RnnConfig& c = sp.c;
  const int64_t TB = sp.T * sp.B, H = c.hiddenSize, GH = c.gates() * H;
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerSlots s = sp.layer(l);
    const int64_t in = c.layerInput(l);
    const T* X = l == 0 ? x : reserve + s.xin;
    const T* dG = reserve + s.dG;
    const T* dGh = reserve + s.dGh;
    const T* Hprev = reserve + s.hs;  // h_{t-1} for t = 0..T-1
    T* dWih = dW + weightParam(c, l, 0).offset;
    T* dWhh = dW + weightParam(c, l, 1).offset;
    T* dbih = dW + weightParam(c, l, 2).offset;
    T* dbhh = dW + weightParam(c, l, 3).offset;
    gemm(true, false, GH, in, TB, T(1), dG, GH, X, in, T(1), dWih, in);
    gemm(true, false, GH, H, TB, T(1), dGh, GH, Hprev, H, T(1), dWhh, H);
    for (int64_t r = 0; r < TB; ++r) {
      const T* a = dG + r * GH;
      const T* bb = dGh + r * GH;
      for (int64_t k = 0; k < GH; ++k) {
        dbih[k] += a[k];
        dbhh[k] += bb[k];
      }
    }
  }
}

}  // namespace rnnlm::cpu
