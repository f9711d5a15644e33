// The op entry points of NativeStream (binding/stream.h) other than the recurrent stack's: each
// reads and checks its arguments (types, dtypes, shapes, overlaps) on the JavaScript thread,
// then enqueues the device op. The signatures are those of lib/backend/types.ts.
#pragma once
#include <napi.h>

#include <algorithm>
#include <cstdint>

#include "../optim.h"
#include "../rng.h"
#include "stream.h"

namespace rnnlm::binding {

// An int8 weight's row scales (f32 [rows]): present exactly when W is int8 (quantized inference).
template <class D>
View NativeStream<D>::scaleArg(Napi::Value v, const char* op, const char* name, const View& W, const View& out) {
  View scale = optView(v, op, "scale");
  if (W.dtype != DType::I8) {
    RNNLM_CHECK(!scale, Code::InvalidArgument, "%s: scale is for an int8 %s (%s is %s)", op, name, name,
                dtypeName(W.dtype));
    return scale;
  }
  RNNLM_CHECK(scale, Code::InvalidArgument, "%s: an int8 %s needs its row scales (scale, f32 [%lld])", op, name,
              (long long)W.shape[0]);
  RNNLM_CHECK(scale.dtype == DType::F32 && out.dtype == DType::F32, Code::InvalidArgument,
              "%s: with an int8 %s, scale and the output must be f32 (got %s and %s)", op, name,
              dtypeName(scale.dtype), dtypeName(out.dtype));
  expectShape(scale, op, "scale", {W.shape[0]});
  expectDisjoint(op, {{&scale, "scale"}, {&out, "the output"}});
  return scale;
}

// embeddingForward(table [V, E], ids i32 [N], out [N, E], scale? f32 [V] for an int8 table)
template <class D>
Napi::Value NativeStream<D>::EmbeddingForward(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "embeddingForward";
    View table = view(info[0], op, "table"), ids = view(info[1], op, "ids"), out = view(info[2], op, "out");
    expectInt(ids, op, "ids");
    expectRank(table, op, "table", 2);
    expectRank(ids, op, "ids", 1);
    const int64_t V = table.shape[0], E = table.shape[1], N = ids.shape[0];
    expectShape(out, op, "out", {N, E});
    expectDisjoint(op, {{&table, "table"}, {&out, "out"}});
    const View scale = scaleArg(info[3], op, "table", table, out);
    if (scale) {
      if constexpr (D::kInt8) {
        auto* ctx = ctx_.get();
        push([=] { D::embeddingForwardQ8(*ctx, table.p<int8_t>(), scale.p<float>(), V, E, ids.p<int32_t>(), N, out.p<float>()); });
      }
      return this->Env().Undefined();
    }
    const DType t = floatType(op, {{&table, "table"}, {&out, "out"}});
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::embeddingForward(ctx, table.p<T>(), V, E, ids.p<int32_t>(), N, out.p<T>());
    });
  });
}

// embeddingBackward(ids i32 [N], dout [N, E], dtable [V, E], paddingIdx): dtable += scatter(dout)
template <class D>
Napi::Value NativeStream<D>::EmbeddingBackward(const Napi::CallbackInfo& info) {
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
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::embeddingBackward(ctx, ids.p<int32_t>(), N, dout.p<T>(), V, E, pad, dtable.p<T>());
    });
  });
}

// dropoutForward(x, mask, y, p, seed, { period?, stride?, ids? } | undefined): mask = keep/(1-p),
// y = x * mask (y may alias x); the numbers' keys as rng.h's DropoutKeys: element i draws number
// (ids ? ids[i / stride] : i / stride) mod period.
template <class D>
Napi::Value NativeStream<D>::DropoutForward(const Napi::CallbackInfo& info) {
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
    int64_t period = 0, stride = 1;
    View ids;
    if (!js::absent(info[5])) {
      const Napi::Object o = js::asObject(info[5], "dropoutForward options");
      const int64_t n = std::max<int64_t>(x.numel, 1);
      if (!js::absent(o.Get("period"))) period = js::integer(o.Get("period"), "period", 1, n);
      if (!js::absent(o.Get("stride"))) stride = js::integer(o.Get("stride"), "stride", 1, n);
      RNNLM_CHECK(x.numel % stride == 0, Code::InvalidArgument, "%s: stride %lld does not divide x's %lld elements", op,
                  (long long)stride, (long long)x.numel);
      ids = optView(o.Get("ids"), op, "ids");
      if (ids) {
        expectInt(ids, op, "ids");
        RNNLM_CHECK(ids.numel == x.numel / stride, Code::InvalidArgument,
                    "%s: ids must have one entry per %lld elements of x (%lld), got %lld", op, (long long)stride,
                    (long long)(x.numel / stride), (long long)ids.numel);
      }
    }
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::dropoutForward(ctx, x.p<T>(), x.numel, p, seed, DropoutKeys{ids.p<int32_t>(), stride, period}, mask.p<T>(),
                        y.p<T>());
    });
  });
}

