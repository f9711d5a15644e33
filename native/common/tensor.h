// Tensors as the binding hands them to the devices: a typed window { storage, offset, shape }
// into device memory, and the checks every entry point runs on them (shapes, dtypes,
// overlaps) before anything is queued. Plain C++: no Node-API here.
#pragma once
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "alloc_stats.h"
#include "status.h"

namespace rnnlm {

// I8: int8 weights of a quantized model (native/cpu/quant.h), on a device with int8 kernels (D::kInt8).
enum class DType { F32 = 0, F64 = 1, I32 = 2, I8 = 3 };
inline const char* dtypeName(DType d) {
  return d == DType::F32 ? "f32" : d == DType::F64 ? "f64" : d == DType::I32 ? "i32" : "i8";
}
inline size_t dtypeSize(DType d) { return d == DType::F64 ? 8 : d == DType::I8 ? 1 : 4; }

constexpr int64_t kMaxElements = int64_t(1) << 40;

// Told whenever int8 memory changes (a write, fill or copy into an int8 buffer, as it runs on the
// stream, and an int8 buffer's release, before its memory is freed): the CPU's packed copies of
// int8 weights (cpu/q8_pack.h) are dropped then, before any later op can read them.
inline std::atomic<void (*)()>& int8Listener() {
  static std::atomic<void (*)()> listener{nullptr};
  return listener;
}
inline void int8Changed(DType t) {
  if (t != DType::I8) return;
  if (void (*f)() = int8Listener().load()) f();
}

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
    int8Changed(dtype);
    release(data);
    allocStats().sub(bytes());
  }
  int64_t bytes() const { return length * int64_t(dtypeSize(dtype)); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

// A tensor's sizes, at most kMaxRank, held inline: every op copies its views into the closure
// it queues, and a heap-allocated shape per view was a malloc here and a free on the worker.
struct Dims {
  static constexpr size_t kMaxRank = 8;
  int64_t d[kMaxRank] = {};
  size_t n = 0;
  size_t size() const { return n; }
  int64_t operator[](size_t i) const { return d[i]; }
  void push_back(int64_t v) { d[n++] = v; }  // callers check the rank first (binding/stream.h)
  bool operator==(const Dims& o) const {
    if (n != o.n) return false;
    for (size_t i = 0; i < n; ++i)
      if (d[i] != o.d[i]) return false;
    return true;
  }
};

// A typed window into a buffer: { buffer, offset, shape }.
struct View {
  std::shared_ptr<Storage> st;
  int64_t offset = 0;
  Dims shape;
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
    RNNLM_CHECK(v->dtype == DType::F32 || v->dtype == DType::F64, Code::InvalidArgument,
                "%s: %s must be a float tensor (got %s)", op, name, dtypeName(v->dtype));
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

inline void expectSameSize(const char* op, const View& a, const char* an, const View& b, const char* bn) {
  RNNLM_CHECK(a.numel == b.numel, Code::InvalidArgument, "%s: %s %s and %s %s must have the same size", op, an,
              a.shapeStr().c_str(), bn, b.shapeStr().c_str());
}

}  // namespace rnnlm
