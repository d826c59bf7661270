// A fixed set of workers for splitting one op across cores. Dispatching work allocates nothing:
// workers wake on a generation counter and claim chunks of the units from a shared counter, so a
// worker slowed down by another process (common on virtual machines) does not hold the op up.
#pragma once

#include <cstddef>
#include <vector>

#if LOWBIT_THREADS
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#endif

namespace lowbit {

class ThreadPool {
 public:
  // fn(ctx, worker, begin, end) processes units [begin, end) as worker `worker` (0 = the caller);
  // a worker may be called several times per dispatch, each unit is processed exactly once.
  using Task = void (*)(void* ctx, int worker, size_t begin, size_t end);

  ThreadPool() = default;
  ~ThreadPool() { resize(1); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Number of workers including the caller; 1 means run on the calling thread. Without thread
  // support every size behaves as 1.
  void resize(int workers);
  int size() const { return workers_; }
  void parallel_for(size_t units, Task fn, void* ctx);

 private:
  int workers_ = 1;
#if LOWBIT_THREADS
  void worker_loop(int index, unsigned long seen);
  unsigned long spin_for_work(unsigned long seen) const;  // the generation after `seen`, or `seen` on giving up
  void run_chunks(int worker);
  std::vector<std::thread> threads_;
  // Ops are short (tens of microseconds), so workers spin on the generation counter for a while
  // (kSpinTime) before sleeping on the condition variable, and the caller spins until the busy
  // count drops to zero.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<unsigned long> generation_{0};
  std::atomic<int> busy_{0};
  std::atomic<bool> stop_{false};
  Task task_ = nullptr;  // written before generation_ is bumped (release), read after (acquire)
  void* ctx_ = nullptr;
  size_t units_ = 0;
  size_t grain_ = 1;
  std::atomic<size_t> next_{0};  // first unit not yet claimed
#endif
};

}  // namespace lowbit
