// A fixed pool of worker threads. parallel_for splits [0, n) into contiguous
// chunks, runs them on the pool and the calling thread, and returns when all are done.
//
// Convention (docs/architecture.md, "Native"): a model never owns a pool. The process holds one compute pool
// per distinct `threads` value, obtained with compute_pool(); every model binding of every pipeline built
// with that value shares it and hands it to the backend at compute time. A pool of size N runs N - 1
// worker threads plus the calling thread (the libuv worker running the call).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace nd {

class ThreadPool {
 public:
  // threads <= 0: one per hardware thread.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return (int)workers_.size() + 1; }

  // fn(begin, end, worker_index) over chunks of at least `grain` items.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain = 1);
  // fn(task_index, worker_index) for tasks [0, tasks), tasks dealt dynamically.
  void run_tasks(int64_t tasks, const std::function<void(int64_t, int)>& fn);

  static int hardware_threads();

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::mutex submit_mutex_;  // one parallel region at a time per pool
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t job_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  int active_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

// The process's compute pool of `threads` threads (<= 0: one per hardware thread): one pool per distinct
// size, created on first use and shared by every caller asking for that size; it ends when the last
// holder lets go. Thread-safe.
std::shared_ptr<ThreadPool> compute_pool(int threads);

}  // namespace nd
