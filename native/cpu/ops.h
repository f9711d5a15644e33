// CPU ops other than the recurrent stack. Each is a plain loop (or one GEMM)
// over raw pointers, templated on float / double. Shapes were checked by the
// binding before the op was queued; only data-dependent checks (token ids)
// happen here, and they throw rnnlm::Error, which the stream reports.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "../common/rng.h"
#include "../common/optim.h"
#include "../common/sample.h"
#include "../common/status.h"
#include "blas.h"
#include "vecmath.h"

namespace rnnlm::cpu {

// out[n, :] = table[ids[n], :]                       table [V, E], ids [N], out [N, E]
template <typename T>
void embeddingForward(const T* table, int64_t V, int64_t E, const int32_t* ids, int64_t N, T* out) {
  for (int64_t n = 0; n < N; ++n) {
    const int32_t id = ids[n];
    RNNLM_CHECK(id >= 0 && id < V, Code::InvalidArgument,
                "token id %d at position %lld is outside the vocabulary [0, %lld)", id, (long long)n,
                (long long)V);
    std::memcpy(out + n * E, table + int64_t(id) * E, sizeof(T) * E);
  }
}

// dtable[ids[n], :] += dout[n, :] for every n with ids[n] != paddingIdx.
template <typename T>
void embeddingBackward(const int32_t* ids, int64_t N, const T* dout, int64_t V, int64_t E,
                       int64_t paddingIdx, T* dtable) {
  for (int64_t n = 0; n < N; ++n) {
    const int32_t id = ids[n];
    RNNLM_CHECK(id >= 0 && id < V, Code::InvalidArgument,
                "token id %d at position %lld is outside the vocabulary [0, %lld)", id, (long long)n,
                (long long)V);
    if (id == paddingIdx) continue;
    T* row = dtable + int64_t(id) * E;
    const T* g = dout + n * E;
    for (int64_t e = 0; e < E; ++e) row[e] += g[e];
  }
}

// Inverted dropout: mask[i] = (u(seed, key(i)) >= p) / (1 - p); y = x * mask. The keys
// (rng.h: DropoutKeys) make it plain, locked (per sequence) or per word.
template <typename T>
void dropoutForward(const T* x, int64_t n, double p, uint64_t seed, const DropoutKeys& keys, T* mask, T* y) {
  for (int64_t i = 0; i < n; ++i) {
    mask[i] = dropoutScale<T>(seed, keys(i), p);
    y[i] = x[i] * mask[i];
  }
}

// Activation regularization (AR) and temporal activation regularization (TAR) of x [T, R]
// (Merity et al. 2017), added to out[0] and their gradients to dx:
//   loss = alpha mean_{t,r} x[t,r]^2 + beta mean_{t>=1,r} (x[t,r] - x[t-1,r])^2
//   dx[t,r] += 2 alpha x[t,r] / (T R) + 2 beta (d[t,r] - d[t+1,r]) / ((T-1) R),
//   d[t,r] = x[t,r] - x[t-1,r] for 1 <= t < T, and 0 outside.
template <typename T>
void activationRegularization(const T* x, int64_t Tn, int64_t R, double alpha, double beta, T* dx, T* out) {
  double loss = 0;
  if (alpha > 0) {
    const double c = 2 * alpha / double(Tn * R);
    double s = 0;
    for (int64_t i = 0; i < Tn * R; ++i) {
      s += double(x[i]) * double(x[i]);
      dx[i] += T(c * double(x[i]));
    }
    loss += alpha * s / double(Tn * R);
  }
  if (beta > 0 && Tn > 1) {
    const double c = 2 * beta / double((Tn - 1) * R);
    double s = 0;
    for (int64_t t = 1; t < Tn; ++t)
      for (int64_t r = 0; r < R; ++r) {
        const double d = double(x[t * R + r]) - double(x[(t - 1) * R + r]);
        s += d * d;
        dx[t * R + r] += T(c * d);
        dx[(t - 1) * R + r] -= T(c * d);
      }
    loss += beta * s / double((Tn - 1) * R);
  }
  out[0] += T(loss);
}

// Running mean (iterate averaging, e.g. ASGD): avg += weight (x - avg).
template <typename T>
void average(T* avg, const T* x, int64_t n, double weight) {
  const T w = T(weight);
  for (int64_t i = 0; i < n; ++i) avg[i] += w * (x[i] - avg[i]);
}

// out = a * b elementwise (dropout backward: dx = dy * mask).
template <typename T>
void multiply(const T* a, const T* b, int64_t n, T* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

// y[N, O] = x[N, I] W[O, I]^T + b[O]; batchInvariant: see gemmForward (blas.h).
template <typename T>
void linearForward(const T* x, const T* W, const T* b, int64_t N, int64_t I, int64_t O, T* y, bool batchInvariant) {
  if (b) {
    for (int64_t n = 0; n < N; ++n) std::memcpy(y + n * O, b, sizeof(T) * O);
  }
  gemmForward(batchInvariant, N, O, I, x, I, W, I, b != nullptr, y, O);
}

// dx[N, I] (=|+=) dy W;  dW[O, I] += dy^T x;  db[O] += sum_n dy[n, :]
template <typename T>
void linearBackward(const T* x, const T* W, const T* dy, int64_t N, int64_t I, int64_t O, T* dx,
                    bool accumulateDx, T* dW, T* db) {
  if (dx) gemm(false, false, N, I, O, T(1), dy, O, W, I, accumulateDx ? T(1) : T(0), dx, I);
  if (dW) gemm(true, false, O, I, N, T(1), dy, O, x, I, T(1), dW, I);
  if (db) {
    for (int64_t n = 0; n < N; ++n) {
      const T* r = dy + n * O;
      for (int64_t o = 0; o < O; ++o) db[o] += r[o];
    }
  }
}

// Fused log-softmax + negative log-likelihood with an ignore index.
//   loss = (1/C) sum_{n: t_n != ignore} -(z[n, t_n] - logsumexp_v z[n, v]),  C = divisor, or the counted rows
//   dz[n, v] = (softmax(z[n])_v - [v == t_n]) / C  for counted rows, 0 for ignored ones.
// out[0] = loss (accumulate: out[0] += loss), out[1] = counted rows (accumulate: left as is).
// dz may alias z (the logits are overwritten). A divisor lets several of these make one mean: the
// adaptive softmax's head and clusters (lib/nn/decoder.ts) over the same counted targets.
template <typename T>
void crossEntropy(const T* z, const int32_t* targets, int64_t N, int64_t V, int64_t ignoreIndex,
                  T* out, T* dz, double divisor, bool accumulate) {
  int64_t count = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    if (t == ignoreIndex) continue;
    RNNLM_CHECK(t >= 0 && t < V, Code::InvalidArgument,
                "target id %d at position %lld is outside the vocabulary [0, %lld)", t, (long long)n,
                (long long)V);
    ++count;
  }
  const double c = divisor > 0 ? divisor : double(count);
  const double inv = c > 0 ? 1.0 / c : 0.0;
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T* row = z + n * V;
    const int32_t t = targets[n];
    T* drow = dz ? dz + n * V : nullptr;
    if (t == ignoreIndex) {
      if (drow) std::fill(drow, drow + V, T(0));
      continue;
    }
    const T zt = row[t];  // read before drow (which may be row) is overwritten
    const T mx = maxOf(row, V);
    const double sum = expShiftSum(row, V, mx, drow);
    total += double(mx) + std::log(sum) - double(zt);
    if (drow) {
      scaleInPlace(drow, V, T(inv / sum));
      drow[t] -= T(inv);
    }
  }
  if (accumulate) {
    out[0] += T(total * inv);
  } else {
    out[0] = T(total * inv);
    out[1] = T(count);
  }
}

