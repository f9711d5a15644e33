// Our CUDA kernels. Each is headed by the math it computes; the CPU op named there is its
// reference (the GPU parity suite compares them on the same inputs).
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "../common/rng.h"
#include "../common/sample.h"
#include "grid.cuh"
#include "kernels.h"

namespace rnnlm::cuda::kernels {
namespace {

template <typename T>
__global__ void fillKernel(T* p, int64_t n, T v) {
  GRID_STRIDE(i, n) p[i] = v;
}

// out[n, e] = table[ids[n], e]   (cpu::embeddingForward). An id outside [0, V) raises the
// error flag and writes zeros.
__global__ void embeddingForwardKernel(const float* table, int64_t V, int64_t E, const int32_t* ids, int64_t N,
                                       float* out, int* err) {
  GRID_STRIDE(i, N * E) {
    const int64_t n = i / E, e = i % E;
    const int32_t id = ids[n];
    if (id < 0 || id >= V) {
      atomicMax(err, kErrTokenId);
      out[i] = 0.f;
    } else {
      out[i] = table[int64_t(id) * E + e];
    }
  }
}

// dtable[ids[n], e] += dout[n, e] for ids[n] != pad   (cpu::embeddingBackward; atomic adds,
// so the summation order, and the last bits, may differ from the CPU).
__global__ void embeddingBackwardKernel(const int32_t* ids, int64_t N, const float* dout, int64_t V, int64_t E,
                                        int64_t pad, float* dtable, int* err) {
  GRID_STRIDE(i, N * E) {
    const int64_t n = i / E, e = i % E;
    const int32_t id = ids[n];
    if (id < 0 || id >= V) {
      atomicMax(err, kErrTokenId);
    } else if (id != pad) {
      atomicAdd(dtable + int64_t(id) * E + e, dout[i]);
    }
  }
}

// mask[i] = (u(seed, key(i)) >= p) / (1 - p); y[i] = x[i] mask[i]   (cpu::dropoutForward, same RNG
// and keys: the masks are identical on both backends).
__global__ void dropoutKernel(const float* x, int64_t n, double p, uint64_t seed, rnnlm::DropoutKeys keys, float* mask,
                              float* y) {
  GRID_STRIDE(i, n) {
    const float m = rnnlm::dropoutScale<float>(seed, keys(i), p);
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

// avg[i] += weight (x[i] - avg[i])   (cpu::average)
__global__ void averageKernel(float* avg, const float* x, int64_t n, float weight) {
  GRID_STRIDE(i, n) avg[i] += weight * (x[i] - avg[i]);
}

// out[i] = a[i] b[i]   (cpu::multiply)
__global__ void multiplyKernel(const float* a, const float* b, int64_t n, float* out) {
  GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}

// y[n, o] = b[o]   (the bias part of cpu::linearForward; cuBLAS then adds x W^T)
__global__ void broadcastRowsKernel(const float* b, int64_t N, int64_t O, float* y) {
  GRID_STRIDE(i, N * O) y[i] = b[i % O];
}

// db[o] += sum_n dy[n, o]   (the bias part of cpu::linearBackward): one thread per column.
__global__ void columnSumKernel(const float* dy, int64_t N, int64_t O, float* db) {
  GRID_STRIDE(o, O) {
    float s = 0.f;
    for (int64_t n = 0; n < N; ++n) s += dy[n * O + o];
    db[o] += s;
  }
}

template <typename Op>
__device__ float blockReduce(float v, Op op, float identity) {
  __shared__ float shared[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, off));
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = threadIdx.x < (blockDim.x + 31) / 32 ? shared[lane] : identity;
  if (warp == 0)
    for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, off));
  __syncthreads();
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  return shared[0];
}

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// lse = max_v z[v] + log sum_v exp(z[v] - max), by the whole block (every thread gets it).
__device__ float blockLogSumExp(const float* row, int64_t V) {
  float mx = -FLT_MAX;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, row[v]);
  mx = blockReduce(mx, MaxOp{}, -FLT_MAX);
  float sum = 0.f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) sum += expf(row[v] - mx);
  sum = blockReduce(sum, SumOp{}, 0.f);
  return mx + logf(sum);
}

// count = |{n : t_n != ignore}| into scratch[N + 1]; targets outside [0, V) raise the flag.
__global__ void countTargetsKernel(const int32_t* targets, int64_t N, int64_t V, int64_t ignore, float* scratch,
                                   int* err) {
  float c = 0.f;
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) {
    const int32_t t = targets[n];
    if (t == ignore) continue;
    if (t < 0 || t >= V) atomicMax(err, kErrTargetId);
    else c += 1.f;
  }
  c = blockReduce(c, SumOp{}, 0.f);
  if (threadIdx.x == 0) scratch[N + 1] = c;
}

