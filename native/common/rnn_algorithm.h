// Which cuDNN RNN algorithm runs a shape (native/cuda/rnn.h runs them): STANDARD (a GEMM per layer and
// time step, robust everywhere), PERSIST_STATIC (the recurrent GEMMs in one persistent kernel
// that keeps weight_hh in registers / shared memory: fast at small batches) and
// PERSIST_STATIC_SMALL_H (the same for small hidden sizes). cuDNN says where each runs by its
// status codes, and which is fastest only by running it, so `auto` times every algorithm that
// runs a shape at its first use and keeps the fastest (PyTorch's cudnn.benchmark does the same
// for convolutions; for RNNs PyTorch uses fixed rules, aten/src/ATen/native/cudnn/RNN.cpp,
// which pick PERSIST_STATIC for half-precision data on some GPUs only).
//
// The key of a choice is (training or inference, batch, sequence length rounded up to a power
// of two): a persistent kernel's gain depends on the batch and the hidden size, and the time of
// a sequence grows with its length, so AWD-LSTM's varying window lengths share a few timings.
// Forward and backward of one training step use the same key, so the same algorithm reads the
// reserve it wrote.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "status.h"

namespace rnnlm {

// The option: one algorithm named, or auto (timed per shape). The CPU has one algorithm and
// ignores it.
enum class RnnAlgorithm { Standard = 0, PersistStatic = 1, PersistStaticSmallH = 2, Auto = 3 };

inline constexpr const char* kAlgorithmNames[] = {"standard", "persist_static", "persist_static_small_h", "auto"};
inline const char* algorithmName(RnnAlgorithm a) { return kAlgorithmNames[int(a)]; }
inline RnnAlgorithm parseAlgorithm(const std::string& s) { return RnnAlgorithm(parseName(kAlgorithmNames, s, "algorithm")); }

// The choices made so far, by key; the log of each timing (milliseconds per algorithm, -1
// where it did not run) for the reports. Written on the stream's thread, read from any.
class AlgoChoices {
 public:
  struct Key {
    bool training;
    int64_t B, T;
    bool operator<(const Key& o) const { return std::tie(training, B, T) < std::tie(o.training, o.B, o.T); }
  };
  struct Entry {
    Key key;
    RnnAlgorithm chosen;
    std::vector<std::pair<RnnAlgorithm, double>> ms;  // per candidate; -1: it refused the shape
  };

  static Key keyOf(bool training, int64_t B, int64_t T) {
    int64_t t = 1;
    while (t < T) t *= 2;
    return {training, B, t};
  }
  // The chosen algorithm's index in the candidates, or -1 when not timed yet.
  int find(const Key& k) const {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = index_.find(k);
    return it == index_.end() ? -1 : it->second;
  }
  void add(const Key& k, int index, Entry e) {
    std::lock_guard<std::mutex> lock(mu_);
    index_[k] = index;
    log_.push_back(std::move(e));
  }
  std::vector<Entry> log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

 private:
  mutable std::mutex mu_;
  std::map<Key, int> index_;
  std::vector<Entry> log_;
};

}  // namespace rnnlm
