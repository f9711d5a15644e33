// Run-time loading of cuDNN 9 and cuBLAS (dlopen), so the CUDA backend builds with nvcc
// alone and a machine without them still loads the CPU backend. The search order is
// decided in lib/backend/cuda.ts (docs/ARCHITECTURE.md, "Devices") and handed over as a list of
// folders; "" stands for the system loader's own path.
#pragma once
#include <string>
#include <vector>

#include "cudnn_api.h"

namespace rnnlm::cuda {

struct Libraries {
  api::CudnnApi cudnn{};
  api::CublasApi cublas{};
  std::string cudnnPath, cublasPath;
};

// Loads both libraries once (later calls return the loaded ones); throws
// Error(CudaUnavailable) listing every place tried and why it failed.
const Libraries& loadLibraries(const std::vector<std::string>& folders);

// The loaded libraries; throws Error(CudaUnavailable) before loadLibraries succeeded.
const Libraries& libs();

}  // namespace rnnlm::cuda
