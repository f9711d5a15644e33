// Compile-time proof that native/cuda/cudnn_api.h (our own declarations, used so the CUDA
// backend builds with nvcc alone) agrees with the real cuDNN 9 and cuBLAS 12/13 headers.
// Built only where those headers exist: CMake's rnnlm_check_api target passes
// -DRNNLM_HAVE_CUDNN_HEADERS and their include paths. Building it is the test; the program
// itself does nothing.
//
// What is proved:
//   - every enumerator declared in cudnn_api.h has the real value (the checks walk the same
//     X-lists the header declares its enums from, so none can be missed), and each enum type
//     has the real size and signedness;
//   - the CUDNN_RNN_PADDED_IO_* constants equal the real macros;
//   - api::cudaStream_t is CUDA's cudaStream_t;
//   - for every function in RNNLM_CUDNN_FUNCTIONS / RNNLM_CUBLAS_FUNCTIONS, `<name>_t` is
//     exactly the type of &::<name> once each real handle or enum type is replaced by ours
//     (same arity, same return and parameter types, same constness), which also means the
//     real function exists under that (exported) name.

// Ours first: the real cudnn_adv.h makes CUDNN_RNN_PADDED_IO_* macros, which would otherwise
// stand in the way of naming api::CUDNN_RNN_PADDED_IO_*, so take their values now.
#include "cudnn_api.h"

#include <cstdint>

namespace {
[[maybe_unused]] constexpr uint32_t kOurPaddedIoDisabled = rnnlm::cuda::api::CUDNN_RNN_PADDED_IO_DISABLED;
[[maybe_unused]] constexpr uint32_t kOurPaddedIoEnabled = rnnlm::cuda::api::CUDNN_RNN_PADDED_IO_ENABLED;
}  // namespace

#ifdef RNNLM_HAVE_CUDNN_HEADERS

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <type_traits>

namespace api = rnnlm::cuda::api;

#if !defined(CUDNN_MAJOR) || CUDNN_MAJOR != 9
#error "check_api.cc checks against cuDNN 9 headers"
#endif
#if !defined(CUBLAS_VER_MAJOR) || CUBLAS_VER_MAJOR < 12
#error "check_api.cc checks against cuBLAS 12 or newer headers"
#endif

