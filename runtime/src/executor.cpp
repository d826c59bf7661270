#include "executor.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define LOWBIT_HAVE_MMAP 1
#endif

#include "model_file.h"

namespace lowbit {
namespace {

constexpr uint64_t kArenaAlignment = 64;

// With several threads each worker's scratch is followed by this many unused bytes. Back to back,
// the end of one worker's scratch and the start of the next one's (both written on every gemm
// call: activation sums, indirection rows) kept crossing between the cores, most likely pulled
// across by the hardware prefetchers: layer d at 2 threads on the Zen 5 VM ran 67.6-73.0 us with
// 0-256 bytes between the areas and 64.6-66.9 us with 1-64 KiB (1 thread: 122-125 us either way).
// Only in some states of that VM: in others both ran alike. The gap costs 4 KiB a worker.
constexpr uint64_t kWorkerScratchGap = 4096;

uint64_t align_up(uint64_t v) { return (v + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

// Heap blocks from 256 KiB up (arenas, prepared weights) start on a 2 MiB boundary, their size
// rounded up to it, and Linux is asked to back them with transparent huge pages. With 4 KiB pages
// the same kernel ran layer h (W1A2) in 11.5 ms in one process and 17-19 ms in the next, depending
// on where its pages landed; with huge pages it ran 11.2-11.5 ms in every process (2026-12-03).
constexpr uint64_t kHugePage = uint64_t{2} << 20;
constexpr uint64_t kHugePageMinBlock = uint64_t{256} << 10;

uint8_t* aligned_alloc_bytes(uint64_t size) {
  size = align_up(size ? size : 1);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (size >= kHugePageMinBlock) {
    const uint64_t rounded = (size + kHugePage - 1) / kHugePage * kHugePage;
    if (void* p = std::aligned_alloc(kHugePage, rounded)) {
      ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: without THP the block is used as it is
      return static_cast<uint8_t*>(p);
    }
  }
#endif
  return static_cast<uint8_t*>(std::aligned_alloc(kArenaAlignment, size));
}

// A block of the arena needed during steps [first, last].
struct Block {
  uint64_t size;
  size_t first, last;
  uint64_t offset = 0;
  size_t rank = 0;  // position in the list handed to place(), the tie-break among equal sizes
};

// Greedy best-fit-by-size placement: largest blocks first (ties in list order), each at the lowest
// offset that does not collide with an already placed block whose lifetime overlaps. In-place
// sorts and containers sized once: nothing here touches the heap when a workspace is installed.
uint64_t place(Vec<Block*>& blocks) {
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i]->rank = i;
  std::sort(blocks.begin(), blocks.end(),
            [](const Block* a, const Block* b) { return a->size != b->size ? a->size > b->size : a->rank < b->rank; });
  Vec<const Block*> placed;
  placed.reserve(blocks.size());
  Vec<const Block*> live;
  live.reserve(blocks.size());
  uint64_t total = 0;
  for (Block* b : blocks) {
    live.clear();
    for (const Block* p : placed)
      if (p->first <= b->last && b->first <= p->last) live.push_back(p);
    std::sort(live.begin(), live.end(), [](const Block* x, const Block* y) { return x->offset < y->offset; });
    uint64_t offset = 0;
    for (const Block* p : live) {
      if (offset + b->size <= p->offset) break;
      offset = std::max(offset, align_up(p->offset + p->size));
    }
    b->offset = offset;
    total = std::max(total, offset + b->size);
    placed.push_back(b);
  }
  return total;
}

}  // namespace

Status ModelBytes::map_file(const std::string& path, std::unique_ptr<ModelBytes>* out) {
  std::unique_ptr<ModelBytes> b(new ModelBytes());
#if LOWBIT_HAVE_MMAP
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return Status::Error("cannot open: " + std::string(std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Error("not a regular file");
  }
  b->size_ = static_cast<size_t>(st.st_size);
  if (b->size_ > 0) {
    void* p = ::mmap(nullptr, b->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return Status::Error("cannot map: " + std::string(std::strerror(errno)));
    }
    b->data_ = static_cast<uint8_t*>(p);
    b->mapped_ = true;
  }
  ::close(fd);
#else
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::Error("cannot open");
  std::vector<uint8_t> all;
  uint8_t chunk[65536];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) all.insert(all.end(), chunk, chunk + n);
  std::fclose(f);
  b->size_ = all.size();
  b->data_ = aligned_alloc_bytes(all.size());
  if (!b->data_) return Status::Error("out of memory");
  std::memcpy(b->data_, all.data(), all.size());
#endif
  *out = std::move(b);
  return Status::Ok();
}

Status ModelBytes::copy_of(const void* data, size_t size, std::unique_ptr<ModelBytes>* out) {
  std::unique_ptr<ModelBytes> b(new ModelBytes());
  b->data_ = aligned_alloc_bytes(size);
  if (!b->data_) return Status::Error("out of memory copying " + std::to_string(size) + " bytes");
  if (size) std::memcpy(b->data_, data, size);
  b->size_ = size;
  *out = std::move(b);
  return Status::Ok();
}

ModelBytes::~ModelBytes() {
#if LOWBIT_HAVE_MMAP
  if (mapped_) {
    ::munmap(data_, size_);
    return;
  }
#endif
  std::free(data_);
}

uint8_t* Executor::take_block(uint64_t size, bool* heap) {
  if (current_workspace_arena()) {
    if (void* p = workspace_take(align_up(size ? size : 1), kArenaAlignment)) {
      *heap = false;
      return static_cast<uint8_t*>(p);
    }
  }
  *heap = true;
  return aligned_alloc_bytes(size);
}

Status Executor::load_in_place(const uint8_t* data, size_t size, void* where, Executor** out) {
  Executor* e = where ? new (where) Executor() : new Executor();
  e->in_place_ = true;
  Status s = parse_model(data, size, &e->graph_);
  if (s.ok) s = verify_graph(e->graph_, &e->order_);
  if (s.ok) s = e->plan();
  if (s.ok) s = e->prepare_constants();
  *out = e;  // also on failure: the caller destroys it
  return s;
}

Status Executor::load(std::unique_ptr<ModelBytes> bytes, std::unique_ptr<Executor>* out) {
  std::unique_ptr<Executor> e(new Executor());
  e->bytes_ = std::move(bytes);
  Status s = parse_model(e->bytes_->data(), e->bytes_->size(), &e->graph_);
  if (s.ok) s = verify_graph(e->graph_, &e->order_);
  if (s.ok) s = e->plan();
  if (s.ok) s = e->prepare_constants();
  if (!s.ok) return s;
  *out = std::move(e);
  return Status::Ok();
}

Executor::~Executor() {
  if (arena_on_heap_) std::free(arena_);
  if (prepared_on_heap_) std::free(prepared_);
}

// Runs once per load, after plan(): the derived constants do not depend on the thread count.
Status Executor::prepare_constants() {
  const size_t steps = runs_.size();
  Vec<uint64_t> offset(steps, 0), size(steps, 0);
  uint64_t total = 0;
  for (size_t s = 0; s < steps; ++s) {
    const OpTraits* traits = op_traits(runs_[s].view.op->type);
    size[s] = traits->prepared_bytes ? align_up(traits->prepared_bytes(runs_[s].view)) : 0;
    offset[s] = total;
    total += size[s];
    if (total > kMaxArenaBytes) return Status::Error("prepared constants need more than " + std::to_string(kMaxArenaBytes) + " bytes");
  }
  prepared_of_.assign(steps, nullptr);
  if (total == 0) return Status::Ok();
  prepared_ = take_block(total, &prepared_on_heap_);
  if (!prepared_) return Status::Error("cannot allocate " + std::to_string(total) + " bytes of prepared constants");
  for (size_t s = 0; s < steps; ++s) {
    if (size[s] == 0) continue;
    op_traits(runs_[s].view.op->type)->prepare(runs_[s].view, prepared_ + offset[s]);
    prepared_of_[s] = runs_[s].prepared = prepared_ + offset[s];
  }
  return Status::Ok();
}

Status Executor::set_threads(int n) {
  if (n < 1) return Status::Error("thread count must be >= 1");
  if (in_place_) {
    if (n == threads_) return Status::Ok();
    return Status::Error("a model loaded into a workspace (lowbit_model_load_static) runs on " +
                         std::to_string(threads_) + " thread(s); re-planning would need the heap");
  }
  // The arena is rebuilt: carry the inputs the caller has already written across.
  std::vector<std::vector<uint8_t>> saved;
  for (uint32_t id : graph_.inputs) {
    const uint8_t* p = static_cast<const uint8_t*>(data_[id]);
    saved.emplace_back(p, p + graph_.tensors[id].byte_size());
  }
  const int old = threads_;
  threads_ = n;
  Status s = plan();
  if (!s.ok) {
    threads_ = old;
    plan();
  }
  for (size_t i = 0; i < graph_.inputs.size(); ++i)
    std::memcpy(tensor_data(graph_.inputs[i]), saved[i].data(), saved[i].size());
  return s;
}

Status Executor::plan() {
  pool_.resize(threads_);
  threads_ = pool_.size();  // 1 where the build has no threads
  const GraphDesc& g = graph_;
  const size_t steps = order_.size();
  const size_t nt = g.tensors.size();
  // Lifetimes of activations in steps; graph inputs live from the start, outputs to the end.
  Vec<Block> tensor_blocks(nt);
  Vec<uint8_t> is_activation(nt, 0);
  for (uint32_t id : g.inputs) {
    is_activation[id] = 1;
    tensor_blocks[id].first = 0;
    tensor_blocks[id].last = 0;
  }
  for (size_t s = 0; s < steps; ++s) {
    const OpDesc& op = g.ops[order_[s]];
    const uint32_t y = op.outputs[0];
    is_activation[y] = 1;
    tensor_blocks[y].first = tensor_blocks[y].last = s;
    for (uint32_t id : op.inputs)
      if (id != kNoTensor && is_activation[id]) tensor_blocks[id].last = s;
  }
  for (uint32_t id : g.outputs)
    if (is_activation[id]) tensor_blocks[id].last = steps;

  Vec<Block*> blocks;
  blocks.reserve(nt + steps);
  for (size_t i = 0; i < nt; ++i) {
    if (!is_activation[i]) continue;
    tensor_blocks[i].size = g.tensors[i].byte_size();
    blocks.push_back(&tensor_blocks[i]);
  }

  runs_.assign(steps, OpRun{});
  Vec<Block> scratch_blocks(steps);
  contexts_.assign(steps, StepContext{});
  for (size_t s = 0; s < steps; ++s) {
    const OpDesc& op = g.ops[order_[s]];
    OpView& v = runs_[s].view;
    v.op = &op;
    v.num_inputs = static_cast<int>(op.inputs.size());
    for (size_t k = 0; k < op.inputs.size(); ++k) v.in[k] = op.inputs[k] == kNoTensor ? nullptr : &g.tensors[op.inputs[k]];
    v.out[0] = &g.tensors[op.outputs[0]];
    const uint64_t bytes = align_up(op_traits(op.type)->scratch_bytes(v));
    const uint64_t per_worker = bytes != 0 && threads_ > 1 ? bytes + kWorkerScratchGap : bytes;
    contexts_[s] = StepContext{op_traits(op.type), &runs_[s], nullptr, per_worker};
    if (per_worker > kMaxArenaBytes) return Status::Error("op scratch too large");
    scratch_blocks[s] = Block{per_worker * static_cast<uint64_t>(threads_), s, s};
    if (per_worker) blocks.push_back(&scratch_blocks[s]);
  }

  uint64_t total = 0;
  for (const Block* b : blocks) {
    total += align_up(b->size);
    if (total > kMaxArenaBytes) return Status::Error("activations need more than " + std::to_string(kMaxArenaBytes) + " bytes");
  }
  const uint64_t arena_bytes = place(blocks);
  bool on_heap = true;
  uint8_t* arena = take_block(arena_bytes, &on_heap);
  if (!arena) return Status::Error("cannot allocate " + std::to_string(arena_bytes) + " bytes of activations");
  std::memset(arena, 0, arena_bytes);
  if (arena_on_heap_) std::free(arena_);
  arena_ = arena;
  arena_on_heap_ = on_heap;
  arena_bytes_ = arena_bytes;

  data_.assign(nt, nullptr);
  for (size_t i = 0; i < nt; ++i)
    data_[i] = is_activation[i] ? arena_ + tensor_blocks[i].offset : static_cast<const void*>(g.tensors[i].data);
  for (size_t s = 0; s < steps; ++s) {
    contexts_[s].scratch = arena_ + scratch_blocks[s].offset;
    OpRun& r = runs_[s];
    const OpDesc& op = g.ops[order_[s]];
    for (size_t k = 0; k < op.inputs.size(); ++k) r.in_data[k] = op.inputs[k] == kNoTensor ? nullptr : data_[op.inputs[k]];
    r.out_data = const_cast<void*>(data_[op.outputs[0]]);
    if (s < prepared_of_.size()) r.prepared = prepared_of_[s];  // re-plans keep the load-time constants
  }
  profile_.assign(steps, OpProfile{});
  return Status::Ok();
}

void Executor::run_share(void* ctx, int worker, size_t begin, size_t end, bool continues) {
  const StepContext& s = *static_cast<const StepContext*>(ctx);
  s.traits->run(*s.run, begin, end, WorkerScratch{s.scratch + s.scratch_stride * static_cast<uint64_t>(worker), continues});
}

void Executor::run() {
  for (size_t s = 0; s < order_.size(); ++s) {
    StepContext& step = contexts_[s];
    const auto start = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    pool_.parallel_for(step.traits->work_units(step.run->view), run_share, &step);
    if (profiling_)
      profile_[s].milliseconds =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
}

}  // namespace lowbit
