// Vectorisable elementwise math for the CPU hot loops. float uses branch-free
// Cephes-style polynomials (about 1-2 ulp) that the compiler turns into SIMD code; double uses
// libm, so the float64 gradient checks test the exact math of the same templates. Also the
// batch-invariant GEMM of inference (gemmNT; gemm_nt_simd.inc says why) and the int8 GEMM of
// quantized inference (gemmQ8, gemm_q8_simd.inc).
//
// The float loops (vecmath_simd.inc, gemm_nt_simd.inc) are compiled twice on x86-64 with GCC: for AVX2+FMA and
// for the baseline (SSE2), and the first call picks one by CPUID; the elementwise ones a third time
// with AVX-512, used on the CPUs of the int8 kernel's VNNI build (one ladder of instruction sets:
// 16 lanes halve the exp passes over a 10,000-word row that each generated token makes). Not target_clones: the
// prebuilds are compiled by GCC 10 (an old-glibc root, scripts/prebuild.cjs), whose clones can
// only name one exact CPU model ("arch=haswell") or one ISA extension ("avx2" without FMA).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(RNNLM_NO_DISPATCH)
#define RNNLM_AVX2_DISPATCH 1
#else
#define RNNLM_AVX2_DISPATCH 0
#endif
#if RNNLM_AVX2_DISPATCH
#include <immintrin.h>  // the int8 kernel's AVX2 intrinsics, usable under the target pragma below
#endif

namespace rnnlm::cpu {

// exp(x): x = n ln2 + r, |r| <= ln2/2; exp(r) by a degree-6 polynomial; 2^n by exponent bits.
#define RNNLM_INLINE __attribute__((always_inline)) inline

// The float with these bits. memcpy, not __builtin_bit_cast: the prebuilds are compiled by the
// GCC 10 of an old-glibc root (scripts/prebuild.cjs), which lacks it; both vectorise the same.
RNNLM_INLINE float floatFromBits(int32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

RNNLM_INLINE float expf_poly(float x) {
  x = x < -87.33654f ? -87.33654f : (x > 88.37626f ? 88.37626f : x);
  // Round to nearest by the 1.5 * 2^23 trick (SSE2 has no vector floor).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  // A NaN x reaches here (y is NaN already): give the integer conversion a defined input so
  // the NaN propagates without undefined behaviour (found by test:asan on fuzzed weights).
  const int32_t e = int32_t(n == n ? n : 0.0f) + 127;
  return y * floatFromBits(e << 23);
}

RNNLM_INLINE float sigmoidf_poly(float x) { return 1.0f / (1.0f + expf_poly(-x)); }

// tanh: odd polynomial for |x| < 0.625 (Cephes tanhf), 1 - 2 / (exp(2|x|) + 1) beyond; sign restored.
RNNLM_INLINE float tanhf_poly(float x) {
  const float a = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;
  const float big = 1.0f - 2.0f / (expf_poly(2.0f * a) + 1.0f);
  return a < 0.625f ? small : std::copysign(big, x);
}

inline void sigmoidInPlace(double* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = 1.0 / (1.0 + std::exp(-v[i]));
}
inline void tanhInPlace(double* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = std::tanh(v[i]);
}

// out[i] = exp(z[i] - shift); returns the sum. out may be z itself or null.
inline double expShiftSum(const double* z, int64_t n, double shift, double* out) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::exp(z[i] - shift);
    if (out) out[i] = e;
    sum += e;
  }
  return sum;
}

// Adam / AdamW update of n elements with the scalars of adamScalars (common/optim.h), in the element type.
template <typename T>
RNNLM_INLINE void adamImpl(T* __restrict p, const T* __restrict g, T* __restrict m,
                                                    T* __restrict v, int64_t n, T b1, T b2, T l2, T shrink,
                                                    T stepSize, T invSqrtBc2, T eps) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] + l2 * p[i];
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * shrink - stepSize * mi / (std::sqrt(vi) * invSqrtBc2 + eps);
  }
}
inline void adamKernel(double* p, const double* g, double* m, double* v, int64_t n, double b1, double b2,
                       double l2, double shrink, double stepSize, double invSqrtBc2, double eps) {
  adamImpl(p, g, m, v, n, b1, b2, l2, shrink, stepSize, invSqrtBc2, eps);
}

inline double maxOf(const double* z, int64_t n) {
  double m = z[0];
  for (int64_t i = 0; i < n; ++i) m = z[i] > m ? z[i] : m;
  return m;
}

inline void scaleInPlace(double* v, int64_t n, double s) {
  for (int64_t i = 0; i < n; ++i) v[i] *= s;
}

// C[m, n] = (beta ? C[m, n] : 0) + sum_k A[m, k] W[n, k] in the fixed order of the float
// kernel (gemm_nt_simd.inc, which says why): 8 lane sums, combined, then the K % 8 tail.
inline void gemmNT(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* W, int64_t ldw,
                   bool beta, double* C, int64_t ldc) {
  const int64_t K8 = K - K % 8;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const double* a = A + m * lda;
      const double* w = W + n * ldw;
      double l[8] = {};
      for (int64_t k = 0; k < K8; k += 8)
        for (int j = 0; j < 8; ++j) l[j] += a[k + j] * w[k + j];
      double s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
      for (int64_t k = K8; k < K; ++k) s += a[k] * w[k];
      double* o = C + m * ldc + n;
      *o = beta ? *o + s : s;
    }
}

