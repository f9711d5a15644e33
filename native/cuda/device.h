// The CUDA device policy for the shared binding (native/common/binding.h): device memory,
// our kernels (kernels.cu), cuBLAS GEMMs for the decoder, and cuDNN's RNN (v8 API, padded
// layout with per-sequence lengths). All work is queued on the context's cudaStream_t by the
// stream's worker thread; reads synchronize that thread only, never the JavaScript thread.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

#include "../common/alloc_stats.h"
#include "../common/optim.h"
#include "../common/rnn_layout.h"
#include "../common/status.h"
#include "kernels.h"
#include "loader.h"

namespace rnnlm::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error
  fail(e == cudaErrorMemoryAllocation ? Code::OutOfMemory : Code::Native, "%s failed: %s", what, cudaGetErrorString(e));
}
inline void check(api::cudnnStatus_t s, const char* what) {
  if (s == api::CUDNN_STATUS_SUCCESS) return;
  const bool oom = s == api::CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED || s == api::CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
  fail(oom ? Code::OutOfMemory : Code::Native, "%s failed: %s (cuDNN status %d)", what,
       libs().cudnn.cudnnGetErrorString(s), int(s));
}
inline void check(api::cublasStatus_t s, const char* what) {
  if (s == api::CUBLAS_STATUS_SUCCESS) return;
  fail(s == api::CUBLAS_STATUS_ALLOC_FAILED ? Code::OutOfMemory : Code::Native, "%s failed: cuBLAS status %d", what, int(s));
}
#define RNNLM_CU(call) ::rnnlm::cuda::check((call), #call)
// A kernel launch, checked (launch errors only; faults surface at the next synchronize).
#define RNNLM_LAUNCH(call)                                   \
  do {                                                       \
    call;                                                    \
    ::rnnlm::cuda::check(cudaGetLastError(), #call);         \
  } while (0)

template <typename T>
inline void floatOnly() {
  if constexpr (!std::is_same_v<T, float>) fail(Code::InvalidArgument, "the CUDA backend computes in f32 only");
}

// A device buffer that only grows (scratch for reductions, sequence lengths).
template <typename T>
struct Grow {
  T* p = nullptr;
  size_t n = 0;
  T* get(size_t need) {
    if (need > n) {
      if (p) {
        cudaFree(p);
        allocStats().sub(int64_t(n * sizeof(T)));
      }
      p = nullptr;
      n = 0;
      RNNLM_CU(cudaMalloc(&p, need * sizeof(T)));
      n = need;
      allocStats().add(int64_t(n * sizeof(T)));
    }
    return p;
  }
  ~Grow() {
    if (p) {
      cudaFree(p);
      allocStats().sub(int64_t(n * sizeof(T)));
    }
  }
};

// Host -> device copies in stream order that never wait for the stream. The source (a host
// vector owned by the op) is copied into a pinned slot and the DMA runs from there; a slot is
// reused only after the copy out of it has run (one event per slot), which with a few slots is
// long past. Waiting for the whole stream instead (the simple way) made every write and every
// cuDNN call a round trip: per generated token, the GPU then idles while the host issues work.
// Opt-in (RNNLM_CUDA_ASYNC_UPLOADS=1) until a GPU session has run the parity suite with it;
// scripts/gpu-check.sh turns it on.
inline bool asyncUploads() {
  static const bool on = [] {
    const char* v = std::getenv("RNNLM_CUDA_ASYNC_UPLOADS");
    return v && std::strcmp(v, "1") == 0;
  }();
  return on;
}

class Staging {
 public:
  static constexpr size_t kMaxBytes = size_t(1) << 20;  // larger copies: copy, then wait
  static constexpr int kSlots = 8;

  void toDevice(cudaStream_t s, void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    if (bytes > kMaxBytes || !asyncUploads()) {
      RNNLM_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
      RNNLM_CU(cudaStreamSynchronize(s));  // the source dies with the op
      return;
    }
    if (bytes > slotBytes_) grow(bytes);
    const int k = next_;
    next_ = (next_ + 1) % kSlots;
    if (used_[k]) RNNLM_CU(cudaEventSynchronize(done_[k]));
    char* slot = host_ + size_t(k) * slotBytes_;
    std::memcpy(slot, src, bytes);
    RNNLM_CU(cudaMemcpyAsync(dst, slot, bytes, cudaMemcpyHostToDevice, s));
    RNNLM_CU(cudaEventRecord(done_[k], s));
    used_[k] = true;
  }
  ~Staging() { release(); }

 private:
  void grow(size_t bytes) {
    release();
    size_t n = 4096;
    while (n < bytes) n *= 2;
    RNNLM_CU(cudaHostAlloc(reinterpret_cast<void**>(&host_), n * kSlots, cudaHostAllocDefault));
    slotBytes_ = n;
    for (auto& e : done_) RNNLM_CU(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  void release() {
    for (int k = 0; k < kSlots; ++k) {
      if (used_[k]) cudaEventSynchronize(done_[k]);
      if (done_[k]) cudaEventDestroy(done_[k]);
      done_[k] = nullptr;
      used_[k] = false;
    }
    if (host_) cudaFreeHost(host_);
    host_ = nullptr;
    slotBytes_ = 0;
    next_ = 0;
  }
  char* host_ = nullptr;
  size_t slotBytes_ = 0;
  cudaEvent_t done_[kSlots] = {};
  bool used_[kSlots] = {};
  int next_ = 0;
};

// One cuDNN handle for descriptor queries made outside any stream (sizes, weight layout).
inline api::cudnnHandle_t queryHandle() {
  static std::mutex mu;
  static api::cudnnHandle_t h = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (!h) RNNLM_CU(libs().cudnn.cudnnCreate(&h));
  return h;
}

struct CudaDevice {
  static constexpr const char* kName = "cuda";
  static constexpr bool kF64 = false;

  struct Context {
    cudaStream_t stream = nullptr;
    api::cublasHandle_t cublas = nullptr;
    api::cudnnHandle_t cudnn = nullptr;
    int* errFlag = nullptr;  // device: a kernel saw a token or target id outside the vocabulary
    Grow<float> ceScratch;
    Grow<double> normScratch;
    Staging staging;
    // The per-sequence lengths cuDNN reads on the device, and (on the host) what they will be
    // once the queued copy has run: the same lengths (every step in stream mode, every token
    // of generation) are not copied again.
    Grow<int32_t> seqLengths;
    std::vector<int32_t> seqLengthsHost;
    Context() {
      const Libraries& L = libs();
      RNNLM_CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      RNNLM_CU(cudaMalloc(&errFlag, sizeof(int)));
      RNNLM_CU(cudaMemset(errFlag, 0, sizeof(int)));
      RNNLM_CU(L.cublas.cublasCreate_v2(&cublas));
      RNNLM_CU(L.cublas.cublasSetStream_v2(cublas, stream));
      // FP32 GEMMs by default; TF32 only when asked for (RNNLM_ALLOW_TF32=1).
      RNNLM_CU(L.cublas.cublasSetMathMode(cublas, allowTf32() ? api::CUBLAS_TF32_TENSOR_OP_MATH : api::CUBLAS_DEFAULT_MATH));
      RNNLM_CU(L.cudnn.cudnnCreate(&cudnn));
      RNNLM_CU(L.cudnn.cudnnSetStream(cudnn, stream));
    }
    ~Context() {
      if (stream) cudaStreamSynchronize(stream);
      if (cudnn) libs().cudnn.cudnnDestroy(cudnn);
      if (cublas) libs().cublas.cublasDestroy_v2(cublas);
      if (errFlag) cudaFree(errFlag);
      if (stream) cudaStreamDestroy(stream);
    }
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
  };

  static bool allowTf32() {
    const char* v = std::getenv("RNNLM_ALLOW_TF32");
    return v && std::strcmp(v, "1") == 0;
  }

  static void* alloc(size_t bytes, const char* dtype, int64_t n) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
      cudaGetLastError();
      fail(Code::OutOfMemory, "cannot allocate %lld %s elements (%.1f MiB) on the GPU: %s", (long long)n, dtype,
           bytes / 1048576.0, cudaGetErrorString(e));
    }
    RNNLM_CU(cudaMemset(p, 0, bytes));
    return p;
  }
  static void release(void* p) { cudaFree(p); }

  static void upload(Context& c, void* dst, const void* src, size_t bytes) { c.staging.toDevice(c.stream, dst, src, bytes); }
  static void synchronize(Context& c) {
    RNNLM_CU(cudaStreamSynchronize(c.stream));
    int err = 0;
    RNNLM_CU(cudaMemcpy(&err, c.errFlag, sizeof(int), cudaMemcpyDeviceToHost));
    if (err) {
      RNNLM_CU(cudaMemset(c.errFlag, 0, sizeof(int)));
      fail(Code::InvalidArgument, err == kernels::kErrTargetId ? "a target id is outside the vocabulary [0, vocabSize)"
                                                                : "a token id is outside the vocabulary [0, vocabSize)");
    }
  }
  static void download(Context& c, void* dst, const void* src, size_t bytes) {
    RNNLM_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c.stream));
    synchronize(c);
  }
  static void copy(Context& c, void* dst, const void* src, size_t bytes) {
    RNNLM_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c.stream));
  }
  template <typename T>
  static void fill(Context& c, T* p, int64_t n, T v) {
    if constexpr (std::is_same_v<T, double>) {
      fail(Code::InvalidArgument, "the CUDA backend computes in f32 only");
    } else {
      if (v == T(0)) RNNLM_CU(cudaMemsetAsync(p, 0, size_t(n) * sizeof(T), c.stream));
      else RNNLM_LAUNCH(kernels::fill(c.stream, p, n, v));
    }
  }

  template <typename T>
  static void embeddingForward(Context& c, const T* table, int64_t V, int64_t E, const int32_t* ids, int64_t N, T* out) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) RNNLM_LAUNCH(kernels::embeddingForward(c.stream, table, V, E, ids, N, out, c.errFlag));
  }
  template <typename T>
  static void embeddingBackward(Context& c, const int32_t* ids, int64_t N, const T* dout, int64_t V, int64_t E,
                                int64_t pad, T* dtable) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) RNNLM_LAUNCH(kernels::embeddingBackward(c.stream, ids, N, dout, V, E, pad, dtable, c.errFlag));
  }
  template <typename T>
  static void dropoutForward(Context& c, const T* x, int64_t n, double p, uint64_t seed, T* mask, T* y) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) RNNLM_LAUNCH(kernels::dropoutForward(c.stream, x, n, p, seed, mask, y));
  }
  template <typename T>
  static void multiply(Context& c, const T* a, const T* b, int64_t n, T* out) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) RNNLM_LAUNCH(kernels::multiply(c.stream, a, b, n, out));
  }

  // Row-major y[N, O] = x[N, I] W[O, I]^T + b is column-major y^T = W x^T: gemm(T, N).
  template <typename T>
  static void linearForward(Context& c, const T* x, const T* W, const T* b, int64_t N, int64_t I, int64_t O, T* y) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) {
      float beta = 0.f;
      if (b) {
        RNNLM_LAUNCH(kernels::broadcastRows(c.stream, b, N, O, y));
        beta = 1.f;
      }
      const float alpha = 1.f;
      RNNLM_CU(libs().cublas.cublasSgemm_v2(c.cublas, api::CUBLAS_OP_T, api::CUBLAS_OP_N, int(O), int(N), int(I), &alpha, W,
                                            int(I), x, int(I), &beta, y, int(O)));
    }
  }
  // dx[N, I] (=|+=) dy W: column-major dx^T = W^T dy^T, gemm(N, N);
  // dW[O, I] += dy^T x: column-major dW^T = x^T dy, gemm(N, T); db += column sums of dy.
  template <typename T>
  static void linearBackward(Context& c, const T* x, const T* W, const T* dy, int64_t N, int64_t I, int64_t O, T* dx,
                             bool acc, T* dW, T* db) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) {
      const float one = 1.f, zero = 0.f;
      const auto& B = libs().cublas;
      if (dx)
        RNNLM_CU(B.cublasSgemm_v2(c.cublas, api::CUBLAS_OP_N, api::CUBLAS_OP_N, int(I), int(N), int(O), &one, W, int(I), dy,
                                  int(O), acc ? &one : &zero, dx, int(I)));
      if (dW)
        RNNLM_CU(B.cublasSgemm_v2(c.cublas, api::CUBLAS_OP_N, api::CUBLAS_OP_T, int(I), int(O), int(N), &one, x, int(I), dy,
                                  int(O), &one, dW, int(I)));
      if (db) RNNLM_LAUNCH(kernels::columnSumAdd(c.stream, dy, N, O, db));
    }
  }
  template <typename T>
  static void crossEntropy(Context& c, const T* z, const int32_t* targets, int64_t N, int64_t V, int64_t ignore, T* out,
                           T* dz) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>)
      RNNLM_LAUNCH(kernels::crossEntropy(c.stream, z, targets, N, V, ignore, out, dz, c.ceScratch.get(size_t(N) + 2), c.errFlag));
  }
  template <typename T>
  static void logSoftmax(Context& c, const T* z, int64_t N, int64_t V, T* out) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) RNNLM_LAUNCH(kernels::logSoftmax(c.stream, z, N, V, out));
  }
  // Top-k / top-p need a sort: generation does those on the host (one row copied per token).
  static constexpr bool kSampleFiltered = false;
  template <typename T>
  static void sample(Context& c, const T* z, int64_t N, int64_t V, const SampleArgs& a, int32_t* ids) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) RNNLM_LAUNCH(kernels::sample(c.stream, z, N, V, a, ids));
  }
  template <typename T>
  static void clipGradNorm(Context& c, T* g, int64_t n, double maxNorm, T* out) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) RNNLM_LAUNCH(kernels::clipGradNorm(c.stream, g, n, maxNorm, out, c.normScratch.get(1025)));
  }
  template <typename T>
  static void clipValue(Context& c, T* g, int64_t n, double v) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) RNNLM_LAUNCH(kernels::clipValue(c.stream, g, n, float(v)));
  }
  template <typename T>
  static void sgd(Context& c, T* p, const T* g, T* buf, int64_t n, const SgdParams& s, const T* guard, int64_t guardN) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>)
      RNNLM_LAUNCH(kernels::sgd(c.stream, p, g, buf, n, s.lr, s.momentum, s.dampening, s.weightDecay, s.nesterov, s.step == 1, guard, int(guardN)));
  }
  template <typename T>
  static void adam(Context& c, T* p, const T* g, T* m, T* v, int64_t n, const AdamParams& a, const T* guard, int64_t guardN) {
    floatOnly<T>();
    if constexpr (std::is_same_v<T, float>) {
      const AdamScalars s = adamScalars(a);
      RNNLM_LAUNCH(kernels::adam(c.stream, p, g, m, v, n, float(a.beta1), float(a.beta2), float(s.l2), float(s.shrink),
                                 float(s.stepSize), float(s.invSqrtBc2), float(a.eps), guard, int(guardN)));
    }
  }

  class Rnn;
};

