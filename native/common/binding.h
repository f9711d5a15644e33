// The Node-API binding shared by both backends, over a Device policy D (native/cpu/device.h,
// native/cuda/device.h). Every entry point validates its arguments on the JavaScript thread
// (types, dtypes, shapes, bounds, overlaps, released buffers) and throws RnnlmError before
// anything is queued; the op itself then runs on the model's stream thread through D.
// Only reads return Promises.
//
// D provides: kName, kF64 (computes in float64?), Context (per stream), alloc/release (zeroed
// device memory), upload/download/copy/fill/synchronize, the ops of lib/backend/types.ts, and
// an Rnn class (weightSize, weightParam, spaces, forward, backwardData, backwardWeights).
#pragma once
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include "alloc_stats.h"
#include "js.h"
#include "optim.h"
#include "rnn_layout.h"
#include "sample.h"
#include "stream.h"

namespace rnnlm::binding {


enum class DType { F32 = 0, F64 = 1, I32 = 2 };
inline const char* dtypeName(DType d) { return d == DType::F32 ? "f32" : d == DType::F64 ? "f64" : "i32"; }
inline size_t dtypeSize(DType d) { return d == DType::F64 ? 8 : 4; }

constexpr int64_t kMaxElements = int64_t(1) << 40;

// Device memory: zeroed, freed with its last user (a buffer handle or a queued op that
// still refers to it).
struct Storage {
  void* data = nullptr;
  int64_t length;
  DType dtype;
  void (*release)(void*);
  Storage(void* p, int64_t n, DType t, void (*free)(void*)) : data(p), length(n), dtype(t), release(free) {
    allocStats().add(bytes());
  }
  ~Storage() {
    release(data);
    allocStats().sub(bytes());
  }
  int64_t bytes() const { return length * int64_t(dtypeSize(dtype)); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

// A typed window into a buffer: { buffer, offset, shape }.
struct View {
  std::shared_ptr<Storage> st;
  int64_t offset = 0;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  DType dtype = DType::F32;
  explicit operator bool() const { return bool(st); }
  template <typename T>
  T* p() const {
    return st ? static_cast<T*>(st->data) + offset : nullptr;
  }
  std::string shapeStr() const {
    std::ostringstream s;
    s << '[';
    for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    s << ']';
    return s.str();
  }
};

inline std::string dimsStr(std::initializer_list<int64_t> d) {
  std::ostringstream s;
  s << '[';
  size_t i = 0;
  for (int64_t x : d) s << (i++ ? ", " : "") << x;
  s << ']';
  return s.str();
}

inline void expectShape(const View& v, const char* op, const char* name, std::initializer_list<int64_t> dims) {
  bool ok = v.shape.size() == dims.size();
  if (ok) {
    size_t i = 0;
    for (int64_t d : dims) ok = ok && v.shape[i++] == d;
  }
  RNNLM_CHECK(ok, Code::InvalidArgument, "%s: %s must have shape %s (got %s)", op, name, dimsStr(dims).c_str(),
              v.shapeStr().c_str());
}

inline void expectRank(const View& v, const char* op, const char* name, size_t rank) {
  RNNLM_CHECK(v.shape.size() == rank, Code::InvalidArgument, "%s: %s must have %zu dimensions (got %s)", op,
              name, rank, v.shapeStr().c_str());
}

inline bool overlaps(const View& a, const View& b) {
  if (!a || !b || a.st != b.st) return false;
  return a.offset < b.offset + b.numel && b.offset < a.offset + a.numel;
}

inline void expectDisjoint(const char* op, std::initializer_list<std::pair<const View*, const char*>> views) {
  for (auto i = views.begin(); i != views.end(); ++i)
    for (auto j = std::next(i); j != views.end(); ++j)
      RNNLM_CHECK(!overlaps(*i->first, *j->first), Code::InvalidArgument,
                  "%s: %s and %s overlap in memory; they must be separate", op, i->second, j->second);
}

// All floating views of one op share a dtype (f32 or f64); returns it.
inline DType floatType(const char* op, std::initializer_list<std::pair<const View*, const char*>> views) {
  std::optional<DType> t;
  const char* first = nullptr;
  for (auto& [v, name] : views) {
    if (!*v) continue;
    RNNLM_CHECK(v->dtype != DType::I32, Code::InvalidArgument, "%s: %s must be a float tensor (got i32)", op, name);
    if (!t) t = v->dtype, first = name;
    RNNLM_CHECK(v->dtype == *t, Code::InvalidArgument, "%s: %s is %s but %s is %s; all must match", op, name,
                dtypeName(v->dtype), first, dtypeName(*t));
  }
  return t.value_or(DType::F32);
}

inline void expectInt(const View& v, const char* op, const char* name) {
  RNNLM_CHECK(v.dtype == DType::I32, Code::InvalidArgument, "%s: %s must be an i32 tensor (got %s)", op, name,
              dtypeName(v.dtype));
}

template <typename F>
inline void withFloat(DType t, F&& f) {
  if (t == DType::F64) f(double{});
  else f(float{});
}

// Arguments shared by the recurrent ops, checked once.
struct RnnArgs {
  RnnConfig cfg;
  int64_t T = 0, B = 0;
  View weights, reserve, workspace;
  std::vector<int32_t> lengths;
};

template <class D>
struct Binding {
struct AddonData : js::AddonData {
  Napi::FunctionReference bufferClass;
  Napi::FunctionReference streamClass;
  Napi::FunctionReference rnnClass;
};
static AddonData* addonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// ---------------------------------------------------------------------------------------------
class NativeBuffer : public Napi::ObjectWrap<NativeBuffer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return NativeBuffer::DefineClass(env, "NativeBuffer",
                       {NativeBuffer::template InstanceAccessor<&NativeBuffer::Length>("length"),
                        NativeBuffer::template InstanceAccessor<&NativeBuffer::Dtype>("dtype"),
                        NativeBuffer::template InstanceAccessor<&NativeBuffer::Released>("released"),
                        NativeBuffer::template InstanceMethod<&NativeBuffer::Free>("free")});
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
class NativeRnn : public Napi::ObjectWrap<NativeRnn> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return NativeRnn::DefineClass(env, "NativeRnn",
                                  {NativeRnn::template InstanceAccessor<&NativeRnn::WeightSize>("weightSize"),
                                   NativeRnn::template InstanceMethod<&NativeRnn::WeightParam>("weightParam"),
                                   NativeRnn::template InstanceMethod<&NativeRnn::Spaces>("spaces")});
  }
  NativeRnn(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeRnn>(info) {
    js::guard(info, [&] {
      Napi::Object o = js::asObject(info[0], "rnn options");
      cfg.cell = parseCell(js::string(o.Get("cell"), "cell"));
      cfg.inputSize = js::integer(o.Get("inputSize"), "inputSize", 1, 1 << 20);
      cfg.hiddenSize = js::integer(o.Get("hiddenSize"), "hiddenSize", 1, 1 << 20);
      cfg.layers = js::integer(o.Get("layers"), "layers", 1, 64);
      cfg.dropout = js::absent(o.Get("dropout")) ? 0 : js::number(o.Get("dropout"), "dropout", 0, 0.999999);
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

// ---------------------------------------------------------------------------------------------
struct ReadChannel {
  Napi::ThreadSafeFunction tsfn;
  int pending = 0;  // main thread only
};

struct ReadResult {
  std::shared_ptr<ReadChannel> channel;
  Napi::Promise::Deferred deferred;
  std::vector<uint8_t> bytes;
  DType dtype;
  bool isVoid;
  std::optional<Error> error;
};

class NativeStream : public Napi::ObjectWrap<NativeStream> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return NativeStream::DefineClass(
        env, "NativeStream",
        {NativeStream::template InstanceMethod<&NativeStream::Alloc>("alloc"), NativeStream::template InstanceMethod<&NativeStream::Write>("write"),
         NativeStream::template InstanceMethod<&NativeStream::Read>("read"), NativeStream::template InstanceMethod<&NativeStream::Sync>("sync"),
         NativeStream::template InstanceMethod<&NativeStream::Fill>("fill"), NativeStream::template InstanceMethod<&NativeStream::Copy>("copy"),
         NativeStream::template InstanceMethod<&NativeStream::Dispose>("dispose"),
         NativeStream::template InstanceAccessor<&NativeStream::Disposed>("disposed"),
         NativeStream::template InstanceMethod<&NativeStream::EmbeddingForward>("embeddingForward"),
         NativeStream::template InstanceMethod<&NativeStream::EmbeddingBackward>("embeddingBackward"),
         NativeStream::template InstanceMethod<&NativeStream::DropoutForward>("dropoutForward"),
         NativeStream::template InstanceMethod<&NativeStream::Multiply>("multiply"),
         NativeStream::template InstanceMethod<&NativeStream::LinearForward>("linearForward"),
         NativeStream::template InstanceMethod<&NativeStream::LinearBackward>("linearBackward"),
         NativeStream::template InstanceMethod<&NativeStream::CrossEntropy>("crossEntropy"),
         NativeStream::template InstanceMethod<&NativeStream::LogSoftmax>("logSoftmax"),
         NativeStream::template InstanceMethod<&NativeStream::Sample>("sample"),
         NativeStream::template InstanceMethod<&NativeStream::ClipGradNorm>("clipGradNorm"),
         NativeStream::template InstanceMethod<&NativeStream::ClipValue>("clipValue"), NativeStream::template InstanceMethod<&NativeStream::Sgd>("sgd"),
         NativeStream::template InstanceMethod<&NativeStream::Adam>("adam"),
         NativeStream::template InstanceMethod<&NativeStream::RnnForward>("rnnForward"),
         NativeStream::template InstanceMethod<&NativeStream::Generate>("generate"),
         NativeStream::template InstanceMethod<&NativeStream::RnnBackwardData>("rnnBackwardData"),
         NativeStream::template InstanceMethod<&NativeStream::RnnBackwardWeights>("rnnBackwardWeights")});
  }

  NativeStream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeStream>(info) {
    static std::atomic<int64_t> nextId{1};
    id_ = nextId++;
    Napi::Env env = info.Env();
    channel_ = std::make_shared<ReadChannel>();
    channel_->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), "rnnlm-stream", 0, 1);
    channel_->tsfn.Unref(env);
    ctx_ = std::make_unique<typename D::Context>();
    stream_ = std::make_unique<Stream>();
    // Environment teardown (the end of the process or of a worker thread) runs cleanup hooks
    // newest first, so this one runs before the thread-safe function's own: the stream is
    // stopped and the function released while both still exist. The finalizer that runs later
    // then finds nothing to close.
    NAPI_THROW_IF_FAILED_VOID(env, napi_add_env_cleanup_hook(env, &NativeStream::onTeardown, this));
  }
  ~NativeStream() override { close(this->Env(), false); }

 private:
  static void onTeardown(void* self) { static_cast<NativeStream*>(self)->close(nullptr, true); }

  void close(napi_env env, bool atTeardown) {
    if (!stream_) return;
    if (!atTeardown) napi_remove_env_cleanup_hook(env, &NativeStream::onTeardown, this);
    stream_->shutdown();  // cancels queued work, delivers ERR_DISPOSED to queued reads, joins
    stream_.reset();
    channel_->tsfn.Release();
  }

  // Queues work after the arguments were read: reading them can run JavaScript (a getter) that
  // disposes this stream.
  void push(std::function<void()> run) {
    live();
    stream_->push(std::move(run));
  }

  void live() const {
    RNNLM_CHECK(stream_, Code::Disposed, "this stream (model) was disposed; create a new one");
  }

  View view(Napi::Value v, const char* op, const char* name) const {
    RNNLM_CHECK(v.IsObject(), Code::InvalidArgument, "%s: %s must be a tensor { buffer, offset, shape }", op,
                name);
    Napi::Object o = v.As<Napi::Object>();
    Napi::Value bv = o.Get("buffer");
    auto* data = addonData(this->Env());
    RNNLM_CHECK(bv.IsObject() && bv.As<Napi::Object>().InstanceOf(data->bufferClass.Value()),
                Code::InvalidArgument, "%s: %s.buffer must be a buffer made by this backend's alloc()", op, name);
    NativeBuffer* buf = NativeBuffer::Unwrap(bv.As<Napi::Object>());
    RNNLM_CHECK(buf->storage_, Code::Disposed, "%s: %s refers to a buffer that was released", op, name);
    RNNLM_CHECK(buf->streamId_ == id_, Code::InvalidArgument,
                "%s: %s belongs to another stream (model); buffers cannot be shared between models", op, name);
    View r;
    r.st = buf->storage_;
    r.dtype = buf->storage_->dtype;
    r.offset = js::integer(o.Get("offset"), "tensor offset", 0, kMaxElements);
    Napi::Value sv = o.Get("shape");
    RNNLM_CHECK(sv.IsArray(), Code::InvalidArgument, "%s: %s.shape must be an array of sizes", op, name);
    Napi::Array shape = sv.As<Napi::Array>();
    RNNLM_CHECK(shape.Length() <= 8, Code::InvalidArgument, "%s: %s has more than 8 dimensions", op, name);
    r.numel = 1;
    for (uint32_t i = 0; i < shape.Length(); ++i) {
      const int64_t d = js::integer(shape.Get(i), "tensor dimension", 1, kMaxElements);
      r.shape.push_back(d);
      r.numel *= d;
      RNNLM_CHECK(r.numel <= kMaxElements, Code::InvalidArgument, "%s: %s is too large", op, name);
    }
    RNNLM_CHECK(r.offset + r.numel <= r.st->length, Code::InvalidArgument,
                "%s: %s (offset %lld, %lld elements) runs past the end of its buffer (%lld elements)", op, name,
                (long long)r.offset, (long long)r.numel, (long long)r.st->length);
    return r;
  }
  View optView(Napi::Value v, const char* op, const char* name) const {
    return js::absent(v) ? View{} : view(v, op, name);
  }

  // --- memory ---------------------------------------------------------------------------------
  Napi::Value Alloc(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const std::string dt = js::string(info[0], "dtype");
      DType t;
      if (dt == "f32") t = DType::F32;
      else if (dt == "f64") t = DType::F64;
      else if (dt == "i32") t = DType::I32;
      else fail(Code::InvalidArgument, "alloc: dtype must be 'f32', 'f64' or 'i32' (got '%s')", dt.c_str());
      RNNLM_CHECK(t != DType::F64 || D::kF64, Code::InvalidArgument,
                  "alloc: the %s backend computes in f32 only (f64 is for the CPU backend's gradient checks)", D::kName);
      const int64_t n = js::integer(info[1], "alloc length", 1, kMaxElements);
      auto st = std::make_shared<Storage>(D::alloc(size_t(n) * dtypeSize(t), dtypeName(t), n), n, t, &D::release);
      Napi::External<std::shared_ptr<Storage>> ext = Napi::External<std::shared_ptr<Storage>>::New(this->Env(), &st);
      return addonData(this->Env())->bufferClass.New({ext, Napi::Number::New(this->Env(), double(id_))});
    });
  }