// One block per row n (cpu::crossEntropy):
//   lse = max + log sum_v exp(z[n, v] - max);  rowLoss[n] = lse - z[n, t_n]
//   dz[n, v] = (exp(z[n, v] - lse) - [v == t_n]) / C;  ignored rows: dz = 0, rowLoss = 0.
//   C = divisor when > 0, else count.
__global__ void crossEntropyRowsKernel(const float* z, const int32_t* targets, int64_t V, int64_t ignore,
                                       float* dz, float* scratch, int64_t N, double divisor) {
  const int64_t n = blockIdx.x;
  const float* row = z + n * V;
  float* drow = dz ? dz + n * V : nullptr;
  const int32_t t = targets[n];
  const bool counted = t != ignore && t >= 0 && t < V;
  if (!counted) {
    if (drow)
      for (int64_t v = threadIdx.x; v < V; v += blockDim.x) drow[v] = 0.f;
    if (threadIdx.x == 0) scratch[n] = 0.f;
    return;
  }
  const float lse = blockLogSumExp(row, V);
  const float zt = row[t];  // before drow (possibly row itself) is written
  __syncthreads();
  if (drow) {
    const float inv = divisor > 0 ? float(1.0 / divisor) : 1.f / fmaxf(scratch[N + 1], 1.f);
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) drow[v] = (expf(row[v] - lse) - (v == t ? 1.f : 0.f)) * inv;
  }
  if (threadIdx.x == 0) scratch[n] = lse - zt;
}

// AR and TAR of x [T, R] (cpu::activationRegularization): per element
//   dx[i] += 2 alpha x[i] / (T R) + 2 beta (d[t] - d[t+1]) / ((T-1) R),  d[t] = x[t] - x[t-1] (0 outside 1..T-1),
// and out[0] += alpha mean x^2 + beta mean d^2, reduced per block, then one atomicAdd per block.
__global__ void activationRegularizationKernel(const float* x, int64_t Tn, int64_t R, double alpha, double beta,
                                               float* dx, float* out) {
  const int64_t n = Tn * R;
  const double ca = 2 * alpha / double(n), cb = Tn > 1 ? 2 * beta / double((Tn - 1) * R) : 0;
  float part = 0.f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / R;
    const float d = t > 0 ? x[i] - x[i - R] : 0.f, dn = t + 1 < Tn ? x[i + R] - x[i] : 0.f;
    dx[i] += float(ca * x[i] + cb * (d - dn));
    part += float(ca * 0.5 * x[i] * x[i] + cb * 0.5 * d * d);
  }
  const float total = blockReduce(part, SumOp{}, 0.f);
  if (threadIdx.x == 0) atomicAdd(out, total);
}

// out[0] = sum_n rowLoss[n] / C, out[1] = count (0 when nothing is counted); C as above.
// accumulate: out[0] += the loss, out[1] is left as is.
__global__ void crossEntropyMeanKernel(const float* scratch, int64_t N, float* out, double divisor, bool accumulate) {
  double s = 0;
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) s += scratch[n];
  const float total = blockReduce(float(s), SumOp{}, 0.f);
  if (threadIdx.x == 0) {
    const float count = scratch[N + 1];
    const float c = divisor > 0 ? float(divisor) : count;
    const float loss = c > 0 ? total / c : 0.f;
    if (accumulate) {
      out[0] += loss;
    } else {
      out[0] = loss;
      out[1] = count;
    }
  }
}

// out[n, v] = z[n, v] - logsumexp(z[n, :])   (cpu::logSoftmax), one block per row.
__global__ void logSoftmaxKernel(const float* z, int64_t V, float* out) {
  const int64_t n = blockIdx.x;
  const float* row = z + n * V;
  const float lse = blockLogSumExp(row, V);
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) out[n * V + v] = row[v] - lse;
}

// out[n, col + j] = x[n, j] - logsumexp(x[n, :]) + (shift ? shift[n * S + shiftCol] : 0), j < count
// (cpu::logSoftmaxInto), one block per row.
__global__ void logSoftmaxIntoKernel(const float* x, int64_t K, float* out, int64_t W, int64_t col, int64_t count,
                                     const float* shift, int64_t S, int64_t shiftCol) {
  const int64_t n = blockIdx.x;
  const float* row = x + n * K;
  const float add = (shift ? shift[n * S + shiftCol] : 0.f) - blockLogSumExp(row, K);
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) out[n * W + col + j] = row[j] + add;
}

