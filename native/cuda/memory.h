// Device memory helpers of the CUDA device policy (device.h): scratch that only grows (Grow),
// host -> device copies that never wait for the stream (Staging), and the memory a captured graph
// owns for the values its ops take from the host (CaptureArena).
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "../common/alloc_stats.h"
#include "../common/status.h"
#include "errors.h"

namespace rnnlm::cuda {

// A device buffer that only grows (scratch for reductions, sequence lengths). Once its stream has
// captured a graph (retain), a buffer it outgrows is kept until the end: a graph's ops still point
// at it, and scratch used within one op is as good there; sizes then double, so what is kept
// stays under the buffer's own size.
template <typename T>
struct Grow {
  T* p = nullptr;
  size_t n = 0;
  bool retain = false;
  std::vector<std::pair<T*, size_t>> retired;
  T* get(size_t need) {
    if (need > n) {
      if (p && retain) retired.push_back({p, n});
      else if (p) {
        cudaFree(p);
        allocStats().sub(int64_t(n * sizeof(T)));
      }
      size_t size = need;
      if (retain)
        for (size = 64; size < need; size *= 2) {
        }
      p = nullptr;
      n = 0;
      RNNLM_CU(cudaMalloc(&p, size * sizeof(T)));
      n = size;
      allocStats().add(int64_t(n * sizeof(T)));
    }
    return p;
  }
  ~Grow() {
    retired.push_back({p, n});
    for (const auto& [q, m] : retired) {
      if (!q) continue;
      cudaFree(q);
      allocStats().sub(int64_t(m * sizeof(T)));
    }
  }
};

// Pinned host memory and device memory that a graph's captured copies use for the values an op
// takes from the host (the sequence lengths of cuDNN's calls): made before a capture starts (no
// allocation may happen during one), owned by the graph, freed with it.
struct CaptureArena {
  static constexpr size_t kBytes = size_t(256) << 10;
  char* host = nullptr;
  char* dev = nullptr;
  size_t used = 0;
  CaptureArena() {
    RNNLM_CU(cudaHostAlloc(reinterpret_cast<void**>(&host), kBytes, cudaHostAllocDefault));
    const cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&dev), kBytes);
    if (e != cudaSuccess) {
      cudaFreeHost(host);
      check(e, "cudaMalloc (a graph's arena)");
    }
    allocStats().add(int64_t(kBytes));
  }
  ~CaptureArena() {
    cudaFree(dev);  // synchronizes: no replay still reads it
    cudaFreeHost(host);
    allocStats().sub(int64_t(kBytes));
  }
  CaptureArena(const CaptureArena&) = delete;
  CaptureArena& operator=(const CaptureArena&) = delete;
  // `bytes` of `src` at a fixed device address, copied there by the graph at each replay.
  void* put(cudaStream_t s, const void* src, size_t bytes) {
    const size_t at = used;
    used += (bytes + 255) / 256 * 256;
    if (used > kBytes) fail(Code::Native, "a graph capture needs more than %zu bytes of host values", kBytes);
    std::memcpy(host + at, src, bytes);
    RNNLM_CU(cudaMemcpyAsync(dev + at, host + at, bytes, cudaMemcpyHostToDevice, s));
    return dev + at;
  }
};

// Host -> device copies in stream order that never wait for the stream. The source (a host
// vector owned by the op) is copied into a pinned slot and the DMA runs from there; a slot is
// reused only after the copy out of it has run (one event per slot), which with a few slots is
// long past. Waiting for the whole stream instead (the simple way) made every write and every
// cuDNN call a round trip: per generated token, the GPU then idles while the host issues work.
// Opt-in (RNNLM_CUDA_ASYNC_UPLOADS=1) until a GPU session has run the parity suite with it;
// scripts/gpu-check.sh turns it on.
inline bool asyncUploads() {
  static const bool on = [] {
    const char* v = std::getenv("RNNLM_CUDA_ASYNC_UPLOADS");
    return v && std::strcmp(v, "1") == 0;
  }();
  return on;
}

class Staging {
 public:
  static constexpr size_t kMaxBytes = size_t(1) << 20;  // larger copies: copy, then wait
  static constexpr int kSlots = 8;

  void toDevice(cudaStream_t s, void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    RNNLM_CU(cudaStreamIsCapturing(s, &capture));
    if (capture != cudaStreamCaptureStatusNone) fail(Code::Native, "an upload inside a graph capture (writes come before captureBegin)");
    if (bytes > kMaxBytes || !asyncUploads()) {
      RNNLM_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
      RNNLM_CU(cudaStreamSynchronize(s));  // the source dies with the op
      return;
    }
    if (bytes > slotBytes_) grow(bytes);
    const int k = next_;
    next_ = (next_ + 1) % kSlots;
    if (used_[k]) RNNLM_CU(cudaEventSynchronize(done_[k]));
    char* slot = host_ + size_t(k) * slotBytes_;
    std::memcpy(slot, src, bytes);
    RNNLM_CU(cudaMemcpyAsync(dst, slot, bytes, cudaMemcpyHostToDevice, s));
    RNNLM_CU(cudaEventRecord(done_[k], s));
    used_[k] = true;
  }
  ~Staging() { release(); }

 private:
  void grow(size_t bytes) {
    release();
    size_t n = 4096;
    while (n < bytes) n *= 2;
    RNNLM_CU(cudaHostAlloc(reinterpret_cast<void**>(&host_), n * kSlots, cudaHostAllocDefault));
    slotBytes_ = n;
    for (auto& e : done_) RNNLM_CU(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  void release() {
    for (int k = 0; k < kSlots; ++k) {
      if (used_[k]) cudaEventSynchronize(done_[k]);
      if (done_[k]) cudaEventDestroy(done_[k]);
      done_[k] = nullptr;
      used_[k] = false;
    }
    if (host_) cudaFreeHost(host_);
    host_ = nullptr;
    slotBytes_ = 0;
    next_ = 0;
  }
  char* host_ = nullptr;
  size_t slotBytes_ = 0;
  cudaEvent_t done_[kSlots] = {};
  bool used_[kSlots] = {};
  int next_ = 0;
};

}  // namespace rnnlm::cuda
