// Stacked LSTM / GRU / tanh-RNN / relu-RNN on the GPU: cuDNN's RNN (v8 API, padded time-major
// layout with per-sequence lengths), the twin of native/cpu/rnn.h.
// cuDNN computes the cells itself, gate GEMMs and elementwise cell math in its own kernels, so
// no cell math is written here: the equations it computes, and the reference the GPU parity
// suite compares it with, are the CPU's (native/cpu/rnn.h: lstmCell, gruCell, rnnCell and their
// backward). What is ours: the descriptors, the weight layout (rnn_weights.h), and the calls.
// Same conventions as the CPU: forward, backward-data, then backward-weights sharing a reserve
// space; x [T, B, I], y [T, B, H], h/c [L, B, H]; sequence b is padded past lengths[b] (cuDNN
// carries its state and writes zeros to y there); weights in PyTorch's layout (rnn_layout.h).
// Precision bf16 / fp16: training runs cuDNN on half copies of all of these (rnn_half.h), float
// math where cuDNN allows it; inference runs in float32 (the half copy of the weights would be
// cast again at every call, which at one token a call costs more than the half math saves), a
// precision being a permission to round, not a need. What the caller sees stays float32.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#include "../common/alloc_stats.h"
#include "../common/rnn_algorithm.h"
#include "../common/rnn_layout.h"
#include "../common/status.h"
#include "errors.h"
#include "loader.h"
#include "rnn_half.h"
#include "rnn_weights.h"

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
// One descriptor per algorithm the option allows (common/rnn_algorithm.h): each must lay the
// weights out as the first does, so that any of them runs on the same weight space. With
// several, the first use of a shape times them all and keeps the fastest (chooseAlgo).
// The run methods take the stream's cuDNN handle and stream, the lengths on the host (for the
// descriptors) and on the device (for cuDNN), and element counts of the reserve and workspace.
class CudnnRnn {
 public:
  explicit CudnnRnn(const RnnConfig& c)
      : cfg_(c),
        half_(c.precision == Precision::BF16 || c.precision == Precision::FP16),
        halfKind_(c.precision == Precision::BF16 ? kernels::Half::BF16 : kernels::Half::FP16) {
    const auto& D = libs().cudnn;
    if (c.precision == Precision::BF16 && D.cudnnGetVersion() < 91300)
      fail(Code::InvalidArgument,
           "precision 'bf16' needs cuDNN 9.13 or later for the RNN (this is cuDNN %zu); use 'fp16' or 'tf32'",
           size_t(D.cudnnGetVersion()));
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
    main_.type = !half_ ? api::CUDNN_DATA_FLOAT
                 : c.precision == Precision::BF16 ? api::CUDNN_DATA_BFLOAT16 : api::CUDNN_DATA_HALF;
    main_.elem = half_ ? 2 : 4;
    build(h, main_);
    if (half_) {  // inference's float32 descriptors, on the same weight layout
      float_.type = api::CUDNN_DATA_FLOAT;
      float_.elem = 4;
      build(h, float_);
    }
    RNNLM_CU(D.cudnnCreateRNNDataDescriptor(&xDesc_));
    RNNLM_CU(D.cudnnCreateRNNDataDescriptor(&yDesc_));
    RNNLM_CU(D.cudnnCreateTensorDescriptor(&hDesc_));
  }
  ~CudnnRnn() {
    const auto& D = libs().cudnn;
    if (hDesc_) D.cudnnDestroyTensorDescriptor(hDesc_);
    if (yDesc_) D.cudnnDestroyRNNDataDescriptor(yDesc_);
    if (xDesc_) D.cudnnDestroyRNNDataDescriptor(xDesc_);
    for (const Set* set : {&main_, &float_})
      for (const Algo& a : set->algos) D.cudnnDestroyRNNDescriptor(a.desc);
    if (drop_) D.cudnnDestroyDropoutDescriptor(drop_);
    if (dropStates_) {
      cudaFree(dropStates_);
      allocStats().sub(int64_t(dropStatesBytes_));
    }
  }
  CudnnRnn(const CudnnRnn&) = delete;
  CudnnRnn& operator=(const CudnnRnn&) = delete;

  // The weight space in elements: the float32 master weights the caller holds have cuDNN's
  // layout in elements of its data type (the half copy is cast element by element).
  int64_t weightSize() const { return int64_t(main_.weightBytes / main_.elem); }
  ParamRef weightParam(int64_t layer, int id) const { return params_.at(size_t(layer * 4 + id)); }
  std::vector<AlgoChoices::Entry> algorithmLog() const { return choices_.log(); }

