// IR → runtime graph (a lowbit::ModelBuilder), after the graph passes.
//
// Layer formation: each Conv/Gemm/MatMul takes the chain of per-channel ops that follows it
// (BatchNormalization, Mul/Add by constants, Relu, LeakyRelu) and, when there is one, the
// activation quantizer ending the chain:
//  * quantized input codes and per-output-channel quantized weights → QConv2D/QDense; with a
//    quantizer, the whole chain becomes its threshold table (thresholds.h); without one, the
//    affine part folds into the float output's scale and bias (scale folding, §6);
//  * otherwise a float Conv2D/Dense with BatchNorm and affine ops folded into weights and bias
//    and Relu/LeakyRelu fused; a following quantizer becomes a Quantize op.
// Layout assignment: NCHW values become NHWC runtime tensors, weights [O, KH, KW, Cg]; a
// Flatten/Reshape feeding dense layers is absorbed by permuting their weights.
#pragma once

#include <string>
#include <vector>

#include "converter/ir.h"
#include "lowbit/model_builder.h"

namespace lowbit::converter {

struct LoweringOptions {
  bool expose_quantized = false;  // also make every quantizer output a runtime graph output (for verify)
};

// An IR quantizer output and the runtime codes tensor that holds it.
struct QuantizedTensorLink {
  std::string name;        // IR value name (= runtime tensor name)
  Dims dims;               // IR dims (NCHW); the runtime tensor is NHWC
  uint32_t tensor = 0;     // runtime tensor id
  int output_index = -1;   // runtime graph output index when exposed
};

struct Lowered {
  std::vector<QuantizedTensorLink> quantized;
};

// Throws ConvertError naming the node that cannot be lowered.
Lowered lower_to_runtime(const Graph& g, ModelBuilder& builder, const LoweringOptions& options);

// NCHW dims to the runtime's NHWC (rank 4); other ranks are unchanged.
std::vector<int32_t> runtime_dims(const Dims& dims);
// Reorders rank-4 NCHW data to NHWC (other ranks are copied).
template <typename T>
std::vector<T> to_nhwc(const Dims& dims, const std::vector<T>& nchw) {
  if (dims.size() != 4) return nchw;
  const size_t n = static_cast<size_t>(dims[0]), c = static_cast<size_t>(dims[1]);
  const size_t hw = static_cast<size_t>(dims[2] * dims[3]);
  std::vector<T> nhwc(nchw.size());
  for (size_t b = 0; b < n; ++b)
    for (size_t ch = 0; ch < c; ++ch)
      for (size_t p = 0; p < hw; ++p) nhwc[(b * hw + p) * c + ch] = nchw[(b * c + ch) * hw + p];
  return nhwc;
}

}  // namespace lowbit::converter
