// One table row per op type: schema, shape inference, memory needs and the reference kernel.
// The loader verifies every op through `infer`; the executor runs it through `run`.
#pragma once

#include <cstddef>
#include <string>

#include "lowbit/graph.h"

namespace lowbit {

// An op with its tensors resolved. Absent optional inputs are nullptr.
struct OpView {
  const OpDesc* op;
  const TensorDesc* in[8];
  const TensorDesc* out[1];
  int num_inputs;
  int32_t attr(int i) const { return op->ints[static_cast<size_t>(i)]; }
  float fattr(int i) const { return op->floats[static_cast<size_t>(i)]; }
};

// An op ready to run: descriptors plus data pointers.
struct OpRun {
  OpView view;
  const void* in_data[8];
  void* out_data;
  const void* prepared;  // this op's constants derived at load (OpTraits::prepare), or nullptr
  template <typename T> const T* input(int i) const { return static_cast<const T*>(in_data[i]); }
  template <typename T> T* output() const { return static_cast<T*>(out_data); }
};

// What infer learns about an op's output.
struct InferredOutput {
  DType dtype = DType::kF32;
  int rank = 0;
  int32_t dims[kMaxRank] = {0, 0, 0, 0};
  bool quant_known = false;  // when true, quant and scale must equal the declared output's
  QuantType quant;
  float scale = 1.0f;
};

// One worker's scratch for one call of an op's run.
struct WorkerScratch {
  void* data;  // OpTraits::scratch_bytes, this worker's own for the whole run of the op
  // The same worker's previous call of this run ended where this one begins, so what the op kept
  // in data from it (the conv's table offsets of the input rows two output rows share) is still
  // valid. False on a worker's first call of a run.
  bool continues;
};

struct OpTraits {
  const char* name;
  int min_inputs, max_inputs;
  int int_attrs, float_attrs;
  // Checks input dtypes, shapes and attributes; describes the output or explains in *err.
  bool (*infer)(const OpView& v, InferredOutput* out, std::string* err);
  // Scratch bytes one worker needs while running the op (0 if none).
  size_t (*scratch_bytes)(const OpView& v);
  // Independent units of work the executor may spread across threads (1 = run serially).
  size_t (*work_units)(const OpView& v);
  void (*run)(const OpRun& r, size_t begin, size_t end, const WorkerScratch& scratch);
  // Constants derived once at load rather than on every run (weights repacked for the chosen
  // kernel table, thresholds in the kernels' form): their size, and the function writing them.
  size_t (*prepared_bytes)(const OpView& v) = nullptr;
  void (*prepare)(const OpView& v, void* prepared) = nullptr;
};

// nullptr for an unknown op type.
const OpTraits* op_traits(OpType type);

// Helpers shared by the op implementations' infer functions.
bool fail(std::string* err, std::string msg);
bool expect_dtype(const TensorDesc* t, DType want, const char* role, std::string* err);
bool expect_rank(const TensorDesc* t, int rank, const char* role, std::string* err);

}  // namespace lowbit