// The float kernels, once per instruction set (see the top of this file); RNNLM_SIMD_FMA says
// whether the set has fused multiply-add (read by gemm_nt_simd.inc).
#define RNNLM_SIMD_FMA 0
#define RNNLM_SIMD_AVX2 0
#define RNNLM_SIMD_VNNI 0
namespace simd_base {
#include "vecmath_simd.inc"
#include "gemm_nt_simd.inc"
#include "gemm_q8_simd.inc"
}
#undef RNNLM_SIMD_FMA
#undef RNNLM_SIMD_AVX2
#if RNNLM_AVX2_DISPATCH
#define RNNLM_SIMD_FMA 1
#define RNNLM_SIMD_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace simd_avx2 {
#include "vecmath_simd.inc"
#include "gemm_nt_simd.inc"
#include "gemm_q8_simd.inc"
}
#pragma GCC pop_options
// The int8 GEMM once more, with AVX-512 VNNI (Ice Lake, Zen 4 and later): 256-bit tiles, and the
// 512-bit lone-row product on packed weights (q8_pack.h); and the elementwise float loops in 512 bits
// (the batch-invariant float GEMM keeps its AVX2 build: its fixed order is 8 lanes wide).
#undef RNNLM_SIMD_VNNI
#define RNNLM_SIMD_VNNI 1
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512vnni,avx512vl")
namespace simd_vnni {
#include "vecmath_simd.inc"
#include "gemm_q8_simd.inc"
}
#pragma GCC pop_options
#undef RNNLM_SIMD_FMA
#undef RNNLM_SIMD_AVX2
// RNNLM_CPU_ISA=base | avx2 caps the choice below what the CPU has (read once), so that every
// build of a kernel can be run and compared on one machine (test/reference/quantized.test.ts).
inline int isaCap() {
  static const int cap = [] {
    const char* v = std::getenv("RNNLM_CPU_ISA");
    return !v ? 2 : std::strcmp(v, "base") == 0 ? 0 : std::strcmp(v, "avx2") == 0 ? 1 : 2;
  }();
  return cap;
}
inline bool hasAvx2Fma() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return isaCap() >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
}
inline bool hasVnni() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return isaCap() >= 2 && hasAvx2Fma() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
  }();
  return yes;
}
// RNNLM_SIMD: the AVX2 or plain build (the batch-invariant GEMM, Adam); RNNLM_SIMD_WIDE: the
// widest the CPU has, the VNNI namespace's AVX-512 first (the int8 GEMM, the elementwise loops).
#define RNNLM_SIMD(call) (hasAvx2Fma() ? simd_avx2::call : simd_base::call)
#define RNNLM_SIMD_WIDE(call) (hasVnni() ? simd_vnni::call : RNNLM_SIMD(call))
#else
#define RNNLM_SIMD(call) simd_base::call
#define RNNLM_SIMD_WIDE(call) simd_base::call
#endif

inline void sigmoidInPlace(float* v, int64_t n) { RNNLM_SIMD_WIDE(sigmoidInPlace(v, n)); }
inline void tanhInPlace(float* v, int64_t n) { RNNLM_SIMD_WIDE(tanhInPlace(v, n)); }
inline double expShiftSum(const float* z, int64_t n, float shift, float* out) {
  return RNNLM_SIMD_WIDE(expShiftSum(z, n, shift, out));
}
inline void adamKernel(float* p, const float* g, float* m, float* v, int64_t n, float b1, float b2, float l2,
                       float shrink, float stepSize, float invSqrtBc2, float eps) {
  RNNLM_SIMD(adamKernel(p, g, m, v, n, b1, b2, l2, shrink, stepSize, invSqrtBc2, eps));
}
inline float maxOf(const float* z, int64_t n) { return RNNLM_SIMD_WIDE(maxOf(z, n)); }
inline void scaleInPlace(float* v, int64_t n, float s) { RNNLM_SIMD_WIDE(scaleInPlace(v, n, s)); }
inline void gemmNT(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* W, int64_t ldw,
                   bool beta, float* C, int64_t ldc) {
  RNNLM_SIMD(gemmNT(M, N, K, A, lda, W, ldw, beta, C, ldc));
}
inline void gemmQ8(int64_t M, int64_t N, int64_t K, const int8_t* A, int64_t lda, const float* sa, const int8_t* W,
                   int64_t ldw, const float* sw, bool beta, float* C, int64_t ldc) {
  RNNLM_SIMD_WIDE(gemmQ8(M, N, K, A, lda, sa, W, ldw, sw, beta, C, ldc));
}
// The lone-row product on packed weights; only where hasQ8Packed() (quant.h checks).
inline void gemvQ8Packed(int64_t N, int64_t K4, const int32_t* a4, int32_t sumA, float sa, const uint8_t* P,
                         const float* sw, int64_t b0, int64_t b1, bool beta, float* C) {
#if RNNLM_AVX2_DISPATCH
  simd_vnni::gemvQ8Packed(N, K4, a4, sumA, sa, P, sw, b0, b1, beta, C);
#else
  (void)N, (void)K4, (void)a4, (void)sumA, (void)sa, (void)P, (void)sw, (void)b0, (void)b1, (void)beta, (void)C;
#endif
}
inline bool hasQ8Packed() {
#if RNNLM_AVX2_DISPATCH
  return hasVnni();
#else
  return false;
#endif
}
#undef RNNLM_SIMD
#undef RNNLM_SIMD_WIDE
#undef RNNLM_SIMD_VNNI

}  // namespace rnnlm::cpu
