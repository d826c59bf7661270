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
// numbers well within the 32 bits a WorkerSlot's chunk bounds hold.
constexpr size_t kChunksPerWorker = 8;
// Polls of a running worker's state before the caller starts yielding its core to others (83 us
// on Zen 5, where a pause takes ~20 ns).
constexpr int kPollsBeforeYield = 1 << 12;

uint64_t pack_state(unsigned long generation, uint64_t phase) { return uint64_t{generation} << 2 | phase; }
unsigned long generation_of(uint64_t state) { return static_cast<unsigned long>(state >> 2); }

// A WorkerSlot's chunks [first, end) as one word: first in the low 32 bits, end in the high ones.
uint64_t pack_chunks(uint64_t first, uint64_t end) { return first | end << 32; }
uint64_t first_chunk(uint64_t packed) { return packed & 0xFFFFFFFFu; }
uint64_t end_chunk(uint64_t packed) { return packed >> 32; }
// A spin-wait hint: without it a core polling a line that another core is about to write pays a
// pipeline flush when the write lands (x86), and hogs the issue slots a sibling thread could use.
inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && __ARM_ARCH >= 7)
  asm volatile("yield");
#endif
}
}  // namespace

bool ThreadPool::take_chunk(int owner, Side side, size_t* chunk) {
  std::atomic<uint64_t>& bounds = slots_[owner].chunks;
  uint64_t left = bounds.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t first = first_chunk(left), end = end_chunk(left);
    if (first >= end) return false;
    const bool front = side == Side::front;
    // Relaxed: the dispatch (generation_) and the workers' states order the units' data, not the takes.
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
  slots_.reset(workers > 1 ? new WorkerSlot[static_cast<size_t>(workers)] : nullptr);  // one worker: no dispatch
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
    if (!join(index, seen)) continue;  // the caller finished this dispatch without us
    run_chunks(index);
    slots_[index].state.store(pack_state(seen, kDone), std::memory_order_release);
  }
}

// Claims the dispatch for this worker unless the caller has already written the worker off (for
// this or, if the worker saw the generation long ago, a later dispatch); only after a successful
// claim may the worker read the dispatch: the caller waits for it from then on.
bool ThreadPool::join(int worker, unsigned long generation) {
  std::atomic<uint64_t>& state = slots_[worker].state;
  uint64_t seen = state.load(std::memory_order_acquire);
  while (generation_of(seen) < generation)
    if (state.compare_exchange_weak(seen, pack_state(generation, kRunning), std::memory_order_acq_rel)) return true;
  return false;
}

// Every chunk has been taken: writes off a worker that has not claimed the dispatch yet, or waits
// until a worker that has is done.
void ThreadPool::wait_or_write_off(int worker, unsigned long generation) {
  std::atomic<uint64_t>& state = slots_[worker].state;
  uint64_t seen = state.load(std::memory_order_acquire);
  while (generation_of(seen) < generation)
    if (state.compare_exchange_weak(seen, pack_state(generation, kWrittenOff), std::memory_order_acq_rel)) return;
  // Yielding on every poll noticed the worker up to a system call late (layer d at 2 threads spent
  // ~1 us more per dispatch); yield only once the wait outlasts a typical op.
  for (int poll = 0; seen == pack_state(generation, kRunning); ++poll, seen = state.load(std::memory_order_acquire))
    poll < kPollsBeforeYield ? relax() : std::this_thread::yield();
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
    slots_[w].chunks.store(pack_chunks(chunks * w / workers, chunks * (w + 1) / workers), std::memory_order_relaxed);
  unsigned long generation;
  {
    std::lock_guard<std::mutex> lock(mutex_);  // pairs with a worker about to sleep
    generation = generation_.fetch_add(1, std::memory_order_acq_rel) + 1;
  }
  wake_.notify_all();
  run_chunks(0);
  for (int w = 1; w < workers_; ++w) wait_or_write_off(w, generation);
}

#else

void ThreadPool::resize(int) { workers_ = 1; }

void ThreadPool::parallel_for(size_t units, Task fn, void* ctx) {
  if (units > 0) fn(ctx, 0, 0, units, false);
}

#endif

}  // namespace lowbit
