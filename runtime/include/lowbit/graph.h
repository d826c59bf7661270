// The in-memory description of a model: what the builder assembles and the loader verifies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/format.h"
#include "lowbit/packing.h"

namespace lowbit {

// Result of an operation that can fail on bad input. The runtime uses no exceptions.
struct Status {
  bool ok = true;
  std::string message;
  static Status Ok() { return {}; }
  static Status Error(std::string msg) { return {false, std::move(msg)}; }
};

// ---- where the graph's containers live ----
// Normally on the heap. While a WorkspaceArena is installed on the calling thread
// (lowbit_model_load_static, lowbit_model_workspace_bytes), every allocation of a graph
// container (Vec) is carved out of the caller's workspace by a bump allocator instead, and freeing
// it is a no-op. An allocation that does not fit is served from the heap and flagged, so a load
// into a too-small workspace still completes its bookkeeping, reports the exact size it needed,
// and fails cleanly.
struct WorkspaceArena {
  uint8_t* base = nullptr;
  size_t size = 0;
  uint64_t used = 0;        // bytes a bump allocation of everything so far needs (even past size)
  bool overflowed = false;  // some allocation did not fit and came from the heap
};
// Installs `arena` on this thread (nullptr: back to the heap); returns the previous one.
WorkspaceArena* install_workspace_arena(WorkspaceArena* arena);
WorkspaceArena* current_workspace_arena();
// Raw memory from the installed arena (aligned to `align`, a power of two <= 64), or nullptr if
// there is no arena or the request does not fit (the arena then records the need and overflows).
void* workspace_take(uint64_t bytes, uint64_t align);
// Allocation behind Vec: tagged so that deallocation knows where a block came from.
void* graph_allocate(size_t bytes);
void graph_deallocate(void* p) noexcept;

template <typename T> struct GraphAllocator {
  using value_type = T;
  GraphAllocator() = default;
  template <typename U> GraphAllocator(const GraphAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(graph_allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { graph_deallocate(p); }
  template <typename U> bool operator==(const GraphAllocator<U>&) const { return true; }
  template <typename U> bool operator!=(const GraphAllocator<U>&) const { return false; }
};
// The vector type of the graph and executor: a std::vector on the heap or in a workspace.
template <typename T> using Vec = std::vector<T, GraphAllocator<T>>;

struct TensorDesc {
  // The name. A model loaded into a workspace leaves `name` empty (a string would need the heap)
  // and points `static_name` at a NUL-terminated copy in the workspace; read it with c_name().
  std::string name;
  const char* static_name = nullptr;
  const char* c_name() const { return static_name ? static_name : name.c_str(); }
  DType dtype = DType::kF32;
  Layout layout = Layout::kPlain;
  QuantType quant;     // codes only
  float scale = 1.0f;  // codes only: real value = scale * code
  int rank = 0;
  int32_t dims[kMaxRank] = {0, 0, 0, 0};
  const uint8_t* data = nullptr;  // constants only: points into the model bytes (or builder storage)
  uint64_t data_size = 0;

  bool is_constant() const { return data != nullptr; }
  int32_t dim(int i) const { return dims[i]; }
  int32_t last_dim() const { return dims[rank - 1]; }
  uint64_t element_count() const {
    uint64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= static_cast<uint64_t>(dims[i]);
    return n;
  }
  // Number of "pixels" of a pixel-planes tensor: all elements but the packed last dim.
  uint64_t pixel_count() const { return element_count() / static_cast<uint64_t>(last_dim()); }
  PixelPlanes pixel_planes() const { return {static_cast<size_t>(last_dim()), quant.bits}; }
  KernelPlanes kernel_planes() const {
    return {static_cast<size_t>(dims[1]), static_cast<size_t>(dims[2]), static_cast<size_t>(dims[3]), quant.bits};
  }
  // Bytes of storage this tensor occupies in its layout.
  uint64_t byte_size() const {
    switch (layout) {
      case Layout::kPlain: return element_count() * 4;
      case Layout::kPixelPlanes: return pixel_count() * pixel_planes().words_per_pixel() * 4;
      case Layout::kKernelPlanes: return static_cast<uint64_t>(dims[0]) * kernel_planes().words_per_output() * 4;
    }
    return 0;
  }
  bool same_shape(const TensorDesc& o) const {
    if (rank != o.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (dims[i] != o.dims[i]) return false;
    return true;
  }
  std::string shape_string() const;
};

struct OpDesc {
  OpType type = OpType::kRelu;
  Vec<uint32_t> inputs;   // kNoTensor marks an absent optional input
  Vec<uint32_t> outputs;
  Vec<int32_t> ints;
  Vec<float> floats;
};

struct GraphDesc {
  Vec<TensorDesc> tensors;
  Vec<OpDesc> ops;
  Vec<uint32_t> inputs;
  Vec<uint32_t> outputs;
};

const char* dtype_name(DType t);
const char* op_name(OpType t);

}  // namespace lowbit
