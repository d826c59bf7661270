// A fixed set of workers for splitting one op across cores. Dispatching work allocates nothing:
// workers wake on a generation counter. The units are cut into chunks and each worker owns a
// contiguous run of them, which it works through in order (so an op can carry state from one of
// its chunks to the next, like the conv's table offsets of the input rows two output rows share).
// A worker that runs out takes chunks from the far end of another's run, so a worker slowed down
// by another process (common on virtual machines) does not hold the op up; and a worker that has
// not started by the time every chunk is taken is written off for that dispatch instead of waited
// for, so a worker that is not scheduled at all (more threads than free cores) costs nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
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
  // fn(ctx, worker, begin, end, continues) processes units [begin, end) as worker `worker` (0 =
  // the caller); a worker may be called several times per dispatch, each unit is processed exactly
  // once. `continues`: this worker's previous call of this dispatch ended at `begin` (true for all
  // but the first of the calls on a worker's own chunks, which come in increasing order).
  using Task = void (*)(void* ctx, int worker, size_t begin, size_t end, bool continues);

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
  enum class Side { front, back };  // an owner takes its chunks from the front, others from the back
  bool take_chunk(int owner, Side side, size_t* chunk);
  void run_chunk(int worker, size_t chunk, size_t* previous_end) const;
  bool join(int worker, unsigned long generation);
  void wait_or_write_off(int worker, unsigned long generation);
  std::vector<std::thread> threads_;
  // What the caller and one worker share: the chunks [first, end) the worker has not taken yet,
  // packed as first | end << 32 so that its owner (from the front) and others (from the back)
  // take them with one compare-and-swap; and where the worker is in the dispatches, packed as
  // generation << 2 | Phase: the worker claims a dispatch (running, then done) unless the caller
  // has written it off first. One cache line each: a worker's takes do not disturb the others',
  // and the caller reads one line per worker at the end.
  enum Phase : uint64_t { kRunning = 0, kDone = 1, kWrittenOff = 2 };
  struct alignas(64) WorkerSlot {
    std::atomic<uint64_t> chunks{0};
    std::atomic<uint64_t> state{0};
  };
  // Ops are short (tens of microseconds), so workers spin on the generation counter for a while
  // (kSpinTime) before sleeping on the condition variable, and the caller spins until they are
  // done. A dispatch costs a few cache-line transfers between cores (0.24 us each on the 2-vCPU
  // Zen 5 VM of the benchmarks), so the lines are laid out for it: what the caller writes per
  // dispatch and a worker then reads sits on one line, whatever else a worker reads sits on lines
  // the caller does not write, and the caller locks the mutex (a write) on lines of its own.
  alignas(64) std::mutex mutex_;
  std::condition_variable wake_;
  alignas(64) std::atomic<unsigned long> generation_{0};
  std::atomic<bool> stop_{false};
  Task task_ = nullptr;  // written before generation_ is bumped (release), read after (acquire)
  void* ctx_ = nullptr;
  size_t units_ = 0;
  size_t grain_ = 1;  // units per chunk
  std::unique_ptr<WorkerSlot[]> slots_;
#endif
};

}  // namespace lowbit
