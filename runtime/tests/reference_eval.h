// An independent reference interpreter for lowbit graphs, for tests.
//
// reference_evaluate() walks a GraphDesc (e.g. ModelBuilder::graph()) and computes every op plainly
// from its documented semantics: floats in double precision, integer codes and quantized
// accumulators exactly in int64. It shares no code with the runtime's kernels; it only uses
// packing.h's QuantType helpers (code ranges, bit patterns) and read_code to unpack constants.
//
// Numeric notes for callers comparing against the runtime:
//  * Float ops are computed in double, the runtime in float32: compare floats with a tolerance that
//    grows with the reduction length (conv/dense) and the magnitude of the result.
//  * Codes are exact. Quantize follows the float32 contract exactly (t = float(x) / scale in float32,
//    clamp, exact rounding), so it matches the runtime bit for bit when its input holds the same
//    floats the runtime sees (graph inputs, or values that are exact in float32). After a float op
//    the double reference can differ from the runtime's float32 result by rounding noise, which can
//    flip a code that sits on a rounding boundary; an end-to-end test should allow rare +-1 codes
//    there (or feed Quantize from exactly computed values).
//  * QConv2D/QDense accumulate exactly and apply thresholds to the exact accumulator, so codes
//    produced from code inputs match exactly through any depth of quantized layers.
//  * Nothing is checked against the runtime's own limits (e.g. the int32 accumulator bound); run the
//    graph through ModelBuilder::serialize / the loader for that.
//
// Typical use (see ops_test.cpp):
//   lowbit::ModelBuilder b;  ... b.output(...);
//   std::vector<uint8_t> bytes;  b.serialize(&bytes);
//   lowbit::Model m = lowbit::Model::load(bytes.data(), bytes.size(), &err);
//   write_model_input(m.get(), 0, x, &err);  m.run();
//   RefTensor got = read_model_output(m.get(), 0);
//   RefTensor want = reference_evaluate(b.graph(), {x})[0];
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/graph.h"
#include "lowbit/lowbit.h"

namespace lowbit_test {

// A tensor of the reference: row-major values (NHWC for rank 4), the same shape as the runtime's.
struct RefTensor {
  std::vector<int32_t> dims;
  std::vector<double> values;  // float values, or the integer codes of a codes tensor
  bool is_codes = false;
  lowbit::QuantType quant;  // codes only
  float scale = 1.0f;       // codes only: real = scale * code

  size_t size() const;
  // Real value of element i (scale * code for codes).
  double real(size_t i) const { return is_codes ? static_cast<double>(scale) * values[i] : values[i]; }
  std::string shape_string() const;

  static RefTensor floats(std::vector<int32_t> dims, const std::vector<float>& values);
  static RefTensor codes(std::vector<int32_t> dims, lowbit::QuantType quant, float scale,
                         const std::vector<int32_t>& codes);
};

// Evaluates `graph` on `inputs` (one per graph.inputs, same order, matching shapes and dtypes; a
// codes input takes its quantization and scale from the graph) and returns the graph outputs in
// graph.outputs order. Constants are read from TensorDesc::data. If `all_tensors` is given it receives every
// tensor computed (indexed by tensor id; constants and unused tensors stay empty), which helps to
// find the first layer where an end-to-end comparison diverges.
// Throws std::runtime_error on a malformed graph, mismatching inputs or an unsupported op.
std::vector<RefTensor> reference_evaluate(const lowbit::GraphDesc& graph, const std::vector<RefTensor>& inputs,
                                          std::vector<RefTensor>* all_tensors = nullptr);

// ---- bridges between RefTensor and a loaded runtime model (C API) ----

// Writes input `index`: floats are copied as float32; codes are packed exactly
// (lowbit::pack_pixel_planes) into lowbit_input_buffer. Returns false with *error on a shape,
// dtype or quantization mismatch.
bool write_model_input(lowbit_model* model, int index, const RefTensor& value, std::string* error);
// Reads output `index`: floats as they are, codes unpacked exactly (lowbit::unpack_pixel_planes).
RefTensor read_model_output(const lowbit_model* model, int index);

}  // namespace lowbit_test
