// The stream a model runs on, as JavaScript sees it (NativeStream): memory (alloc, write,
// read, sync, fill, copy), the per-model worker (common/stream.h) and its lifecycle, and the
// op entry points, declared here and defined by job in binding/ops.h and binding/recurrent.h.
// Each entry point reads and checks its arguments on the JavaScript thread, then queues the
// op through enqueue() (or push()); only reads return Promises.
#pragma once
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../js.h"
#include "../rnn_layout.h"
#include "../sample.h"
#include "../stream.h"
#include "../tensor.h"
#include "handles.h"

namespace rnnlm::binding {

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

// Arguments shared by the recurrent ops, checked once (NativeStream::rnnCommon).
struct RnnArgs {
  RnnConfig cfg;
  int64_t T = 0, B = 0;
  View weights, reserve, workspace;
  std::vector<int32_t> lengths;
};

template <class D>
class NativeStream : public Napi::ObjectWrap<NativeStream<D>> {
 public:
  static Napi::Function Init(Napi::Env env) {
    using S = NativeStream;
    return S::DefineClass(
        env, "NativeStream",
        {// memory and lifecycle (this file)
         S::template InstanceMethod<&S::Alloc>("alloc"), S::template InstanceMethod<&S::Write>("write"),
         S::template InstanceMethod<&S::Read>("read"), S::template InstanceMethod<&S::Sync>("sync"),
         S::template InstanceMethod<&S::Fill>("fill"), S::template InstanceMethod<&S::Copy>("copy"),
         S::template InstanceMethod<&S::Dispose>("dispose"), S::template InstanceAccessor<&S::Disposed>("disposed"),
         S::template InstanceAccessor<&S::Allocations>("allocations"),
         // graphs (binding/graphs.h)
         S::template InstanceMethod<&S::CaptureBegin>("captureBegin"),
         S::template InstanceMethod<&S::CaptureEnd>("captureEnd"), S::template InstanceMethod<&S::Replay>("replay"),
         S::template InstanceMethod<&S::ReleaseGraph>("releaseGraph"),
         // ops (binding/ops.h)
         S::template InstanceMethod<&S::EmbeddingForward>("embeddingForward"),
         S::template InstanceMethod<&S::EmbeddingBackward>("embeddingBackward"),
         S::template InstanceMethod<&S::DropoutForward>("dropoutForward"),
         S::template InstanceMethod<&S::Multiply>("multiply"),
         S::template InstanceMethod<&S::Average>("average"),
         S::template InstanceMethod<&S::ActivationRegularization>("activationRegularization"),
         S::template InstanceMethod<&S::LinearForward>("linearForward"),
         S::template InstanceMethod<&S::LinearBackward>("linearBackward"),
         S::template InstanceMethod<&S::CrossEntropy>("crossEntropy"),
         S::template InstanceMethod<&S::LogSoftmax>("logSoftmax"),
         S::template InstanceMethod<&S::LogSoftmaxInto>("logSoftmaxInto"), S::template InstanceMethod<&S::Sample>("sample"),
         S::template InstanceMethod<&S::ClipGradNorm>("clipGradNorm"),
         S::template InstanceMethod<&S::ClipValue>("clipValue"), S::template InstanceMethod<&S::Sgd>("sgd"),
         S::template InstanceMethod<&S::Adam>("adam"),
         // loss scaling (binding/loss_scale.h)
         S::template InstanceMethod<&S::ScaleBy>("scaleBy"),
         S::template InstanceMethod<&S::UpdateLossScale>("updateLossScale"),
         // recurrent stack (binding/recurrent.h)
         S::template InstanceMethod<&S::RnnForward>("rnnForward"),
         S::template InstanceMethod<&S::RnnBackwardData>("rnnBackwardData"),
         S::template InstanceMethod<&S::RnnBackwardWeights>("rnnBackwardWeights")});
  }