// activationRegularization(x [T, ...], dx (x's shape), alpha, beta, out [1]): out[0] += alpha mean x^2
// + beta mean_t (x_t - x_{t-1})^2, dx += its gradient (AR and TAR; cpu/ops.h states the math)
template <class D>
Napi::Value NativeStream<D>::ActivationRegularization(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "activationRegularization";
    View x = view(info[0], op, "x"), dx = view(info[1], op, "dx");
    const double alpha = js::number(info[2], "alpha", 0, 1e6), beta = js::number(info[3], "beta", 0, 1e6);
    View out = view(info[4], op, "out");
    const DType t = floatType(op, {{&x, "x"}, {&dx, "dx"}, {&out, "out"}});
    RNNLM_CHECK(x.shape.size() >= 2, Code::InvalidArgument, "%s: x must be [T, ...] with rank >= 2 (got %s)", op,
                x.shapeStr().c_str());
    RNNLM_CHECK(dx.shape == x.shape, Code::InvalidArgument, "%s: dx %s must have x's shape %s", op,
                dx.shapeStr().c_str(), x.shapeStr().c_str());
    expectShape(out, op, "out", {1});
    expectDisjoint(op, {{&x, "x"}, {&dx, "dx"}, {&out, "out"}});
    const int64_t Tn = x.shape[0], R = Tn > 0 ? x.numel / Tn : 0;
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::activationRegularization(ctx, x.p<T>(), Tn, R, alpha, beta, dx.p<T>(), out.p<T>());
    });
  });
}

// average(avg, x, weight): avg += weight (x - avg), weight in [0, 1] (a running mean of iterates)
template <class D>
Napi::Value NativeStream<D>::Average(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "average";
    View avg = view(info[0], op, "avg"), x = view(info[1], op, "x");
    const double w = js::number(info[2], "weight", 0, 1);
    const DType t = floatType(op, {{&avg, "avg"}, {&x, "x"}});
    expectSameSize(op, avg, "avg", x, "x");
    expectDisjoint(op, {{&avg, "avg"}, {&x, "x"}});
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::average(ctx, avg.p<T>(), x.p<T>(), avg.numel, w);
    });
  });
}

// multiply(a, b, out): out = a * b (out may alias a or b)
template <class D>
Napi::Value NativeStream<D>::Multiply(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "multiply";
    View a = view(info[0], op, "a"), b = view(info[1], op, "b"), out = view(info[2], op, "out");
    const DType t = floatType(op, {{&a, "a"}, {&b, "b"}, {&out, "out"}});
    RNNLM_CHECK(a.numel == b.numel && a.numel == out.numel, Code::InvalidArgument,
                "%s: a %s, b %s and out %s must have the same size", op, a.shapeStr().c_str(),
                b.shapeStr().c_str(), out.shapeStr().c_str());
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::multiply(ctx, a.p<T>(), b.p<T>(), a.numel, out.p<T>());
    });
  });
}

