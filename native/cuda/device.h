// The CUDA device policy for the shared binding (native/common/binding.h): device memory,
// our kernels (kernels.cu), cuBLAS GEMMs for the decoder, and cuDNN's RNN (rnn.h). All work is
// queued on the context's cudaStream_t by the stream's worker thread; reads synchronize that
// thread only, never the JavaScript thread. Float32 only (kF64 false): the binding compiles no
// f64 path for this device, and alloc refuses f64 buffers.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../common/alloc_stats.h"
#include "../common/optim.h"
#include "../common/rnn_layout.h"
#include "../common/sample.h"
#include "../common/status.h"
#include "errors.h"
#include "kernels.h"
#include "memory.h"
#include "mixed.h"
#include "loader.h"
#include "rnn.h"

namespace rnnlm::cuda {

struct CudaDevice {
  static constexpr const char* kName = "cuda";
  static constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;  // graphs' cuBLAS workspace: cuBLAS's advice on Hopper
  static constexpr bool kF64 = false;
  static constexpr bool kInt8 = false;  // no int8 kernels: quantized models run on the CPU
  static constexpr bool kLockedDropout = false;  // cuDNN drops per element between layers

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
    const int32_t* lengthsOnDevice(const int32_t* lengths, int64_t B) {
      // In a capture the graph's own copy: the shared buffer below changes between replays.
      if (arena) return static_cast<const int32_t*>(arena->put(stream, lengths, size_t(B) * sizeof(int32_t)));
      int32_t* const before = seqLengths.p;
      int32_t* dev = seqLengths.get(size_t(B));
      auto& held = seqLengthsHost;
      if (!asyncUploads() || dev != before || held.size() != size_t(B) || !std::equal(held.begin(), held.end(), lengths)) {
        staging.toDevice(stream, dev, lengths, size_t(B) * sizeof(int32_t));
        held.assign(lengths, lengths + B);
      }
      return dev;
    }

    // A graph capture is in progress on this stream (captureBegin .. captureEnd; the worker's),
    // with the arena its graph will own.
    bool capturing = false;
    std::unique_ptr<CaptureArena> arena;
    // cuBLAS's workspace, ours from the first capture on, so that no capture makes cuBLAS allocate.
    void* cublasWorkspace = nullptr;

    Precision precision;
    explicit Context(Precision p) : precision(p) {
      const Libraries& L = libs();
      RNNLM_CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      RNNLM_CU(cudaMalloc(&errFlag, sizeof(int)));
      RNNLM_CU(cudaMemset(errFlag, 0, sizeof(int)));
      RNNLM_CU(L.cublas.cublasCreate_v2(&cublas));
      RNNLM_CU(L.cublas.cublasSetStream_v2(cublas, stream));
      // FP32 GEMMs unless the model asked for TF32 (precision.h).
      RNNLM_CU(L.cublas.cublasSetMathMode(
          cublas, precision == Precision::TF32 ? api::CUBLAS_TF32_TENSOR_OP_MATH : api::CUBLAS_DEFAULT_MATH));
      RNNLM_CU(L.cudnn.cudnnCreate(&cudnn));
      RNNLM_CU(L.cudnn.cudnnSetStream(cudnn, stream));
    }
    ~Context() {
      if (capturing) {  // disposed mid-capture: leave capture mode before anything else
        cudaGraph_t g = nullptr;
        cudaStreamEndCapture(stream, &g);
        if (g) cudaGraphDestroy(g);
        cudaGetLastError();
      }
      if (stream) cudaStreamSynchronize(stream);
      if (cudnn) libs().cudnn.cudnnDestroy(cudnn);
      if (cublas) libs().cublas.cublasDestroy_v2(cublas);
      if (errFlag) cudaFree(errFlag);
      if (cublasWorkspace) {
        cudaFree(cublasWorkspace);
        allocStats().sub(int64_t(kCublasWorkspaceBytes));
      }
      if (stream) cudaStreamDestroy(stream);
    }
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
  };

  static constexpr const char* kPrecisions = "'fp32', 'tf32', 'bf16' and 'fp16'";
  static constexpr bool supports(Precision) { return true; }

