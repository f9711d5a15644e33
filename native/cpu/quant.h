// Quantized inference on the CPU: int8 weights with one float scale per output row (the
// embedding's rows, each weight_ih / weight_hh / decoder row), float activations and states.
//
//   weights (at quantize time, lib/nn/quantize.ts):  sw[n] = max_k |W[n, k]| / 127,  qw = round(W / sw)
//   activations (per call, quantizeRows below):      sa[m] = max_k |A[m, k]| / 127,  qa = round(A / sa)
//   C[m, n] = float(sum_k qa[m, k] qw[n, k]) * (sa[m] sw[n])        (gemmQ8, gemm_q8_simd.inc)
//
// The activations are quantized per row and per call, as PyTorch's dynamic quantization does
// (per tensor there): integer products then read a quarter of the float bytes and do 32 products
// per instruction, where dequantizing each weight to float would cost more than the multiply it
// feeds. The integer sum is exact, so the result equals float math on the dequantized A and W up
// to one rounding, and rows never depend on the batch (batch-invariant for free).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../common/status.h"
#include "blas.h"
#include "q8_pack.h"

namespace rnnlm::cpu {

// The longest row whose int32 sum of products cannot overflow: K * 127^2 < 2^31.
constexpr int64_t kQ8MaxK = (int64_t(1) << 31) / (127 * 127);

// s[m] = max |A[m, :]| / 127 and q[m, :] = round(A[m, :] / s[m]) (to nearest even), q = 0 for a zero
// row. A row holding a NaN or an infinity gets s = NaN and q = 0, so its outputs are NaN as float
// math would make them.
inline void quantizeRows(int64_t M, int64_t K, const float* A, int64_t lda, int8_t* q, float* s) {
  for (int64_t m = 0; m < M; ++m) {
    const float* a = A + m * lda;
    int8_t* qm = q + m * K;
    // One vectorised pass: the max of |a|, and whether any |a| is not <= FLT_MAX (inf or NaN).
    float mx = 0;
    int bad = 0;
#pragma omp simd reduction(max : mx) reduction(| : bad)
    for (int64_t k = 0; k < K; ++k) {
      const float v = std::fabs(a[k]);
      bad |= !(v <= 3.40282347e38f);
      mx = v > mx ? v : mx;
    }
    const bool finite = !bad;
    if (!finite || mx == 0) {
      std::fill(qm, qm + K, int8_t(0));
      s[m] = finite ? 0.0f : NAN;
      continue;
    }
    // Below 127 / FLT_MAX (~3.7e-37) 127 / mx overflows to inf (and 0 * inf is a NaN cast to int8):
    // such a row is scaled by 2^64 first, exactly, so q is what float32 math without overflow gives.
    const float up = mx < 1e-30f ? 0x1p64f : 1.0f;
    const float inv = 127.0f / (mx * up);
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) {
      // |a inv| <= 127 (up to rounding): the 1.5 * 2^23 trick rounds to nearest even.
      float r = (a[k] * up * inv + 12582912.0f) - 12582912.0f;
      r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
      qm[k] = int8_t(r);
    }
    s[m] = mx / 127.0f;
  }
}

// A product of at least kQ8ShareMacs is shared with the helper thread (as gemmForward's float
// kernel is), in kQ8Chunks chunks of columns: int8 products run about twice the float kernel's rate.
constexpr int64_t kQ8ShareMacs = int64_t(1) << 24;
constexpr int kQ8Chunks = 8;