// out[n, :] = z[n, :] - logsumexp(z[n, :]) (may alias).
template <typename T>
void logSoftmax(const T* z, int64_t N, int64_t V, T* out) {
  for (int64_t n = 0; n < N; ++n) {
    const T* row = z + n * V;
    T* o = out + n * V;
    const T mx = maxOf(row, V);
    const T lse = T(double(mx) + std::log(expShiftSum(row, V, mx, nullptr)));
    for (int64_t v = 0; v < V; ++v) o[v] = row[v] - lse;
  }
}

// A block of columns of a wider log-probability matrix (the adaptive softmax's full distribution):
//   out[n, col + j] = x[n, j] - logsumexp(x[n, :]) + (shift ? shift[n * S + shiftCol] : 0),  j < count
// x [N, K], out [N, W], shift [N, S]. x, out and shift are separate.
template <typename T>
void logSoftmaxInto(const T* x, int64_t N, int64_t K, T* out, int64_t W, int64_t col, int64_t count, const T* shift,
                    int64_t S, int64_t shiftCol) {
  for (int64_t n = 0; n < N; ++n) {
    const T* row = x + n * K;
    const T mx = maxOf(row, K);
    const T lse = T(double(mx) + std::log(expShiftSum(row, K, mx, nullptr)));
    const T add = (shift ? shift[n * S + shiftCol] : T(0)) - lse;
    T* o = out + n * W + col;
    for (int64_t j = 0; j < count; ++j) o[j] = row[j] + add;
  }
}