// cuDNN's RNN. The weight space is cuDNN's; weightParam() reports where PyTorch's canonical
// tensors (weight_ih_l{k}: the G gate matrices of the input GEMM, ...) lie inside it, checked
// to be contiguous as PyTorch also requires, so checkpoints are the same on both devices.
class CudaDevice::Rnn {
 public:
  explicit Rnn(const RnnConfig& c) : cfg_(c) {
    const auto& D = libs().cudnn;
    api::cudnnHandle_t h = queryHandle();
    RNNLM_CU(D.cudnnCreateDropoutDescriptor(&drop_));
    if (c.dropout > 0) {
      RNNLM_CU(D.cudnnDropoutGetStatesSize(h, &dropStatesBytes_));
      RNNLM_CU(cudaMalloc(&dropStates_, dropStatesBytes_));
      allocStats().add(int64_t(dropStatesBytes_));
      RNNLM_CU(D.cudnnSetDropoutDescriptor(drop_, h, float(c.dropout), dropStates_, dropStatesBytes_, 1234ull));
    } else {
      RNNLM_CU(D.cudnnSetDropoutDescriptor(drop_, h, 0.f, nullptr, 0, 0ull));
    }
    RNNLM_CU(D.cudnnCreateRNNDescriptor(&desc_));
    const api::cudnnRNNMode_t mode = c.cell == Cell::LSTM ? api::CUDNN_LSTM
                                     : c.cell == Cell::GRU ? api::CUDNN_GRU
                                     : c.cell == Cell::RNN_TANH ? api::CUDNN_RNN_TANH
                                                                : api::CUDNN_RNN_RELU;
    RNNLM_CU(D.cudnnSetRNNDescriptor_v8(desc_, api::CUDNN_RNN_ALGO_STANDARD, mode, api::CUDNN_RNN_DOUBLE_BIAS,
                                        api::CUDNN_UNIDIRECTIONAL, api::CUDNN_LINEAR_INPUT, api::CUDNN_DATA_FLOAT,
                                        api::CUDNN_DATA_FLOAT,
                                        CudaDevice::allowTf32() ? api::CUDNN_DEFAULT_MATH : api::CUDNN_FMA_MATH,
                                        int32_t(c.inputSize), int32_t(c.hiddenSize), int32_t(c.hiddenSize),
                                        int32_t(c.layers), drop_, api::CUDNN_RNN_PADDED_IO_ENABLED));
    size_t bytes = 0;
    RNNLM_CU(D.cudnnGetRNNWeightSpaceSize(h, desc_, &bytes));
    weightBytes_ = bytes;
    layoutParams(h);
    RNNLM_CU(D.cudnnCreateRNNDataDescriptor(&xDesc_));
    RNNLM_CU(D.cudnnCreateRNNDataDescriptor(&yDesc_));
    RNNLM_CU(D.cudnnCreateTensorDescriptor(&hDesc_));
  }
  ~Rnn() {
    const auto& D = libs().cudnn;
    if (hDesc_) D.cudnnDestroyTensorDescriptor(hDesc_);
    if (yDesc_) D.cudnnDestroyRNNDataDescriptor(yDesc_);
    if (xDesc_) D.cudnnDestroyRNNDataDescriptor(xDesc_);
    if (desc_) D.cudnnDestroyRNNDescriptor(desc_);
    if (drop_) D.cudnnDestroyDropoutDescriptor(drop_);
    if (dropStates_) {
      cudaFree(dropStates_);
      allocStats().sub(int64_t(dropStatesBytes_));
    }
  }
  Rnn(const Rnn&) = delete;
  Rnn& operator=(const Rnn&) = delete;