// Sampling, whole-distribution mode (cpu::sample with topK 0, topP 1), one block per row n:
//   x_v = z_v / temperature, w_v = exp(x_v - max_all x) for allowed v (0 otherwise), W = sum w,
//   ids[n] = the first v in id order whose running sum of w exceeds u W, u = uniform01(seed, n)
//   (per-row seeds: SampleArgs::uniform);
//   temperature 0, or W = 0, gives the argmax over allowed ids (the lowest id among equals);
//   values[n] = z[n, ids[n]] when values is not null.
// Each thread owns a contiguous chunk of the row, so the running sum is the chunk totals
// scanned in thread order followed by one walk inside the chunk that holds u W.
__global__ void sampleKernel(const float* z, int64_t V, SampleArgs a, int32_t* ids, float* values, const int32_t* seed) {
  a.seedFrom(seed);
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  __shared__ int owner;
  __shared__ float rest;
  const int64_t n = blockIdx.x;
  const float* row = z + n * V;
  const int tid = threadIdx.x;
  const int64_t chunk = (V + blockDim.x - 1) / blockDim.x;
  const int64_t lo = min(V, int64_t(tid) * chunk), hi = min(V, lo + chunk);
  // Argmax over allowed ids, the first one winning ties (as the CPU's ascending scan).
  float bv = -FLT_MAX;
  int64_t bi = V;
  for (int64_t v = lo; v < hi; ++v)
    if (a.allowed(v) && (bi == V || row[v] > bv)) bv = row[v], bi = v;
  sv[tid] = bv;
  si[tid] = bi;
  __syncthreads();
  if (tid == 0) {
    for (int t = 1; t < int(blockDim.x); ++t)
      if (si[t] != V && (si[0] == V || sv[t] > sv[0])) sv[0] = sv[t], si[0] = si[t];
  }
  __syncthreads();
  const int64_t best = si[0];
  const float bestValue = sv[0];
  __syncthreads();
  // The thread that writes ids[n] writes values[n] too.
  const auto put = [&](int64_t id) {
    ids[n] = int32_t(id);
    if (values) values[n] = row[id];
  };
  if (a.temperature == 0 || !isfinite(bestValue)) {
    if (tid == 0) put(best);
    return;
  }
  const float inv = float(1.0 / a.temperature);
  float mx = -FLT_MAX;
  for (int64_t v = lo; v < hi; ++v) mx = fmaxf(mx, row[v] * inv);
  mx = blockReduce(mx, MaxOp{}, -FLT_MAX);
  float local = 0.f;
  for (int64_t v = lo; v < hi; ++v)
    if (a.allowed(v)) local += expf(row[v] * inv - mx);
  sv[tid] = local;
  __syncthreads();
  if (tid == 0) {
    float total = 0.f;
    for (int t = 0; t < int(blockDim.x); ++t) total += sv[t];
    owner = -1;
    if (total > 0.f) {
      float r = a.uniform(seed, n) * total;
      int last = -1;
      for (int t = 0; t < int(blockDim.x) && owner < 0; ++t) {
        if (sv[t] == 0.f) continue;
        last = t;
        if (r < sv[t]) owner = t, rest = r;
        else r -= sv[t];
      }
      if (owner < 0) owner = last, rest = sv[last];  // rounding left r past the end: the last weight
    }
    if (owner < 0) put(best);
  }
  __syncthreads();
  if (tid == owner) {
    float r = rest;
    int64_t id = best;
    for (int64_t v = lo; v < hi; ++v) {
      if (!a.allowed(v)) continue;
      const float w = expf(row[v] * inv - mx);
      if (w == 0.f) continue;
      id = v;
      r -= w;
      if (r < 0.f) break;
    }
    put(id);
  }
}