  struct Sizes {
    int64_t reserve, workspace;
  };
  // Element counts (floats), the most any candidate algorithm needs in either mode (an algorithm
  // that refuses a mode needs nothing there); the descriptors are process-wide state, so guard them.
  Sizes spaces(int64_t T, int64_t B) const {
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<int> lengths(static_cast<size_t>(B), static_cast<int>(T));
    size_t ws = 0, reserve = 0;
    api::cudnnStatus_t first = api::CUDNN_STATUS_SUCCESS;
    bool any = false;
    const auto& D = libs().cudnn;
    for (const auto mode : {api::CUDNN_FWD_MODE_TRAINING, api::CUDNN_FWD_MODE_INFERENCE}) {
      const Set& set = setFor(mode == api::CUDNN_FWD_MODE_TRAINING);
      setData(T, B, lengths.data(), set.type);
      for (const Algo& a : set.algos) {
        size_t w = 0, r = 0;
        const api::cudnnStatus_t st = D.cudnnGetRNNTempSpaceSizes(queryHandle(), a.desc, mode, xDesc_, &w, &r);
        if (st != api::CUDNN_STATUS_SUCCESS) {
          if (first == api::CUDNN_STATUS_SUCCESS) first = st;
          continue;
        }
        any = true;
        ws = std::max(ws, w);
        if (mode == api::CUDNN_FWD_MODE_TRAINING) reserve = std::max(reserve, r);
      }
    }
    if (!any) RNNLM_CU(first);
    if (half_) {
      reserve += HalfParts::reserveBytes(cfg_, weightSize(), T, B);
      ws += HalfParts::workspaceBytes(cfg_, weightSize(), T, B);
    }
    return {int64_t((reserve + 3) / 4) + 1, int64_t((ws + 3) / 4) + 1};
  }

