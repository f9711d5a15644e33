// The CPU device policy for the shared binding (native/common/binding.h): host memory,
// and the ops of ops.h and rnn.h, run on the stream's worker thread.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "../common/loss_scale.h"
#include "../common/rnn_layout.h"
#include "../common/status.h"
#include "ops.h"
#include "quant.h"
#include "rnn.h"

namespace rnnlm::cpu {

struct CpuDevice {
  static constexpr const char* kName = "cpu";
  static constexpr bool kF64 = true;
  static constexpr bool kInt8 = true;  // quantized inference (quant.h)
  static constexpr bool kLockedDropout = true;  // between layers (rnn.h)
  // Float math in float32 only (precision.h): reduced-precision products are a GPU's tensor cores.
  static constexpr const char* kPrecisions = "'fp32' only";
  static constexpr bool supports(Precision p) { return p == Precision::FP32; }
  struct Context {
    explicit Context(Precision) {}
  };
  // Graphs (common/binding/graphs.h): the CPU has none; its ops ran as they were captured, and a
  // replay runs them again, in order: the twin of CUDA's, with the same fixed arguments.
  // As on CUDA, a capture during which an error was pending (an op failed, or one before it) is
  // no graph: its replays fail.
  struct Graph {
    bool failed = false;
  };
  static void captureBegin(Context&) {}
  static void captureEnd(Context&, Graph& g, bool failed) { g.failed = failed; }
  static void replay(Context&, Graph& g, const std::vector<std::function<void()>>& ops) {
    if (g.failed) fail(Code::Native, "replay: this graph's capture failed (an op failed while it was captured)");
    for (const auto& op : ops) op();
  }

  // Memory the kernel can still hand out (MemAvailable), or -1 where unknown.
  static double availableBytes() {
    FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    double kb = -1;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    std::fclose(f);
    return kb < 0 ? -1 : kb * 1024;
  }

  // Zeroed, 64-byte aligned, exactly `bytes` long (no rounding up, so AddressSanitizer sees
  // the true end of every buffer). The zeroing touches every page, so a size beyond the memory
  // still available would summon the OOM killer instead of failing: such sizes are refused first.
  static void* alloc(size_t bytes, const char* dtype, int64_t n) {
    const double physical = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
    if (physical > 0 && double(bytes) > physical)
      fail(Code::OutOfMemory, "cannot allocate %lld %s elements (%.1f GiB): more than this machine's memory (%.1f GiB)",
           (long long)n, dtype, bytes / 1073741824.0, physical / 1073741824.0);
    const double available = availableBytes();
    if (available >= 0 && double(bytes) > available)
      fail(Code::OutOfMemory, "cannot allocate %lld %s elements (%.2f GiB): only %.2f GiB of this machine's %.1f GiB are available",
           (long long)n, dtype, bytes / 1073741824.0, available / 1073741824.0, physical / 1073741824.0);
    void* p = nullptr;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0)
      fail(Code::OutOfMemory, "cannot allocate %lld %s elements (%.1f MiB) on the CPU", (long long)n, dtype, bytes / 1048576.0);
    std::memset(p, 0, bytes);
    return p;
  }
  static void release(void* p) { std::free(p); }

