// Our own declarations of the part of cuDNN 9 and cuBLAS 12/13 that the CUDA backend calls.
//
// Why: the backend must build with nvcc alone (no cuDNN or cuBLAS headers installed) and load
// libcudnn.so.9 and libcublas.so.13 / .12 at run time with dlopen/dlsym (loader.cc), so a
// machine without them still loads the CPU backend. This file therefore declares, in our own
// words, exactly the opaque handles, enum values and function signatures we use; they follow
// the C ABI of cuDNN 9.x (cudnn_graph.h, cudnn_ops.h, cudnn_adv.h) and cuBLAS 12/13
// (cublas_api.h). Everything lives in rnnlm::cuda::api and keeps NVIDIA's names, so code reads
// as it would with the real headers (api::CUDNN_STATUS_SUCCESS, libs().cudnn.cudnnRNNForward).
//
// check_api.cc proves at compile time, against the real headers where they exist (CMake target
// rnnlm_check_api), that every enumerator here has the real value and every function pointer
// type here is the real function's type with our handle and enum types substituted.
//
// Plain C++17: includable by g++ and nvcc, with or without <cuda_runtime.h>.
#pragma once
#include <cstddef>
#include <cstdint>

// CUDA's stream tag, at global scope as in driver_types.h (`typedef struct CUstream_st*
// cudaStream_t`), so api::cudaStream_t is the very same type as CUDA's cudaStream_t.
struct CUstream_st;

// ---- X-lists ---------------------------------------------------------------------------------
// Functions: X(symbol). Each becomes a typedef `symbol_t` and a member `symbol` of CudnnApi /
// CublasApi, and the loader binds them by name: dlsym(lib, #symbol).
#define RNNLM_CUDNN_FUNCTIONS(X)   \
  X(cudnnGetVersion)               \
  X(cudnnGetErrorString)           \
  X(cudnnCreate)                   \
  X(cudnnDestroy)                  \
  X(cudnnSetStream)                \
  X(cudnnCreateTensorDescriptor)   \
  X(cudnnDestroyTensorDescriptor)  \
  X(cudnnSetTensorNdDescriptor)    \
  X(cudnnGetTensorNdDescriptor)    \
  X(cudnnCreateDropoutDescriptor)  \
  X(cudnnDestroyDropoutDescriptor) \
  X(cudnnDropoutGetStatesSize)     \
  X(cudnnSetDropoutDescriptor)     \
  X(cudnnCreateRNNDescriptor)      \
  X(cudnnDestroyRNNDescriptor)     \
  X(cudnnSetRNNDescriptor_v8)      \
  X(cudnnGetRNNWeightSpaceSize)    \
  X(cudnnGetRNNTempSpaceSizes)     \
  X(cudnnGetRNNWeightParams)       \
  X(cudnnCreateRNNDataDescriptor)  \
  X(cudnnDestroyRNNDataDescriptor) \
  X(cudnnSetRNNDataDescriptor)     \
  X(cudnnRNNForward)               \
  X(cudnnRNNBackwardData_v8)       \
  X(cudnnRNNBackwardWeights_v8)

// The exported names: cublas_v2.h maps cublasCreate etc. to these _v2 symbols with macros.
#define RNNLM_CUBLAS_FUNCTIONS(X) \
  X(cublasCreate_v2)              \
  X(cublasDestroy_v2)             \
  X(cublasSetStream_v2)           \
  X(cublasSetMathMode)            \
  X(cublasSetWorkspace_v2)        \
  X(cublasGetVersion_v2)          \
  X(cublasSgemm_v2)               \
  X(cublasGemmEx)