  int64_t weightSize() const { return int64_t(weightBytes_ / sizeof(float)); }
  ParamRef weightParam(int64_t layer, int id) const { return params_.at(size_t(layer * 4 + id)); }

  struct Sizes {
    int64_t reserve, workspace;
  };
  // Element counts (floats); the descriptors are process-wide state, so guard them.
  Sizes spaces(int64_t T, int64_t B) const {
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<int> lengths(static_cast<size_t>(B), static_cast<int>(T));
    setData(T, B, lengths.data());
    size_t wsTrain = 0, reserve = 0, wsInfer = 0, unused = 0;
    const auto& D = libs().cudnn;
    RNNLM_CU(D.cudnnGetRNNTempSpaceSizes(queryHandle(), desc_, api::CUDNN_FWD_MODE_TRAINING, xDesc_, &wsTrain, &reserve));
    RNNLM_CU(D.cudnnGetRNNTempSpaceSizes(queryHandle(), desc_, api::CUDNN_FWD_MODE_INFERENCE, xDesc_, &wsInfer, &unused));
    const size_t ws = wsTrain > wsInfer ? wsTrain : wsInfer;
    return {int64_t((reserve + 3) / 4) + 1, int64_t((ws + 3) / 4) + 1};
  }

  template <typename T>
  void forward(Context& c, int64_t Tn, int64_t B, const int32_t* lengths, const T* x, const T* hx, const T* cx, const T* W,
               T* y, T* hy, T* cy, T* reserve, int64_t reserveN, T* ws, int64_t wsN, bool training, uint64_t) const {
    floatOnly<T>();
    std::lock_guard<std::mutex> lock(mu_);
    const int32_t* dev = prepare(c, Tn, B, lengths);
    const bool lstm = cfg_.cell == Cell::LSTM;
    RNNLM_CU(libs().cudnn.cudnnRNNForward(c.cudnn, desc_, training ? api::CUDNN_FWD_MODE_TRAINING : api::CUDNN_FWD_MODE_INFERENCE,
                                          dev, xDesc_, x, yDesc_, y, hDesc_, hx, hy, hDesc_, lstm ? cx : nullptr,
                                          lstm ? cy : nullptr, weightBytes_, W, size_t(wsN) * 4, ws,
                                          size_t(reserveN) * 4, reserve));
  }
  template <typename T>
  void backwardData(Context& c, int64_t Tn, int64_t B, const int32_t* lengths, const T* W, const T* y, const T* dy,
                    const T* dhy, const T* dcy, const T* hx, const T* cx, T* dx, T* dhx, T* dcx, T* reserve,
                    int64_t reserveN, T* ws, int64_t wsN) const {
    floatOnly<T>();
    if (!y || !dx) fail(Code::InvalidArgument, "rnnBackwardData on CUDA needs y (the forward output) and dx");
    std::lock_guard<std::mutex> lock(mu_);
    const int32_t* dev = prepare(c, Tn, B, lengths);
    const bool lstm = cfg_.cell == Cell::LSTM;
    RNNLM_CU(libs().cudnn.cudnnRNNBackwardData_v8(c.cudnn, desc_, dev, yDesc_, y, dy, xDesc_, dx, hDesc_, hx, dhy, dhx,
                                                  hDesc_, lstm ? cx : nullptr, lstm ? dcy : nullptr, lstm ? dcx : nullptr,
                                                  weightBytes_, W, size_t(wsN) * 4, ws, size_t(reserveN) * 4, reserve));
  }
  template <typename T>
  void backwardWeights(Context& c, int64_t Tn, int64_t B, const int32_t* lengths, const T* x, const T* hx, const T* y,
                       T* dW, T* reserve, int64_t reserveN, T* ws, int64_t wsN) const {
    floatOnly<T>();
    if (!y) fail(Code::InvalidArgument, "rnnBackwardWeights on CUDA needs y (the forward output)");
    std::lock_guard<std::mutex> lock(mu_);
    const int32_t* dev = prepare(c, Tn, B, lengths);
    RNNLM_CU(libs().cudnn.cudnnRNNBackwardWeights_v8(c.cudnn, desc_, api::CUDNN_WGRAD_MODE_ADD, dev, xDesc_, x, hDesc_, hx,
                                                     yDesc_, y, weightBytes_, dW, size_t(wsN) * 4, ws,
                                                     size_t(reserveN) * 4, reserve));
  }

