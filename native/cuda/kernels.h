// Launchers of our CUDA kernels (kernels.cu). Each kernel's math is stated in kernels.cu
// above it, and each has its reference in the CPU backend (native/cpu/ops.h), against
// which the GPU parity tests compare it. All run on the given stream; none syncs the host.
#pragma once
#include <cstdint>

#include "../common/optim.h"
#include "../common/rng.h"
#include "../common/sample.h"

struct CUstream_st;

namespace rnnlm::cuda::kernels {

using rnnlm::DropoutKeys;
using rnnlm::SampleArgs;

using Stream = CUstream_st*;

// Device-side error flag values (Context::errFlag); the host reads the flag with each read.
constexpr int kErrTokenId = 1;
constexpr int kErrTargetId = 2;
constexpr int kErrLive = 3;  // an optimizer's live lr / step out of range (common/optim.h)

void fill(Stream s, float* p, int64_t n, float v);
void fill(Stream s, int32_t* p, int64_t n, int32_t v);
void embeddingForward(Stream s, const float* table, int64_t V, int64_t E, const int32_t* ids, int64_t N, float* out,
                      int* err);
void embeddingBackward(Stream s, const int32_t* ids, int64_t N, const float* dout, int64_t V, int64_t E, int64_t pad,
                       float* dtable, int* err);
void dropoutForward(Stream s, const float* x, int64_t n, double p, uint64_t seed, const DropoutKeys& keys, float* mask,
                    float* y);
void activationRegularization(Stream s, const float* x, int64_t Tn, int64_t R, double alpha, double beta, float* dx,
                              float* out);
void average(Stream s, float* avg, const float* x, int64_t n, double weight);
void multiply(Stream s, const float* a, const float* b, int64_t n, float* out);
void broadcastRows(Stream s, const float* b, int64_t N, int64_t O, float* y);
void columnSumAdd(Stream s, const float* dy, int64_t N, int64_t O, float* db);
// out [2] = (mean NLL, count); dz may be z. scratch holds N + 2 floats. divisor > 0 replaces the
// count as the mean's divisor; accumulate adds the loss to out[0] and leaves out[1].
void crossEntropy(Stream s, const float* z, const int32_t* targets, int64_t N, int64_t V, int64_t ignore, float* out,
                  float* dz, float* scratch, int* err, double divisor, bool accumulate);
// out[n, col + j] = logSoftmax(x[n])_j + shift[n, shiftCol] (shift may be null), j < count.
void logSoftmaxInto(Stream s, const float* x, int64_t N, int64_t K, float* out, int64_t W, int64_t col, int64_t count,
                    const float* shift, int64_t S, int64_t shiftCol);
void logSoftmax(Stream s, const float* z, int64_t N, int64_t V, float* out);
// ids [N] drawn from softmax(z / temperature) over allowed ids (whole-distribution mode only);
// values [N] (may be null) = z[n, ids[n]].
// seed (device i32 [2], or null): the seed read when the kernel runs (SampleArgs::seedFrom).
void sample(Stream s, const float* z, int64_t N, int64_t V, const SampleArgs& a, int32_t* ids, float* values,
            const int32_t* seed);
// sgd / adam skip the update when any of guard[0..guardN) (the step's loss, norm) is not finite.
// out [1] = ||g||; g *= maxNorm / (norm + 1e-6) when that is < 1. scratch holds 1024 doubles + 1.
void clipGradNorm(Stream s, float* g, int64_t n, double maxNorm, float* out, double* scratch);
void clipValue(Stream s, float* g, int64_t n, float v);
// live (device i32 [4]: lr and step, common/optim.h applyLive; or null): read when the kernel runs instead of lr / first
// (sgd) or the scalars (adam, computed from `base` with live's lr and step: common/optim.h).
void sgd(Stream s, float* p, const float* g, float* buf, int64_t n, double lr, double momentum, double dampening,
         double weightDecay, bool nesterov, bool first, const float* guard, int guardN, const int32_t* live, int* err);
void adam(Stream s, float* p, const float* g, float* m, float* v, int64_t n, float b1, float b2, float l2, float shrink,
          float stepSize, float invSqrtBc2, float eps, const float* guard, int guardN, const AdamParams* base,
          const int32_t* live, int* err);

}  // namespace rnnlm::cuda::kernels
