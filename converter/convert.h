// The conversion pipeline behind `lowbit convert`: ONNX file → IR (shape-inferred) → graph passes
// → lowering → DIR/model.lbm + DIR/meta.yaml. See docs/converter.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "converter/ir.h"
#include "converter/lowering.h"
#include "lowbit/graph.h"
#include "lowbit/lowbit.h"

namespace lowbit::converter {

struct ConvertOptions {
  int64_t batch = 1;              // size of the symbolic batch dim
  bool expose_quantized = false;  // also output every quantizer's codes (see QuantizedTensorLink)
};

// One runtime op of the converted model, for the per-layer summary.
struct LayerSummary {
  std::string op;       // runtime op name
  std::string name;     // its output tensor
  std::string shape;    // output dims (NHWC)
  std::string type;     // "f32" or the code type, e.g. "u2"
  std::string weights;  // conv/dense weights, e.g. "bin1 [64, 3, 3, 32]"
  uint64_t parameters;  // elements of its constant inputs
};

struct ConvertResult {
  std::string model_path, meta_path;
  std::vector<LayerSummary> layers;
  uint64_t model_bytes = 0;
  uint64_t float_parameter_bytes = 0;  // the ONNX model's float parameters at 4 bytes each
  std::vector<QuantizedTensorLink> quantized;
  double seconds = 0;
};

// Reads, checks and shape-infers an ONNX file: the unoptimized IR the interpreter evaluates.
// Throws ConvertError "PATH: problem".
Graph load_onnx(const std::string& path, int64_t batch = 1);

// A converted model before it is written: the .lbm bytes and meta.yaml text. `lowbit verify` uses
// it to build the codes-exposing twin of a model without touching the model directory.
struct ConvertedModel {
  ConvertResult result;  // paths and model_bytes are left empty
  std::vector<uint8_t> bytes;
  std::string meta;
};
ConvertedModel convert_in_memory(const std::string& onnx_path, const ConvertOptions& options = {});

// Converts an ONNX file into out_dir/model.lbm and out_dir/meta.yaml (created atomically; nothing
// is written when conversion fails). Throws ConvertError "PATH: problem".
ConvertResult convert_onnx(const std::string& onnx_path, const std::string& out_dir, const ConvertOptions& options = {});

std::vector<LayerSummary> summarize(const GraphDesc& graph);
std::string format_summary(const ConvertResult& result);

// meta.yaml for a converted model: task, classes, input (runtime NHWC shape), pre- and
// post-processing from the ONNX metadata_props (docs/onnx-interchange.md).
std::string model_meta_yaml(const Graph& g, const GraphDesc& runtime);

// Codes of a runtime codes output `index` of a model that has run (NHWC order).
std::vector<int32_t> runtime_codes(const lowbit_model* model, int index);

}  // namespace lowbit::converter
