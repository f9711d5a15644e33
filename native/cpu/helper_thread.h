// One helper thread for the process, which shares a large batch-invariant GEMM (gemmForward in
// blas.h) with the stream worker that called it: OpenBLAS has threads of its own, the
// fixed-order kernel would otherwise run on one.
// The work comes in chunks that both threads take in turn from a counter, so a helper that is
// slow to wake (a busy machine) costs nothing: the caller takes the chunks it has not, and
// withdraws the offer if the helper never started. One caller at a time: a stream that finds the
// helper busy (another stream's product) does all of its product itself.
// Process exit: the helper is never destroyed nor joined; between products it waits on its
// condition variable, and the process ends it there. It only runs inside a caller's op, which
// returns after the helper is done with it, and ExitGate (common/stream.h) lets exit proceed only
// once the running ops have returned: exit never finds it mid-product.
#pragma once
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>

namespace rnnlm::cpu {

class HelperThread {
 public:
  static HelperThread& get() {
    static HelperThread* helper = new HelperThread();  // never destroyed (see above)
    return *helper;
  }

  // Runs body(i) for every i in [0, chunks), on this thread and the helper; returns when all
  // are done. body must not throw.
  template <class F>
  void forEach(int chunks, const F& body) {
    std::unique_lock<std::mutex> claim(busy_, std::try_to_lock);
    if (!claim.owns_lock() || !started_) {
      for (int i = 0; i < chunks; ++i) body(i);
      return;
    }
    next_.store(0);
    {
      std::lock_guard<std::mutex> lock(mu_);
      run_ = [](const void* f, int i) { (*static_cast<const F*>(f))(i); };
      arg_ = &body;
      chunks_ = chunks;
      state_ = State::Offered;
    }
    wake_.notify_one();
    take();
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ == State::Offered) state_ = State::Idle;  // the helper never came: withdrawn
    done_.wait(lock, [&] { return state_ == State::Idle; });
  }

 private:
  enum class State { Idle, Offered, Taken };

  HelperThread() {
    try {
      std::thread([this] { loop(); }).detach();
      started_ = true;
    } catch (const std::system_error&) {
      // No thread to be had: every product runs on its caller.
    }
  }

  // Runs chunks until none is left. run_, arg_ and chunks_ are only written while no one runs.
  void take() {
    for (int i; (i = next_.fetch_add(1)) < chunks_;) run_(arg_, i);
  }

  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return state_ == State::Offered; });
      state_ = State::Taken;
      lock.unlock();
      take();
      lock.lock();
      state_ = State::Idle;
      done_.notify_one();
    }
  }

  std::mutex busy_;  // held by the caller whose product the helper may share
  std::mutex mu_;    // guards state_ and the offer
  std::condition_variable wake_, done_;
  State state_ = State::Idle;
  void (*run_)(const void*, int) = nullptr;
  const void* arg_ = nullptr;
  int chunks_ = 0;
  std::atomic<int> next_{0};
  bool started_ = false;
};

}  // namespace rnnlm::cpu