 private:
  // Data descriptors for T x B (padded, time-major) and the state descriptor [L, B, H].
  void setData(int64_t T, int64_t B, const int* lengths) const {
    const auto& D = libs().cudnn;
    float fill = 0.f;
    RNNLM_CU(D.cudnnSetRNNDataDescriptor(xDesc_, api::CUDNN_DATA_FLOAT, api::CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED,
                                         int(T), int(B), int(cfg_.inputSize), lengths, &fill));
    RNNLM_CU(D.cudnnSetRNNDataDescriptor(yDesc_, api::CUDNN_DATA_FLOAT, api::CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED,
                                         int(T), int(B), int(cfg_.hiddenSize), lengths, &fill));
    const int dims[3] = {int(cfg_.layers), int(B), int(cfg_.hiddenSize)};
    const int strides[3] = {int(B * cfg_.hiddenSize), int(cfg_.hiddenSize), 1};
    RNNLM_CU(D.cudnnSetTensorNdDescriptor(hDesc_, api::CUDNN_DATA_FLOAT, 3, dims, strides));
  }
  const int32_t* prepare(Context& c, int64_t T, int64_t B, const int32_t* lengths) const {
    setData(T, B, reinterpret_cast<const int*>(lengths));
    int32_t* const before = c.seqLengths.p;
    int32_t* dev = c.seqLengths.get(size_t(B));
    auto& held = c.seqLengthsHost;
    if (!asyncUploads() || dev != before || held.size() != size_t(B) || !std::equal(held.begin(), held.end(), lengths)) {
      c.staging.toDevice(c.stream, dev, lengths, size_t(B) * sizeof(int32_t));
      held.assign(lengths, lengths + B);
    }
    return dev;
  }