  // write(tensor, typedArray): copies now (the caller may reuse its array), applies in order.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      View dst = view(info[0], "write", "destination");
      RNNLM_CHECK(info[1].IsTypedArray(), Code::InvalidArgument,
                  "write: data must be a Float32Array, Float64Array or Int32Array");
      Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
      const napi_typedarray_type want = dst.dtype == DType::F32   ? napi_float32_array
                                        : dst.dtype == DType::F64 ? napi_float64_array
                                                                  : napi_int32_array;
      RNNLM_CHECK(ta.TypedArrayType() == want, Code::InvalidArgument,
                  "write: a %s tensor takes a %s", dtypeName(dst.dtype),
                  dst.dtype == DType::F32 ? "Float32Array" : dst.dtype == DType::F64 ? "Float64Array" : "Int32Array");
      RNNLM_CHECK(int64_t(ta.ElementLength()) == dst.numel, Code::InvalidArgument,
                  "write: data has %zu elements but the tensor %s has %lld", ta.ElementLength(),
                  dst.shapeStr().c_str(), (long long)dst.numel);
      const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      auto bytes = std::make_shared<std::vector<uint8_t>>(src, src + ta.ByteLength());
      auto checkFinite = [&](auto tag) {
        using T = decltype(tag);
        const T* p = reinterpret_cast<const T*>(bytes->data());
        for (int64_t i = 0; i < dst.numel; ++i)
          RNNLM_CHECK(std::isfinite(p[i]), Code::NonFinite,
                      "write: element %lld of the data is %g; inputs must be finite", (long long)i, double(p[i]));
      };
      if (dst.dtype == DType::F32) checkFinite(float{});
      if (dst.dtype == DType::F64) checkFinite(double{});
      auto* ctx = ctx_.get();
      push([dst, bytes, ctx] {
        D::upload(*ctx, static_cast<uint8_t*>(dst.st->data) + dst.offset * dtypeSize(dst.dtype), bytes->data(),
                  bytes->size());
      });
      return this->Env().Undefined();
    });
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      return enqueueRead(view(info[0], "read", "source"), false);
    });
  }
  Napi::Value Sync(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      return enqueueRead(View{}, true);
    });
  }

  Napi::Value enqueueRead(View src, bool isVoid) {
    live();
    Napi::Env env = this->Env();
    auto* r = new ReadResult{channel_, Napi::Promise::Deferred::New(env), {}, src.dtype, isVoid, std::nullopt};
    Napi::Promise promise = r->deferred.Promise();
    if (channel_->pending++ == 0) channel_->tsfn.Ref(env);
    auto* ctx = ctx_.get();
    stream_->pushRead(
        [r, src, ctx] {
          if (!src) {
            D::synchronize(*ctx);
            return;
          }
          const uint8_t* p = static_cast<const uint8_t*>(src.st->data) + src.offset * dtypeSize(src.dtype);
          r->bytes.resize(src.numel * dtypeSize(src.dtype));
          D::download(*ctx, r->bytes.data(), p, r->bytes.size());
        },
        [r](std::optional<Error> err) {
          r->error = std::move(err);
          r->channel->tsfn.BlockingCall(r, [](Napi::Env env, Napi::Function, ReadResult* res) {
            std::unique_ptr<ReadResult> own(res);
            if (--res->channel->pending == 0) res->channel->tsfn.Unref(env);
            try {
              settle(env, *res);
            } catch (const Napi::Error& e) {
              // Settling failed (no memory for the result, or a worker being terminated, where
              // no JavaScript runs): reject with that error where possible. Nothing may escape
              // this callback: a C++ exception here ends the process.
              try {
                res->deferred.Reject(e.Value());
              } catch (const Napi::Error&) {
              }
            }
          });
        });
    return promise;
  }

  static void settle(Napi::Env env, ReadResult& res) {
    if (res.error) return res.deferred.Reject(js::toJs(env, *res.error).Value());
    if (res.isVoid) return res.deferred.Resolve(env.Undefined());
    const size_t n = res.bytes.size() / dtypeSize(res.dtype);
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, res.bytes.size());
    std::memcpy(ab.Data(), res.bytes.data(), res.bytes.size());
    Napi::Value out;
    if (res.dtype == DType::F32) out = Napi::Float32Array::New(env, n, ab, 0);
    else if (res.dtype == DType::F64) out = Napi::Float64Array::New(env, n, ab, 0);
    else out = Napi::Int32Array::New(env, n, ab, 0);
    res.deferred.Resolve(out);
  }

  Napi::Value Fill(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      View dst = view(info[0], "fill", "destination");
      const double value = dst.dtype == DType::I32
                               ? double(js::integer(info[1], "fill value", INT32_MIN, INT32_MAX))
                               : js::number(info[1], "fill value");
      auto* ctx = ctx_.get();
      push([dst, value, ctx] {
        if (dst.dtype == DType::F32) D::fill(*ctx, dst.p<float>(), dst.numel, float(value));
        else if (dst.dtype == DType::F64) D::fill(*ctx, dst.p<double>(), dst.numel, value);
        else D::fill(*ctx, dst.p<int32_t>(), dst.numel, int32_t(value));
      });
      return this->Env().Undefined();
    });
  }

  Napi::Value Copy(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      View src = view(info[0], "copy", "source"), dst = view(info[1], "copy", "destination");
      RNNLM_CHECK(src.dtype == dst.dtype && src.numel == dst.numel, Code::InvalidArgument,
                  "copy: source (%s %s) and destination (%s %s) must have the same dtype and size",
                  dtypeName(src.dtype), src.shapeStr().c_str(), dtypeName(dst.dtype), dst.shapeStr().c_str());
      expectDisjoint("copy", {{&src, "source"}, {&dst, "destination"}});
      auto* ctx = ctx_.get();
      push([src, dst, ctx] {
        D::copy(*ctx, static_cast<uint8_t*>(dst.st->data) + dst.offset * dtypeSize(dst.dtype),
                static_cast<const uint8_t*>(src.st->data) + src.offset * dtypeSize(src.dtype),
                src.numel * dtypeSize(src.dtype));
      });
      return this->Env().Undefined();
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    close(info.Env(), false);
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !stream_); }

  // --- ops ------------------------------------------------------------------------------------
  // embeddingForward(table [V, E], ids i32 [N], out [N, E])
  Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "embeddingForward";
      View table = view(info[0], op, "table"), ids = view(info[1], op, "ids"), out = view(info[2], op, "out");
      const DType t = floatType(op, {{&table, "table"}, {&out, "out"}});
      expectInt(ids, op, "ids");
      expectRank(table, op, "table", 2);
      expectRank(ids, op, "ids", 1);
      const int64_t V = table.shape[0], E = table.shape[1], N = ids.shape[0];
      expectShape(out, op, "out", {N, E});
      expectDisjoint(op, {{&table, "table"}, {&out, "out"}});
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::embeddingForward(*ctx, table.p<T>(), V, E, ids.p<int32_t>(), N, out.p<T>());
        });
      });
      return this->Env().Undefined();
    });
  }

  // embeddingBackward(ids i32 [N], dout [N, E], dtable [V, E], paddingIdx): dtable += scatter(dout)
  Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "embeddingBackward";
      View ids = view(info[0], op, "ids"), dout = view(info[1], op, "dout"), dtable = view(info[2], op, "dtable");
      const int64_t pad = js::integer(info[3], "paddingIdx", -1, INT32_MAX);
      const DType t = floatType(op, {{&dout, "dout"}, {&dtable, "dtable"}});
      expectInt(ids, op, "ids");
      expectRank(ids, op, "ids", 1);
      expectRank(dtable, op, "dtable", 2);
      const int64_t N = ids.shape[0], V = dtable.shape[0], E = dtable.shape[1];
      expectShape(dout, op, "dout", {N, E});
      expectDisjoint(op, {{&dout, "dout"}, {&dtable, "dtable"}});
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::embeddingBackward(*ctx, ids.p<int32_t>(), N, dout.p<T>(), V, E, pad, dtable.p<T>());
        });
      });
      return this->Env().Undefined();
    });
  }

  // dropoutForward(x, mask, y, p, seed): mask = keep/(1-p), y = x * mask (y may alias x)
  Napi::Value DropoutForward(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "dropoutForward";
      View x = view(info[0], op, "x"), mask = view(info[1], op, "mask"), y = view(info[2], op, "y");
      const double p = js::number(info[3], "dropout probability", 0, 0.999999);
      const uint64_t seed = js::seed(info[4], "seed");
      const DType t = floatType(op, {{&x, "x"}, {&mask, "mask"}, {&y, "y"}});
      RNNLM_CHECK(mask.numel == x.numel && y.numel == x.numel, Code::InvalidArgument,
                  "%s: x %s, mask %s and y %s must have the same size", op, x.shapeStr().c_str(),
                  mask.shapeStr().c_str(), y.shapeStr().c_str());
      expectDisjoint(op, {{&x, "x"}, {&mask, "mask"}});
      expectDisjoint(op, {{&mask, "mask"}, {&y, "y"}});
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::dropoutForward(*ctx, x.p<T>(), x.numel, p, seed, mask.p<T>(), y.p<T>());
        });
      });
      return this->Env().Undefined();
    });
  }

  // multiply(a, b, out): out = a * b (out may alias a or b)
  Napi::Value Multiply(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "multiply";
      View a = view(info[0], op, "a"), b = view(info[1], op, "b"), out = view(info[2], op, "out");
      const DType t = floatType(op, {{&a, "a"}, {&b, "b"}, {&out, "out"}});
      RNNLM_CHECK(a.numel == b.numel && a.numel == out.numel, Code::InvalidArgument,
                  "%s: a %s, b %s and out %s must have the same size", op, a.shapeStr().c_str(),
                  b.shapeStr().c_str(), out.shapeStr().c_str());
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::multiply(*ctx, a.p<T>(), b.p<T>(), a.numel, out.p<T>());
        });
      });
      return this->Env().Undefined();
    });
  }

  // linearForward(x [N, I], W [O, I], b [O] | null, y [N, O])
  Napi::Value LinearForward(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "linearForward";
      View x = view(info[0], op, "x"), W = view(info[1], op, "W"), b = optView(info[2], op, "b"),
           y = view(info[3], op, "y");
      const DType t = floatType(op, {{&x, "x"}, {&W, "W"}, {&b, "b"}, {&y, "y"}});
      expectRank(x, op, "x", 2);
      expectRank(W, op, "W", 2);
      const int64_t N = x.shape[0], I = x.shape[1], O = W.shape[0];
      expectShape(W, op, "W", {O, I});
      if (b) expectShape(b, op, "b", {O});
      expectShape(y, op, "y", {N, O});
      expectDisjoint(op, {{&x, "x"}, {&y, "y"}});
      expectDisjoint(op, {{&W, "W"}, {&y, "y"}});
      expectDisjoint(op, {{&b, "b"}, {&y, "y"}});
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::linearForward(*ctx, x.p<T>(), W.p<T>(), b.p<T>(), N, I, O, y.p<T>());
        });
      });
      return this->Env().Undefined();
    });
  }

  // linearBackward(x [N, I], W [O, I], dy [N, O], dx [N, I] | null, dW [O, I] | null, db [O] | null,
  //                accumulateDx): dx (=|+=) dy W, dW += dy^T x, db += colsum(dy)
  Napi::Value LinearBackward(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "linearBackward";
      View x = view(info[0], op, "x"), W = view(info[1], op, "W"), dy = view(info[2], op, "dy"),
           dx = optView(info[3], op, "dx"), dW = optView(info[4], op, "dW"), db = optView(info[5], op, "db");
      const bool acc = js::absent(info[6]) ? false : js::boolean(info[6], "accumulateDx");
      const DType t = floatType(op, {{&x, "x"}, {&W, "W"}, {&dy, "dy"}, {&dx, "dx"}, {&dW, "dW"}, {&db, "db"}});
      expectRank(x, op, "x", 2);
      expectRank(W, op, "W", 2);
      const int64_t N = x.shape[0], I = x.shape[1], O = W.shape[0];
      expectShape(W, op, "W", {O, I});
      expectShape(dy, op, "dy", {N, O});
      if (dx) expectShape(dx, op, "dx", {N, I});
      if (dW) expectShape(dW, op, "dW", {O, I});
      if (db) expectShape(db, op, "db", {O});
      expectDisjoint(op, {{&dx, "dx"}, {&dy, "dy"}, {&W, "W"}, {&dW, "dW"}, {&db, "db"}});
      expectDisjoint(op, {{&dW, "dW"}, {&x, "x"}});
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::linearBackward(*ctx, x.p<T>(), W.p<T>(), dy.p<T>(), N, I, O, dx.p<T>(), acc, dW.p<T>(), db.p<T>());
        });
      });
      return this->Env().Undefined();
    });
  }

  // crossEntropy(logits [N, V], targets i32 [N], ignoreIndex, out [2], dlogits [N, V] | null)
  Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "crossEntropy";
      View z = view(info[0], op, "logits"), tg = view(info[1], op, "targets");
      const int64_t ignore = js::integer(info[2], "ignoreIndex", -1, INT32_MAX);
      View out = view(info[3], op, "out"), dz = optView(info[4], op, "dlogits");
      const DType t = floatType(op, {{&z, "logits"}, {&out, "out"}, {&dz, "dlogits"}});
      expectInt(tg, op, "targets");
      expectRank(z, op, "logits", 2);
      const int64_t N = z.shape[0], V = z.shape[1];
      expectShape(tg, op, "targets", {N});
      expectShape(out, op, "out", {2});
      if (dz) {
        expectShape(dz, op, "dlogits", {N, V});
        RNNLM_CHECK(!overlaps(z, dz) || z.offset == dz.offset, Code::InvalidArgument,
                    "%s: dlogits must be the logits themselves or separate from them", op);
      }
      expectDisjoint(op, {{&z, "logits"}, {&out, "out"}});
      expectDisjoint(op, {{&dz, "dlogits"}, {&out, "out"}});
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::crossEntropy(*ctx, z.p<T>(), tg.p<int32_t>(), N, V, ignore, out.p<T>(), dz.p<T>());
        });
      });
      return this->Env().Undefined();
    });
  }

  // logSoftmax(logits [N, V], out [N, V]) (may alias)
  Napi::Value LogSoftmax(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "logSoftmax";
      View z = view(info[0], op, "logits"), out = view(info[1], op, "out");
      const DType t = floatType(op, {{&z, "logits"}, {&out, "out"}});
      expectRank(z, op, "logits", 2);
      const int64_t N = z.shape[0], V = z.shape[1];
      expectShape(out, op, "out", {N, V});
      RNNLM_CHECK(!overlaps(z, out) || z.offset == out.offset, Code::InvalidArgument,
                  "%s: out must be the logits themselves or separate from them", op);
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::logSoftmax(*ctx, z.p<T>(), N, V, out.p<T>());
        });
      });
      return this->Env().Undefined();
    });
  }

  // Temperature, topK, topP and excluded ids (Int32Array or null) of a draw over V tokens.
  static SampleArgs sampleArgs(const char* op, Napi::Value temperature, Napi::Value topK, Napi::Value topP,
                               Napi::Value exclude, int64_t V) {
    SampleArgs a;
    a.temperature = js::number(temperature, "temperature", 0, 1e6);
    a.topK = js::integer(topK, "topK", 0, V);
    a.topP = js::number(topP, "topP", 1e-12, 1);
    RNNLM_CHECK(D::kSampleFiltered || a.plain(), Code::InvalidArgument,
                "%s: the %s backend samples from the whole distribution only (topK 0, topP 1); filter on the host", op,
                D::kName);
    if (!js::absent(exclude)) {
      RNNLM_CHECK(exclude.IsTypedArray() && exclude.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array,
                  Code::InvalidArgument, "%s: exclude must be an Int32Array of token ids (or null)", op);
      Napi::Int32Array ex = exclude.As<Napi::Int32Array>();
      RNNLM_CHECK(ex.ElementLength() <= size_t(SampleArgs::kMaxExclude) && int64_t(ex.ElementLength()) < V,
                  Code::InvalidArgument, "%s: at most %d excluded ids, fewer than the vocabulary (got %zu)", op,
                  SampleArgs::kMaxExclude, ex.ElementLength());
      for (size_t i = 0; i < ex.ElementLength(); ++i) {
        RNNLM_CHECK(ex[i] >= 0 && ex[i] < V, Code::InvalidArgument, "%s: exclude[%zu] = %d is not a token id in [0, %lld)",
                    op, i, ex[i], (long long)V);
        a.exclude[a.nExclude++] = ex[i];
      }
    }
    return a;
  }

  // sample(logits [N, V], ids i32 [N], temperature, topK, topP, seed, exclude Int32Array | null):
  // ids[n] drawn from softmax(logits[n] / temperature) (argmax when 0), among the topK most likely
  // (0 = all) and the smallest most-likely set with probability >= topP, never an excluded id.
  Napi::Value Sample(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "sample";
      View z = view(info[0], op, "logits"), ids = view(info[1], op, "ids");
      const DType t = floatType(op, {{&z, "logits"}});
      expectInt(ids, op, "ids");
      expectRank(z, op, "logits", 2);
      const int64_t N = z.shape[0], V = z.shape[1];
      expectShape(ids, op, "ids", {N});
      SampleArgs a = sampleArgs(op, info[2], info[3], info[4], info[6], V);
      a.seed = js::seed(info[5], "seed");
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::sample(*ctx, z.p<T>(), N, V, a, ids.p<int32_t>());
        });
      });
      return this->Env().Undefined();
    });
  }

  // clipGradNorm(grads, maxNorm, out [1]): out = norm; scales grads when norm > maxNorm > 0
  Napi::Value ClipGradNorm(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "clipGradNorm";
      View g = view(info[0], op, "grads");
      const double maxNorm = js::number(info[1], "maxNorm", 0, 1e30);
      View out = view(info[2], op, "out");
      const DType t = floatType(op, {{&g, "grads"}, {&out, "out"}});
      expectShape(out, op, "out", {1});
      expectDisjoint(op, {{&g, "grads"}, {&out, "out"}});
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::clipGradNorm(*ctx, g.p<T>(), g.numel, maxNorm, out.p<T>());
        });
      });
      return this->Env().Undefined();
    });
  }

  Napi::Value ClipValue(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      View g = view(info[0], "clipValue", "grads");
      const double v = js::number(info[1], "clipValue", 0, 1e30);
      RNNLM_CHECK(v > 0, Code::InvalidArgument, "clipValue must be > 0 (got %g)", v);
      const DType t = floatType("clipValue", {{&g, "grads"}});
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::clipValue(*ctx, g.p<T>(), g.numel, v);
        });
      });
      return this->Env().Undefined();
    });
  }

  void expectSameSize(const char* op, const View& a, const char* an, const View& b, const char* bn) {
    RNNLM_CHECK(a.numel == b.numel, Code::InvalidArgument, "%s: %s %s and %s %s must have the same size", op, an,
                a.shapeStr().c_str(), bn, b.shapeStr().c_str());
  }

  // Optional guard [n <= 8] of an update (e.g. the step's loss and gradient norm): when any of
  // it is not finite the update is skipped on the device, with no host round trip.
  View guardArg(Napi::Value v, const char* op, DType t) {
    View g = optView(v, op, "guard");
    if (g) {
      RNNLM_CHECK(g.shape.size() == 1 && g.numel <= 8, Code::InvalidArgument, "%s: guard must have shape [n], n <= 8 (got %s)",
                  op, g.shapeStr().c_str());
      RNNLM_CHECK(g.dtype == t, Code::InvalidArgument, "%s: guard must be %s like the parameters", op, dtypeName(t));
    }
    return g;
  }

  // sgd(params, grads, momentumBuffer | null, { lr, momentum, dampening, weightDecay, nesterov, step }, guard?)
  Napi::Value Sgd(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "sgd";
      View p = view(info[0], op, "params"), g = view(info[1], op, "grads"), buf = optView(info[2], op, "momentum");
      Napi::Object o = js::asObject(info[3], "sgd options");
      SgdParams s{};
      s.lr = js::number(o.Get("lr"), "lr", 0, 1e6);
      s.momentum = js::number(o.Get("momentum"), "momentum", 0, 1);
      s.dampening = js::number(o.Get("dampening"), "dampening", 0, 1);
      s.weightDecay = js::number(o.Get("weightDecay"), "weightDecay", 0, 1e6);
      s.nesterov = js::boolean(o.Get("nesterov"), "nesterov");
      s.step = js::integer(o.Get("step"), "step", 1, int64_t(1) << 52);
      const DType t = floatType(op, {{&p, "params"}, {&g, "grads"}, {&buf, "momentum"}});
      expectSameSize(op, p, "params", g, "grads");
      RNNLM_CHECK(s.momentum == 0 || buf, Code::InvalidArgument, "%s: momentum > 0 needs a momentum buffer", op);
      if (buf) expectSameSize(op, p, "params", buf, "momentum");
      expectDisjoint(op, {{&p, "params"}, {&g, "grads"}, {&buf, "momentum"}});
      View guard = guardArg(info[4], op, t);
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::sgd(*ctx, p.p<T>(), g.p<T>(), buf.p<T>(), p.numel, s, guard.p<T>(), guard.numel);
        });
      });
      return this->Env().Undefined();
    });
  }

  // adam(params, grads, m, v, { lr, beta1, beta2, eps, weightDecay, decoupled, step }, guard?)
  Napi::Value Adam(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "adam";
      View p = view(info[0], op, "params"), g = view(info[1], op, "grads"), m = view(info[2], op, "m"),
           v = view(info[3], op, "v");
      Napi::Object o = js::asObject(info[4], "adam options");
      AdamParams a{};
      a.lr = js::number(o.Get("lr"), "lr", 0, 1e6);
      a.beta1 = js::number(o.Get("beta1"), "beta1", 0, 0.999999999);
      a.beta2 = js::number(o.Get("beta2"), "beta2", 0, 0.999999999);
      a.eps = js::number(o.Get("eps"), "eps", 0, 1);
      a.weightDecay = js::number(o.Get("weightDecay"), "weightDecay", 0, 1e6);
      a.decoupled = js::boolean(o.Get("decoupled"), "decoupled");
      a.step = js::integer(o.Get("step"), "step", 1, int64_t(1) << 52);
      const DType t = floatType(op, {{&p, "params"}, {&g, "grads"}, {&m, "m"}, {&v, "v"}});
      expectSameSize(op, p, "params", g, "grads");
      expectSameSize(op, p, "params", m, "m");
      expectSameSize(op, p, "params", v, "v");
      expectDisjoint(op, {{&p, "params"}, {&g, "grads"}, {&m, "m"}, {&v, "v"}});
      View guard = guardArg(info[5], op, t);
      auto* ctx = ctx_.get();
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          D::adam(*ctx, p.p<T>(), g.p<T>(), m.p<T>(), v.p<T>(), p.numel, a, guard.p<T>(), guard.numel);
        });
      });
      return this->Env().Undefined();
    });
  }

  // --- recurrent stack ------------------------------------------------------------------------
  NativeRnn* rnnArg(Napi::Value v, const char* op) {
    RNNLM_CHECK(v.IsObject() && v.As<Napi::Object>().InstanceOf(addonData(this->Env())->rnnClass.Value()),
                Code::InvalidArgument, "%s: the first argument must be an Rnn descriptor", op);
    return NativeRnn::Unwrap(v.As<Napi::Object>());
  }

  // lengths: Int32Array [B] with values in [1, T], or null for all T.
  std::vector<int32_t> lengthsArg(Napi::Value v, const char* op, int64_t T, int64_t B) {
    std::vector<int32_t> len(B, int32_t(T));
    if (js::absent(v)) return len;
    RNNLM_CHECK(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array,
                Code::InvalidArgument, "%s: lengths must be an Int32Array (or null)", op);
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    RNNLM_CHECK(int64_t(a.ElementLength()) == B, Code::InvalidArgument,
                "%s: lengths has %zu entries but the batch has %lld sequences", op, a.ElementLength(), (long long)B);
    const int32_t* raw = a.Data();
    for (int64_t b = 0; b < B; ++b) {
      RNNLM_CHECK(raw[b] >= 1 && raw[b] <= T, Code::InvalidArgument,
                  "%s: lengths[%lld] = %d must be in [1, %lld] (the sequence length)", op, (long long)b, raw[b],
                  (long long)T);
      len[b] = raw[b];
    }
    return len;
  }


  // Shared checks: x-like tensor [T, B, I] fixes T and B; weights, reserve and workspace sizes.
  RnnArgs rnnCommon(const char* op, NativeRnn* rnn, Napi::Object o, const View& seq, const char* seqName,
                    int64_t seqWidth, bool needWorkspace) {
    RnnArgs a;
    a.cfg = rnn->cfg;
    expectRank(seq, op, seqName, 3);
    a.T = seq.shape[0];
    a.B = seq.shape[1];
    expectShape(seq, op, seqName, {a.T, a.B, seqWidth});
    a.weights = view(o.Get("weights"), op, "weights");
    expectShape(a.weights, op, "weights", {rnn->impl->weightSize()});
    const auto sp = rnn->impl->spaces(a.T, a.B);
    a.reserve = view(o.Get("reserve"), op, "reserve");
    RNNLM_CHECK(a.reserve.numel >= sp.reserve, Code::InvalidArgument,
                "%s: reserve has %lld elements; T=%lld, B=%lld needs %lld (rnn.spaces(T, B).reserve)", op,
                (long long)a.reserve.numel, (long long)a.T, (long long)a.B, (long long)sp.reserve);
    if (needWorkspace) {
      a.workspace = view(o.Get("workspace"), op, "workspace");
      RNNLM_CHECK(a.workspace.numel >= sp.workspace, Code::InvalidArgument,
                  "%s: workspace has %lld elements; T=%lld, B=%lld needs %lld (rnn.spaces(T, B).workspace)", op,
                  (long long)a.workspace.numel, (long long)a.T, (long long)a.B, (long long)sp.workspace);
    }
    a.lengths = lengthsArg(o.Get("lengths"), op, a.T, a.B);
    return a;
  }

  View stateArg(Napi::Object o, const char* key, const char* op, const RnnArgs& a) {
    View v = optView(o.Get(key), op, key);
    if (v) expectShape(v, op, key, {a.cfg.layers, a.B, a.cfg.hiddenSize});
    return v;
  }

  // rnnForward(rnn, { x [T,B,I], y [T,B,H], hx?, cx?, hy?, cy? [L,B,H], weights, reserve, workspace,
  //                   lengths?, training, seed })
  Napi::Value RnnForward(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "rnnForward";
      NativeRnn* rnn = rnnArg(info[0], op);
      Napi::Object o = js::asObject(info[1], "rnnForward arguments");
      View x = view(o.Get("x"), op, "x");
      RnnArgs a = rnnCommon(op, rnn, o, x, "x", rnn->cfg.inputSize, true);
      View y = view(o.Get("y"), op, "y");
      expectShape(y, op, "y", {a.T, a.B, a.cfg.hiddenSize});
      View hx = stateArg(o, "hx", op, a), cx = stateArg(o, "cx", op, a), hy = stateArg(o, "hy", op, a),
           cy = stateArg(o, "cy", op, a);
      const bool training = js::boolean(o.Get("training"), "training");
      const uint64_t seed = js::absent(o.Get("seed")) ? 0 : js::seed(o.Get("seed"), "seed");
      const DType t = floatType(op, {{&x, "x"}, {&y, "y"}, {&hx, "hx"}, {&cx, "cx"}, {&hy, "hy"}, {&cy, "cy"},
                                     {&a.weights, "weights"}, {&a.reserve, "reserve"}, {&a.workspace, "workspace"}});
      expectDisjoint(op, {{&x, "x"}, {&y, "y"}, {&a.weights, "weights"}, {&a.reserve, "reserve"},
                          {&a.workspace, "workspace"}});
      expectDisjoint(op, {{&hy, "hy"}, {&cy, "cy"}, {&a.weights, "weights"}, {&a.reserve, "reserve"},
                          {&a.workspace, "workspace"}, {&y, "y"}});
      auto* ctx = ctx_.get();
      auto impl = rnn->impl;
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          impl->forward(*ctx, a.T, a.B, a.lengths.data(), x.p<T>(), hx.p<T>(), cx.p<T>(), a.weights.p<T>(), y.p<T>(),
                        hy.p<T>(), cy.p<T>(), a.reserve.p<T>(), a.reserve.numel, a.workspace.p<T>(), a.workspace.numel,
                        training, seed);
        });
      });
      return this->Env().Undefined();
    });
  }

  // generate(rnn, { table [V,E], x [1,1,E], y [1,1,H], hx, cx?, hy, cy? [L,1,H], weights, reserve,
  //                 workspace, decoderWeight [V,H], decoderBias? [V], logits [1,V], ids i32 [n],
  //                 seeds Float64Array [n], temperature, topK, topP, exclude?, last }):
  // n tokens of batch-1 generation in one queued op. For i = 0 .. n-1:
  //   ids[i] ~ softmax(logits / temperature)            (sample, seed seeds[i])
  //   unless i = n-1 and last:  hx, cx = hy, cy;  logits = W rnn(table[ids[i]], hx, cx) + b
  // The same ops in the same order as sample + copy + embeddingForward + rnnForward (inference)
  // + linearForward per token, with no JavaScript call per token.
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "generate";
      NativeRnn* rnn = rnnArg(info[0], op);
      Napi::Object o = js::asObject(info[1], "generate arguments");
      View x = view(o.Get("x"), op, "x");
      RnnArgs a = rnnCommon(op, rnn, o, x, "x", rnn->cfg.inputSize, true);
      RNNLM_CHECK(a.T == 1 && a.B == 1, Code::InvalidArgument, "%s: x must be [1, 1, %lld] (got %s)", op,
                  (long long)rnn->cfg.inputSize, x.shapeStr().c_str());
      const int64_t E = a.cfg.inputSize, H = a.cfg.hiddenSize;
      View table = view(o.Get("table"), op, "table"), y = view(o.Get("y"), op, "y");
      View W = view(o.Get("decoderWeight"), op, "decoderWeight"), b = optView(o.Get("decoderBias"), op, "decoderBias");
      View logits = view(o.Get("logits"), op, "logits"), ids = view(o.Get("ids"), op, "ids");
      View hx = stateArg(o, "hx", op, a), cx = stateArg(o, "cx", op, a), hy = stateArg(o, "hy", op, a),
           cy = stateArg(o, "cy", op, a);
      RNNLM_CHECK(hx && hy && bool(cx) == bool(cy) && bool(cx) == (a.cfg.cell == Cell::LSTM), Code::InvalidArgument,
                  "%s: needs hx and hy (and cx and cy for an LSTM only)", op);
      expectRank(table, op, "table", 2);
      const int64_t V = table.shape[0];
      expectShape(table, op, "table", {V, E});
      expectShape(y, op, "y", {1, 1, H});
      expectShape(W, op, "decoderWeight", {V, H});
      if (b) expectShape(b, op, "decoderBias", {V});
      expectShape(logits, op, "logits", {1, V});
      expectInt(ids, op, "ids");
      expectRank(ids, op, "ids", 1);
      const int64_t n = ids.shape[0];
      const DType t = floatType(op, {{&x, "x"}, {&y, "y"}, {&hx, "hx"}, {&cx, "cx"}, {&hy, "hy"}, {&cy, "cy"},
                                     {&a.weights, "weights"}, {&a.reserve, "reserve"}, {&a.workspace, "workspace"},
                                     {&table, "table"}, {&W, "decoderWeight"}, {&b, "decoderBias"}, {&logits, "logits"}});
      expectDisjoint(op, {{&x, "x"}, {&y, "y"}, {&hx, "hx"}, {&cx, "cx"}, {&hy, "hy"}, {&cy, "cy"}, {&logits, "logits"},
                          {&a.weights, "weights"}, {&a.reserve, "reserve"}, {&a.workspace, "workspace"}});
      expectDisjoint(op, {{&table, "table"}, {&x, "x"}, {&logits, "logits"}});
      expectDisjoint(op, {{&W, "decoderWeight"}, {&b, "decoderBias"}, {&logits, "logits"}, {&y, "y"}});
      Napi::Value sv = o.Get("seeds");
      RNNLM_CHECK(sv.IsTypedArray() && sv.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array &&
                      int64_t(sv.As<Napi::TypedArray>().ElementLength()) == n,
                  Code::InvalidArgument, "%s: seeds must be a Float64Array of %lld seeds, one per id", op, (long long)n);
      Napi::Float64Array sa = sv.As<Napi::Float64Array>();
      std::vector<uint64_t> seeds(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "seeds[%lld]", (long long)i);
        seeds[size_t(i)] = uint64_t(js::integer(sa[size_t(i)], name, 0, js::kMaxSeed));
      }
      const SampleArgs args = sampleArgs(op, o.Get("temperature"), o.Get("topK"), o.Get("topP"), o.Get("exclude"), V);
      const bool last = js::boolean(o.Get("last"), "last");
      const size_t stateBytes = size_t(hx.numel) * dtypeSize(t);
      auto* ctx = ctx_.get();
      auto impl = rnn->impl;
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          const int32_t one = 1;
          for (int64_t i = 0; i < n; ++i) {
            SampleArgs s = args;
            s.seed = seeds[size_t(i)];
            D::sample(*ctx, logits.p<T>(), 1, V, s, ids.p<int32_t>() + i);
            if (i == n - 1 && last) break;
            D::copy(*ctx, hx.p<T>(), hy.p<T>(), stateBytes);
            if (cx) D::copy(*ctx, cx.p<T>(), cy.p<T>(), stateBytes);
            D::embeddingForward(*ctx, table.p<T>(), V, E, ids.p<int32_t>() + i, 1, x.p<T>());
            impl->forward(*ctx, 1, 1, &one, x.p<T>(), hx.p<T>(), cx.p<T>(), a.weights.p<T>(), y.p<T>(), hy.p<T>(),
                          cy.p<T>(), a.reserve.p<T>(), a.reserve.numel, a.workspace.p<T>(), a.workspace.numel, false, 0);
            D::linearForward(*ctx, y.p<T>(), W.p<T>(), b.p<T>(), 1, H, V, logits.p<T>());
          }
        });
      });
      return this->Env().Undefined();
    });
  }

  // rnnBackwardData(rnn, { dy [T,B,H], dhy?, dcy?, dx? [T,B,I], dhx?, dcx?, weights, reserve, workspace,
  //                         lengths? }) — after a training-mode rnnForward with the same T, B, lengths.
  Napi::Value RnnBackwardData(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "rnnBackwardData";
      NativeRnn* rnn = rnnArg(info[0], op);
      Napi::Object o = js::asObject(info[1], "rnnBackwardData arguments");
      View dy = view(o.Get("dy"), op, "dy");
      RnnArgs a = rnnCommon(op, rnn, o, dy, "dy", rnn->cfg.hiddenSize, true);
      View dx = optView(o.Get("dx"), op, "dx");
      if (dx) expectShape(dx, op, "dx", {a.T, a.B, a.cfg.inputSize});
      // The forward pass's output and initial state (cuDNN reads them; the CPU keeps its own copies).
      View y = optView(o.Get("y"), op, "y");
      if (y) expectShape(y, op, "y", {a.T, a.B, a.cfg.hiddenSize});
      View hx = stateArg(o, "hx", op, a), cx = stateArg(o, "cx", op, a);
      View dhy = stateArg(o, "dhy", op, a), dcy = stateArg(o, "dcy", op, a), dhx = stateArg(o, "dhx", op, a),
           dcx = stateArg(o, "dcx", op, a);
      const DType t =
          floatType(op, {{&dy, "dy"}, {&dx, "dx"}, {&dhy, "dhy"}, {&dcy, "dcy"}, {&dhx, "dhx"}, {&dcx, "dcx"},
                         {&y, "y"}, {&hx, "hx"}, {&cx, "cx"},
                         {&a.weights, "weights"}, {&a.reserve, "reserve"}, {&a.workspace, "workspace"}});
      expectDisjoint(op, {{&dx, "dx"}, {&dhx, "dhx"}, {&dcx, "dcx"}, {&a.weights, "weights"},
                          {&a.reserve, "reserve"}, {&a.workspace, "workspace"}});
      expectDisjoint(op, {{&dy, "dy"}, {&dx, "dx"}, {&a.reserve, "reserve"}, {&a.workspace, "workspace"}});
      auto* ctx = ctx_.get();
      auto impl = rnn->impl;
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          impl->backwardData(*ctx, a.T, a.B, a.lengths.data(), a.weights.p<T>(), y.p<T>(), dy.p<T>(), dhy.p<T>(),
                             dcy.p<T>(), hx.p<T>(), cx.p<T>(), dx.p<T>(), dhx.p<T>(), dcx.p<T>(), a.reserve.p<T>(),
                             a.reserve.numel, a.workspace.p<T>(), a.workspace.numel);
        });
      });
      return this->Env().Undefined();
    });
  }

  // rnnBackwardWeights(rnn, { x [T,B,I], hx?, y?, dweights, weights, reserve, workspace, lengths? }):
  // dweights += dL/dW
  Napi::Value RnnBackwardWeights(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      const char* op = "rnnBackwardWeights";
      NativeRnn* rnn = rnnArg(info[0], op);
      Napi::Object o = js::asObject(info[1], "rnnBackwardWeights arguments");
      View x = view(o.Get("x"), op, "x");
      RnnArgs a = rnnCommon(op, rnn, o, x, "x", rnn->cfg.inputSize, true);
      View dW = view(o.Get("dweights"), op, "dweights");
      expectShape(dW, op, "dweights", {rnn->impl->weightSize()});
      View y = optView(o.Get("y"), op, "y");
      if (y) expectShape(y, op, "y", {a.T, a.B, a.cfg.hiddenSize});
      View hx = stateArg(o, "hx", op, a);
      const DType t = floatType(op, {{&x, "x"}, {&dW, "dweights"}, {&a.reserve, "reserve"}, {&y, "y"}, {&hx, "hx"}});
      expectDisjoint(op, {{&x, "x"}, {&dW, "dweights"}, {&a.reserve, "reserve"}});
      auto* ctx = ctx_.get();
      auto impl = rnn->impl;
      push([=] {
        withFloat(t, [&](auto tag) {
          using T = decltype(tag);
          impl->backwardWeights(*ctx, a.T, a.B, a.lengths.data(), x.p<T>(), hx.p<T>(), y.p<T>(), dW.p<T>(),
                                a.reserve.p<T>(), a.reserve.numel, a.workspace.p<T>(), a.workspace.numel);
        });
      });
      return this->Env().Undefined();
    });
  }

  int64_t id_ = 0;
  std::unique_ptr<typename D::Context> ctx_;  // outlives stream_ (declared first, destroyed last)
  std::unique_ptr<Stream> stream_;
  std::shared_ptr<ReadChannel> channel_;
};


static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function buffer = NativeBuffer::Init(env), stream = NativeStream::Init(env), rnn = NativeRnn::Init(env);
  data->bufferClass = Napi::Persistent(buffer);
  data->streamClass = Napi::Persistent(stream);
  data->rnnClass = Napi::Persistent(rnn);
  exports.Set("Stream", stream);
  exports.Set("Buffer", buffer);
  exports.Set("Rnn", rnn);
  exports.Set("setErrorClass", Napi::Function::New(env, js::setErrorClass));
  exports.Set("device", Napi::String::New(env, D::kName));
  exports.Set("memoryStats", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    const AllocStats& a = allocStats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("allocations", double(a.count.load()));
    o.Set("liveBytes", double(a.live.load()));
    o.Set("peakBytes", double(a.peak.load()));
    return o;
  }));
  return exports;
}
};  // struct Binding

}  // namespace rnnlm::binding