// linearForward(x [N, I], W [O, I], b [O] | null, y [N, O], { batchInvariant?, scale? } | undefined);
// scale: f32 [O], the row scales of an int8 W (quantized inference: batch-invariant always)
template <class D>
Napi::Value NativeStream<D>::LinearForward(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "linearForward";
    View x = view(info[0], op, "x"), W = view(info[1], op, "W"), b = optView(info[2], op, "b"),
         y = view(info[3], op, "y");
    const bool q8 = W.dtype == DType::I8;
    const DType t = q8 ? floatType(op, {{&x, "x"}, {&b, "b"}, {&y, "y"}})
                       : floatType(op, {{&x, "x"}, {&W, "W"}, {&b, "b"}, {&y, "y"}});
    expectRank(x, op, "x", 2);
    expectRank(W, op, "W", 2);
    const int64_t N = x.shape[0], I = x.shape[1], O = W.shape[0];
    expectShape(W, op, "W", {O, I});
    if (b) expectShape(b, op, "b", {O});
    expectShape(y, op, "y", {N, O});
    expectDisjoint(op, {{&x, "x"}, {&y, "y"}});
    expectDisjoint(op, {{&W, "W"}, {&y, "y"}});
    expectDisjoint(op, {{&b, "b"}, {&y, "y"}});
    bool invariant = false;
    Napi::Value scaleValue = this->Env().Undefined();
    if (!js::absent(info[4])) {
      const Napi::Object o = js::asObject(info[4], "linearForward options");
      const Napi::Value v = o.Get("batchInvariant");
      invariant = js::absent(v) ? false : js::boolean(v, "batchInvariant");
      scaleValue = o.Get("scale");
    }
    const View scale = scaleArg(scaleValue, op, "W", W, y);
    if (scale) {
      if constexpr (D::kInt8) {
        auto* ctx = ctx_.get();
        push([=] { D::linearForwardQ8(*ctx, x.p<float>(), W.p<int8_t>(), scale.p<float>(), b.p<float>(), N, I, O, y.p<float>()); });
      }
      return this->Env().Undefined();
    }
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::linearForward(ctx, x.p<T>(), W.p<T>(), b.p<T>(), N, I, O, y.p<T>(), invariant);
    });
  });
}

// linearBackward(x [N, I], W [O, I], dy [N, O], dx [N, I] | null, dW [O, I] | null, db [O] | null,
//                accumulateDx): dx (=|+=) dy W, dW += dy^T x, db += colsum(dy)
template <class D>
Napi::Value NativeStream<D>::LinearBackward(const Napi::CallbackInfo& info) {
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
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::linearBackward(ctx, x.p<T>(), W.p<T>(), dy.p<T>(), N, I, O, dx.p<T>(), acc, dW.p<T>(), db.p<T>());
    });
  });
}

// crossEntropy(logits [N, V], targets i32 [N], ignoreIndex, out [2], dlogits [N, V] | null,
//              { divisor?, accumulate? } | undefined)
template <class D>
Napi::Value NativeStream<D>::CrossEntropy(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "crossEntropy";
    View z = view(info[0], op, "logits"), tg = view(info[1], op, "targets");
    const int64_t ignore = js::integer(info[2], "ignoreIndex", -1, INT32_MAX);
    View out = view(info[3], op, "out"), dz = optView(info[4], op, "dlogits");
    double divisor = 0;
    bool accumulate = false;
    if (!js::absent(info[5])) {
      Napi::Object o = js::asObject(info[5], "options");
      if (!js::absent(o.Get("divisor"))) divisor = js::number(o.Get("divisor"), "divisor", 1e-30, 1e300);
      if (!js::absent(o.Get("accumulate"))) accumulate = js::boolean(o.Get("accumulate"), "accumulate");
    }
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
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::crossEntropy(ctx, z.p<T>(), tg.p<int32_t>(), N, V, ignore, out.p<T>(), dz.p<T>(), divisor, accumulate);
    });
  });
}

// logSoftmax(logits [N, V], out [N, V]) (may alias)
template <class D>
Napi::Value NativeStream<D>::LogSoftmax(const Napi::CallbackInfo& info) {
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
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::logSoftmax(ctx, z.p<T>(), N, V, out.p<T>());
    });
  });
}

// logSoftmaxInto(x [N, K], out [N, W], column, count, shift [N, S] | null, shiftColumn):
// out[n, column + j] = logSoftmax(x[n])_j + shift[n, shiftColumn] for j < count.
template <class D>
Napi::Value NativeStream<D>::LogSoftmaxInto(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "logSoftmaxInto";
    View x = view(info[0], op, "x"), out = view(info[1], op, "out"), sh = optView(info[4], op, "shift");
    const DType t = floatType(op, {{&x, "x"}, {&out, "out"}, {&sh, "shift"}});
    expectRank(x, op, "x", 2);
    expectRank(out, op, "out", 2);
    const int64_t N = x.shape[0], K = x.shape[1], W = out.shape[1];
    RNNLM_CHECK(out.shape[0] == N, Code::InvalidArgument, "%s: out has %lld rows, x has %lld", op,
                (long long)out.shape[0], (long long)N);
    const int64_t col = js::integer(info[2], "column", 0, W - 1);
    const int64_t count = js::integer(info[3], "count", 1, K);
    RNNLM_CHECK(col + count <= W, Code::InvalidArgument, "%s: columns [%lld, %lld) are outside out's %lld", op,
                (long long)col, (long long)(col + count), (long long)W);
    int64_t S = 0, shiftCol = 0;
    if (sh) {
      expectRank(sh, op, "shift", 2);
      RNNLM_CHECK(sh.shape[0] == N, Code::InvalidArgument, "%s: shift has %lld rows, x has %lld", op,
                  (long long)sh.shape[0], (long long)N);
      S = sh.shape[1];
      shiftCol = js::integer(info[5], "shiftColumn", 0, S - 1);
    }
    expectDisjoint(op, {{&x, "x"}, {&out, "out"}, {&sh, "shift"}});
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::logSoftmaxInto(ctx, x.p<T>(), N, K, out.p<T>(), W, col, count, sh.p<T>(), S, shiftCol);
    });
  });
}