// Enumerators: X(name, value). check_api.cc walks the same lists, so nothing declared here
// goes unchecked.
#define RNNLM_CUDNN_STATUS_VALUES(X)                          \
  X(CUDNN_STATUS_SUCCESS, 0)                                  \
  X(CUDNN_STATUS_NOT_INITIALIZED, 1001)                       \
  X(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH, 1002)           \
  X(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH, 1003)        \
  X(CUDNN_STATUS_DEPRECATED, 1004)                            \
  X(CUDNN_STATUS_LICENSE_ERROR, 1005)                         \
  X(CUDNN_STATUS_RUNTIME_IN_PROGRESS, 1006)                   \
  X(CUDNN_STATUS_RUNTIME_FP_OVERFLOW, 1007)                   \
  X(CUDNN_STATUS_BAD_PARAM, 2000)                             \
  X(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, 2002)                \
  X(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, 2003)          \
  X(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, 2004)               \
  X(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND, 2005)                \
  X(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT, 2006)           \
  X(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH, 2007)             \
  X(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH, 2008)              \
  X(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES, 2009)          \
  X(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE, 2010)              \
  X(CUDNN_STATUS_NOT_SUPPORTED, 3000)                         \
  X(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN, 3001)           \
  X(CUDNN_STATUS_NOT_SUPPORTED_SHAPE, 3002)                   \
  X(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, 3003)               \
  X(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT, 3004)                  \
  X(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER, 3005) \
  X(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART, 3006)     \
  X(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH, 3007)           \
  X(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING, 3008) \
  X(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE, 3009)  \
  X(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT, 3010) \
  X(CUDNN_STATUS_NOT_SUPPORTED_PADDING, 3011)                 \
  X(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM, 3012)        \
  X(CUDNN_STATUS_INTERNAL_ERROR, 4000)                        \
  X(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED, 4001)     \
  X(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE, 4002)       \
  X(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, 4003) \
  X(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED, 4004) \
  X(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM, 4005)       \
  X(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED, 4006) \
  X(CUDNN_STATUS_EXECUTION_FAILED, 5000)                      \
  X(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER, 5001)          \
  X(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS, 5002)               \
  X(CUDNN_STATUS_EXECUTION_FAILED_CUDART, 5003)               \
  X(CUDNN_STATUS_EXECUTION_FAILED_CURAND, 5004)               \
  /* deprecated aliases of the codes above (cuDNN 8 names), still declared by cuDNN 9 */ \
  X(CUDNN_STATUS_ALLOC_FAILED, 4003)                          \
  X(CUDNN_STATUS_INVALID_VALUE, 2001)                         \
  X(CUDNN_STATUS_ARCH_MISMATCH, 3007)                         \
  X(CUDNN_STATUS_MAPPING_ERROR, 4006)                         \
  X(CUDNN_STATUS_RUNTIME_PREREQUISITE_MISSING, 3008)          \
  X(CUDNN_STATUS_VERSION_MISMATCH, 1002)

// Codes in the cuDNN 9.6 headers that 9.0 lacked (added in 9.2 to 9.6); a newer library can
// return them. check_api.cc checks them when CUDNN_VERSION >= 90600.
#define RNNLM_CUDNN_STATUS_VALUES_9_6(X)                      \
  X(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED, 1008)             \
  X(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH, 2011)         \
  X(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE, 2012)             \
  X(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API, 3013)

#define RNNLM_CUDNN_DATA_TYPE_VALUES(X) \
  X(CUDNN_DATA_FLOAT, 0)                \
  X(CUDNN_DATA_DOUBLE, 1)               \
  X(CUDNN_DATA_HALF, 2)                 \
  X(CUDNN_DATA_INT8, 3)                 \
  X(CUDNN_DATA_INT32, 4)                \
  X(CUDNN_DATA_UINT8, 6)                \
  X(CUDNN_DATA_BFLOAT16, 9)             \
  X(CUDNN_DATA_INT64, 10)               \
  X(CUDNN_DATA_BOOLEAN, 11)             \
  X(CUDNN_DATA_FP8_E4M3, 12)            \
  X(CUDNN_DATA_FP8_E5M2, 13)            \
  X(CUDNN_DATA_FAST_FLOAT_FOR_FP8, 14)

#define RNNLM_CUDNN_MATH_TYPE_VALUES(X)         \
  X(CUDNN_DEFAULT_MATH, 0)                      \
  X(CUDNN_TENSOR_OP_MATH, 1)                    \
  X(CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, 2)   \
  X(CUDNN_FMA_MATH, 3)

#define RNNLM_CUDNN_TENSOR_FORMAT_VALUES(X) \
  X(CUDNN_TENSOR_NCHW, 0)                   \
  X(CUDNN_TENSOR_NHWC, 1)                   \
  X(CUDNN_TENSOR_NCHW_VECT_C, 2)

#define RNNLM_CUDNN_RNN_ALGO_VALUES(X)          \
  X(CUDNN_RNN_ALGO_STANDARD, 0)                 \
  X(CUDNN_RNN_ALGO_PERSIST_STATIC, 1)           \
  X(CUDNN_RNN_ALGO_PERSIST_DYNAMIC, 2)          \
  X(CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H, 3)   \
  X(CUDNN_RNN_ALGO_COUNT, 4)

