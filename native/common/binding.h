// The Node-API binding shared by both backends, over a Device policy D (native/cpu/device.h,
// native/cuda/device.h), split by job:
//   tensor.h             tensor views and the argument checks over them (no Node-API)
//   binding/handles.h    the buffer and Rnn-descriptor classes, and the per-addon data
//   binding/stream.h     the stream class: memory, lifecycle, and enqueue(), which queues every op
//   binding/ops.h        the op entry points (embedding, dropout, linear, losses, optimizers)
//   binding/sampling.h   sample: the draw of token ids
//   binding/recurrent.h  the recurrent stack's: rnnForward and the backward passes
//   binding/loss_scale.h the dynamic loss scale's: scaleBy, updateLossScale
// Every entry point validates its arguments on the JavaScript thread (types, dtypes, shapes,
// bounds, overlaps, released buffers) and throws RnnlmError before anything is queued; the op
// itself then runs on the model's stream thread through D. Only reads return Promises.
//
// D provides: kName, kF64 (computes in float64? only then are f64 paths compiled), kSampleFiltered,
// Context (per stream), alloc/release (zeroed device memory), upload/download/copy/fill/synchronize,
// the ops of lib/backend/types.ts, and an Rnn class (weightSize, weightParam, spaces, forward,
// backwardData, backwardWeights).
#pragma once
#include <napi.h>

#include "alloc_stats.h"
#include "binding/graphs.h"
#include "binding/handles.h"
#include "binding/loss_scale.h"
#include "binding/ops.h"
#include "binding/recurrent.h"
#include "binding/sampling.h"
#include "binding/stream.h"
#include "js.h"

namespace rnnlm::binding {

// The addon's exports: the three classes, error-class hand-over, device name, memory counters.
template <class D>
Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function buffer = NativeBuffer::Init(env), stream = NativeStream<D>::Init(env),
                 rnn = NativeRnn<D>::Init(env);
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

}  // namespace rnnlm::binding