// clipGradNorm(grads, maxNorm, out [1]): out = norm; scales grads when norm > maxNorm > 0
template <class D>
Napi::Value NativeStream<D>::ClipGradNorm(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "clipGradNorm";
    View g = view(info[0], op, "grads");
    const double maxNorm = js::number(info[1], "maxNorm", 0, 1e30);
    View out = view(info[2], op, "out");
    const DType t = floatType(op, {{&g, "grads"}, {&out, "out"}});
    expectShape(out, op, "out", {1});
    expectDisjoint(op, {{&g, "grads"}, {&out, "out"}});
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::clipGradNorm(ctx, g.p<T>(), g.numel, maxNorm, out.p<T>());
    });
  });
}

template <class D>
Napi::Value NativeStream<D>::ClipValue(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    View g = view(info[0], "clipValue", "grads");
    const double v = js::number(info[1], "clipValue", 0, 1e30);
    RNNLM_CHECK(v > 0, Code::InvalidArgument, "clipValue must be > 0 (got %g)", v);
    const DType t = floatType("clipValue", {{&g, "grads"}});
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::clipValue(ctx, g.p<T>(), g.numel, v);
    });
  });
}

// Optional guard [n <= 8] of an update (e.g. the step's loss and gradient norm): when any of
// it is not finite the update is skipped on the device, with no host round trip.
template <class D>
View NativeStream<D>::guardArg(Napi::Value v, const char* op, DType t) {
  View g = optView(v, op, "guard");
  if (g) {
    RNNLM_CHECK(g.shape.size() == 1 && g.numel <= 8, Code::InvalidArgument, "%s: guard must have shape [n], n <= 8 (got %s)",
                op, g.shapeStr().c_str());
    RNNLM_CHECK(g.dtype == t, Code::InvalidArgument, "%s: guard must be %s like the parameters", op, dtypeName(t));
  }
  return g;
}

// live (i32 [4], optional: the halves of lr's float64 bits and of the int64 step): the update reads
// this step's lr and step from it when it runs (common/optim.h applyLive), overriding the
// options' — what a graph's replay needs.
template <class D>
View NativeStream<D>::liveArg(Napi::Value v, const char* op) {
  View lv = optView(v, op, "live");
  if (lv)
    RNNLM_CHECK(lv.dtype == DType::I32 && lv.shape.size() == 1 && lv.numel == 4, Code::InvalidArgument,
                "%s: live must be i32 [4] (lr and step; got %s %s)", op, dtypeName(lv.dtype), lv.shapeStr().c_str());
  return lv;
}

// sgd(params, grads, momentumBuffer | null, { lr, momentum, dampening, weightDecay, nesterov, step }, guard?, live?)
template <class D>
Napi::Value NativeStream<D>::Sgd(const Napi::CallbackInfo& info) {
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
    View lv = liveArg(info[5], op);
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::sgd(ctx, p.p<T>(), g.p<T>(), buf.p<T>(), p.numel, s, guard.p<T>(), guard.numel, lv.p<int32_t>());
    });
  });
}

// adam(params, grads, m, v, { lr, beta1, beta2, eps, weightDecay, decoupled, step }, guard?, live?)
template <class D>
Napi::Value NativeStream<D>::Adam(const Napi::CallbackInfo& info) {
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
    View lv = liveArg(info[6], op);
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::adam(ctx, p.p<T>(), g.p<T>(), m.p<T>(), v.p<T>(), p.numel, a, guard.p<T>(), guard.numel, lv.p<int32_t>());
    });
  });
}

}  // namespace rnnlm::binding