  // Where PyTorch's four tensors of each layer lie in cuDNN's weight space (in floats).
  void layoutParams(api::cudnnHandle_t h) {
    const auto& D = libs().cudnn;
    void* space = nullptr;
    RNNLM_CU(cudaMalloc(&space, weightBytes_));
    api::cudnnTensorDescriptor_t mDesc = nullptr, bDesc = nullptr;
    RNNLM_CU(D.cudnnCreateTensorDescriptor(&mDesc));
    RNNLM_CU(D.cudnnCreateTensorDescriptor(&bDesc));
    const int64_t G = cfg_.gates(), H = cfg_.hiddenSize;
    auto offsetOf = [&](void* p) { return int64_t((static_cast<char*>(p) - static_cast<char*>(space)) / sizeof(float)); };
    try {
      for (int64_t l = 0; l < cfg_.layers; ++l) {
        const int64_t in = cfg_.layerInput(l);
        ParamRef w[2], bias[2];
        for (int part = 0; part < 2; ++part) {  // 0: input GEMM (W_ih, b_ih), 1: recurrent GEMM (W_hh, b_hh)
          const int64_t cols = part == 0 ? in : H;
          int64_t m0 = 0, b0 = 0;
          for (int64_t g = 0; g < G; ++g) {
            void* m = nullptr;
            void* b = nullptr;
            RNNLM_CU(D.cudnnGetRNNWeightParams(h, desc_, int32_t(l), weightBytes_, space, int32_t(part * G + g), mDesc, &m,
                                               bDesc, &b));
            const int64_t mo = offsetOf(m), bo = offsetOf(b);
            if (g == 0) m0 = mo, b0 = bo;
            if (mo != m0 + g * H * cols || bo != b0 + g * H)
              fail(Code::Native, "cuDNN's weight layout has the gate matrices of layer %lld apart; not supported",
                   (long long)l);
          }
          w[part] = {m0, G * H, cols};
          bias[part] = {b0, G * H, 1};
        }
        // ids 0..3: weight_ih, weight_hh, bias_ih, bias_hh (rnn_layout.h)
        params_.insert(params_.end(), {w[0], w[1], bias[0], bias[1]});
      }
    } catch (...) {
      D.cudnnDestroyTensorDescriptor(mDesc);
      D.cudnnDestroyTensorDescriptor(bDesc);
      cudaFree(space);
      throw;
    }
    D.cudnnDestroyTensorDescriptor(mDesc);
    D.cudnnDestroyTensorDescriptor(bDesc);
    cudaFree(space);
  }

  RnnConfig cfg_;
  api::cudnnRNNDescriptor_t desc_ = nullptr;
  api::cudnnDropoutDescriptor_t drop_ = nullptr;
  void* dropStates_ = nullptr;
  size_t dropStatesBytes_ = 0;
  size_t weightBytes_ = 0;
  std::vector<ParamRef> params_;
  mutable std::mutex mu_;
  api::cudnnRNNDataDescriptor_t xDesc_ = nullptr, yDesc_ = nullptr;
  api::cudnnTensorDescriptor_t hDesc_ = nullptr;
};

}  // namespace rnnlm::cuda
