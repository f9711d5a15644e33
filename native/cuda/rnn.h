// Stacked LSTM / GRU / tanh-RNN / relu-RNN on the GPU: cuDNN's RNN (v8 API, padded time-major
// layout with per-sequence lengths), the twin of native/cpu/rnn.h.
// cuDNN computes the cells itself, gate GEMMs and elementwise cell math in its own kernels, so
// no cell math is written here: the equations it computes, and the reference the GPU parity
// suite compares it with, are the CPU's (native/cpu/rnn.h: lstmCell, gruCell, rnnCell and their
// backward). What is ours: the descriptors, the weight layout (layoutParams), and the calls.
// Same conventions as the CPU: forward, backward-data, then backward-weights sharing a reserve
// space; x [T, B, I], y [T, B, H], h/c [L, B, H]; sequence b is padded past lengths[b] (cuDNN
// carries its state and writes zeros to y there); weights in PyTorch's layout (rnn_layout.h).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "../common/alloc_stats.h"
#include "../common/rnn_layout.h"
#include "../common/status.h"
#include "errors.h"
#include "loader.h"

namespace rnnlm::cuda {

// One cuDNN handle for descriptor queries made outside any stream (sizes, weight layout).
inline api::cudnnHandle_t queryHandle() {
  static std::mutex mu;
  static api::cudnnHandle_t h = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (!h) RNNLM_CU(libs().cudnn.cudnnCreate(&h));
  return h;
}

// The weight space is cuDNN's; weightParam() reports where PyTorch's canonical tensors
// (weight_ih_l{k}: the G gate matrices of the input GEMM, ...) lie inside it, checked to be
// contiguous as PyTorch also requires, so checkpoints are the same on both devices.
// The run methods take the stream's cuDNN handle, the lengths on the host (for the descriptors)
// and on the device (for cuDNN), and element counts of the reserve and workspace.
class CudnnRnn {
 public:
  // tf32: let cuDNN use TF32 tensor cores (RNNLM_ALLOW_TF32); otherwise FP32 FMA math.
  CudnnRnn(const RnnConfig& c, bool tf32) : cfg_(c) {
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
                                        api::CUDNN_DATA_FLOAT, tf32 ? api::CUDNN_DEFAULT_MATH : api::CUDNN_FMA_MATH,
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
  ~CudnnRnn() {
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
  CudnnRnn(const CudnnRnn&) = delete;
  CudnnRnn& operator=(const CudnnRnn&) = delete;

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

  void forward(api::cudnnHandle_t h, const int32_t* devLengths, int64_t Tn, int64_t B, const int32_t* lengths,
               const float* x, const float* hx, const float* cx, const float* W, float* y, float* hy, float* cy,
               float* reserve, int64_t reserveN, float* ws, int64_t wsN, bool training) const {
    std::lock_guard<std::mutex> lock(mu_);
    setData(Tn, B, reinterpret_cast<const int*>(lengths));
    const bool lstm = cfg_.cell == Cell::LSTM;
    RNNLM_CU(libs().cudnn.cudnnRNNForward(h, desc_, training ? api::CUDNN_FWD_MODE_TRAINING : api::CUDNN_FWD_MODE_INFERENCE,
                                          devLengths, xDesc_, x, yDesc_, y, hDesc_, hx, hy, hDesc_, lstm ? cx : nullptr,
                                          lstm ? cy : nullptr, weightBytes_, W, size_t(wsN) * 4, ws,
                                          size_t(reserveN) * 4, reserve));
  }
  void backwardData(api::cudnnHandle_t h, const int32_t* devLengths, int64_t Tn, int64_t B, const int32_t* lengths,
                    const float* W, const float* y, const float* dy, const float* dhy, const float* dcy,
                    const float* hx, const float* cx, float* dx, float* dhx, float* dcx, float* reserve,
                    int64_t reserveN, float* ws, int64_t wsN) const {
    if (!y || !dx) fail(Code::InvalidArgument, "rnnBackwardData on CUDA needs y (the forward output) and dx");
    std::lock_guard<std::mutex> lock(mu_);
    setData(Tn, B, reinterpret_cast<const int*>(lengths));
    const bool lstm = cfg_.cell == Cell::LSTM;
    RNNLM_CU(libs().cudnn.cudnnRNNBackwardData_v8(h, desc_, devLengths, yDesc_, y, dy, xDesc_, dx, hDesc_, hx, dhy, dhx,
                                                  hDesc_, lstm ? cx : nullptr, lstm ? dcy : nullptr, lstm ? dcx : nullptr,
                                                  weightBytes_, W, size_t(wsN) * 4, ws, size_t(reserveN) * 4, reserve));
  }
  void backwardWeights(api::cudnnHandle_t h, const int32_t* devLengths, int64_t Tn, int64_t B, const int32_t* lengths,
                       const float* x, const float* hx, const float* y, float* dW, float* reserve, int64_t reserveN,
                       float* ws, int64_t wsN) const {
    if (!y) fail(Code::InvalidArgument, "rnnBackwardWeights on CUDA needs y (the forward output)");
    std::lock_guard<std::mutex> lock(mu_);
    setData(Tn, B, reinterpret_cast<const int*>(lengths));
    RNNLM_CU(libs().cudnn.cudnnRNNBackwardWeights_v8(h, desc_, api::CUDNN_WGRAD_MODE_ADD, devLengths, xDesc_, x, hDesc_, hx,
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

  // Where PyTorch's four tensors of each layer lie in cuDNN's weight space (in floats).
  // This relies on cuDNN's gate ids (linLayerID) following PyTorch's gate order, which is not
  // checked here (only contiguity is): ids 0 .. G-1 are the input GEMM's gates and G .. 2G-1 the
  // recurrent GEMM's, LSTM (input, forget, cell candidate, output) = PyTorch's (i, f, g, o),
  // GRU (reset, update, new) = PyTorch's (r, z, n). So PyTorch's weight_ih is the G matrices of
  // ids 0 .. G-1 in id order, and so on. The GPU parity check (scripts/gpu-check.ts: the same
  // canonical tensors through both backends) is what verifies the order.
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
