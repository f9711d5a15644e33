// Helpers shared by the backends' Node-API bindings: typed argument reading
// with precise messages, and rnnlm::Error -> JavaScript RnnlmError.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "status.h"

namespace rnnlm::js {

// The RnnlmError constructor, handed over by lib/ at load time (setErrorClass).
struct AddonData {
  Napi::FunctionReference errorClass;
};

inline Napi::Error toJs(Napi::Env env, Code code, const std::string& msg) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data && !data->errorClass.IsEmpty()) {
    Napi::Object e = data->errorClass.New({Napi::String::New(env, codeName(code)), Napi::String::New(env, msg)});
    return Napi::Error(env, e);
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, codeName(code)));
  return e;
}

inline Napi::Error toJs(Napi::Env env, const Error& e) { return toJs(env, e.code(), e.what()); }

// Runs a binding body; rnnlm::Error and std::bad_alloc become RnnlmError.
template <typename F>
Napi::Value guard(const Napi::CallbackInfo& info, F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    throw toJs(info.Env(), e);
  } catch (const std::bad_alloc&) {
    throw toJs(info.Env(), Code::OutOfMemory, "out of memory");
  }
}

inline Napi::Value setErrorClass(const Napi::CallbackInfo& info) {
  auto* data = info.Env().GetInstanceData<AddonData>();
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  data->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

inline Napi::Object asObject(Napi::Value v, const char* name) {
  RNNLM_CHECK(v.IsObject(), Code::InvalidArgument, "%s must be an object", name);
  return v.As<Napi::Object>();
}

inline double number(Napi::Value v, const char* name) {
  RNNLM_CHECK(v.IsNumber(), Code::InvalidArgument, "%s must be a number", name);
  const double d = v.As<Napi::Number>().DoubleValue();
  RNNLM_CHECK(std::isfinite(d), Code::InvalidArgument, "%s must be finite (got %g)", name, d);
  return d;
}

inline double number(Napi::Value v, const char* name, double lo, double hi) {
  const double d = number(v, name);
  RNNLM_CHECK(d >= lo && d <= hi, Code::InvalidArgument, "%s must be in [%g, %g] (got %g)", name, lo, hi, d);
  return d;
}

inline int64_t integer(double d, const char* name, int64_t lo, int64_t hi) {
  RNNLM_CHECK(d == std::floor(d) && d >= double(lo) && d <= double(hi), Code::InvalidArgument,
              "%s must be an integer in [%lld, %lld] (got %g)", name, (long long)lo, (long long)hi, d);
  return int64_t(d);
}
inline int64_t integer(Napi::Value v, const char* name, int64_t lo, int64_t hi) { return integer(number(v, name), name, lo, hi); }

inline bool boolean(Napi::Value v, const char* name) {
  RNNLM_CHECK(v.IsBoolean(), Code::InvalidArgument, "%s must be a boolean", name);
  return v.As<Napi::Boolean>().Value();
}

inline std::string string(Napi::Value v, const char* name) {
  RNNLM_CHECK(v.IsString(), Code::InvalidArgument, "%s must be a string", name);
  return v.As<Napi::String>().Utf8Value();
}

inline bool absent(Napi::Value v) { return v.IsUndefined() || v.IsNull(); }

// Seeds are integers in [0, 2^53) so they survive the trip through a JS number.
constexpr int64_t kMaxSeed = (int64_t(1) << 53) - 1;
inline uint64_t seed(Napi::Value v, const char* name) { return uint64_t(integer(v, name, 0, kMaxSeed)); }

}  // namespace rnnlm::js
