// The sampling entry point of NativeStream (binding/stream.h): sample, with its argument checks
// (temperature, top-k, top-p, excluded ids, a seed read from the device or one per row).
#pragma once
#include <napi.h>

#include <cstdint>

#include "../sample.h"
#include "stream.h"

namespace rnnlm::binding {

// Temperature, topK, topP and excluded ids (Int32Array or null) of a draw over V tokens.
template <class D>
SampleArgs NativeStream<D>::sampleArgs(const char* op, Napi::Value temperature, Napi::Value topK,
                                       Napi::Value topP, Napi::Value exclude, int64_t V) {
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

// sample(logits [N, V], ids i32 [N], temperature, topK, topP, seed, exclude Int32Array | null,
// values [N] | null): ids[n] drawn from softmax(logits[n] / temperature) (argmax when 0), among
// the topK most likely (0 = all) and the smallest most-likely set with probability >= topP, never
// an excluded id; values[n] = logits[n, ids[n]] when values is given; seedFrom (i32 [2] or
// [N, 2], optional): the seed read when the draw runs, or each row's (row n draws as if alone).
template <class D>
Napi::Value NativeStream<D>::Sample(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "sample";
    View z = view(info[0], op, "logits"), ids = view(info[1], op, "ids"), values = optView(info[7], op, "values");
    const DType t = floatType(op, {{&z, "logits"}, {&values, "values"}});
    expectInt(ids, op, "ids");
    expectRank(z, op, "logits", 2);
    const int64_t N = z.shape[0], V = z.shape[1];
    expectShape(ids, op, "ids", {N});
    if (values) expectShape(values, op, "values", {N});
    expectDisjoint(op, {{&z, "logits"}, {&values, "values"}});  // ids, being i32, is in another buffer
    SampleArgs a = sampleArgs(op, info[2], info[3], info[4], info[6], V);
    a.seed = js::seed(info[5], "seed");
    // seedFrom: the seed's 64 bits read when the draw runs, overriding `seed`; or one per row.
    View seedFrom = optView(info[8], op, "seedFrom");
    if (seedFrom) {
      RNNLM_CHECK(seedFrom.dtype == DType::I32 && (seedFrom.numel == 2 || seedFrom.numel == 2 * N), Code::InvalidArgument,
                  "%s: seedFrom must be i32 [2] (the seed's low and high 32 bits) or [%lld] (a seed per row; got %s %s)",
                  op, (long long)(2 * N), dtypeName(seedFrom.dtype), seedFrom.shapeStr().c_str());
      a.perRow = seedFrom.numel == 2 * N && N > 1;
      expectDisjoint(op, {{&ids, "ids"}, {&seedFrom, "seedFrom"}});
    }
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::sample(ctx, z.p<T>(), N, V, a, ids.p<int32_t>(), values.p<T>(), seedFrom.p<int32_t>());
    });
  });
}

}  // namespace rnnlm::binding