#define RNNLM_CUDNN_FORWARD_MODE_VALUES(X) \
  X(CUDNN_FWD_MODE_INFERENCE, 0)           \
  X(CUDNN_FWD_MODE_TRAINING, 1)

#define RNNLM_CUDNN_RNN_MODE_VALUES(X) \
  X(CUDNN_RNN_RELU, 0)                 \
  X(CUDNN_RNN_TANH, 1)                 \
  X(CUDNN_LSTM, 2)                     \
  X(CUDNN_GRU, 3)

#define RNNLM_CUDNN_RNN_BIAS_MODE_VALUES(X) \
  X(CUDNN_RNN_NO_BIAS, 0)                   \
  X(CUDNN_RNN_SINGLE_INP_BIAS, 1)           \
  X(CUDNN_RNN_DOUBLE_BIAS, 2)               \
  X(CUDNN_RNN_SINGLE_REC_BIAS, 3)

#define RNNLM_CUDNN_DIRECTION_MODE_VALUES(X) \
  X(CUDNN_UNIDIRECTIONAL, 0)                 \
  X(CUDNN_BIDIRECTIONAL, 1)

#define RNNLM_CUDNN_RNN_INPUT_MODE_VALUES(X) \
  X(CUDNN_LINEAR_INPUT, 0)                   \
  X(CUDNN_SKIP_INPUT, 1)

#define RNNLM_CUDNN_RNN_DATA_LAYOUT_VALUES(X)       \
  X(CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, 0)   \
  X(CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED, 1)     \
  X(CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, 2)

#define RNNLM_CUDNN_WGRAD_MODE_VALUES(X) \
  X(CUDNN_WGRAD_MODE_ADD, 0)             \
  X(CUDNN_WGRAD_MODE_SET, 1)

#define RNNLM_CUBLAS_STATUS_VALUES(X)      \
  X(CUBLAS_STATUS_SUCCESS, 0)              \
  X(CUBLAS_STATUS_NOT_INITIALIZED, 1)      \
  X(CUBLAS_STATUS_ALLOC_FAILED, 3)         \
  X(CUBLAS_STATUS_INVALID_VALUE, 7)        \
  X(CUBLAS_STATUS_ARCH_MISMATCH, 8)        \
  X(CUBLAS_STATUS_MAPPING_ERROR, 11)       \
  X(CUBLAS_STATUS_EXECUTION_FAILED, 13)    \
  X(CUBLAS_STATUS_INTERNAL_ERROR, 14)      \
  X(CUBLAS_STATUS_NOT_SUPPORTED, 15)       \
  X(CUBLAS_STATUS_LICENSE_ERROR, 16)

#define RNNLM_CUBLAS_OPERATION_VALUES(X) \
  X(CUBLAS_OP_N, 0)                      \
  X(CUBLAS_OP_T, 1)                      \
  X(CUBLAS_OP_C, 2)

#define RNNLM_CUBLAS_MATH_VALUES(X)                        \
  X(CUBLAS_DEFAULT_MATH, 0)                                \
  X(CUBLAS_PEDANTIC_MATH, 2)                               \
  X(CUBLAS_TF32_TENSOR_OP_MATH, 3)                         \
  X(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION, 16)

// cublasGemmEx's operand types (library_types.h) and compute types: float operands with float
// accumulation, products rounded to bf16 / fp16 / TF32 (the precision option, precision.h).
#define RNNLM_CUDA_DATA_TYPE_VALUES(X) \
  X(CUDA_R_32F, 0)                     \
  X(CUDA_R_16F, 2)                     \
  X(CUDA_R_16BF, 14)

#define RNNLM_CUBLAS_COMPUTE_TYPE_VALUES(X) \
  X(CUBLAS_COMPUTE_32F, 68)                 \
  X(CUBLAS_COMPUTE_32F_FAST_16F, 74)        \
  X(CUBLAS_COMPUTE_32F_FAST_16BF, 75)       \
  X(CUBLAS_COMPUTE_32F_FAST_TF32, 77)

#define RNNLM_CUBLAS_GEMM_ALGO_VALUES(X) X(CUBLAS_GEMM_DEFAULT, -1)

#define RNNLM_CUBLAS_POINTER_MODE_VALUES(X) \
  X(CUBLAS_POINTER_MODE_HOST, 0)            \
  X(CUBLAS_POINTER_MODE_DEVICE, 1)

