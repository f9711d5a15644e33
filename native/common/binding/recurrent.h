// The recurrent stack's entry points of NativeStream (binding/stream.h): rnnForward,
// rnnBackwardData and rnnBackwardWeights over D::Rnn, with the checks they share (the
// descriptor, sequence lengths, weight / reserve / workspace sizes, states).
#pragma once
#include <napi.h>

#include <cstdint>
#include <vector>

#include "../rnn_layout.h"
#include "stream.h"

namespace rnnlm::binding {

template <class D>
NativeRnn<D>* NativeStream<D>::rnnArg(Napi::Value v, const char* op) {
  RNNLM_CHECK(v.IsObject() && v.As<Napi::Object>().InstanceOf(addonData(this->Env())->rnnClass.Value()),
              Code::InvalidArgument, "%s: the first argument must be an Rnn descriptor", op);
  return NativeRnn<D>::Unwrap(v.As<Napi::Object>());
}

// lengths: Int32Array [B] with values in [1, T], or null for all T.
template <class D>
std::vector<int32_t> NativeStream<D>::lengthsArg(Napi::Value v, const char* op, int64_t T, int64_t B) {
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
template <class D>
RnnArgs NativeStream<D>::rnnCommon(const char* op, NativeRnn<D>* rnn, Napi::Object o, const View& seq,
                                   const char* seqName, int64_t seqWidth, bool needWorkspace) {
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

template <class D>
View NativeStream<D>::stateArg(Napi::Object o, const char* key, const char* op, const RnnArgs& a) {
  View v = optView(o.Get(key), op, key);
  if (v) expectShape(v, op, key, {a.cfg.layers, a.B, a.cfg.hiddenSize});
  return v;
}

// rnnForward(rnn, { x [T,B,I], y [T,B,H], hx?, cx?, hy?, cy? [L,B,H], weights, reserve, workspace,
//                   lengths?, training, seed, batchInvariant? })
template <class D>
Napi::Value NativeStream<D>::RnnForward(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "rnnForward";
    NativeRnn<D>* rnn = rnnArg(info[0], op);
    Napi::Object o = js::asObject(info[1], "rnnForward arguments");
    View x = view(o.Get("x"), op, "x");
    RnnArgs a = rnnCommon(op, rnn, o, x, "x", rnn->cfg.inputSize, true);
    View y = view(o.Get("y"), op, "y");
    expectShape(y, op, "y", {a.T, a.B, a.cfg.hiddenSize});
    View hx = stateArg(o, "hx", op, a), cx = stateArg(o, "cx", op, a), hy = stateArg(o, "hy", op, a),
         cy = stateArg(o, "cy", op, a);
    const bool training = js::boolean(o.Get("training"), "training");
    RNNLM_CHECK(D::kLockedDropout || !training || !a.cfg.locked || a.cfg.layers == 1 || a.cfg.dropout == 0,
                Code::InvalidArgument,
                "%s: locked dropout between layers is not available in training on the %s backend yet (cuDNN drops "
                "per element); train on the CPU, with dropoutHidden 0, or with RNNLM_CUDA_LAYERWISE=1: the stack trained "
                "layer by layer (not yet verified on a GPU); inference is unaffected",
                op, D::kName);
    const uint64_t seed = js::absent(o.Get("seed")) ? 0 : js::seed(o.Get("seed"), "seed");
    const Napi::Value inv = o.Get("batchInvariant");
    const bool invariant = js::absent(inv) ? false : js::boolean(inv, "batchInvariant");
    const DType t = floatType(op, {{&x, "x"}, {&y, "y"}, {&hx, "hx"}, {&cx, "cx"}, {&hy, "hy"}, {&cy, "cy"},
                                   {&a.reserve, "reserve"}, {&a.workspace, "workspace"}});
    expectDisjoint(op, {{&x, "x"}, {&y, "y"}, {&a.weights, "weights"}, {&a.reserve, "reserve"},
                        {&a.workspace, "workspace"}});
    expectDisjoint(op, {{&hy, "hy"}, {&cy, "cy"}, {&a.weights, "weights"}, {&a.reserve, "reserve"},
                        {&a.workspace, "workspace"}, {&y, "y"}});
    auto impl = rnn->impl;
    // A quantized stack: int8 weights and the side tensor of their row scales and the biases.
    View scales = optView(o.Get("scales"), op, "scales");
    if (a.weights.dtype == DType::I8) {
      RNNLM_CHECK(!training, Code::InvalidArgument, "%s: int8 weights are for inference (training: false)", op);
      RNNLM_CHECK(t == DType::F32, Code::InvalidArgument, "%s: with int8 weights the activations must be f32", op);
      RNNLM_CHECK(scales, Code::InvalidArgument,
                  "%s: int8 weights need scales (f32 [%lld]: per layer the row scales of weight_ih and weight_hh, "
                  "then bias_ih and bias_hh)", op, (long long)quantSideSize(a.cfg));
      RNNLM_CHECK(scales.dtype == DType::F32, Code::InvalidArgument, "%s: scales must be f32 (got %s)", op,
                  dtypeName(scales.dtype));
      expectShape(scales, op, "scales", {quantSideSize(a.cfg)});
      expectDisjoint(op, {{&scales, "scales"}, {&y, "y"}, {&a.reserve, "reserve"}, {&a.workspace, "workspace"},
                          {&hy, "hy"}, {&cy, "cy"}});
      if constexpr (D::kInt8) {
        auto* ctx = ctx_.get();
        push([=] {
          impl->forwardQ8(*ctx, a.T, a.B, a.lengths.data(), x.p<float>(), hx.p<float>(), cx.p<float>(),
                          a.weights.p<int8_t>(), scales.p<float>(), y.p<float>(), hy.p<float>(), cy.p<float>(),
                          a.reserve.p<float>(), a.workspace.p<float>());
        });
      }
      return this->Env().Undefined();
    }
    RNNLM_CHECK(!scales, Code::InvalidArgument, "%s: scales are for int8 weights (these are %s)", op,
                dtypeName(a.weights.dtype));
    floatType(op, {{&x, "x"}, {&a.weights, "weights"}});
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      impl->forward(ctx, a.T, a.B, a.lengths.data(), x.p<T>(), hx.p<T>(), cx.p<T>(), a.weights.p<T>(), y.p<T>(),
                    hy.p<T>(), cy.p<T>(), a.reserve.p<T>(), a.reserve.numel, a.workspace.p<T>(), a.workspace.numel,
                    training, seed, invariant);
    });
  });
}

