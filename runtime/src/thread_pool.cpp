#include "thread_pool.h"

namespace lowbit {

#if LOWBIT_THREADS

namespace {
// About this many chunks per worker: enough to even out a worker that runs slower, few enough
// that claiming (one atomic add) and per-call set-up stay negligible.
constexpr size_t kChunksPerWorker = 8;
}  // namespace

void ThreadPool::run_chunks(int worker) {
  for (;;) {
    const size_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (begin >= units_) return;
    task_(ctx_, worker, begin, begin + grain_ < units_ ? begin + grain_ : units_);
  }
}

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
    run_chunks(index);
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
  grain_ = (units + kChunksPerWorker * static_cast<size_t>(workers_) - 1) / (kChunksPerWorker * static_cast<size_t>(workers_));
  next_.store(0, std::memory_order_relaxed);
  busy_.store(workers_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);  // pairs with a worker about to sleep
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  run_chunks(0);
  while (busy_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

#else

void ThreadPool::resize(int) { workers_ = 1; }

void ThreadPool::parallel_for(size_t units, Task fn, void* ctx) {
  if (units > 0) fn(ctx, 0, 0, units);
}

#endif

}  // namespace lowbit