namespace rnnlm::cuda::api {

using cudaStream_t = ::CUstream_st*;

// ---- Opaque handles (pointers to incomplete structs, as in the real headers) -----------------
struct cudnnContext;
struct cudnnTensorStruct;
struct cudnnDropoutStruct;
struct cudnnRNNStruct;
struct cudnnRNNDataStruct;
struct cublasContext;
using cudnnHandle_t = cudnnContext*;
using cudnnTensorDescriptor_t = cudnnTensorStruct*;
using cudnnDropoutDescriptor_t = cudnnDropoutStruct*;
using cudnnRNNDescriptor_t = cudnnRNNStruct*;
using cudnnRNNDataDescriptor_t = cudnnRNNDataStruct*;
using cublasHandle_t = cublasContext*;

// ---- Enums (plain C-style enums like the real ones, so size and underlying type agree) ------
#define RNNLM_API_ENUMERATOR(name, value) name = value,
enum cudnnStatus_t { RNNLM_CUDNN_STATUS_VALUES(RNNLM_API_ENUMERATOR) RNNLM_CUDNN_STATUS_VALUES_9_6(RNNLM_API_ENUMERATOR) };
enum cudnnDataType_t { RNNLM_CUDNN_DATA_TYPE_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnMathType_t { RNNLM_CUDNN_MATH_TYPE_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnTensorFormat_t { RNNLM_CUDNN_TENSOR_FORMAT_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnRNNAlgo_t { RNNLM_CUDNN_RNN_ALGO_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnForwardMode_t { RNNLM_CUDNN_FORWARD_MODE_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnRNNMode_t { RNNLM_CUDNN_RNN_MODE_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnRNNBiasMode_t { RNNLM_CUDNN_RNN_BIAS_MODE_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnDirectionMode_t { RNNLM_CUDNN_DIRECTION_MODE_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnRNNInputMode_t { RNNLM_CUDNN_RNN_INPUT_MODE_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnRNNDataLayout_t { RNNLM_CUDNN_RNN_DATA_LAYOUT_VALUES(RNNLM_API_ENUMERATOR) };
enum cudnnWgradMode_t { RNNLM_CUDNN_WGRAD_MODE_VALUES(RNNLM_API_ENUMERATOR) };
enum cublasStatus_t { RNNLM_CUBLAS_STATUS_VALUES(RNNLM_API_ENUMERATOR) };
enum cublasOperation_t { RNNLM_CUBLAS_OPERATION_VALUES(RNNLM_API_ENUMERATOR) };
enum cublasMath_t { RNNLM_CUBLAS_MATH_VALUES(RNNLM_API_ENUMERATOR) };
enum cublasPointerMode_t { RNNLM_CUBLAS_POINTER_MODE_VALUES(RNNLM_API_ENUMERATOR) };
enum cudaDataType_t { RNNLM_CUDA_DATA_TYPE_VALUES(RNNLM_API_ENUMERATOR) };
enum cublasComputeType_t { RNNLM_CUBLAS_COMPUTE_TYPE_VALUES(RNNLM_API_ENUMERATOR) };
enum cublasGemmAlgo_t { RNNLM_CUBLAS_GEMM_ALGO_VALUES(RNNLM_API_ENUMERATOR) };
#undef RNNLM_API_ENUMERATOR

// auxFlags of cudnnSetRNNDescriptor_v8. cudnn_adv.h makes these macros; keep any such macro
// out of the way while declaring ours, so this header also works after <cudnn.h>.
#pragma push_macro("CUDNN_RNN_PADDED_IO_DISABLED")
#pragma push_macro("CUDNN_RNN_PADDED_IO_ENABLED")
#undef CUDNN_RNN_PADDED_IO_DISABLED
#undef CUDNN_RNN_PADDED_IO_ENABLED
inline constexpr uint32_t CUDNN_RNN_PADDED_IO_DISABLED = 0;
inline constexpr uint32_t CUDNN_RNN_PADDED_IO_ENABLED = 1u << 0;
#pragma pop_macro("CUDNN_RNN_PADDED_IO_ENABLED")
#pragma pop_macro("CUDNN_RNN_PADDED_IO_DISABLED")

// ---- Function pointer types: `<symbol>_t` is the type of &<symbol> ---------------------------
// Arrays in the real prototypes (const int dimA[]) are the pointers they decay to.
extern "C" {
// cudnn_graph.h
typedef size_t (*cudnnGetVersion_t)(void);
typedef const char* (*cudnnGetErrorString_t)(cudnnStatus_t status);
typedef cudnnStatus_t (*cudnnCreate_t)(cudnnHandle_t* handle);
typedef cudnnStatus_t (*cudnnDestroy_t)(cudnnHandle_t handle);
typedef cudnnStatus_t (*cudnnSetStream_t)(cudnnHandle_t handle, cudaStream_t stream);

// cudnn_ops.h
typedef cudnnStatus_t (*cudnnCreateTensorDescriptor_t)(cudnnTensorDescriptor_t* desc);
typedef cudnnStatus_t (*cudnnDestroyTensorDescriptor_t)(cudnnTensorDescriptor_t desc);
typedef cudnnStatus_t (*cudnnSetTensorNdDescriptor_t)(cudnnTensorDescriptor_t desc, cudnnDataType_t dataType,
                                                      int nbDims, const int* dims, const int* strides);
typedef cudnnStatus_t (*cudnnGetTensorNdDescriptor_t)(cudnnTensorDescriptor_t desc, int nbDimsRequested,
                                                      cudnnDataType_t* dataType, int* nbDims, int* dims,
                                                      int* strides);
typedef cudnnStatus_t (*cudnnCreateDropoutDescriptor_t)(cudnnDropoutDescriptor_t* desc);
typedef cudnnStatus_t (*cudnnDestroyDropoutDescriptor_t)(cudnnDropoutDescriptor_t desc);
typedef cudnnStatus_t (*cudnnDropoutGetStatesSize_t)(cudnnHandle_t handle, size_t* bytes);
typedef cudnnStatus_t (*cudnnSetDropoutDescriptor_t)(cudnnDropoutDescriptor_t desc, cudnnHandle_t handle,
                                                     float dropout, void* states, size_t stateBytes,
                                                     unsigned long long seed);

// cudnn_adv.h
typedef cudnnStatus_t (*cudnnCreateRNNDescriptor_t)(cudnnRNNDescriptor_t* desc);
typedef cudnnStatus_t (*cudnnDestroyRNNDescriptor_t)(cudnnRNNDescriptor_t desc);
typedef cudnnStatus_t (*cudnnSetRNNDescriptor_v8_t)(cudnnRNNDescriptor_t desc, cudnnRNNAlgo_t algo,
                                                    cudnnRNNMode_t cellMode, cudnnRNNBiasMode_t biasMode,
                                                    cudnnDirectionMode_t dirMode, cudnnRNNInputMode_t inputMode,
                                                    cudnnDataType_t dataType, cudnnDataType_t mathPrec,
                                                    cudnnMathType_t mathType, int32_t inputSize,
                                                    int32_t hiddenSize, int32_t projSize, int32_t numLayers,
                                                    cudnnDropoutDescriptor_t dropoutDesc, uint32_t auxFlags);
typedef cudnnStatus_t (*cudnnGetRNNWeightSpaceSize_t)(cudnnHandle_t handle, cudnnRNNDescriptor_t desc,
                                                      size_t* weightSpaceBytes);
typedef cudnnStatus_t (*cudnnGetRNNTempSpaceSizes_t)(cudnnHandle_t handle, cudnnRNNDescriptor_t desc,
                                                     cudnnForwardMode_t fwdMode, cudnnRNNDataDescriptor_t xDesc,
                                                     size_t* workSpaceBytes, size_t* reserveSpaceBytes);
typedef cudnnStatus_t (*cudnnGetRNNWeightParams_t)(cudnnHandle_t handle, cudnnRNNDescriptor_t desc,
                                                   int32_t pseudoLayer, size_t weightSpaceBytes,
                                                   const void* weightSpace, int32_t linLayerID,
                                                   cudnnTensorDescriptor_t mDesc, void** mAddr,
                                                   cudnnTensorDescriptor_t bDesc, void** bAddr);
typedef cudnnStatus_t (*cudnnCreateRNNDataDescriptor_t)(cudnnRNNDataDescriptor_t* desc);
typedef cudnnStatus_t (*cudnnDestroyRNNDataDescriptor_t)(cudnnRNNDataDescriptor_t desc);
typedef cudnnStatus_t (*cudnnSetRNNDataDescriptor_t)(cudnnRNNDataDescriptor_t desc, cudnnDataType_t dataType,
                                                     cudnnRNNDataLayout_t layout, int maxSeqLength, int batchSize,
                                                     int vectorSize, const int* seqLengths, void* paddingFill);
typedef cudnnStatus_t (*cudnnRNNForward_t)(cudnnHandle_t handle, cudnnRNNDescriptor_t desc,
                                           cudnnForwardMode_t fwdMode, const int32_t* devSeqLengths,
                                           cudnnRNNDataDescriptor_t xDesc, const void* x,
                                           cudnnRNNDataDescriptor_t yDesc, void* y, cudnnTensorDescriptor_t hDesc,
                                           const void* hx, void* hy, cudnnTensorDescriptor_t cDesc, const void* cx,
                                           void* cy, size_t weightSpaceBytes, const void* weightSpace,
                                           size_t workSpaceBytes, void* workSpace, size_t reserveSpaceBytes,
                                           void* reserveSpace);
typedef cudnnStatus_t (*cudnnRNNBackwardData_v8_t)(cudnnHandle_t handle, cudnnRNNDescriptor_t desc,
                                                   const int32_t* devSeqLengths, cudnnRNNDataDescriptor_t yDesc,
                                                   const void* y, const void* dy, cudnnRNNDataDescriptor_t xDesc,
                                                   void* dx, cudnnTensorDescriptor_t hDesc, const void* hx,
                                                   const void* dhy, void* dhx, cudnnTensorDescriptor_t cDesc,
                                                   const void* cx, const void* dcy, void* dcx,
                                                   size_t weightSpaceBytes, const void* weightSpace,
                                                   size_t workSpaceBytes, void* workSpace,
                                                   size_t reserveSpaceBytes, void* reserveSpace);
typedef cudnnStatus_t (*cudnnRNNBackwardWeights_v8_t)(cudnnHandle_t handle, cudnnRNNDescriptor_t desc,
                                                      cudnnWgradMode_t addGrad, const int32_t* devSeqLengths,
                                                      cudnnRNNDataDescriptor_t xDesc, const void* x,
                                                      cudnnTensorDescriptor_t hDesc, const void* hx,
                                                      cudnnRNNDataDescriptor_t yDesc, const void* y,
                                                      size_t weightSpaceBytes, void* dweightSpace,
                                                      size_t workSpaceBytes, void* workSpace,
                                                      size_t reserveSpaceBytes, void* reserveSpace);

// cublas_api.h (column-major; alpha/beta are host pointers in the default pointer mode)
typedef cublasStatus_t (*cublasCreate_v2_t)(cublasHandle_t* handle);
typedef cublasStatus_t (*cublasDestroy_v2_t)(cublasHandle_t handle);
typedef cublasStatus_t (*cublasSetStream_v2_t)(cublasHandle_t handle, cudaStream_t stream);
typedef cublasStatus_t (*cublasSetMathMode_t)(cublasHandle_t handle, cublasMath_t mode);
typedef cublasStatus_t (*cublasSetWorkspace_v2_t)(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes);
typedef cublasStatus_t (*cublasGetVersion_v2_t)(cublasHandle_t handle, int* version);
typedef cublasStatus_t (*cublasSgemm_v2_t)(cublasHandle_t handle, cublasOperation_t transa,
                                           cublasOperation_t transb, int m, int n, int k, const float* alpha,
                                           const float* A, int lda, const float* B, int ldb, const float* beta,
                                           float* C, int ldc);
typedef cublasStatus_t (*cublasGemmEx_t)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const void* alpha, const void* A, cudaDataType_t Atype,
                                         int lda, const void* B, cudaDataType_t Btype, int ldb, const void* beta,
                                         void* C, cudaDataType_t Ctype, int ldc, cublasComputeType_t computeType,
                                         cublasGemmAlgo_t algo);

}  // extern "C"

// ---- Function tables, filled by the loader with dlsym(lib, "<member name>") -----------------
#define RNNLM_API_MEMBER(name) name##_t name = nullptr;
struct CudnnApi {
  RNNLM_CUDNN_FUNCTIONS(RNNLM_API_MEMBER)
};
struct CublasApi {
  RNNLM_CUBLAS_FUNCTIONS(RNNLM_API_MEMBER)
};
#undef RNNLM_API_MEMBER

// The same names as strings, for code that wants a list rather than the X-macro.
#define RNNLM_API_NAME(name) #name,
inline constexpr const char* kCudnnSymbols[] = {RNNLM_CUDNN_FUNCTIONS(RNNLM_API_NAME)};
inline constexpr const char* kCublasSymbols[] = {RNNLM_CUBLAS_FUNCTIONS(RNNLM_API_NAME)};
#undef RNNLM_API_NAME

}  // namespace rnnlm::cuda::api
