// The in-memory description of a model: what the builder assembles and the loader verifies.
#pragma once

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

struct TensorDesc {
  std::string name;
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
  std::vector<uint32_t> inputs;   // kNoTensor marks an absent optional input
  std::vector<uint32_t> outputs;
  std::vector<int32_t> ints;
  std::vector<float> floats;
};

struct GraphDesc {
  std::vector<TensorDesc> tensors;
  std::vector<OpDesc> ops;
  std::vector<uint32_t> inputs;
  std::vector<uint32_t> outputs;
};

const char* dtype_name(DType t);
const char* op_name(OpType t);

}  // namespace lowbit