  void forward(api::cudnnHandle_t h, cudaStream_t s, const int32_t* devLengths, int64_t Tn, int64_t B,
               const int32_t* lengths, const float* x, const float* hx, const float* cx, const float* W, float* y,
               float* hy, float* cy, float* reserve, int64_t reserveN, float* ws, int64_t wsN, bool training) const {
    std::lock_guard<std::mutex> lock(mu_);
    const Set& set = setFor(training);
    setData(Tn, B, reinterpret_cast<const int*>(lengths), set.type);
    if (set.type == api::CUDNN_DATA_FLOAT) {
      const Run r{h, devLengths, x, hx, cx, W, y, hy, cy, reserve, size_t(reserveN) * 4, ws, size_t(wsN) * 4};
      RNNLM_CU(runForward(set, set.algos[size_t(chooseAlgo(s, set, r, training, Tn, B))].desc, r, training));
      return;
    }
    const auto R = HalfParts::reserve(cfg_, weightSize(), Tn, B, reserve, size_t(reserveN) * 4);
    const auto Wk = HalfParts::workspace(cfg_, weightSize(), Tn, B, ws, size_t(wsN) * 4);
    const bool lstm = cfg_.cell == Cell::LSTM;
    const int64_t states = cfg_.layers * B * cfg_.hiddenSize;
    toHalf(s, W, weightSize(), R.W);
    toHalf(s, x, Tn * B * cfg_.inputSize, R.x);
    // The initial states are kept (zeros when absent): the backward passes read them.
    toHalf(s, hx, states, R.hx);
    if (lstm) toHalf(s, cx, states, R.cx);
    const Run r{h, devLengths, R.x, R.hx, lstm ? R.cx : nullptr, R.W, R.y, hy ? Wk.hy : nullptr,
                cy ? Wk.cy : nullptr, reserve, R.cudnnBytes, ws, Wk.cudnnBytes};
    RNNLM_CU(runForward(set, set.algos[size_t(chooseAlgo(s, set, r, training, Tn, B))].desc, r, training));
    fromHalf(s, R.y, Tn * B * cfg_.hiddenSize, y, false);
    if (hy) fromHalf(s, Wk.hy, states, hy, false);
    if (cy && lstm) fromHalf(s, Wk.cy, states, cy, false);
  }
  void backwardData(api::cudnnHandle_t h, cudaStream_t s, const int32_t* devLengths, int64_t Tn, int64_t B,
                    const int32_t* lengths, const float* W, const float* y, const float* dy, const float* dhy,
                    const float* dcy, const float* hx, const float* cx, float* dx, float* dhx, float* dcx,
                    float* reserve, int64_t reserveN, float* ws, int64_t wsN) const {
    if (!y || !dx) fail(Code::InvalidArgument, "rnnBackwardData on CUDA needs y (the forward output) and dx");
    std::lock_guard<std::mutex> lock(mu_);
    setData(Tn, B, reinterpret_cast<const int*>(lengths), main_.type);
    const size_t weightBytes = main_.weightBytes;
    const bool lstm = cfg_.cell == Cell::LSTM;
    const auto& D = libs().cudnn;
    if (!half_) {
      RNNLM_CU(D.cudnnRNNBackwardData_v8(h, trainedDesc(Tn, B), devLengths, yDesc_, y, dy, xDesc_, dx, hDesc_, hx, dhy,
                                         dhx, hDesc_, lstm ? cx : nullptr, lstm ? dcy : nullptr, lstm ? dcx : nullptr,
                                         weightBytes, W, size_t(wsN) * 4, ws, size_t(reserveN) * 4, reserve));
      return;
    }
    // The forward's half copies (W, y, hx, cx) are in the reserve; the caller's float32 y and hx are the same values.
    const auto R = HalfParts::reserve(cfg_, weightSize(), Tn, B, reserve, size_t(reserveN) * 4);
    const auto Wk = HalfParts::workspace(cfg_, weightSize(), Tn, B, ws, size_t(wsN) * 4);
    const int64_t states = cfg_.layers * B * cfg_.hiddenSize;
    toHalf(s, dy, Tn * B * cfg_.hiddenSize, Wk.dy);
    if (dhy) toHalf(s, dhy, states, Wk.dhy);
    if (dcy && lstm) toHalf(s, dcy, states, Wk.dcy);
    RNNLM_CU(D.cudnnRNNBackwardData_v8(h, trainedDesc(Tn, B), devLengths, yDesc_, R.y, Wk.dy, xDesc_, Wk.dx, hDesc_,
                                       R.hx, dhy ? Wk.dhy : nullptr, dhx ? Wk.dhx : nullptr, hDesc_,
                                       lstm ? R.cx : nullptr, lstm && dcy ? Wk.dcy : nullptr,
                                       lstm && dcx ? Wk.dcx : nullptr, weightBytes, R.W, Wk.cudnnBytes, ws,
                                       R.cudnnBytes, reserve));
    fromHalf(s, Wk.dx, Tn * B * cfg_.inputSize, dx, false);
    if (dhx) fromHalf(s, Wk.dhx, states, dhx, false);
    if (dcx && lstm) fromHalf(s, Wk.dcx, states, dcx, false);
  }
  void backwardWeights(api::cudnnHandle_t h, cudaStream_t s, const int32_t* devLengths, int64_t Tn, int64_t B,
                       const int32_t* lengths, const float* x, const float* hx, const float* y, float* dW,
                       float* reserve, int64_t reserveN, float* ws, int64_t wsN) const {
    if (!y) fail(Code::InvalidArgument, "rnnBackwardWeights on CUDA needs y (the forward output)");
    std::lock_guard<std::mutex> lock(mu_);
    setData(Tn, B, reinterpret_cast<const int*>(lengths), main_.type);
    const size_t weightBytes = main_.weightBytes;
    const auto& D = libs().cudnn;
    if (!half_) {
      RNNLM_CU(D.cudnnRNNBackwardWeights_v8(h, trainedDesc(Tn, B), api::CUDNN_WGRAD_MODE_ADD, devLengths, xDesc_, x,
                                            hDesc_, hx, yDesc_, y, weightBytes, dW, size_t(wsN) * 4, ws,
                                            size_t(reserveN) * 4, reserve));
      return;
    }
    // This call's gradient in half (zeroed, then cuDNN adds to it), added to the float32 dW.
    const auto R = HalfParts::reserve(cfg_, weightSize(), Tn, B, reserve, size_t(reserveN) * 4);
    const auto Wk = HalfParts::workspace(cfg_, weightSize(), Tn, B, ws, size_t(wsN) * 4);
    RNNLM_CU(cudaMemsetAsync(Wk.dW, 0, weightBytes, s));
    RNNLM_CU(D.cudnnRNNBackwardWeights_v8(h, trainedDesc(Tn, B), api::CUDNN_WGRAD_MODE_ADD, devLengths, xDesc_, R.x,
                                          hDesc_, R.hx, yDesc_, R.y, weightBytes, Wk.dW, Wk.cudnnBytes, ws,
                                          R.cudnnBytes, reserve));
    fromHalf(s, Wk.dW, weightSize(), dW, true);
  }

