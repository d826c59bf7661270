#include "thread_pool.h"

#include <chrono>

namespace lowbit {

#if LOWBIT_THREADS

namespace {
// How long an idle worker polls for the next op before it sleeps. Waking a sleeping thread takes
// tens of microseconds on a VM, as long as a whole op here, and the gaps between a network's ops
// (or between back-to-back runs) are far shorter; a worker that finished its last chunk early
// waits up to a chunk's time. Measured on layer b (2 threads, 9,000 runs back to back): with a
// budget of 20,000 polls the worker slept ~2,000 times and most batches' median run took 0.22 ms
// instead of 0.17. An application that runs the model now and then pays at most this much spinning
// per run; pthreadpool and libgomp spin for a similar time.
constexpr std::chrono::microseconds kSpinTime{1000};
// About this many chunks per worker: enough to even out a worker that runs slower, few enough
// that taking one (a compare-and-swap) and per-call set-up stay negligible. It also keeps chunk
// numbers well within the 32 bits a ChunkRange holds.
constexpr size_t kChunksPerWorker = 8;

// A ChunkRange's chunks [first, end) as one word: first in the low 32 bits, end in the high ones.
uint64_t pack_chunks(uint64_t first, uint64_t end) { return first | end << 32; }
uint64_t first_chunk(uint64_t packed) { return packed & 0xFFFFFFFFu; }
uint64_t end_chunk(uint64_t packed) { return packed >> 32; }
}  // namespace

bool ThreadPool::take_chunk(int owner, Side side, size_t* chunk) {
  std::atomic<uint64_t>& bounds = ranges_[owner].bounds;
  uint64_t left = bounds.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t first = first_chunk(left), end = end_chunk(left);
    if (first >= end) return false;
    const bool front = side == Side::front;
    // Relaxed: the dispatch (generation_) and the busy count order the units' data, not the takes.
    if (bounds.compare_exchange_weak(left, front ? pack_chunks(first + 1, end) : pack_chunks(first, end - 1),
                                     std::memory_order_relaxed)) {
      *chunk = static_cast<size_t>(front ? first : end - 1);
      return true;
    }
  }
}

void ThreadPool::run_chunk(int worker, size_t chunk, size_t* previous_end) const {
  const size_t begin = chunk * grain_, end = begin + grain_ < units_ ? begin + grain_ : units_;
  task_(ctx_, worker, begin, end, begin == *previous_end);
  *previous_end = end;
}

void ThreadPool::run_chunks(int worker) {
  size_t chunk, previous_end = units_;  // no call yet: no chunk begins at units_
  while (take_chunk(worker, Side::front, &chunk)) run_chunk(worker, chunk, &previous_end);
  for (int i = 1; i < workers_; ++i) {
    const int other = (worker + i) % workers_;
    while (take_chunk(other, Side::back, &chunk)) run_chunk(worker, chunk, &previous_end);
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
  ranges_.reset(workers > 1 ? new ChunkRange[static_cast<size_t>(workers)] : nullptr);  // one worker: no dispatch
  // Workers start from the current generation: a dispatch made before a worker first looks must
  // still count as new work for it.
  for (int i = 1; i < workers; ++i) threads_.emplace_back(&ThreadPool::worker_loop, this, i, generation_.load());
}

unsigned long ThreadPool::spin_for_work(unsigned long seen) const {
  unsigned long now = generation_.load(std::memory_order_acquire);
  const auto give_up = std::chrono::steady_clock::now() + kSpinTime;
  while (now == seen && !stop_.load(std::memory_order_relaxed)) {
    for (int poll = 0; poll < 64 && now == seen; ++poll) now = generation_.load(std::memory_order_acquire);
    if (std::chrono::steady_clock::now() > give_up) break;
  }
  return now;
}

void ThreadPool::worker_loop(int index, unsigned long seen) {
  for (;;) {
    unsigned long now = spin_for_work(seen);
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
    if (units > 0) fn(ctx, 0, 0, units, false);
    return;
  }
  task_ = fn;
  ctx_ = ctx;
  units_ = units;
  grain_ = (units + kChunksPerWorker * static_cast<size_t>(workers_) - 1) / (kChunksPerWorker * static_cast<size_t>(workers_));
  const uint64_t chunks = (units + grain_ - 1) / grain_, workers = static_cast<uint64_t>(workers_);
  for (uint64_t w = 0; w < workers; ++w)
    ranges_[w].bounds.store(pack_chunks(chunks * w / workers, chunks * (w + 1) / workers), std::memory_order_relaxed);
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
  if (units > 0) fn(ctx, 0, 0, units, false);
}

#endif

}  // namespace lowbit