// partial[b] = sum over block b's grid-stride share of g[i]^2 (double accumulation).
__global__ void sumSquaresKernel(const float* g, int64_t n, double* partial) {
  __shared__ double shared[kThreads];
  double s = 0;
  GRID_STRIDE(i, n) s += double(g[i]) * double(g[i]);
  shared[threadIdx.x] = s;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k /= 2) {
    if (threadIdx.x < k) shared[threadIdx.x] += shared[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = shared[0];
}

// norm = sqrt(sum partial); out[0] = norm; scale = min(1, maxNorm / (norm + 1e-6)), or 1 when
// maxNorm <= 0 or the norm is not finite (cpu::clipGradNorm). No host round trip.
__global__ void normScaleKernel(const double* partial, int blocks, double maxNorm, float* out, double* scale) {
  if (threadIdx.x != 0) return;
  double s = 0;
  for (int b = 0; b < blocks; ++b) s += partial[b];
  const double norm = sqrt(s);
  out[0] = float(norm);
  double c = 1;
  if (maxNorm > 0 && isfinite(norm)) c = fmin(1.0, maxNorm / (norm + 1e-6));
  *scale = c;
}

__global__ void scaleKernel(float* g, int64_t n, const double* scale) {
  const double c = *scale;
  if (c >= 1) return;
  GRID_STRIDE(i, n) g[i] = float(g[i] * c);
}

// g = clamp(g, -v, v)   (cpu::clipValue)
__global__ void clipValueKernel(float* g, int64_t n, float v) {
  GRID_STRIDE(i, n) g[i] = fminf(v, fmaxf(-v, g[i]));
}

// PyTorch SGD (cpu::sgd): d = g + wd p; buf = first ? d : m buf + (1 - damp) d;
// d = nesterov ? d + m buf : buf (momentum > 0); p -= lr d.
__global__ void sgdKernel(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float dampening,
                          float wd, bool nesterov, bool first, const float* guard, int guardN, const int32_t* live,
                          int* err) {
  if (!allFinite(guard, guardN)) return;  // a non-finite loss or gradient: skip the step
  if (live) {  // this step's, written before a graph's replay
    double l = lr;
    int64_t step = 0;
    if (!applyLive(live, l, step)) {  // every thread reads the same: all return
      if (blockIdx.x == 0 && threadIdx.x == 0) atomicMax(err, kErrLive);
      return;
    }
    lr = float(l);
    first = step == 1;
  }
  GRID_STRIDE(i, n) {
    float d = g[i] + wd * p[i];
    if (momentum != 0.f) {
      const float b = first ? d : momentum * buf[i] + (1.f - dampening) * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] -= lr * d;
  }
}

// PyTorch Adam / AdamW (cpu::adam via vecmath.h adamImpl), with the scalars of adamScalars (common/optim.h):
//   g' = g + l2 p; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
//   p = p shrink - stepSize m / (sqrt(v) invSqrtBc2 + eps)
// With live, each block's first thread computes the scalars of this step (live's lr and step,
// in double as the host would) for the block.
__global__ void adamKernel(float* p, const float* g, float* m, float* v, int64_t n, float b1, float b2, float l2,
                           float shrink, float stepSize, float invSqrtBc2, float eps, const float* guard, int guardN,
                           AdamParams base, const int32_t* live, int* err) {
  if (!allFinite(guard, guardN)) return;  // a non-finite loss or gradient: skip the step (uniform: all threads)
  if (live) {
    __shared__ float sc[4];
    if (!applyLive(live, base.lr, base.step)) {  // every thread reads the same: all return
      if (blockIdx.x == 0 && threadIdx.x == 0) atomicMax(err, kErrLive);
      return;
    }
    if (threadIdx.x == 0) {
      const AdamScalars s = adamScalars(base);
      sc[0] = float(s.l2), sc[1] = float(s.shrink), sc[2] = float(s.stepSize), sc[3] = float(s.invSqrtBc2);
    }
    __syncthreads();
    l2 = sc[0], shrink = sc[1], stepSize = sc[2], invSqrtBc2 = sc[3];
  }
  GRID_STRIDE(i, n) {
    const float gi = g[i] + l2 * p[i];
    const float mi = b1 * m[i] + (1.f - b1) * gi;
    const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * shrink - stepSize * mi / (sqrtf(vi) * invSqrtBc2 + eps);
  }
}

}  // namespace

void fill(Stream s, float* p, int64_t n, float v) { fillKernel<<<blocksFor(n), kThreads, 0, s>>>(p, n, v); }
void fill(Stream s, int32_t* p, int64_t n, int32_t v) { fillKernel<<<blocksFor(n), kThreads, 0, s>>>(p, n, v); }