// Sampling (SampleArgs in common/sample.h): for row n with u = uniform01(seed, n) (per-row seeds: a.uniform),
//   w_v = exp((z_v - max z) / temperature) for allowed v (0 otherwise), W = sum_v w_v,
//   ids[n] = the first v, in increasing id order, whose running sum of w exceeds u W.
// With topK / topP the candidates are instead the allowed ids sorted by z (largest first), cut
// to the first topK, then to the shortest prefix whose weight reaches topP W, walked in that
// order. Temperature 0 (or weights that underflow) gives the argmax. Reference for
// kernels::sample. When values is given, values[n] = z[n, ids[n]].
//
// The argmax: the first allowed id whose value no later allowed one exceeds (a NaN is never larger;
// the first allowed value wins if it is a NaN), as the loop at the end computes it. The same id
// comes faster from the row's vectorised max: the first allowed id holding it (checking the
// exclusions only there), unless that first value is a NaN or every id holding the max is excluded.
// m = maxOf(row, V): NaNs skipped, but row[0]'s may be kept (then the loop).
template <typename T>
int64_t argmaxAllowed(const T* row, int64_t V, T m, const SampleArgs& a) {
  int64_t first = 0;
  while (first < V && !a.allowed(first)) ++first;
  if (first == V) return -1;
  if (row[first] == row[first]) {
    if (m == m)
      for (int64_t v = 0; v < V; ++v)
        if (row[v] == m && a.allowed(v)) return v;
  }
  int64_t best = -1;
  for (int64_t v = 0; v < V; ++v)
    if (a.allowed(v) && (best < 0 || row[v] > row[best])) best = v;
  return best;
}

