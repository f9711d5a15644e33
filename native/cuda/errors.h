// Status codes of the CUDA runtime, cuDNN and cuBLAS calls -> rnnlm::Error (common/status.h),
// out-of-memory statuses as ERR_OUT_OF_MEMORY: RNNLM_CU(call) checks one call, RNNLM_LAUNCH
// one kernel launch.
#pragma once
#include <cuda_runtime.h>

#include "../common/status.h"
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

}  // namespace rnnlm::cuda
