// Graphs of a stream's ops (issue 26, item 1): captureBegin(), the ops of one step queued as
// usual, captureEnd() -> id; then replay(id) runs the same ops again with one call.
//   CUDA: the ops' kernels, cuBLAS and cuDNN calls are captured on the device stream
//         (cudaStreamBeginCapture) into a CUDA graph, launched once at captureEnd (capture
//         itself runs nothing) and at each replay: one launch instead of a step's dozens.
//   CPU:  the ops run as they are queued and are kept; a replay runs them again in order.
// The CPU is the twin that tests the rules a graph imposes, with the same failure: an op's
// arguments are fixed when it is queued (a learning rate, a seed, a pointer), so what changes
// from step to step must live in device memory, written before the replay (lib/nn/graphs.ts).
// Between captureBegin and captureEnd only compute ops may be queued: alloc, write, read and
// sync are refused (a write would be captured as a copy from a host buffer that is reused).
#pragma once
#include <napi.h>

#include <algorithm>

#include "stream.h"

namespace rnnlm::binding {

template <class D>
Napi::Value NativeStream<D>::CaptureBegin(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    notCapturing("captureBegin");
    auto* ctx = ctx_.get();
    stream_->push([ctx] { D::captureBegin(*ctx); });
    recording_ = std::make_shared<Recording>();
    return info.Env().Undefined();
  });
}

template <class D>
Napi::Value NativeStream<D>::CaptureEnd(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    RNNLM_CHECK(recording_, Code::InvalidArgument, "captureEnd: no capture in progress (call captureBegin first)");
    std::shared_ptr<Recording> rec = std::move(recording_);  // leaves recording_ empty: the capture is over
    const int64_t id = nextGraph_++;
    graphs_[id] = rec;
    auto* ctx = ctx_.get();
    // Always: the device stream leaves capture mode even when an op failed or the stream was
    // cancelled; the graph is then left empty, and replaying it fails with the reason.
    stream_->pushAlways([ctx, rec](bool failed) { D::captureEnd(*ctx, rec->graph, failed); });
    return Napi::Number::New(info.Env(), double(id));
  });
}

template <class D>
Napi::Value NativeStream<D>::Replay(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    notCapturing("replay");
    const int64_t id = js::integer(info[0], "graph id", 1, std::max<int64_t>(1, nextGraph_ - 1));
    const auto it = graphs_.find(id);
    RNNLM_CHECK(it != graphs_.end(), Code::InvalidArgument, "replay: no graph %lld on this stream (released, or never captured)",
                (long long)id);
    auto* ctx = ctx_.get();
    std::shared_ptr<Recording> rec = it->second;
    stream_->push([ctx, rec] { D::replay(*ctx, rec->graph, rec->ops); });
    return info.Env().Undefined();
  });
}

template <class D>
Napi::Value NativeStream<D>::ReleaseGraph(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const int64_t id = js::integer(info[0], "graph id", 1, std::max<int64_t>(1, nextGraph_ - 1));
    const auto it = graphs_.find(id);
    if (it == graphs_.end()) return info.Env().Undefined();
    // Dropped on the worker, after the replays queued before this call.
    stream_->push([rec = it->second] {});
    graphs_.erase(it);
    return info.Env().Undefined();
  });
}

}  // namespace rnnlm::binding
