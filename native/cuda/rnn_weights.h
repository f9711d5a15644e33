// Where PyTorch's canonical tensors lie in a cuDNN RNN's weight space (native/cuda/rnn.h): the
// layout its descriptors are checked against, and the offsets checkpoints are read and written at.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "../common/rnn_layout.h"
#include "../common/status.h"
#include "errors.h"
#include "loader.h"

namespace rnnlm::cuda {

// Where PyTorch's four tensors of each layer lie in cuDNN's weight space (in elements).
// This relies on cuDNN's gate ids (linLayerID) following PyTorch's gate order, which is not
// checked here (only contiguity is): ids 0 .. G-1 are the input GEMM's gates and G .. 2G-1 the
// recurrent GEMM's, LSTM (input, forget, cell candidate, output) = PyTorch's (i, f, g, o),
// GRU (reset, update, new) = PyTorch's (r, z, n). So PyTorch's weight_ih is the G matrices of
// ids 0 .. G-1 in id order, and so on. The GPU parity check (gpu/gpu-check.ts: the same
// canonical tensors through both backends) is what verifies the order.
inline std::vector<ParamRef> weightLayout(const RnnConfig& cfg, api::cudnnHandle_t h, api::cudnnRNNDescriptor_t desc,
                                          size_t weightBytes, size_t elem) {
  const auto& D = libs().cudnn;
  std::vector<ParamRef> params;
  void* space = nullptr;
  RNNLM_CU(cudaMalloc(&space, weightBytes));
  api::cudnnTensorDescriptor_t mDesc = nullptr, bDesc = nullptr;
  RNNLM_CU(D.cudnnCreateTensorDescriptor(&mDesc));
  RNNLM_CU(D.cudnnCreateTensorDescriptor(&bDesc));
  const int64_t G = cfg.gates(), H = cfg.hiddenSize;
  auto offsetOf = [&](void* p) { return int64_t((static_cast<char*>(p) - static_cast<char*>(space)) / elem); };
  try {
    for (int64_t l = 0; l < cfg.layers; ++l) {
      const int64_t in = cfg.layerInput(l);
      ParamRef w[2], bias[2];
      for (int part = 0; part < 2; ++part) {  // 0: input GEMM (W_ih, b_ih), 1: recurrent GEMM (W_hh, b_hh)
        const int64_t cols = part == 0 ? in : H;
        int64_t m0 = 0, b0 = 0;
        for (int64_t g = 0; g < G; ++g) {
          void* m = nullptr;
          void* b = nullptr;
          RNNLM_CU(D.cudnnGetRNNWeightParams(h, desc, int32_t(l), weightBytes, space, int32_t(part * G + g), mDesc, &m,
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
      params.insert(params.end(), {w[0], w[1], bias[0], bias[1]});
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
  return params;
}

}  // namespace rnnlm::cuda