  NativeStream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeStream<D>>(info) {
    static std::atomic<int64_t> nextId{1};
    Precision precision = Precision::FP32;  // options { precision } (precision.h), checked before anything is made
    js::guard(info, [&] {
      if (info.Length() > 0 && !js::absent(info[0])) {
        const Napi::Value p = js::asObject(info[0], "stream options").Get("precision");
        if (!js::absent(p)) precision = parsePrecision(js::string(p, "precision"));
      }
      checkPrecision<D>(precision);
      return info.Env().Undefined();
    });
    id_ = nextId++;
    Napi::Env env = info.Env();
    channel_ = std::make_shared<ReadChannel>();
    channel_->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), "rnnlm-stream", 0, 1);
    channel_->tsfn.Unref(env);
    ctx_ = std::make_unique<typename D::Context>(precision);
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
    recording_.reset();  // the graphs' hold on the model's memory goes with it
    graphs_.clear();
    channel_->tsfn.Release();
  }

  // Queues work after the arguments were read: reading them can run JavaScript (a getter) that
  // disposes this stream.
  void push(std::function<void()> run) {
    live();
    if (recording_) recording_->ops.push_back(run);  // graphs.h: a capture keeps its ops
    stream_->push(std::move(run));
  }
  // Between captureBegin and captureEnd only compute ops are queued (binding/graphs.h).
  void notCapturing(const char* what) const {
    RNNLM_CHECK(!recording_, Code::InvalidArgument,
                "%s: not while a graph is being captured (between captureBegin and captureEnd: compute ops only)", what);
  }

  void live() const {
    RNNLM_CHECK(stream_, Code::Disposed, "this stream (model) was disposed; create a new one");
  }

  // Queues op(context, T{}) with T the element type t names: the one dispatch from a dtype to
  // a device op's instantiation. The f64 path is compiled only for a device that computes in
  // float64 (D::kF64); elsewhere no f64 buffer can exist (alloc refuses them).
  template <typename Op>
  Napi::Value enqueue(DType t, Op op) {
    if constexpr (!D::kF64)
      RNNLM_CHECK(t == DType::F32, Code::InvalidArgument, "the %s backend computes in f32 only", D::kName);
    auto* ctx = ctx_.get();
    push([t, ctx, op = std::move(op)] {
      if constexpr (D::kF64) {
        if (t == DType::F64) return op(*ctx, double{});
      }
      op(*ctx, float{});
    });
    return this->Env().Undefined();
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
    RNNLM_CHECK(shape.Length() <= Dims::kMaxRank, Code::InvalidArgument, "%s: %s has more than %zu dimensions", op,
                name, Dims::kMaxRank);
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
      notCapturing("alloc");
      const std::string dt = js::string(info[0], "dtype");
      DType t;
      if (dt == "f32") t = DType::F32;
      else if (dt == "f64") t = DType::F64;
      else if (dt == "i32") t = DType::I32;
      else if (dt == "i8") t = DType::I8;
      else fail(Code::InvalidArgument, "alloc: dtype must be 'f32', 'f64', 'i32' or 'i8' (got '%s')", dt.c_str());
      RNNLM_CHECK(t != DType::I8 || D::kInt8, Code::InvalidArgument,
                  "alloc: the %s backend has no int8 kernels (int8 inference runs on the CPU)", D::kName);
      RNNLM_CHECK(t != DType::F64 || D::kF64, Code::InvalidArgument,
                  "alloc: the %s backend computes in f32 only (f64 is for the CPU backend's gradient checks)", D::kName);
      const int64_t n = js::integer(info[1], "alloc length", 1, kMaxElements);
      auto st = std::make_shared<Storage>(D::alloc(size_t(n) * dtypeSize(t), dtypeName(t), n), n, t, &D::release);
      ++allocations_;
      Napi::External<std::shared_ptr<Storage>> ext = Napi::External<std::shared_ptr<Storage>>::New(this->Env(), &st);
      return addonData(this->Env())->bufferClass.New({ext, Napi::Number::New(this->Env(), double(id_))});
    });
  }

  // write(tensor, typedArray): copies now (the caller may reuse its array), applies in order.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      notCapturing("write");
      View dst = view(info[0], "write", "destination");
      RNNLM_CHECK(info[1].IsTypedArray(), Code::InvalidArgument,
                  "write: data must be a Float32Array, Float64Array, Int32Array or Int8Array");
      Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
      const napi_typedarray_type want = dst.dtype == DType::F32   ? napi_float32_array
                                        : dst.dtype == DType::F64 ? napi_float64_array
                                        : dst.dtype == DType::I8  ? napi_int8_array
                                                                  : napi_int32_array;
      RNNLM_CHECK(ta.TypedArrayType() == want, Code::InvalidArgument, "write: a %s tensor takes a %s",
                  dtypeName(dst.dtype),
                  dst.dtype == DType::F32   ? "Float32Array"
                  : dst.dtype == DType::F64 ? "Float64Array"
                  : dst.dtype == DType::I8  ? "Int8Array"
                                            : "Int32Array");
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
      // -128 has no negation in int8: the int8 kernels' sign trick (gemm_q8_simd.inc) needs |q| <= 127.
      if (dst.dtype == DType::I8) {
        const auto* p = reinterpret_cast<const int8_t*>(bytes->data());
        for (int64_t i = 0; i < dst.numel; ++i)
          RNNLM_CHECK(p[i] != -128, Code::InvalidArgument,
                      "write: element %lld of the data is -128; int8 weights are in [-127, 127]", (long long)i);
      }
      auto* ctx = ctx_.get();
      push([dst, bytes, ctx] {
        D::upload(*ctx, static_cast<uint8_t*>(dst.st->data) + dst.offset * dtypeSize(dst.dtype), bytes->data(),
                  bytes->size());
        int8Changed(dst.dtype);
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
    notCapturing(isVoid ? "sync" : "read");
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
    else if (res.dtype == DType::I8) out = Napi::Int8Array::New(env, n, ab, 0);
    else out = Napi::Int32Array::New(env, n, ab, 0);
    res.deferred.Resolve(out);
  }

  Napi::Value Fill(const Napi::CallbackInfo& info) {
    return js::guard(info, [&]() -> Napi::Value {
      live();
      View dst = view(info[0], "fill", "destination");
      const bool i8 = dst.dtype == DType::I8;
      const double value = dst.dtype == DType::I32 ? double(js::integer(info[1], "fill value", INT32_MIN, INT32_MAX))
                           : i8                    ? double(js::integer(info[1], "fill value", -127, 127))
                                                   : js::number(info[1], "fill value");
      if (i8) {  // only where D::kInt8: alloc makes no i8 buffer elsewhere
        if constexpr (D::kInt8) {
          auto* ctx = ctx_.get();
          push([dst, value, ctx] {
            D::fill(*ctx, dst.p<int8_t>(), dst.numel, int8_t(value));
            int8Changed(DType::I8);
          });
        }
        return this->Env().Undefined();
      }
      if (dst.dtype != DType::I32) {
        return enqueue(dst.dtype, [=](auto& ctx, auto tag) {
          using T = decltype(tag);
          D::fill(ctx, dst.p<T>(), dst.numel, T(value));
        });
      }
      auto* ctx = ctx_.get();
      push([dst, value, ctx] { D::fill(*ctx, dst.p<int32_t>(), dst.numel, int32_t(value)); });
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
        int8Changed(dst.dtype);
      });
      return this->Env().Undefined();
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    close(info.Env(), false);
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !stream_); }
  // Buffers this stream has allocated: a captured graph is valid while no memory it might use has changed.
  Napi::Value Allocations(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(allocations_)); }

  // --- graphs (binding/graphs.h) --------------------------------------------------------------
  // A capture's ops: kept for the graph's life (they hold the buffers it uses), and on a device
  // without graphs (the CPU) what a replay runs.
  struct Recording {
    std::vector<std::function<void()>> ops;
    typename D::Graph graph;
  };
  Napi::Value CaptureBegin(const Napi::CallbackInfo& info);
  Napi::Value CaptureEnd(const Napi::CallbackInfo& info);
  Napi::Value Replay(const Napi::CallbackInfo& info);
  Napi::Value ReleaseGraph(const Napi::CallbackInfo& info);
  std::shared_ptr<Recording> recording_;  // the capture in progress
  std::map<int64_t, std::shared_ptr<Recording>> graphs_;
  int64_t nextGraph_ = 1;
  int64_t allocations_ = 0;

  // --- ops (binding/ops.h) --------------------------------------------------------------------
  Napi::Value EmbeddingForward(const Napi::CallbackInfo& info);
  Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info);
  Napi::Value DropoutForward(const Napi::CallbackInfo& info);
  Napi::Value Multiply(const Napi::CallbackInfo& info);
  Napi::Value Average(const Napi::CallbackInfo& info);
  Napi::Value ActivationRegularization(const Napi::CallbackInfo& info);
  Napi::Value LinearForward(const Napi::CallbackInfo& info);
  Napi::Value LinearBackward(const Napi::CallbackInfo& info);
  Napi::Value CrossEntropy(const Napi::CallbackInfo& info);
  Napi::Value LogSoftmax(const Napi::CallbackInfo& info);
  Napi::Value LogSoftmaxInto(const Napi::CallbackInfo& info);
  Napi::Value Sample(const Napi::CallbackInfo& info);
  Napi::Value ClipGradNorm(const Napi::CallbackInfo& info);
  Napi::Value ClipValue(const Napi::CallbackInfo& info);
  Napi::Value Sgd(const Napi::CallbackInfo& info);
  Napi::Value Adam(const Napi::CallbackInfo& info);
  static SampleArgs sampleArgs(const char* op, Napi::Value temperature, Napi::Value topK, Napi::Value topP,
                               Napi::Value exclude, int64_t V);
  View guardArg(Napi::Value v, const char* op, DType t);
  View liveArg(Napi::Value v, const char* op);
  View scaleArg(Napi::Value v, const char* op, const char* name, const View& W, const View& out);

  // --- loss scaling (binding/loss_scale.h) ----------------------------------------------------
  Napi::Value ScaleBy(const Napi::CallbackInfo& info);
  Napi::Value UpdateLossScale(const Napi::CallbackInfo& info);
  View lossScaleArg(Napi::Value v, const char* op, DType t);

  // --- recurrent stack (binding/recurrent.h) --------------------------------------------------
  Napi::Value RnnForward(const Napi::CallbackInfo& info);
  Napi::Value RnnBackwardData(const Napi::CallbackInfo& info);
  Napi::Value RnnBackwardWeights(const Napi::CallbackInfo& info);
  NativeRnn<D>* rnnArg(Napi::Value v, const char* op);
  std::vector<int32_t> lengthsArg(Napi::Value v, const char* op, int64_t T, int64_t B);
  RnnArgs rnnCommon(const char* op, NativeRnn<D>* rnn, Napi::Object o, const View& seq, const char* seqName,
                    int64_t seqWidth, bool needWorkspace);
  View stateArg(Napi::Object o, const char* key, const char* op, const RnnArgs& a);

  int64_t id_ = 0;
  std::unique_ptr<typename D::Context> ctx_;  // outlives stream_ (declared first, destroyed last)
  std::unique_ptr<Stream> stream_;
  std::shared_ptr<ReadChannel> channel_;
};

}  // namespace rnnlm::binding