  static void upload(Context&, void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  static void download(Context&, void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  static void copy(Context&, void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  static void synchronize(Context&) {}
  template <typename T>
  static void fill(Context&, T* p, int64_t n, T v) {
    std::fill(p, p + n, v);
  }

  template <typename T>
  static void embeddingForward(Context&, const T* table, int64_t V, int64_t E, const int32_t* ids, int64_t N, T* out) {
    cpu::embeddingForward(table, V, E, ids, N, out);
  }
  template <typename T>
  static void embeddingBackward(Context&, const int32_t* ids, int64_t N, const T* dout, int64_t V, int64_t E,
                                int64_t pad, T* dtable) {
    cpu::embeddingBackward(ids, N, dout, V, E, pad, dtable);
  }
  template <typename T>
  static void dropoutForward(Context&, const T* x, int64_t n, double p, uint64_t seed, const DropoutKeys& keys, T* mask,
                             T* y) {
    cpu::dropoutForward(x, n, p, seed, keys, mask, y);
  }
  template <typename T>
  static void activationRegularization(Context&, const T* x, int64_t Tn, int64_t R, double alpha, double beta, T* dx,
                                       T* out) {
    cpu::activationRegularization(x, Tn, R, alpha, beta, dx, out);
  }
  template <typename T>
  static void average(Context&, T* avg, const T* x, int64_t n, double weight) {
    cpu::average(avg, x, n, weight);
  }
  template <typename T>
  static void multiply(Context&, const T* a, const T* b, int64_t n, T* out) {
    cpu::multiply(a, b, n, out);
  }
  template <typename T>
  static void linearForward(Context&, const T* x, const T* W, const T* b, int64_t N, int64_t I, int64_t O, T* y,
                            bool batchInvariant) {
    cpu::linearForward(x, W, b, N, I, O, y, batchInvariant);
  }
  // Quantized inference (quant.h): int8 tables and weights with their row scales.
  static void embeddingForwardQ8(Context&, const int8_t* table, const float* scale, int64_t V, int64_t E,
                                 const int32_t* ids, int64_t N, float* out) {
    cpu::embeddingForwardQ8(table, scale, V, E, ids, N, out);
  }
  static void linearForwardQ8(Context&, const float* x, const int8_t* W, const float* scale, const float* b, int64_t N,
                              int64_t I, int64_t O, float* y) {
    cpu::linearForwardQ8(x, W, scale, b, N, I, O, y);
  }
  template <typename T>
  static void linearBackward(Context&, const T* x, const T* W, const T* dy, int64_t N, int64_t I, int64_t O, T* dx,
                             bool acc, T* dW, T* db) {
    cpu::linearBackward(x, W, dy, N, I, O, dx, acc, dW, db);
  }
  template <typename T>
  static void crossEntropy(Context&, const T* z, const int32_t* targets, int64_t N, int64_t V, int64_t ignore, T* out,
                           T* dz, double divisor, bool accumulate) {
    cpu::crossEntropy(z, targets, N, V, ignore, out, dz, divisor, accumulate);
  }
  template <typename T>
  static void logSoftmax(Context&, const T* z, int64_t N, int64_t V, T* out) {
    cpu::logSoftmax(z, N, V, out);
  }
  template <typename T>
  static void logSoftmaxInto(Context&, const T* x, int64_t N, int64_t K, T* out, int64_t W, int64_t col, int64_t count,
                             const T* shift, int64_t S, int64_t shiftCol) {
    cpu::logSoftmaxInto(x, N, K, out, W, col, count, shift, S, shiftCol);
  }
  static constexpr bool kSampleFiltered = true;  // top-k / top-p on this device
  template <typename T>
  static void sample(Context&, const T* z, int64_t N, int64_t V, SampleArgs a, int32_t* ids, T* values,
                     const int32_t* seed) {
    a.seedFrom(seed);
    cpu::sample(z, N, V, a, ids, values, seed);
  }
  template <typename T>
  static void clipGradNorm(Context&, T* g, int64_t n, double maxNorm, T* out) {
    cpu::clipGradNorm(g, n, maxNorm, out);
  }
  template <typename T>
  static void clipValue(Context&, T* g, int64_t n, double v) {
    cpu::clipValue(g, n, v);
  }
  template <typename T>
  static bool allFinite(const T* guard, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(guard[i])) return false;
    return true;
  }
  // Loss scaling (common/loss_scale.h).
  template <typename T>
  static void scaleBy(Context&, T* x, int64_t n, const T* state, bool inverse) {
    const T f = lossScaleFactor(state[0], inverse);
    for (int64_t i = 0; i < n; ++i) x[i] *= f;
  }
  template <typename T>
  static void updateLossScale(Context&, T* state, const T* guard, int64_t guardN, const LossScaleParams& p, T* record) {
    lossScaleUpdate(state, guard, guardN, allFinite(guard, guardN), record, p);
  }
  template <typename T>
  static void sgd(Context&, T* p, const T* g, T* buf, int64_t n, SgdParams s, const T* guard, int64_t guardN,
                  const int32_t* live) {
    RNNLM_CHECK(applyLive(live, s.lr, s.step), Code::InvalidArgument, "sgd: %s", kLiveError);
    if (allFinite(guard, guardN)) cpu::sgd(p, g, buf, n, s);
  }
  template <typename T>
  static void adam(Context&, T* p, const T* g, T* m, T* v, int64_t n, AdamParams a, const T* guard, int64_t guardN,
                   const int32_t* live) {
    RNNLM_CHECK(applyLive(live, a.lr, a.step), Code::InvalidArgument, "adam: %s", kLiveError);
    if (allFinite(guard, guardN)) cpu::adam(p, g, m, v, n, a);
  }

  // The weight space is the canonical PyTorch layout (rnn_layout.h); activations live in
  // the reserve as RnnSpaces lays them out. hx/cx/y are not needed by backward here: the
  // reserve holds its own copies.
  class Rnn {
   public:
    explicit Rnn(const RnnConfig& c) : cfg_(c) {}
    int64_t weightSize() const { return rnnlm::weightSize(cfg_); }
    std::vector<AlgoChoices::Entry> algorithmLog() const { return {}; }  // one algorithm: nothing chosen
    ParamRef weightParam(int64_t layer, int id) const { return rnnlm::weightParam(cfg_, layer, id); }
    struct Sizes {
      int64_t reserve, workspace;
    };
    Sizes spaces(int64_t T, int64_t B) const {
      const RnnSpaces sp(cfg_, T, B);
      return {sp.reserveSize, sp.workspaceSize};
    }
    template <typename T>
    void forward(Context&, int64_t Tn, int64_t B, const int32_t* lengths, const T* x, const T* hx, const T* cx,
                 const T* W, T* y, T* hy, T* cy, T* reserve, int64_t, T* ws, int64_t, bool training,
                 uint64_t seed, bool batchInvariant) const {
      rnnForward(RnnSpaces(cfg_, Tn, B), lengths, x, hx, cx, W, y, hy, cy, reserve, ws, training, seed, batchInvariant);
    }
    void forwardQ8(Context&, int64_t Tn, int64_t B, const int32_t* lengths, const float* x, const float* hx,
                   const float* cx, const int8_t* Wq, const float* side, float* y, float* hy, float* cy,
                   float* reserve, float* ws) const {
      rnnForward<float>(RnnSpaces(cfg_, Tn, B), lengths, x, hx, cx, nullptr, y, hy, cy, reserve, ws, false, 0, true, Wq,
                        side);
    }
    template <typename T>
    void backwardData(Context&, int64_t Tn, int64_t B, const int32_t* lengths, const T* W, const T*, const T* dy,
                      const T* dhy, const T* dcy, const T*, const T*, T* dx, T* dhx, T* dcx, T* reserve, int64_t,
                      T* ws, int64_t) const {
      rnnBackwardData(RnnSpaces(cfg_, Tn, B), lengths, W, dy, dhy, dcy, dx, dhx, dcx, reserve, ws);
    }
    template <typename T>
    void backwardWeights(Context&, int64_t Tn, int64_t B, const int32_t*, const T* x, const T*, const T*, T* dW,
                         T* reserve, int64_t, T*, int64_t) const {
      rnnBackwardWeights(RnnSpaces(cfg_, Tn, B), x, reserve, dW);
    }

   private:
    RnnConfig cfg_;
  };
};

}  // namespace rnnlm::cpu