// rnnBackwardData(rnn, { dy [T,B,H], dhy?, dcy?, dx? [T,B,I], dhx?, dcx?, weights, reserve, workspace,
//                         lengths? }) — after a training-mode rnnForward with the same T, B, lengths.
template <class D>
Napi::Value NativeStream<D>::RnnBackwardData(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "rnnBackwardData";
    NativeRnn<D>* rnn = rnnArg(info[0], op);
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
    auto impl = rnn->impl;
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      impl->backwardData(ctx, a.T, a.B, a.lengths.data(), a.weights.p<T>(), y.p<T>(), dy.p<T>(), dhy.p<T>(),
                         dcy.p<T>(), hx.p<T>(), cx.p<T>(), dx.p<T>(), dhx.p<T>(), dcx.p<T>(), a.reserve.p<T>(),
                         a.reserve.numel, a.workspace.p<T>(), a.workspace.numel);
    });
  });
}

// rnnBackwardWeights(rnn, { x [T,B,I], hx?, y?, dweights, weights, reserve, workspace, lengths? }):
// dweights += dL/dW
template <class D>
Napi::Value NativeStream<D>::RnnBackwardWeights(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "rnnBackwardWeights";
    NativeRnn<D>* rnn = rnnArg(info[0], op);
    Napi::Object o = js::asObject(info[1], "rnnBackwardWeights arguments");
    View x = view(o.Get("x"), op, "x");
    RnnArgs a = rnnCommon(op, rnn, o, x, "x", rnn->cfg.inputSize, true);
    View dW = view(o.Get("dweights"), op, "dweights");
    expectShape(dW, op, "dweights", {rnn->impl->weightSize()});
    View y = optView(o.Get("y"), op, "y");
    if (y) expectShape(y, op, "y", {a.T, a.B, a.cfg.hiddenSize});
    View hx = stateArg(o, "hx", op, a);
    const DType t = floatType(op, {{&x, "x"}, {&dW, "dweights"}, {&a.reserve, "reserve"}, {&y, "y"}, {&hx, "hx"},
                                   {&a.weights, "weights"}});
    expectDisjoint(op, {{&x, "x"}, {&dW, "dweights"}, {&a.reserve, "reserve"}});
    auto impl = rnn->impl;
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      impl->backwardWeights(ctx, a.T, a.B, a.lengths.data(), x.p<T>(), hx.p<T>(), y.p<T>(), dW.p<T>(),
                            a.reserve.p<T>(), a.reserve.numel, a.workspace.p<T>(), a.workspace.numel);
    });
  });
}

}  // namespace rnnlm::binding
