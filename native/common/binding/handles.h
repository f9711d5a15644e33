// The handles JavaScript holds besides the stream (binding/stream.h): a device buffer
// (NativeBuffer) and a recurrent-stack descriptor (NativeRnn, over D::Rnn), and the per-addon
// data that keeps their constructors, so that arguments can be checked to be ours.
#pragma once
#include <napi.h>

#include <memory>

#include "../js.h"
#include "../rnn_layout.h"
#include "../tensor.h"

namespace rnnlm::binding {

struct AddonData : js::AddonData {
  Napi::FunctionReference bufferClass;
  Napi::FunctionReference streamClass;
  Napi::FunctionReference rnnClass;
};
inline AddonData* addonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// ---------------------------------------------------------------------------------------------
class NativeBuffer : public Napi::ObjectWrap<NativeBuffer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeBuffer",
                       {InstanceAccessor<&NativeBuffer::Length>("length"), InstanceAccessor<&NativeBuffer::Dtype>("dtype"),
                        InstanceAccessor<&NativeBuffer::Released>("released"), InstanceMethod<&NativeBuffer::Free>("free")});
  }
  NativeBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeBuffer>(info) {
    if (info.Length() != 2 || !info[0].IsExternal() || !info[1].IsNumber())
      throw Napi::TypeError::New(info.Env(), "NativeBuffer is created by Stream.alloc()");
    auto* st = info[0].As<Napi::External<std::shared_ptr<Storage>>>().Data();
    storage_ = *st;
    streamId_ = info[1].As<Napi::Number>().Int64Value();
    // Tell V8 about the native memory, so that garbage collection (and so the finalizer of a
    // buffer nobody freed) happens under memory pressure as it would for JS memory.
    external_ = int64_t(storage_->length) * int64_t(dtypeSize(storage_->dtype));
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), external_);
  }
  ~NativeBuffer() override { release(this->Env()); }
  void release(Napi::Env env) {
    storage_.reset();  // queued ops keep their own reference
    // The raw call: this also runs from finalizers at environment teardown, where a C++
    // exception from a failed status would end the process.
    int64_t ignored;
    if (external_) napi_adjust_external_memory(env, -external_, &ignored);
    external_ = 0;
  }
  std::shared_ptr<Storage> storage_;
  int64_t streamId_ = 0;
  int64_t external_ = 0;

 private:
  Napi::Value Length(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), storage_ ? double(storage_->length) : 0);
  }
  Napi::Value Dtype(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), storage_ ? dtypeName(storage_->dtype) : "released");
  }
  Napi::Value Released(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !storage_); }
  Napi::Value Free(const Napi::CallbackInfo& info) {
    release(info.Env());
    return info.Env().Undefined();
  }
};

// ---------------------------------------------------------------------------------------------
template <class D>
class NativeRnn : public Napi::ObjectWrap<NativeRnn<D>> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return NativeRnn::DefineClass(env, "NativeRnn",
                                  {NativeRnn::template InstanceAccessor<&NativeRnn::WeightSize>("weightSize"),
                                   NativeRnn::template InstanceMethod<&NativeRnn::WeightParam>("weightParam"),
                                   NativeRnn::template InstanceMethod<&NativeRnn::Spaces>("spaces"),
                                   NativeRnn::template InstanceMethod<&NativeRnn::Algorithms>("algorithms")});
  }
  NativeRnn(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeRnn<D>>(info) {
    js::guard(info, [&] {
      Napi::Object o = js::asObject(info[0], "rnn options");
      cfg.cell = parseCell(js::string(o.Get("cell"), "cell"));
      cfg.inputSize = js::integer(o.Get("inputSize"), "inputSize", 1, 1 << 20);
      cfg.hiddenSize = js::integer(o.Get("hiddenSize"), "hiddenSize", 1, 1 << 20);
      cfg.layers = js::integer(o.Get("layers"), "layers", 1, 64);
      cfg.dropout = js::absent(o.Get("dropout")) ? 0 : js::number(o.Get("dropout"), "dropout", 0, 0.999999);
      cfg.locked = js::absent(o.Get("lockedDropout")) ? false : js::boolean(o.Get("lockedDropout"), "lockedDropout");
      if (!js::absent(o.Get("precision"))) cfg.precision = parsePrecision(js::string(o.Get("precision"), "precision"));
      checkPrecision<D>(cfg.precision);
      if (!js::absent(o.Get("algorithm"))) cfg.algorithm = parseAlgorithm(js::string(o.Get("algorithm"), "algorithm"));
      validateConfig(cfg);
      impl = std::make_shared<typename D::Rnn>(cfg);
      return info.Env().Undefined();
    });
  }
  RnnConfig cfg;
  std::shared_ptr<typename D::Rnn> impl;

 private:
  Napi::Value WeightSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(impl->weightSize()));
  }
  Napi::Value WeightParam(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      const int id = int(js::integer(info[1], "id", 0, 3));
      const ParamRef r = impl->weightParam(js::integer(info[0], "layer", 0, cfg.layers - 1), id);
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("offset", double(r.offset));
      Napi::Array shape = Napi::Array::New(info.Env());
      shape.Set(0u, double(r.rows));
      if (id < 2) shape.Set(1u, double(r.cols));  // matrices
      o.Set("shape", shape);
      return o;
    });
  }
  // The algorithm choices made so far (cuDNN's auto: one per shape timed; the CPU: none), each
  // { training, batchSize, seqLength (the key's: a power of two), algorithm, ms: { name: time } }.
  Napi::Value Algorithms(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      Napi::Array out = Napi::Array::New(env);
      uint32_t i = 0;
      for (const auto& e : impl->algorithmLog()) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("training", e.key.training);
        o.Set("batchSize", double(e.key.B));
        o.Set("seqLength", double(e.key.T));
        o.Set("algorithm", algorithmName(e.chosen));
        Napi::Object ms = Napi::Object::New(env);
        for (const auto& [a, t] : e.ms) ms.Set(algorithmName(a), t < 0 ? env.Null() : Napi::Number::New(env, t));
        o.Set("ms", ms);
        out.Set(i++, o);
      }
      return out;
    });
  }
  Napi::Value Spaces(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      const int64_t T = js::integer(info[0], "seqLength", 1, 1 << 20);
      const int64_t B = js::integer(info[1], "batchSize", 1, 1 << 20);
      const auto sp = impl->spaces(T, B);
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("reserve", double(sp.reserve));
      o.Set("workspace", double(sp.workspace));
      return o;
    });
  }
};

}  // namespace rnnlm::binding