namespace {

// ---- Streams and the auxFlags constants ------------------------------------------------------
static_assert(std::is_same_v<api::cudaStream_t, ::cudaStream_t>, "api::cudaStream_t is not CUDA's cudaStream_t");
static_assert(kOurPaddedIoDisabled == uint32_t(CUDNN_RNN_PADDED_IO_DISABLED), "CUDNN_RNN_PADDED_IO_DISABLED");
static_assert(kOurPaddedIoEnabled == uint32_t(CUDNN_RNN_PADDED_IO_ENABLED), "CUDNN_RNN_PADDED_IO_ENABLED");

// ---- Enumerators -----------------------------------------------------------------------------
#define RNNLM_CHECK_VALUE(name, value)                                                     \
  static_assert(static_cast<long long>(api::name) == static_cast<long long>(::name) &&    \
                    static_cast<long long>(api::name) == static_cast<long long>(value),   \
                "cudnn_api.h: " #name " differs from the real header");

RNNLM_CUDNN_STATUS_VALUES(RNNLM_CHECK_VALUE)
#if CUDNN_VERSION >= 90600
RNNLM_CUDNN_STATUS_VALUES_9_6(RNNLM_CHECK_VALUE)
#endif
RNNLM_CUDNN_DATA_TYPE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_MATH_TYPE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_TENSOR_FORMAT_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_RNN_ALGO_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_FORWARD_MODE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_RNN_MODE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_RNN_BIAS_MODE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_DIRECTION_MODE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_RNN_INPUT_MODE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_RNN_DATA_LAYOUT_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDNN_WGRAD_MODE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUBLAS_STATUS_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUBLAS_OPERATION_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUBLAS_MATH_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUBLAS_POINTER_MODE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUDA_DATA_TYPE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUBLAS_COMPUTE_TYPE_VALUES(RNNLM_CHECK_VALUE)
RNNLM_CUBLAS_GEMM_ALGO_VALUES(RNNLM_CHECK_VALUE)
#undef RNNLM_CHECK_VALUE

// ---- Types: ours for each real one ------------------------------------------------------------
// Ours<T> rewrites a real type into the type cudnn_api.h uses for it: the real handle structs
// and enums become api::'s, pointers / const / function pointers are rewritten part by part,
// and everything else (int, int32_t, size_t, float, void, CUstream_st, ...) stays as it is.
template <class T>
struct Ours {
  using type = T;
};
template <class T>
using Ours_t = typename Ours<T>::type;
template <class T>
struct Ours<const T> {
  using type = const Ours_t<T>;
};
template <class T>
struct Ours<T*> {
  using type = Ours_t<T>*;
};
template <class R, class... A>
struct Ours<R (*)(A...)> {
  using type = Ours_t<R> (*)(Ours_t<A>...);
};

// An enum of ours must also have the real size and signedness, so it passes the same way.
template <class Real, class Mine>
constexpr bool sameEnumRepr() {
  return sizeof(Real) == sizeof(Mine) && alignof(Real) == alignof(Mine) &&
         std::is_signed_v<std::underlying_type_t<Real>> == std::is_signed_v<std::underlying_type_t<Mine>>;
}

#define RNNLM_OURS(real, mine)  \
  template <>                   \
  struct Ours<real> {           \
    using type = mine;          \
  };
#define RNNLM_OURS_ENUM(name)                                                                        \
  RNNLM_OURS(::name, api::name)                                                                      \
  static_assert(std::is_enum_v<::name> && std::is_enum_v<api::name>, #name " is not an enum");      \
  static_assert(sameEnumRepr<::name, api::name>(), "cudnn_api.h: " #name " has another size or sign");

// The structs behind the opaque handles (their tags, as the real headers spell them).
RNNLM_OURS(::cudnnContext, api::cudnnContext)
RNNLM_OURS(::cudnnTensorStruct, api::cudnnTensorStruct)
RNNLM_OURS(::cudnnDropoutStruct, api::cudnnDropoutStruct)
RNNLM_OURS(::cudnnRNNStruct, api::cudnnRNNStruct)
RNNLM_OURS(::cudnnRNNDataStruct, api::cudnnRNNDataStruct)
RNNLM_OURS(::cublasContext, api::cublasContext)

RNNLM_OURS_ENUM(cudnnStatus_t)
RNNLM_OURS_ENUM(cudnnDataType_t)
RNNLM_OURS_ENUM(cudnnMathType_t)
RNNLM_OURS_ENUM(cudnnTensorFormat_t)
RNNLM_OURS_ENUM(cudnnRNNAlgo_t)
RNNLM_OURS_ENUM(cudnnForwardMode_t)
RNNLM_OURS_ENUM(cudnnRNNMode_t)
RNNLM_OURS_ENUM(cudnnRNNBiasMode_t)
RNNLM_OURS_ENUM(cudnnDirectionMode_t)
RNNLM_OURS_ENUM(cudnnRNNInputMode_t)
RNNLM_OURS_ENUM(cudnnRNNDataLayout_t)
RNNLM_OURS_ENUM(cudnnWgradMode_t)
RNNLM_OURS_ENUM(cublasStatus_t)
RNNLM_OURS_ENUM(cublasOperation_t)
RNNLM_OURS_ENUM(cublasMath_t)
RNNLM_OURS_ENUM(cublasPointerMode_t)
RNNLM_OURS_ENUM(cudaDataType_t)
RNNLM_OURS_ENUM(cublasComputeType_t)
RNNLM_OURS_ENUM(cublasGemmAlgo_t)
#undef RNNLM_OURS_ENUM
#undef RNNLM_OURS

// The handle typedefs line up with those tags.
static_assert(std::is_same_v<Ours_t<::cudnnHandle_t>, api::cudnnHandle_t>, "cudnnHandle_t");
static_assert(std::is_same_v<Ours_t<::cudnnTensorDescriptor_t>, api::cudnnTensorDescriptor_t>,
              "cudnnTensorDescriptor_t");
static_assert(std::is_same_v<Ours_t<::cudnnDropoutDescriptor_t>, api::cudnnDropoutDescriptor_t>,
              "cudnnDropoutDescriptor_t");
static_assert(std::is_same_v<Ours_t<::cudnnRNNDescriptor_t>, api::cudnnRNNDescriptor_t>, "cudnnRNNDescriptor_t");
static_assert(std::is_same_v<Ours_t<::cudnnRNNDataDescriptor_t>, api::cudnnRNNDataDescriptor_t>,
              "cudnnRNNDataDescriptor_t");
static_assert(std::is_same_v<Ours_t<::cublasHandle_t>, api::cublasHandle_t>, "cublasHandle_t");

// ---- Functions -------------------------------------------------------------------------------
// &::name also proves the real header declares a function of exactly that name (for cuBLAS,
// the exported _v2 symbol, not cublas_v2.h's macro alias).
#define RNNLM_CHECK_FUNCTION(name)                                        \
  static_assert(std::is_same_v<Ours_t<decltype(&::name)>, api::name##_t>, \
                "cudnn_api.h: " #name "_t is not the type of the real " #name);
// Each table member is typed by its own typedef (checked per table, so a name in the wrong
// list fails too).
#define RNNLM_CHECK_CUDNN_MEMBER(name) \
  static_assert(std::is_same_v<decltype(api::CudnnApi::name), api::name##_t>, "CudnnApi::" #name);
#define RNNLM_CHECK_CUBLAS_MEMBER(name) \
  static_assert(std::is_same_v<decltype(api::CublasApi::name), api::name##_t>, "CublasApi::" #name);

RNNLM_CUDNN_FUNCTIONS(RNNLM_CHECK_FUNCTION)
RNNLM_CUBLAS_FUNCTIONS(RNNLM_CHECK_FUNCTION)
RNNLM_CUDNN_FUNCTIONS(RNNLM_CHECK_CUDNN_MEMBER)
RNNLM_CUBLAS_FUNCTIONS(RNNLM_CHECK_CUBLAS_MEMBER)
#undef RNNLM_CHECK_FUNCTION
#undef RNNLM_CHECK_CUDNN_MEMBER
#undef RNNLM_CHECK_CUBLAS_MEMBER

}  // namespace

#endif  // RNNLM_HAVE_CUDNN_HEADERS

int main() { return 0; }
