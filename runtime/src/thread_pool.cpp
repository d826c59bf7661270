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
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  stop_.store(false);
  workers_ = workers;
  // Workers start from the current generation: a dispatch made before a worker first looks must
  // still count as new work for it.
  for (int i = 1; i < workers; ++i) threads_.emplace_back(&ThreadPool::worker_loop, this, i, generation_.load());
}

void ThreadPool::worker_loop(int index, unsigned long seen) {
  constexpr int kSpins = 20000;  // about the length of a short op
  for (;;) {
    unsigned long now = generation_.load(std::memory_order_acquire);
    for (int spin = 0; now == seen && spin < kSpins && !stop_.load(std::memory_order_relaxed); ++spin)
      now = generation_.load(std::memory_order_acquire);
    if (now == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
      now = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = now;
    size_t begin, end;
    share(units_, workers_, index, &begin, &end);
    if (begin < end) task_(ctx_, index, begin, end);
    busy_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(size_t units, Task fn, void* ctx) {
  if (workers_ == 1 || units < 2) {
    if (units > 0) fn(ctx, 0, 0, units);
    return;
  }
  task_ = fn;
  ctx_ = ctx;
  units_ = units;
  busy_.store(workers_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);  // pairs with a worker about to sleep
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  size_t begin, end;
  share(units, workers_, 0, &begin, &end);
  if (begin < end) fn(ctx, 0, begin, end);
  while (busy_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

#else

void ThreadPool::resize(int) { workers_ = 1; }

void ThreadPool::parallel_for(size_t units, Task fn, void* ctx) {
  if (units > 0) fn(ctx, 0, 0, units);
}

#endif

}  // namespace lowbit
