// The loss scale's entry points of NativeStream (binding/stream.h): scaleBy and
// updateLossScale, over the device state of common/loss_scale.h ([3], the network's float type:
// S, finite steps since S changed, backoffs). Both read the state when they run, so a
// captured training step replays with the scale of its replay.
#pragma once
#include <napi.h>

#include <cmath>

#include "../loss_scale.h"
#include "stream.h"

namespace rnnlm::binding {

// The state argument: the network's float type, shape [3].
template <class D>
View NativeStream<D>::lossScaleArg(Napi::Value v, const char* op, DType t) {
  View s = view(v, op, "state");
  RNNLM_CHECK(s.dtype == t, Code::InvalidArgument, "%s: state must be %s like the tensors it scales (got %s)", op,
              dtypeName(t), dtypeName(s.dtype));
  expectShape(s, op, "state", {3});
  return s;
}

// scaleBy(x, state, inverse): x *= S (or 1 / S), S = state[0] when the op runs.
template <class D>
Napi::Value NativeStream<D>::ScaleBy(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "scaleBy";
    View x = view(info[0], op, "x");
    const DType t = floatType(op, {{&x, "x"}});
    View state = lossScaleArg(info[1], op, t);
    const bool inverse = js::boolean(info[2], "inverse");
    expectDisjoint(op, {{&x, "x"}, {&state, "state"}});
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::scaleBy(ctx, x.p<T>(), x.numel, state.p<T>(), inverse);
    });
  });
}

// updateLossScale(state, guard, { growth, backoff, interval, minScale, maxScale }, record?): the
// rule of common/loss_scale.h with finite = every entry of guard [n <= 8] finite (the optimizer's
// guard); record [n + 1], when given, receives the guard's values and the scale the step ran with.
template <class D>
Napi::Value NativeStream<D>::UpdateLossScale(const Napi::CallbackInfo& info) {
  return js::guard(info, [&]() -> Napi::Value {
    live();
    const char* op = "updateLossScale";
    View state = view(info[0], op, "state");
    const DType t = floatType(op, {{&state, "state"}});
    lossScaleArg(info[0], op, t);
    View guard = guardArg(info[1], op, t);
    RNNLM_CHECK(guard, Code::InvalidArgument, "%s: guard (the step's loss and gradient norm) is required", op);
    expectDisjoint(op, {{&state, "state"}, {&guard, "guard"}});
    Napi::Object o = js::asObject(info[2], "updateLossScale options");
    LossScaleParams p{};
    p.growth = float(js::number(o.Get("growth"), "growth", 1, 1024));
    p.backoff = float(js::number(o.Get("backoff"), "backoff", 1.0 / 1024, 1));
    p.interval = int32_t(js::integer(o.Get("interval"), "interval", 1, 1 << 24));
    p.minScale = float(js::number(o.Get("minScale"), "minScale", 0x1p-126, 0x1p127));
    p.maxScale = float(js::number(o.Get("maxScale"), "maxScale", 0x1p-126, 0x1p127));
    RNNLM_CHECK(p.minScale <= p.maxScale, Code::InvalidArgument, "%s: minScale %g is above maxScale %g", op,
                double(p.minScale), double(p.maxScale));
    View record = optView(info[3], op, "record");
    if (record) {
      RNNLM_CHECK(record.dtype == t, Code::InvalidArgument, "%s: record must be %s like the state (got %s)", op,
                  dtypeName(t), dtypeName(record.dtype));
      expectShape(record, op, "record", {guard.numel + 1});
      expectDisjoint(op, {{&state, "state"}, {&guard, "guard"}, {&record, "record"}});
    }
    return enqueue(t, [=](auto& ctx, auto tag) {
      using T = decltype(tag);
      D::updateLossScale(ctx, state.p<T>(), guard.p<T>(), guard.numel, p, record.p<T>());
    });
  });
}

}  // namespace rnnlm::binding
