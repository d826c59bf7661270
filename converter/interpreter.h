// The reference interpreter of the IR: ONNX/QONNX semantics in float64 (NCHW), quantizers by the
// contract's exact rule (quantizer.h). It is the "trained model" side that converted models are
// checked against, so it evaluates the unoptimized graph and exposes every quantizer's codes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "converter/ir.h"

namespace lowbit::converter {

struct Evaluation {
  std::vector<std::shared_ptr<const Array>> values;           // by value id
  std::vector<std::shared_ptr<const QuantizedData>> codes;    // by value id: quantizer outputs only

  // Throws ConvertError for an unknown or uncomputed name.
  const Array& value(const Graph& g, const std::string& name) const;
  const QuantizedData& quantized(const Graph& g, const std::string& name) const;
};

// Evaluates the graph on one array per graph input (NCHW, the graph's dims).
Evaluation evaluate(const Graph& g, const std::vector<Array>& inputs);

// Evaluates one node from its input arrays: the kernel behind evaluate() and constant folding.
// Output dims come from shape inference.
void evaluate_node(const Graph& g, const Node& n, const std::vector<const Array*>& inputs, std::vector<Array>& outputs,
                   std::shared_ptr<QuantizedData>& quantized);

}  // namespace lowbit::converter
