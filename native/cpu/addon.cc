// The CPU backend's addon: the shared binding over the CPU device, plus OpenBLAS facts.
#include <napi.h>

#include "../common/binding.h"
#include "device.h"

namespace {

Napi::Value BlasInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("library", Napi::String::New(env, "OpenBLAS"));
  o.Set("config", Napi::String::New(env, openblas_get_config()));
  o.Set("threads", Napi::Number::New(env, openblas_get_num_threads()));
  // Our kernels' instruction set, as chosen by CPUID (and RNNLM_CPU_ISA).
#if RNNLM_AVX2_DISPATCH
  const char* isa = rnnlm::cpu::hasVnni() ? "avx512vnni" : rnnlm::cpu::hasAvx2Fma() ? "avx2" : "base";
#else
  const char* isa = "base";
#endif
  o.Set("kernels", Napi::String::New(env, isa));
  return o;
}

Napi::Value SetBlasThreads(const Napi::CallbackInfo& info) {
  return rnnlm::js::guard(info, [&]() -> Napi::Value {
    openblas_set_num_threads(int(rnnlm::js::integer(info[0], "threads", 1, 1024)));
    return info.Env().Undefined();
  });
}

Napi::Object InitCpu(Napi::Env env, Napi::Object exports) {
  rnnlm::binding::init<rnnlm::cpu::CpuDevice>(env, exports);
  exports.Set("blasInfo", Napi::Function::New(env, BlasInfo));
  exports.Set("setBlasThreads", Napi::Function::New(env, SetBlasThreads));
  return exports;
}

}  // namespace

NODE_API_MODULE(rnnlm_cpu, InitCpu)