 private:
  struct Algo {
    RnnAlgorithm algorithm;
    api::cudnnRNNDescriptor_t desc;
  };
  // The descriptors of one data type: one per candidate algorithm, all on one weight layout.
  struct Set {
    api::cudnnDataType_t type = api::CUDNN_DATA_FLOAT;
    size_t elem = 4;  // bytes per element
    size_t weightBytes = 0;
    std::vector<Algo> algos;
  };
  // The model's precision (training; and inference in fp32 / tf32), or inference's float32 ones.
  const Set& setFor(bool training) const { return half_ && !training ? float_ : main_; }

  // set's descriptors, one per candidate algorithm: auto's candidates cuDNN refuses for this
  // configuration are left out; a named algorithm (and auto's STANDARD) must work. Each lays the
  // weights out as the first set's first did, in elements (checked), or the model is refused.
  void build(api::cudnnHandle_t h, Set& set) {
    const auto& D = libs().cudnn;
    for (RnnAlgorithm a : candidates(cfg_.algorithm)) {
      const bool required = cfg_.algorithm != RnnAlgorithm::Auto || a == RnnAlgorithm::Standard;
      api::cudnnRNNDescriptor_t d = describe(a, required, set.type);
      if (!d) continue;
      try {
        size_t bytes = 0;
        RNNLM_CU(D.cudnnGetRNNWeightSpaceSize(h, d, &bytes));
        std::vector<ParamRef> layout = weightLayout(cfg_, h, d, bytes, set.elem);
        if (params_.empty()) params_ = std::move(layout);
        else if (bytes / set.elem != size_t(weightSize()) || !sameLayout(layout, params_))
          fail(Code::Native, "cuDNN lays out the weights of algorithm %s in %s unlike %s's", algorithmName(a),
               set.type == api::CUDNN_DATA_FLOAT ? "float32" : precisionName(cfg_.precision),
               algorithmName(main_.algos.empty() ? a : main_.algos[0].algorithm));
        set.weightBytes = bytes;
      } catch (const Error&) {
        D.cudnnDestroyRNNDescriptor(d);
        if (required) throw;
        continue;
      }
      set.algos.push_back({a, d});
    }
  }
  // The pointers of one forward (and of the backward a training timing adds).
  struct Run {
    api::cudnnHandle_t h;
    const int32_t* devLengths;
    const void *x, *hx, *cx, *W;  // float32, or the half copies (rnn_half.h)
    void *y, *hy, *cy, *reserve;
    size_t reserveBytes;
    void* ws;
    size_t wsBytes;
  };

  // The casts around a half-precision call (mixed.cu); a null float32 state is zeros.
  void toHalf(cudaStream_t s, const float* src, int64_t n, void* dst) const {
    if (src) RNNLM_LAUNCH(kernels::toHalf(s, src, n, dst, halfKind_));
    else RNNLM_CU(cudaMemsetAsync(dst, 0, size_t(n) * 2, s));
  }
  void fromHalf(cudaStream_t s, const void* src, int64_t n, float* dst, bool accumulate) const {
    RNNLM_LAUNCH(kernels::fromHalf(s, src, n, dst, halfKind_, accumulate));
  }

