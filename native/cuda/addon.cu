// The CUDA backend's addon: the shared binding over the CUDA device, plus load() which finds
// cuDNN and cuBLAS (folders in the order lib/backend/cuda.ts decides) and a GPU.
#include <napi.h>

#include "../common/binding.h"
#include "device.h"

namespace {

// load(folders: string[]) -> { device, computeCapability, memoryBytes, driver, runtime, cudnn, cudnnPath, cublasPath }
Napi::Value Load(const Napi::CallbackInfo& info) {
  return rnnlm::js::guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    RNNLM_CHECK(info[0].IsArray(), rnnlm::Code::InvalidArgument, "load: folders must be an array of strings");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<std::string> folders;
    for (uint32_t i = 0; i < arr.Length(); ++i) folders.push_back(rnnlm::js::string(arr.Get(i), "folder"));
    // Libraries first: their search is what users most often need explained.
    const rnnlm::cuda::Libraries& L = rnnlm::cuda::loadLibraries(folders);
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
      cudaGetLastError();
      rnnlm::fail(rnnlm::Code::CudaUnavailable, "no usable NVIDIA GPU (driver libcuda.so.1 and a device): %s",
                  e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports no devices");
    }
    cudaDeviceProp prop{};
    RNNLM_CU(cudaGetDeviceProperties(&prop, 0));
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", Napi::String::New(env, prop.name));
    o.Set("computeCapability", Napi::String::New(env, std::to_string(prop.major) + "." + std::to_string(prop.minor)));
    o.Set("memoryBytes", Napi::Number::New(env, double(prop.totalGlobalMem)));
    o.Set("driver", Napi::Number::New(env, driver));
    o.Set("runtime", Napi::Number::New(env, runtime));
    o.Set("cudnn", Napi::Number::New(env, double(L.cudnn.cudnnGetVersion())));
    o.Set("cudnnPath", Napi::String::New(env, L.cudnnPath));
    o.Set("cublasPath", Napi::String::New(env, L.cublasPath));
    return o;
  });
}

// Peak and current device memory (bytes) as the driver reports it.
Napi::Value MemoryInfo(const Napi::CallbackInfo& info) {
  return rnnlm::js::guard(info, [&]() -> Napi::Value {
    size_t freeBytes = 0, total = 0;
    RNNLM_CU(cudaMemGetInfo(&freeBytes, &total));
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("free", Napi::Number::New(info.Env(), double(freeBytes)));
    o.Set("total", Napi::Number::New(info.Env(), double(total)));
    return o;
  });
}

Napi::Object InitCuda(Napi::Env env, Napi::Object exports) {
  rnnlm::binding::init<rnnlm::cuda::CudaDevice>(env, exports);
  exports.Set("load", Napi::Function::New(env, Load));
  exports.Set("memoryInfo", Napi::Function::New(env, MemoryInfo));
  return exports;
}

}  // namespace

NODE_API_MODULE(rnnlm_cuda, InitCuda)