// C[0, :N] (= or +=) the quantized row q (scale sa) times W^T, from W's packed copy P (q8_pack.h),
// shared in chunks of whole groups of blocks.
inline void gemvForwardQ8(int64_t N, int64_t K, const int8_t* q, float sa, const uint8_t* P, const float* sw,
                          bool accumulate, float* C) {
  const int64_t K4 = (K + 3) / 4, blocks = (N + 15) / 16;
  thread_local std::vector<int32_t> a4;
  a4.assign(size_t(K4), 0);
  std::memcpy(a4.data(), q, size_t(K));
  int32_t sumA = 0;
  for (int64_t k = 0; k < K; ++k) sumA += q[k];
  if (N * K < kQ8ShareMacs || blocks < 2 * kQ8Chunks || openblas_get_num_threads() < 2) {
    gemvQ8Packed(N, K4, a4.data(), sumA, sa, P, sw, 0, blocks, accumulate, C);
    return;
  }
  const int64_t width = (blocks + 8 * kQ8Chunks - 1) / (8 * kQ8Chunks) * 8;  // whole groups (q8_pack.h)
  const int32_t* a = a4.data();  // the helper has a thread_local a4 of its own
  HelperThread::get().forEach(int((blocks + width - 1) / width), [&](int i) {
    const int64_t b0 = i * width, b1 = blocks - b0 < width ? blocks : b0 + width;
    gemvQ8Packed(N, K4, a, sumA, sa, P, sw, b0, b1, accumulate, C);
  });
}

// C[M, N] (= or +=) A[M, K] (float) times W[N, K]^T (int8, row scales sw), a large product shared
// as above; the quantized rows of A live in this thread's scratch. A lone row takes W's packed copy
// where the CPU has AVX-512 VNNI.
inline void gemmForwardQ8(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const int8_t* W,
                          const float* sw, bool accumulate, float* C, int64_t ldc) {
  RNNLM_CHECK(K <= kQ8MaxK, Code::InvalidArgument,
              "int8 products need rows of at most %lld elements (got %lld)", (long long)kQ8MaxK, (long long)K);
  thread_local std::vector<int8_t> qa;
  thread_local std::vector<float> sa;
  if (int64_t(qa.size()) < M * K) qa.resize(size_t(M * K));
  if (int64_t(sa.size()) < M) sa.resize(size_t(M));
  quantizeRows(M, K, A, lda, qa.data(), sa.data());
  const int8_t* q = qa.data();
  const float* s = sa.data();
  if (M == 1 && K <= kQ8OffsetMaxK && hasQ8Packed())
    if (const Q8Packs::Pack pack = Q8Packs::get().find(W, K, N, K)) return gemvForwardQ8(N, K, q, s[0], pack->data(), sw, accumulate, C);
  if (M * N * K < kQ8ShareMacs || N < 8 * kQ8Chunks || openblas_get_num_threads() < 2)
    return gemmQ8(M, N, K, q, K, s, W, K, sw, accumulate, C, ldc);
  const int64_t width = (N + 8 * kQ8Chunks - 1) / (8 * kQ8Chunks) * 8;
  HelperThread::get().forEach(int((N + width - 1) / width), [&](int i) {
    const int64_t n0 = i * width, n = N - n0 < width ? N - n0 : width;
    gemmQ8(M, n, K, q, K, s, W + n0 * K, K, sw + n0, accumulate, C + n0, ldc);
  });
}

// out[n, :] = sw[ids[n]] * table[ids[n], :] (the dequantized rows).
inline void embeddingForwardQ8(const int8_t* table, const float* sw, int64_t V, int64_t E, const int32_t* ids,
                               int64_t N, float* out) {
  for (int64_t n = 0; n < N; ++n) {
    const int32_t id = ids[n];
    RNNLM_CHECK(id >= 0 && id < V, Code::InvalidArgument,
                "token id %d at position %lld is outside the vocabulary [0, %lld)", id, (long long)n, (long long)V);
    const int8_t* row = table + int64_t(id) * E;
    const float s = sw[id];
    float* o = out + n * E;
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) o[e] = float(row[e]) * s;
  }
}

// y = x W^T + b with W int8 [O, I] and its row scales.
inline void linearForwardQ8(const float* x, const int8_t* W, const float* sw, const float* b, int64_t N, int64_t I,
                            int64_t O, float* y) {
  if (b)
    for (int64_t n = 0; n < N; ++n) std::memcpy(y + n * O, b, sizeof(float) * O);
  gemmForwardQ8(N, O, I, x, I, W, sw, b != nullptr, y, O);
}

}  // namespace rnnlm::cpu
