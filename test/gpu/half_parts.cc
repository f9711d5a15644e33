// native/cuda/rnn_half.h's carving of the half-precision copies out of the caller's reserve and
// workspace, checked without a GPU (test/gpu/half-parts.test.ts builds and runs this): for many
// shapes, base addresses and slack, every part is 256-byte aligned, inside the buffer, disjoint
// from the others and from the front that cuDNN gets, and that front is at least what cuDNN asked
// for whenever the buffer has the size spaces() gives. Exit status 0: all held.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "../../native/cuda/rnn_half.h"

using namespace rnnlm;
using rnnlm::cuda::HalfParts;

static int failures = 0;
#define EXPECT(c, ...)                                  \
  do {                                                  \
    if (!(c)) {                                         \
      if (++failures < 20) std::fprintf(stderr, __VA_ARGS__); \
    }                                                   \
  } while (0)

struct Part {
  const char* name;
  uintptr_t at;
  size_t bytes;
};

static void checkParts(const char* what, uintptr_t base, size_t bytes, size_t front, size_t cudnnNeeds,
                       const std::vector<Part>& parts) {
  EXPECT(front >= cudnnNeeds, "%s: cuDNN's front %zu < %zu needed\n", what, front, cudnnNeeds);
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part& p = parts[i];
    EXPECT(p.at % HalfParts::kAlign == 0, "%s: %s not aligned\n", what, p.name);
    EXPECT(p.at >= base + front && p.at + p.bytes <= base + bytes, "%s: %s outside [front, end)\n", what, p.name);
    for (size_t j = 0; j < i; ++j)
      EXPECT(p.at >= parts[j].at + parts[j].bytes || parts[j].at >= p.at + p.bytes, "%s: %s overlaps %s\n", what, p.name,
             parts[j].name);
  }
}

int main() {
  uint64_t seed = 12345;
  auto next = [&](uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  int cases = 0;
  for (int k = 0; k < 3000; ++k) {
    RnnConfig c;
    c.cell = Cell(next(4));
    c.inputSize = 1 + int64_t(next(700));
    c.hiddenSize = 1 + int64_t(next(700));
    c.layers = 1 + int64_t(next(3));
    const int64_t T = 1 + int64_t(next(70)), B = 1 + int64_t(next(70));
    const int64_t weights = int64_t(c.gates()) * c.hiddenSize * (c.inputSize + c.hiddenSize + 2) * c.layers + int64_t(next(300));
    const size_t cudnnReserve = next(1 << 20), cudnnWs = next(1 << 20);
    // spaces(): cuDNN's bytes + ours, rounded up to floats, + 1 float; a view may start at any float.
    const size_t rBytes = ((cudnnReserve + HalfParts::reserveBytes(c, weights, T, B) + 3) / 4 + 1 + next(3)) * 4;
    const size_t wBytes = ((cudnnWs + HalfParts::workspaceBytes(c, weights, T, B) + 3) / 4 + 1 + next(3)) * 4;
    const uintptr_t rBase = 0x100000 + 4 * next(1000), wBase = 0x90000000 + 4 * next(1000);
    const size_t state = size_t(c.layers * B * c.hiddenSize) * 2;
    const auto R = HalfParts::reserve(c, weights, T, B, reinterpret_cast<void*>(rBase), rBytes);
    auto at = [](void* p) { return reinterpret_cast<uintptr_t>(p); };
    checkParts("reserve", rBase, rBytes, R.cudnnBytes, cudnnReserve,
               {{"W", at(R.W), size_t(weights) * 2}, {"x", at(R.x), size_t(T * B * c.inputSize) * 2},
                {"y", at(R.y), size_t(T * B * c.hiddenSize) * 2}, {"hx", at(R.hx), state}, {"cx", at(R.cx), state}});
    const auto W = HalfParts::workspace(c, weights, T, B, reinterpret_cast<void*>(wBase), wBytes);
    checkParts("workspace", wBase, wBytes, W.cudnnBytes, cudnnWs,
               {{"dy", at(W.dy), size_t(T * B * c.hiddenSize) * 2}, {"dx", at(W.dx), size_t(T * B * c.inputSize) * 2},
                {"dhy", at(W.dhy), state}, {"dcy", at(W.dcy), state}, {"dhx", at(W.dhx), state},
                {"dcx", at(W.dcx), state}, {"hy", at(W.hy), state}, {"cy", at(W.cy), state},
                {"dW", at(W.dW), size_t(weights) * 2}});
    ++cases;
  }
  // A buffer short of our part is refused, not overrun.
  RnnConfig c;
  c.inputSize = c.hiddenSize = 8;
  bool refused = false;
  try {
    HalfParts::reserve(c, 100, 2, 2, reinterpret_cast<void*>(0x1000), HalfParts::reserveBytes(c, 100, 2, 2) - 1);
  } catch (const Error&) {
    refused = true;
  }
  EXPECT(refused, "a reserve too small was not refused\n");
  std::printf("%d cases, %d failures\n", cases, failures);
  return failures == 0 ? 0 : 1;
}
