// A model's stream: one native worker thread per model that runs queued ops in
// order, so the JavaScript thread only validates and enqueues. An op that
// fails records a sticky error; later compute ops are skipped until a read
// (a task with alwaysRun) reports and clears it.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "status.h"

namespace rnnlm {

// exit() (process.exit() on the main thread) tears no environment down, so stream threads can
// still be inside OpenBLAS or CUDA when those libraries' own exit handlers shut their threads
// down; OpenBLAS then waits for ever on a worker it never wakes. An exit handler of ours,
// registered after those libraries loaded and so run before their teardown, stops streams from
// starting work and waits for the ops already running (each is bounded: one step or one read)
// to end.
class ExitGate {
 public:
  static ExitGate& get() {
    static ExitGate* gate = new ExitGate();  // never destroyed: exit handlers use it
    return *gate;
  }
  bool enter() {
    std::lock_guard<std::mutex> lock(mu_);
    if (exiting_) return false;
    ++running_;
    return true;
  }
  void leave() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--running_ == 0) idle_.notify_all();
  }

 private:
  ExitGate() { std::atexit(&ExitGate::atExit); }
  static void atExit() {
    ExitGate& g = get();
    std::unique_lock<std::mutex> lock(g.mu_);
    g.exiting_ = true;
    g.idle_.wait(lock, [&] { return g.running_ == 0; });
  }
  std::mutex mu_;
  std::condition_variable idle_;
  int running_ = 0;
  bool exiting_ = false;
};

class Stream {
 public:
  struct Task {
    std::function<void()> run;
    // Reads run even after an error, to deliver it: they get the error and clear it.
    std::function<void(std::optional<Error>)> deliver;
    // Runs even after an error (and when the stream is cancelled), told whether one is pending;
    // the error stays for the next read. A graph capture's end: the device stream must leave
    // capture mode whatever happened in between.
    std::function<void(bool failed)> always;
  };

  Stream() : gate_(ExitGate::get()), worker_([this] { loop(); }) {}
  ~Stream() { shutdown(); }

  void push(std::function<void()> run) { enqueue(Task{std::move(run), nullptr, nullptr}); }
  void pushRead(std::function<void()> run, std::function<void(std::optional<Error>)> deliver) {
    enqueue(Task{std::move(run), std::move(deliver), nullptr});
  }
  void pushAlways(std::function<void(bool failed)> always) { enqueue(Task{nullptr, nullptr, std::move(always)}); }

  // Cancels queued compute (reads are still delivered, with ERR_DISPOSED) and joins.
  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

 private:
  void enqueue(Task t) {
    bool sleeping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(t));
      queued_.store(queue_.size(), std::memory_order_relaxed);
      sleeping = sleeping_;
    }
    if (sleeping) cv_.notify_one();
  }

  // An idle worker watches the queue for a moment before it sleeps: the JavaScript thread
  // enqueues a step's ops a few microseconds apart, and a sleep plus a wake-up (two system calls,
  // the enqueuer's among them) cost more than that — measured on a 2-core VM, an op's enqueue
  // 9.5 -> 5.8 us. The worker sleeps after kSpinMicros without work; only then does an enqueue wake it.
  // On one CPU it would only delay the enqueuer, so it sleeps at once there.
  void spin() {
    static const bool worth = std::thread::hardware_concurrency() > 1;
    if (!worth) return;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    while (queued_.load(std::memory_order_relaxed) == 0 && std::chrono::steady_clock::now() < until) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      asm volatile("yield");
#endif
    }
  }
  static constexpr int kSpinMicros = 50;

  void loop() {
    for (;;) {
      Task task;
      bool cancelled;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (queue_.empty() && !stopping_) {
          lock.unlock();
          spin();
          lock.lock();
        }
        sleeping_ = true;
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        sleeping_ = false;
        if (queue_.empty()) return;  // stopping and drained
        task = std::move(queue_.front());
        queue_.pop_front();
        queued_.store(queue_.size(), std::memory_order_relaxed);
        cancelled = stopping_;
      }
      if (task.always) {
        runAlways(task, cancelled);
        continue;
      }
      if (cancelled || !gate_.enter()) {
        if (task.deliver) task.deliver(Error(Code::Disposed, "the model was disposed before this read ran"));
        continue;
      }
      if (!error_) {
        try {
          task.run();
        } catch (const Error& e) {
          error_ = e;
        } catch (const std::bad_alloc&) {
          error_ = Error(Code::OutOfMemory, "out of memory in a stream op");
        } catch (const std::exception& e) {
          error_ = Error(Code::Native, e.what());
        }
      }
      gate_.leave();
      if (task.deliver) {
        task.deliver(error_);
        error_.reset();
      }
    }
  }

  void runAlways(Task& task, bool cancelled) {
    if (!gate_.enter()) return;  // the process is exiting: no device calls any more
    try {
      task.always(cancelled || error_.has_value());
    } catch (const Error& e) {
      if (!error_) error_ = e;
    } catch (const std::exception& e) {
      if (!error_) error_ = Error(Code::Native, e.what());
    }
    gate_.leave();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::atomic<size_t> queued_{0};  // queue_.size(), read without the lock by spin()
  bool sleeping_ = false;          // the worker waits on cv_
  bool stopping_ = false;
  std::optional<Error> error_;  // touched only by the worker thread
  ExitGate& gate_;
  std::thread worker_;          // last: starts after the members above exist
};

}  // namespace rnnlm
