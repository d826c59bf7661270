#include "thread_pool.h"

namespace lowbit {

#if LOWBIT_THREADS

namespace {
// Worker w's share of `units` split into `workers` contiguous pieces.
void share(size_t units, int workers, int w, size_t* begin, size_t* end) {
  const size_t per = units / static_cast<size_t>(workers), extra = units % static_cast<size_t>(workers);
  const size_t idx = static_cast<size_t>(w);
  *begin = idx * per + (idx < extra ? idx : extra);
  *end = *begin + per + (idx < extra ? 1 : 0);
}
}  // namespace

void ThreadPool::resize(int workers) {
  if (workers < 1) workers = 1;
  if (workers == workers_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  stop_ = false;
  workers_ = workers;
  // Workers start from the current generation: a dispatch made before a worker first takes the
  // lock must still count as new work for it.
  for (int i = 1; i < workers; ++i) threads_.emplace_back(&ThreadPool::worker_loop, this, i, generation_);
}

void ThreadPool::worker_loop(int index, unsigned long seen) {
  for (;;) {
    Task task;
    void* ctx;
    size_t units;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      task = task_;
      ctx = ctx_;
      units = units_;
    }
    size_t begin, end;
    share(units, workers_, index, &begin, &end);
    if (begin < end) task(ctx, index, begin, end);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(size_t units, Task fn, void* ctx) {
  if (workers_ == 1 || units < 2) {
    if (units > 0) fn(ctx, 0, 0, units);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = fn;
    ctx_ = ctx;
    units_ = units;
    busy_ = workers_ - 1;
    ++generation_;
  }
  wake_.notify_all();
  size_t begin, end;
  share(units, workers_, 0, &begin, &end);
  if (begin < end) fn(ctx, 0, begin, end);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return busy_ == 0; });
}

#else

void ThreadPool::resize(int) { workers_ = 1; }

void ThreadPool::parallel_for(size_t units, Task fn, void* ctx) {
  if (units > 0) fn(ctx, 0, 0, units);
}

#endif

}  // namespace lowbit