  // CUDA graphs (common/binding/graphs.h): the ops between captureBegin and captureEnd are
  // captured on the stream (thread-local mode: this worker may not allocate meanwhile, which a
  // warm-up run of the same shape ensures), instantiated, and launched once (the capture itself
  // ran nothing) and at each replay.
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    std::unique_ptr<CaptureArena> arena;  // freed after the exec (the destructor's body runs first)
    std::string failed;                   // why there is no exec
    Graph() = default;
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;
    ~Graph() {
      if (exec) cudaGraphExecDestroy(exec);  // an exec in flight is freed when it completes
    }
  };
  static void captureBegin(Context& c) {
    c.ceScratch.retain = c.normScratch.retain = c.seqLengths.retain = true;
    c.arena = std::make_unique<CaptureArena>();
    if (!c.cublasWorkspace) {
      RNNLM_CU(cudaMalloc(&c.cublasWorkspace, kCublasWorkspaceBytes));
      allocStats().add(int64_t(kCublasWorkspaceBytes));
      RNNLM_CU(libs().cublas.cublasSetWorkspace_v2(c.cublas, c.cublasWorkspace, kCublasWorkspaceBytes));
    }
    RNNLM_CU(cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeThreadLocal));
    c.capturing = true;
  }
  static void captureEnd(Context& c, Graph& g, bool failed) {
    if (!c.capturing) {  // captureBegin itself failed
      c.arena.reset();
      g.failed = "the capture did not start";
      return;
    }
    c.capturing = false;
    g.arena = std::move(c.arena);
    cudaGraph_t graph = nullptr;
    const cudaError_t e = cudaStreamEndCapture(c.stream, &graph);
    if (failed || e != cudaSuccess) {
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
      g.failed = failed ? "an op failed while it was captured" : cudaGetErrorString(e);
      if (!failed) check(e, "cudaStreamEndCapture");
      return;
    }
    const cudaError_t ie = cudaGraphInstantiate(&g.exec, graph, 0);
    cudaGraphDestroy(graph);
    if (ie != cudaSuccess) g.failed = cudaGetErrorString(ie);
    check(ie, "cudaGraphInstantiate");
    RNNLM_CU(cudaGraphLaunch(g.exec, c.stream));
  }
  static void replay(Context& c, Graph& g, const std::vector<std::function<void()>>&) {
    if (!g.exec) fail(Code::Native, "replay: this graph's capture failed (%s)", g.failed.c_str());
    RNNLM_CU(cudaGraphLaunch(g.exec, c.stream));
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
      fail(Code::InvalidArgument, err == kernels::kErrLive       ? kLiveError
                                  : err == kernels::kErrTargetId ? "a target id is outside the vocabulary [0, vocabSize)"
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
  // float or int32_t
  template <typename T>
  static void fill(Context& c, T* p, int64_t n, T v) {
    if (v == T(0)) RNNLM_CU(cudaMemsetAsync(p, 0, size_t(n) * sizeof(T), c.stream));
    else RNNLM_LAUNCH(kernels::fill(c.stream, p, n, v));
  }

  static void embeddingForward(Context& c, const float* table, int64_t V, int64_t E, const int32_t* ids, int64_t N,
                               float* out) {
    RNNLM_LAUNCH(kernels::embeddingForward(c.stream, table, V, E, ids, N, out, c.errFlag));
  }
  static void embeddingBackward(Context& c, const int32_t* ids, int64_t N, const float* dout, int64_t V, int64_t E,
                                int64_t pad, float* dtable) {
    RNNLM_LAUNCH(kernels::embeddingBackward(c.stream, ids, N, dout, V, E, pad, dtable, c.errFlag));
  }
  static void dropoutForward(Context& c, const float* x, int64_t n, double p, uint64_t seed, const DropoutKeys& keys,
                             float* mask, float* y) {
    RNNLM_LAUNCH(kernels::dropoutForward(c.stream, x, n, p, seed, keys, mask, y));
  }
  static void activationRegularization(Context& c, const float* x, int64_t Tn, int64_t R, double alpha, double beta,
                                       float* dx, float* out) {
    RNNLM_LAUNCH(kernels::activationRegularization(c.stream, x, Tn, R, alpha, beta, dx, out));
  }
  static void average(Context& c, float* avg, const float* x, int64_t n, double weight) {
    RNNLM_LAUNCH(kernels::average(c.stream, avg, x, n, weight));
  }
  static void multiply(Context& c, const float* a, const float* b, int64_t n, float* out) {
    RNNLM_LAUNCH(kernels::multiply(c.stream, a, b, n, out));
  }

  // Column-major C[m, n] = alpha op(A) op(B) + beta C in the model's precision (precision.h):
  // cublasSgemm for fp32 and tf32 (the handle's math mode says which), cublasGemmEx for bf16 and
  // fp16: float operands and accumulation, the products' operands rounded to the half format.
  static void gemm(Context& c, api::cublasOperation_t ta, api::cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                   float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                   int64_t ldc) {
    const auto& L = libs().cublas;
    if (c.precision == Precision::FP32 || c.precision == Precision::TF32) {
      RNNLM_CU(L.cublasSgemm_v2(c.cublas, ta, tb, int(m), int(n), int(k), &alpha, A, int(lda), B, int(ldb), &beta, C,
                                int(ldc)));
      return;
    }
    const api::cublasComputeType_t compute =
        c.precision == Precision::BF16 ? api::CUBLAS_COMPUTE_32F_FAST_16BF : api::CUBLAS_COMPUTE_32F_FAST_16F;
    RNNLM_CU(L.cublasGemmEx(c.cublas, ta, tb, int(m), int(n), int(k), &alpha, A, api::CUDA_R_32F, int(lda), B,
                            api::CUDA_R_32F, int(ldb), &beta, C, api::CUDA_R_32F, int(ldc), compute,
                            api::CUBLAS_GEMM_DEFAULT));
  }

  // Row-major y[N, O] = x[N, I] W[O, I]^T + b is column-major y^T = W x^T: gemm(T, N).
  // batchInvariant is not honoured: cuBLAS may round a row differently by N (lib/backend/types.ts).
  static void linearForward(Context& c, const float* x, const float* W, const float* b, int64_t N, int64_t I,
                            int64_t O, float* y, bool /*batchInvariant*/) {
    float beta = 0.f;
    if (b) {
      RNNLM_LAUNCH(kernels::broadcastRows(c.stream, b, N, O, y));
      beta = 1.f;
    }
    const float alpha = 1.f;
    gemm(c, api::CUBLAS_OP_T, api::CUBLAS_OP_N, O, N, I, alpha, W, I, x, I, beta, y, O);
  }
  // dx[N, I] (=|+=) dy W: column-major dx^T = W^T dy^T, gemm(N, N);
  // dW[O, I] += dy^T x: column-major dW^T = x^T dy, gemm(N, T); db += column sums of dy.
  static void linearBackward(Context& c, const float* x, const float* W, const float* dy, int64_t N, int64_t I,
                             int64_t O, float* dx, bool acc, float* dW, float* db) {
    if (dx) gemm(c, api::CUBLAS_OP_N, api::CUBLAS_OP_N, I, N, O, 1.f, W, I, dy, O, acc ? 1.f : 0.f, dx, I);
    if (dW) gemm(c, api::CUBLAS_OP_N, api::CUBLAS_OP_T, I, O, N, 1.f, x, I, dy, O, 1.f, dW, I);
    if (db) RNNLM_LAUNCH(kernels::columnSumAdd(c.stream, dy, N, O, db));
  }
  static void crossEntropy(Context& c, const float* z, const int32_t* targets, int64_t N, int64_t V, int64_t ignore,
                           float* out, float* dz, double divisor, bool accumulate) {
    RNNLM_LAUNCH(kernels::crossEntropy(c.stream, z, targets, N, V, ignore, out, dz, c.ceScratch.get(size_t(N) + 2), c.errFlag,
                                       divisor, accumulate));
  }
  static void logSoftmax(Context& c, const float* z, int64_t N, int64_t V, float* out) {
    RNNLM_LAUNCH(kernels::logSoftmax(c.stream, z, N, V, out));
  }
  static void logSoftmaxInto(Context& c, const float* x, int64_t N, int64_t K, float* out, int64_t W, int64_t col,
                             int64_t count, const float* shift, int64_t S, int64_t shiftCol) {
    RNNLM_LAUNCH(kernels::logSoftmaxInto(c.stream, x, N, K, out, W, col, count, shift, S, shiftCol));
  }
  // Top-k / top-p need a sort: generation does those on the host (one row copied per token).
  static constexpr bool kSampleFiltered = false;
  static void sample(Context& c, const float* z, int64_t N, int64_t V, const SampleArgs& a, int32_t* ids,
                     float* values, const int32_t* seed) {
    RNNLM_LAUNCH(kernels::sample(c.stream, z, N, V, a, ids, values, seed));
  }
  static void clipGradNorm(Context& c, float* g, int64_t n, double maxNorm, float* out) {
    RNNLM_LAUNCH(kernels::clipGradNorm(c.stream, g, n, maxNorm, out, c.normScratch.get(1025)));
  }
  static void clipValue(Context& c, float* g, int64_t n, double v) {
    RNNLM_LAUNCH(kernels::clipValue(c.stream, g, n, float(v)));
  }
  // Loss scaling (common/loss_scale.h, mixed.cu).
  static void scaleBy(Context& c, float* x, int64_t n, const float* state, bool inverse) {
    RNNLM_LAUNCH(kernels::scaleBy(c.stream, x, n, state, inverse));
  }
  static void updateLossScale(Context& c, float* state, const float* guard, int64_t guardN, const LossScaleParams& p,
                              float* record) {
    RNNLM_LAUNCH(kernels::updateLossScale(c.stream, state, guard, int(guardN), p, record));
  }
  // live (i32 [4] on the device: lr and step, common/optim.h): the kernels read this step's values when they run.
  static void sgd(Context& c, float* p, const float* g, float* buf, int64_t n, const SgdParams& s, const float* guard,
                  int64_t guardN, const int32_t* live) {
    RNNLM_LAUNCH(kernels::sgd(c.stream, p, g, buf, n, s.lr, s.momentum, s.dampening, s.weightDecay, s.nesterov, s.step == 1,
                              guard, int(guardN), live, c.errFlag));
  }
  static void adam(Context& c, float* p, const float* g, float* m, float* v, int64_t n, const AdamParams& a,
                   const float* guard, int64_t guardN, const int32_t* live) {
    const AdamScalars s = adamScalars(a);
    RNNLM_LAUNCH(kernels::adam(c.stream, p, g, m, v, n, float(a.beta1), float(a.beta2), float(s.l2), float(s.shrink),
                               float(s.stepSize), float(s.invSqrtBc2), float(a.eps), guard, int(guardN), live ? &a : nullptr,
                               live, c.errFlag));
  }

  // cuDNN's RNN (rnn.h) run on this stream: its cuDNN handle, and the sequence lengths copied
  // to the device in stream order. Backward reads the forward's y and hx (the CPU's reserve
  // holds its own copies instead).
  class Rnn : public CudnnRnn {
   public:
    explicit Rnn(const RnnConfig& c) : CudnnRnn(c) {}
    void forward(Context& c, int64_t Tn, int64_t B, const int32_t* lengths, const float* x, const float* hx,
                 const float* cx, const float* W, float* y, float* hy, float* cy, float* reserve, int64_t reserveN,
                 float* ws, int64_t wsN, bool training, uint64_t, bool /*batchInvariant: not on cuDNN*/) const {
      CudnnRnn::forward(c.cudnn, c.stream, c.lengthsOnDevice(lengths, B), Tn, B, lengths, x, hx, cx, W, y, hy, cy,
                        reserve, reserveN, ws, wsN, training);
    }
    void backwardData(Context& c, int64_t Tn, int64_t B, const int32_t* lengths, const float* W, const float* y,
                      const float* dy, const float* dhy, const float* dcy, const float* hx, const float* cx, float* dx,
                      float* dhx, float* dcx, float* reserve, int64_t reserveN, float* ws, int64_t wsN) const {
      CudnnRnn::backwardData(c.cudnn, c.stream, c.lengthsOnDevice(lengths, B), Tn, B, lengths, W, y, dy, dhy, dcy, hx, cx,
                             dx, dhx, dcx, reserve, reserveN, ws, wsN);
    }
    void backwardWeights(Context& c, int64_t Tn, int64_t B, const int32_t* lengths, const float* x, const float* hx,
                         const float* y, float* dW, float* reserve, int64_t reserveN, float* ws, int64_t wsN) const {
      CudnnRnn::backwardWeights(c.cudnn, c.stream, c.lengthsOnDevice(lengths, B), Tn, B, lengths, x, hx, y, dW, reserve,
                                reserveN, ws, wsN);
    }
  };
};

}  // namespace rnnlm::cuda