  static api::cudnnRNNAlgo_t cudnnAlgo(RnnAlgorithm a) {
    switch (a) {
      case RnnAlgorithm::PersistStatic: return api::CUDNN_RNN_ALGO_PERSIST_STATIC;
      case RnnAlgorithm::PersistStaticSmallH: return api::CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H;
      default: return api::CUDNN_RNN_ALGO_STANDARD;
    }
  }
  static std::vector<RnnAlgorithm> candidates(RnnAlgorithm option) {
    if (option != RnnAlgorithm::Auto) return {option};
    return {RnnAlgorithm::Standard, RnnAlgorithm::PersistStatic, RnnAlgorithm::PersistStaticSmallH};
  }
  static bool sameLayout(const std::vector<ParamRef>& a, const std::vector<ParamRef>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].offset != b[i].offset || a[i].rows != b[i].rows || a[i].cols != b[i].cols) return false;
    return true;
  }

  // The RNN descriptor of one algorithm; null where cuDNN refuses it and it is not required.
  // Precision TF32 lets cuDNN use TF32 tensor cores; FP32 is FMA math (precision.h); half data
  // uses tensor cores with float math, or the data type's math where cuDNN refuses float.
  api::cudnnRNNDescriptor_t describe(RnnAlgorithm a, bool required, api::cudnnDataType_t type) const {
    const auto& D = libs().cudnn;
    const RnnConfig& c = cfg_;
    const api::cudnnRNNMode_t mode = c.cell == Cell::LSTM ? api::CUDNN_LSTM
                                     : c.cell == Cell::GRU ? api::CUDNN_GRU
                                     : c.cell == Cell::RNN_TANH ? api::CUDNN_RNN_TANH
                                                                : api::CUDNN_RNN_RELU;
    api::cudnnRNNDescriptor_t d = nullptr;
    RNNLM_CU(D.cudnnCreateRNNDescriptor(&d));
    // A half precision's float32 inference may round as TF32 does (its products round more).
    const bool half = type != api::CUDNN_DATA_FLOAT;
    const api::cudnnMathType_t math = half                                     ? api::CUDNN_TENSOR_OP_MATH
                                      : c.precision == Precision::FP32 ? api::CUDNN_FMA_MATH
                                                                        : api::CUDNN_DEFAULT_MATH;
    auto set = [&](api::cudnnDataType_t mathPrec) {
      return D.cudnnSetRNNDescriptor_v8(d, cudnnAlgo(a), mode, api::CUDNN_RNN_DOUBLE_BIAS, api::CUDNN_UNIDIRECTIONAL,
                                        api::CUDNN_LINEAR_INPUT, type, mathPrec, math, int32_t(c.inputSize),
                                        int32_t(c.hiddenSize), int32_t(c.hiddenSize), int32_t(c.layers), drop_,
                                        api::CUDNN_RNN_PADDED_IO_ENABLED);
    };
    api::cudnnStatus_t st = set(api::CUDNN_DATA_FLOAT);
    if (st != api::CUDNN_STATUS_SUCCESS && half) st = set(type);
    if (st != api::CUDNN_STATUS_SUCCESS) {
      D.cudnnDestroyRNNDescriptor(d);
      if (required) check(st, "cudnnSetRNNDescriptor_v8");
      return nullptr;
    }
    return d;
  }

  api::cudnnStatus_t runForward(const Set& set, api::cudnnRNNDescriptor_t d, const Run& r, bool training) const {
    const bool lstm = cfg_.cell == Cell::LSTM;
    return libs().cudnn.cudnnRNNForward(r.h, d, training ? api::CUDNN_FWD_MODE_TRAINING : api::CUDNN_FWD_MODE_INFERENCE,
                                        r.devLengths, xDesc_, r.x, yDesc_, r.y, hDesc_, r.hx, r.hy, hDesc_,
                                        lstm ? r.cx : nullptr, lstm ? r.cy : nullptr, set.weightBytes, r.W, r.wsBytes,
                                        r.ws, r.reserveBytes, r.reserve);
  }

  // The index in set.algos of the algorithm for this shape: the only one, the one chosen before,
  // or (first use) the fastest of those that run it. A training timing runs forward,
  // backward-data and backward-weights (into scratch: dx, dW; dy = y, no state gradients),
  // once to warm up and then kReps times between two events, on the stream; the real forward
  // runs after it and overwrites every output the timing wrote.
  int chooseAlgo(cudaStream_t s, const Set& set, const Run& r, bool training, int64_t Tn, int64_t B) const {
    const std::vector<Algo>& algos = set.algos;
    if (algos.size() == 1) return 0;
    const AlgoChoices::Key key = AlgoChoices::keyOf(training, B, Tn);
    const int known = choices_.find(key);
    if (known >= 0) return known;
    constexpr int kReps = 3;
    const auto& D = libs().cudnn;
    const bool lstm = cfg_.cell == Cell::LSTM;
    void* dx = nullptr;
    void* dW = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    AlgoChoices::Entry entry{key, algos[0].algorithm, {}};
    int best = 0;
    double bestMs = -1;
    auto cleanup = [&] {
      if (start) cudaEventDestroy(start);
      if (stop) cudaEventDestroy(stop);
      cudaFree(dx);
      cudaFree(dW);
    };
    try {
      RNNLM_CU(cudaEventCreate(&start));
      RNNLM_CU(cudaEventCreate(&stop));
      if (training) {
        RNNLM_CU(cudaMalloc(&dx, size_t(Tn * B * cfg_.inputSize) * set.elem));
        RNNLM_CU(cudaMalloc(&dW, set.weightBytes));
      }
      for (size_t i = 0; i < algos.size(); ++i) {
        const api::cudnnRNNDescriptor_t d = algos[i].desc;
        auto once = [&]() -> api::cudnnStatus_t {
          api::cudnnStatus_t st = runForward(set, d, r, training);
          if (st != api::CUDNN_STATUS_SUCCESS || !training) return st;
          st = D.cudnnRNNBackwardData_v8(r.h, d, r.devLengths, yDesc_, r.y, r.y, xDesc_, dx, hDesc_, r.hx, nullptr,
                                         nullptr, hDesc_, lstm ? r.cx : nullptr, nullptr, nullptr, set.weightBytes, r.W,
                                         r.wsBytes, r.ws, r.reserveBytes, r.reserve);
          if (st != api::CUDNN_STATUS_SUCCESS) return st;
          return D.cudnnRNNBackwardWeights_v8(r.h, d, api::CUDNN_WGRAD_MODE_ADD, r.devLengths, xDesc_, r.x, hDesc_, r.hx,
                                              yDesc_, r.y, set.weightBytes, dW, r.wsBytes, r.ws, r.reserveBytes, r.reserve);
        };
        double ms = -1;
        if (once() == api::CUDNN_STATUS_SUCCESS) {
          RNNLM_CU(cudaEventRecord(start, s));
          bool ok = true;
          for (int k = 0; k < kReps && ok; ++k) ok = once() == api::CUDNN_STATUS_SUCCESS;
          RNNLM_CU(cudaEventRecord(stop, s));
          RNNLM_CU(cudaEventSynchronize(stop));
          float elapsed = 0;
          RNNLM_CU(cudaEventElapsedTime(&elapsed, start, stop));
          if (ok) ms = elapsed / kReps;
        }
        cudaGetLastError();  // an algorithm's refusal leaves no error behind
        entry.ms.push_back({algos[i].algorithm, ms});
        if (ms >= 0 && (bestMs < 0 || ms < bestMs)) best = int(i), bestMs = ms;
      }
    } catch (...) {
      cleanup();
      throw;
    }
    cleanup();
    entry.chosen = algos[size_t(best)].algorithm;
    choices_.add(key, best, std::move(entry));
    return best;
  }
  // The descriptor the training forward of this shape ran with (its reserve's layout).
  api::cudnnRNNDescriptor_t trainedDesc(int64_t Tn, int64_t B) const {
    const std::vector<Algo>& algos = main_.algos;
    if (algos.size() == 1) return algos[0].desc;
    const int k = choices_.find(AlgoChoices::keyOf(true, B, Tn));
    return algos[size_t(k < 0 ? 0 : k)].desc;
  }

  // Data descriptors for T x B (padded, time-major) and the state descriptor [L, B, H].
  void setData(int64_t T, int64_t B, const int* lengths, api::cudnnDataType_t type) const {
    const auto& D = libs().cudnn;
    double fill = 0;  // all-zero bytes: 0 in float, half and bfloat16 alike (cuDNN reads it in the data type)
    RNNLM_CU(D.cudnnSetRNNDataDescriptor(xDesc_, type, api::CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, int(T),
                                         int(B), int(cfg_.inputSize), lengths, &fill));
    RNNLM_CU(D.cudnnSetRNNDataDescriptor(yDesc_, type, api::CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, int(T),
                                         int(B), int(cfg_.hiddenSize), lengths, &fill));
    const int dims[3] = {int(cfg_.layers), int(B), int(cfg_.hiddenSize)};
    const int strides[3] = {int(B * cfg_.hiddenSize), int(cfg_.hiddenSize), 1};
    RNNLM_CU(D.cudnnSetTensorNdDescriptor(hDesc_, type, 3, dims, strides));
  }

  RnnConfig cfg_;
  bool half_;                    // bf16 / fp16: cuDNN runs on half copies (rnn_half.h)
  kernels::Half halfKind_;
  Set main_;   // the model's data type: every training call, and inference in fp32 / tf32
  Set float_;  // bf16 / fp16: inference's float32 descriptors (empty otherwise)
  mutable AlgoChoices choices_;
  api::cudnnDropoutDescriptor_t drop_ = nullptr;
  void* dropStates_ = nullptr;
  size_t dropStatesBytes_ = 0;
  std::vector<ParamRef> params_;
  mutable std::mutex mu_;
  api::cudnnRNNDataDescriptor_t xDesc_ = nullptr, yDesc_ = nullptr;
  api::cudnnTensorDescriptor_t hDesc_ = nullptr;
};

}  // namespace rnnlm::cuda