void embeddingForward(Stream s, const float* table, int64_t V, int64_t E, const int32_t* ids, int64_t N, float* out,
                      int* err) {
  embeddingForwardKernel<<<blocksFor(N * E), kThreads, 0, s>>>(table, V, E, ids, N, out, err);
}
void embeddingBackward(Stream s, const int32_t* ids, int64_t N, const float* dout, int64_t V, int64_t E, int64_t pad,
                       float* dtable, int* err) {
  embeddingBackwardKernel<<<blocksFor(N * E), kThreads, 0, s>>>(ids, N, dout, V, E, pad, dtable, err);
}
void dropoutForward(Stream s, const float* x, int64_t n, double p, uint64_t seed, const DropoutKeys& keys, float* mask,
                    float* y) {
  dropoutKernel<<<blocksFor(n), kThreads, 0, s>>>(x, n, p, seed, keys, mask, y);
}
void activationRegularization(Stream s, const float* x, int64_t Tn, int64_t R, double alpha, double beta, float* dx,
                              float* out) {
  activationRegularizationKernel<<<blocksFor(Tn * R), kThreads, 0, s>>>(x, Tn, R, alpha, beta, dx, out);
}
void average(Stream s, float* avg, const float* x, int64_t n, double weight) {
  averageKernel<<<blocksFor(n), kThreads, 0, s>>>(avg, x, n, float(weight));
}
void multiply(Stream s, const float* a, const float* b, int64_t n, float* out) {
  multiplyKernel<<<blocksFor(n), kThreads, 0, s>>>(a, b, n, out);
}
void broadcastRows(Stream s, const float* b, int64_t N, int64_t O, float* y) {
  broadcastRowsKernel<<<blocksFor(N * O), kThreads, 0, s>>>(b, N, O, y);
}
void columnSumAdd(Stream s, const float* dy, int64_t N, int64_t O, float* db) {
  columnSumKernel<<<blocksFor(O), kThreads, 0, s>>>(dy, N, O, db);
}
void crossEntropy(Stream s, const float* z, const int32_t* targets, int64_t N, int64_t V, int64_t ignore, float* out,
                  float* dz, float* scratch, int* err, double divisor, bool accumulate) {
  countTargetsKernel<<<1, 1024, 0, s>>>(targets, N, V, ignore, scratch, err);
  crossEntropyRowsKernel<<<unsigned(N), kThreads, 0, s>>>(z, targets, V, ignore, dz, scratch, N, divisor);
  crossEntropyMeanKernel<<<1, 1024, 0, s>>>(scratch, N, out, divisor, accumulate);
}

void logSoftmaxInto(Stream s, const float* x, int64_t N, int64_t K, float* out, int64_t W, int64_t col, int64_t count,
                    const float* shift, int64_t S, int64_t shiftCol) {
  if (N == 0) return;
  logSoftmaxIntoKernel<<<unsigned(N), kThreads, 0, s>>>(x, K, out, W, col, count, shift, S, shiftCol);
}
void logSoftmax(Stream s, const float* z, int64_t N, int64_t V, float* out) {
  logSoftmaxKernel<<<unsigned(N), kThreads, 0, s>>>(z, V, out);
}
void sample(Stream s, const float* z, int64_t N, int64_t V, const SampleArgs& a, int32_t* ids, float* values,
            const int32_t* seed) {
  sampleKernel<<<unsigned(N), kThreads, 0, s>>>(z, V, a, ids, values, seed);
}
void clipGradNorm(Stream s, float* g, int64_t n, double maxNorm, float* out, double* scratch) {
  const unsigned blocks = blocksFor(n) < 1024 ? blocksFor(n) : 1024;
  sumSquaresKernel<<<blocks, kThreads, 0, s>>>(g, n, scratch);
  normScaleKernel<<<1, 32, 0, s>>>(scratch, int(blocks), maxNorm, out, scratch + 1024);
  scaleKernel<<<blocksFor(n), kThreads, 0, s>>>(g, n, scratch + 1024);
}
void clipValue(Stream s, float* g, int64_t n, float v) { clipValueKernel<<<blocksFor(n), kThreads, 0, s>>>(g, n, v); }
void sgd(Stream s, float* p, const float* g, float* buf, int64_t n, double lr, double momentum, double dampening,
         double weightDecay, bool nesterov, bool first, const float* guard, int guardN, const int32_t* live, int* err) {
  sgdKernel<<<blocksFor(n), kThreads, 0, s>>>(p, g, buf, n, float(lr), float(momentum), float(dampening),
                                              float(weightDecay), nesterov, first, guard, guardN, live, err);
}
void adam(Stream s, float* p, const float* g, float* m, float* v, int64_t n, float b1, float b2, float l2, float shrink,
          float stepSize, float invSqrtBc2, float eps, const float* guard, int guardN, const AdamParams* base,
          const int32_t* live, int* err) {
  adamKernel<<<blocksFor(n), kThreads, 0, s>>>(p, g, m, v, n, b1, b2, l2, shrink, stepSize, invSqrtBc2, eps, guard, guardN,
                                               base ? *base : AdamParams{}, live, err);
}

}  // namespace rnnlm::cuda::kernels