template <typename T>
void sample(const T* z, int64_t N, int64_t V, const SampleArgs& a, int32_t* ids, T* values, const int32_t* live) {
  thread_local std::vector<T> w, scaled;
  thread_local std::vector<int32_t> order;
  for (int64_t n = 0; n < N; ++n) {
    const T* row = z + n * V;
    const T rowMax = maxOf(row, V);
    const int64_t best = argmaxAllowed(row, V, rowMax, a);
    ids[n] = int32_t(best);
    if (a.temperature == 0 || !std::isfinite(double(row[best]))) continue;
    const double u = double(a.uniform(live, n));
    const T inv = T(1 / a.temperature);
    if (a.plain()) {
      // Shift by the max over all ids (excluded ones too), so no weight overflows.
      w.resize(size_t(V));
      const T* x = row;
      if (inv != T(1)) {
        scaled.resize(size_t(V));
        for (int64_t v = 0; v < V; ++v) scaled[v] = row[v] * inv;
        x = scaled.data();
      }
      double total = expShiftSum(x, V, x == row ? rowMax : maxOf(x, V), w.data());
      for (int32_t i = 0; i < a.nExclude; ++i) total -= double(w[a.exclude[i]]), w[a.exclude[i]] = T(0);
      if (!(total > 0)) continue;  // every allowed weight underflowed: keep the argmax
      double r = u * total;
      for (int64_t v = 0; v < V; ++v) {
        if (w[v] == T(0)) continue;
        ids[n] = int32_t(v);
        r -= double(w[v]);
        if (r < 0) break;
      }
      continue;
    }
    order.clear();
    for (int64_t v = 0; v < V; ++v)
      if (a.allowed(v)) order.push_back(int32_t(v));
    const auto larger = [row](int32_t i, int32_t j) { return row[i] > row[j] || (row[i] == row[j] && i < j); };
    const size_t k = a.topK > 0 ? std::min(order.size(), size_t(a.topK)) : order.size();
    std::partial_sort(order.begin(), order.begin() + ptrdiff_t(k), order.end(), larger);
    order.resize(k);
    w.resize(k);
    double total = 0;
    for (size_t j = 0; j < k; ++j) total += double(w[j] = T(std::exp(double(row[order[j]] - row[best]) * double(inv))));
    size_t keep = k;
    if (a.topP < 1) {
      double acc = 0;
      keep = 0;
      while (keep < k && acc < a.topP * total) acc += double(w[keep++]);
      total = acc;
    }
    double r = u * total;
    for (size_t j = 0; j < keep; ++j) {
      ids[n] = order[j];
      r -= double(w[j]);
      if (r < 0) break;
    }
  }
  // In one pass after the draws: a row's draw ends in any of several places.
  if (values)
    for (int64_t n = 0; n < N; ++n) values[n] = z[n * V + ids[n]];
}

// Global-norm clipping (PyTorch clip_grad_norm_): norm = ||g||_2;
// g *= min(1, maxNorm / (norm + 1e-6)). maxNorm <= 0 only measures.
// out[0] = norm before clipping (NaN/Inf when the gradient is not finite; then g is left alone).
template <typename T>
void clipGradNorm(T* g, int64_t n, double maxNorm, T* out) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(g[i]) * double(g[i]);
  const double norm = std::sqrt(ss);
  out[0] = T(norm);
  if (maxNorm > 0 && std::isfinite(norm)) {
    const double coef = maxNorm / (norm + 1e-6);
    if (coef < 1) {
      for (int64_t i = 0; i < n; ++i) g[i] = T(g[i] * coef);
    }
  }
}

// g = clamp(g, -v, v)
template <typename T>
void clipValue(T* g, int64_t n, double v) {
  const T lo = T(-v), hi = T(v);
  for (int64_t i = 0; i < n; ++i) g[i] = std::min(hi, std::max(lo, g[i]));
}

template <typename T>
void sgd(T* p, const T* g, T* buf, int64_t n, const SgdParams& s) {
  for (int64_t i = 0; i < n; ++i) {
    double d = double(g[i]) + s.weightDecay * double(p[i]);
    if (s.momentum != 0) {
      const double b = s.step == 1 ? d : s.momentum * double(buf[i]) + (1 - s.dampening) * d;
      buf[i] = T(b);
      d = s.nesterov ? d + s.momentum * b : b;
    }
    p[i] = T(double(p[i]) - s.lr * d);
  }
}

// PyTorch Adam / AdamW (AdamParams, AdamScalars in common/optim.h).
template <typename T>
void adam(T* p, const T* g, T* m, T* v, int64_t n, const AdamParams& a) {
  const AdamScalars s = adamScalars(a);
  adamKernel(p, g, m, v, n, T(a.beta1), T(a.beta2), T(s.l2), T(s.shrink), T(s.stepSize), T(s.invSqrtBc2), T(a.eps));
}

}  // namespace rnnlm::cpu
