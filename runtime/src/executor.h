// A loaded model: verified graph, static memory plan, worker threads. run() allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/graph.h"
#include "ops/op_table.h"
#include "thread_pool.h"

namespace lowbit {

// Read-only bytes of a model: an mmap of the file or an aligned heap copy.
class ModelBytes {
 public:
  static Status map_file(const std::string& path, std::unique_ptr<ModelBytes>* out);
  static Status copy_of(const void* data, size_t size, std::unique_ptr<ModelBytes>* out);
  ~ModelBytes();
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  ModelBytes() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
};

struct OpProfile {
  double milliseconds = 0.0;  // of the last run
};

class Executor {
 public:
  // Largest activation arena a model may ask for (a corrupt shape must not exhaust memory).
  // 4 GiB on 64-bit targets, 1 GiB where size_t is 32 bits.
  static constexpr uint64_t kMaxArenaBytes = sizeof(size_t) >= 8 ? 4ull << 30 : 1ull << 30;

  static Status load(std::unique_ptr<ModelBytes> bytes, std::unique_ptr<Executor>* out);
  // Loads `data` in place (zero copy; it must stay valid and unchanged while the model lives) with
  // the executor object itself at `where` (nullptr: on the heap). Meant to run while a
  // WorkspaceArena is installed (lowbit_model_load_static): every container, the prepared
  // constants and the activation arena then come out of the workspace. Destroy with ~Executor()
  // (and operator delete only if `where` was nullptr).
  static Status load_in_place(const uint8_t* data, size_t size, void* where, Executor** out);
  ~Executor();

  const GraphDesc& graph() const { return graph_; }
  // Re-plans scratch memory for n workers (n >= 1). Input values are kept; buffer pointers change.
  Status set_threads(int n);
  int threads() const { return threads_; }
  void set_profiling(bool on) { profiling_ = on; }

  void* tensor_data(uint32_t id) { return const_cast<void*>(data_[id]); }
  uint64_t peak_activation_bytes() const { return arena_bytes_; }

  // Runs every op in dependency order. Inputs must have been written to tensor_data().
  void run();

  size_t step_count() const { return order_.size(); }
  const OpDesc& step_op(size_t step) const { return graph_.ops[order_[step]]; }
  const OpProfile& step_profile(size_t step) const { return profile_[step]; }

 private:
  Executor() = default;
  Status plan();
  Status prepare_constants();
  // 64-byte aligned memory from the installed workspace arena, else from the heap (*heap = true).
  static uint8_t* take_block(uint64_t size, bool* heap);


  std::unique_ptr<ModelBytes> bytes_;  // nullptr when loaded in place
  bool in_place_ = false;
  GraphDesc graph_;
  Vec<uint32_t> order_;
  Vec<const void*> data_;       // per tensor
  Vec<OpRun> runs_;             // per step, pointers bound by plan()
  // What the pool's workers read to run a step. Bound by plan() and only read by run(), so between
  // runs it stays cached on every core instead of crossing from the caller's stack per dispatch.
  struct StepContext {
    const OpTraits* traits;
    const OpRun* run;
    uint8_t* scratch;         // worker w's scratch at scratch + w * scratch_stride
    uint64_t scratch_stride;  // bytes per worker
  };
  Vec<StepContext> contexts_;  // per step
  static void run_share(void* ctx, int worker, size_t begin, size_t end, bool continues);  // a ThreadPool::Task
  Vec<OpProfile> profile_;
  uint8_t* prepared_ = nullptr;      // every op's load-time derived constants
  bool prepared_on_heap_ = true;
  Vec<const void*> prepared_of_;  // per step, into prepared_ (nullptr if none)
  uint8_t* arena_ = nullptr;
  bool arena_on_heap_ = true;
  uint64_t arena_bytes_ = 0;
  int threads_ = 1;
  bool profiling_ = false;
  ThreadPool pool_;
};

}  // namespace lowbit
