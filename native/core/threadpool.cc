#include "core/threadpool.h"

#include <algorithm>
#include <exception>
#include <map>

namespace nd {

namespace {
// A parallel region started from inside a worker runs inline: nesting would deadlock.
thread_local bool in_parallel_region = false;
}  // namespace

int ThreadPool::hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : (int)n;
}

ThreadPool::ThreadPool(int threads) {
  const int total = threads > 0 ? threads : hardware_threads();
  for (int i = 1; i < total; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int)>* job;
    int64_t tasks;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      tasks = job_tasks_;
    }
    for (int64_t t; (t = next_task_.fetch_add(1)) < tasks;) (*job)(t, index);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--active_ == 0) done_.notify_all();
    }
  }
}

void ThreadPool::run_tasks(int64_t tasks, const std::function<void(int64_t, int)>& fn) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1 || in_parallel_region) {
    for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mutex_);
  // Exceptions must not escape worker threads: capture the first, rethrow here.
  std::exception_ptr error;
  std::mutex error_mutex;
  const std::function<void(int64_t, int)> guarded = [&](int64_t t, int w) {
    in_parallel_region = true;
    try {
      fn(t, w);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
    in_parallel_region = false;
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &guarded;
    job_tasks_ = tasks;
    next_task_.store(0);
    active_ = (int)workers_.size();
    ++generation_;
  }
  wake_.notify_all();
  for (int64_t t; (t = next_task_.fetch_add(1)) < tasks;) guarded(t, 0);
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return active_ == 0; });
    job_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_chunks = std::max<int64_t>(1, n / grain);
  const int64_t chunks = std::min<int64_t>(max_chunks, (int64_t)size());
  const int64_t per = (n + chunks - 1) / chunks;
  run_tasks(chunks, [&](int64_t c, int w) {
    const int64_t b = c * per, e = std::min(n, b + per);
    if (b < e) fn(b, e, w);
  });
}

std::shared_ptr<ThreadPool> compute_pool(int threads) {
  static std::mutex mutex;
  static std::map<int, std::weak_ptr<ThreadPool>> pools;  // by resolved size
  const int size = threads > 0 ? threads : ThreadPool::hardware_threads();
  std::lock_guard<std::mutex> lock(mutex);
  std::shared_ptr<ThreadPool> pool = pools[size].lock();
  if (!pool) {
    pool = std::make_shared<ThreadPool>(size);
    pools[size] = pool;
  }
  return pool;
}

}  // namespace nd
