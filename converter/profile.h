// `lowbit profile`: the per-op cost of a converted model. The graph (op types, shapes, code types,
// constants, MACs) comes from the model file through the runtime's introspection API
// (lowbit_model_op_info), the latency from the runtime's per-op profiling.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::converter {

struct OpProfileRow {
  std::string name;                              // the op's output tensor
  std::string op;                                // runtime op type, e.g. "QConv2D"
  std::vector<std::vector<int32_t>> input_dims;  // activation (non-constant) inputs
  std::vector<int32_t> output_dims;
  std::string bits;         // "W1A2" (quantized conv/dense), "A2" (an op on codes), "f32"
  std::string output_type;  // "f32" or the code type of the output, e.g. "u2"
  uint64_t params = 0, param_bytes = 0, macs = 0;
  uint64_t bytes_read = 0, bytes_written = 0;  // activation buffers
  double median_ms = 0;                        // over the runs
  double share = 0;                            // of the sum of all ops' medians
};

struct ModelProfile {
  std::string model_path;
  int threads = 1, runs = 0;
  std::vector<OpProfileRow> ops;
  // Totals over the ops.
  uint64_t params = 0, param_bytes = 0, macs = 0, bytes_read = 0, bytes_written = 0;
  double ops_ms = 0;         // sum of the per-op medians
  double run_median_ms = 0;  // median wall time of a whole run
  uint64_t model_bytes = 0;  // size of model.lbm
  uint64_t float32_bytes() const { return params * 4; }
};

// Loads DIR/model.lbm, runs it `runs` times (after one warm-up run) on a zero input with per-op
// profiling and `threads` workers. Throws ConvertError naming the directory or file.
ModelProfile profile_model(const std::string& model_dir, int threads, int runs);

// The aligned table of `lowbit profile` (one row per op, a totals line, model size vs float32).
std::string format_profile(const ModelProfile& profile);
std::string profile_json(const ModelProfile& profile);

}  // namespace lowbit::converter
