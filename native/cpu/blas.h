// Row-major GEMM over OpenBLAS (GEMV for a single row), for float (sgemm) and double (dgemm), so every
// CPU op is one template instantiated twice: float32 for use, float64 for the
// finite-difference gradient checks.
#pragma once
#include <cblas.h>

#include <cstdint>

#include "helper_thread.h"
#include "vecmath.h"

namespace rnnlm::cpu {

// C[M,N] = alpha * op(A) op(B) + beta * C, row-major, op = transpose when t*.
// A single row (batch 1: generation, prediction) goes to GEMV, which streams B once; GEMM
// would first pack B, doubling the memory traffic of what is a memory-bound product.
template <typename T, typename Gemm, typename Gemv>
inline void gemmOrGemv(Gemm gemm, Gemv gemv, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                       int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 1) {
    // c = op(B)^T-applied: row-major B [N,K] (tb) gives c = B a; B [K,N] gives c = B^T a.
    gemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (blasint)(tb ? N : K), (blasint)(tb ? K : N), alpha, B,
         (blasint)ldb, A, (blasint)(ta ? lda : 1), beta, C, 1);
    return;
  }
  gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
       (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemmOrGemv(cblas_sgemm, cblas_sgemv, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                 int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemmOrGemv(cblas_dgemm, cblas_dgemv, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// The forward GEMMs, C[M,N] = A[M,K] W[N,K]^T (+ C when accumulate): OpenBLAS, or with
// batchInvariant the fixed-order kernel of vecmath.h (gemm_nt_simd.inc), whose rows do not
// depend on M or on their place in the batch (inference). A large float product is shared with
// the helper thread (helper_thread.h) in chunks of columns, when OpenBLAS may use more than one
// thread; every element is computed the same either way.
template <typename T>
inline void gemmForward(bool batchInvariant, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* W,
                        int64_t ldw, bool accumulate, T* C, int64_t ldc) {
  if (!batchInvariant) return gemm(false, true, M, N, K, T(1), A, lda, W, ldw, accumulate ? T(1) : T(0), C, ldc);
  constexpr int64_t kShareMacs = int64_t(1) << 23;  // about 0.2 ms on one thread: less gains nothing (measured)
  constexpr int kChunks = 8;
  if (sizeof(T) != sizeof(float) || M * N * K < kShareMacs || N < 8 * kChunks || openblas_get_num_threads() < 2)
    return gemmNT(M, N, K, A, lda, W, ldw, accumulate, C, ldc);
  const int64_t width = (N + 8 * kChunks - 1) / (8 * kChunks) * 8;  // a multiple of 8 columns
  HelperThread::get().forEach(int((N + width - 1) / width), [&](int i) {
    const int64_t n0 = i * width, n = N - n0 < width ? N - n0 : width;
    gemmNT(M, n, K, A, lda, W + n0 * ldw, ldw, accumulate, C + n0, ldc);
  });
}

}  // namespace rnnlm::cpu
