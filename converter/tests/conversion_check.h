// End-to-end check of a test model: convert it, evaluate the original graph with the interpreter
// and the converted model with the runtime on the same input, and compare every quantizer's codes
// (exactly) and the graph outputs (numerically).
#pragma once

#include <string>
#include <vector>

#include "converter/convert.h"
#include "converter/interpreter.h"
#include "lowbit/lowbit.hpp"
#include "onnx_maker.h"

namespace lowbit::converter::test {

struct CheckReport {
  size_t quantized_tensors = 0;  // quantizer outputs compared
  size_t codes_compared = 0;
  size_t codes_differing = 0;
  std::string first_difference;  // "tensor[index]: runtime r, interpreter i"
  size_t fewest_distinct_codes = 0;  // over the quantizer outputs: proves the comparison is not vacuous
  double max_output_error = 0;   // largest |runtime - interpreter| over the graph outputs
  double max_output_value = 0;   // largest |interpreter| over the graph outputs
};

std::string temp_path(const std::string& name);

class ConversionCheck {
 public:
  // Saves the model as <temp>/<name>.onnx and converts it into <temp>/<name>/ (throws ConvertError).
  ConversionCheck(const OnnxMaker& maker, const std::string& name);

  // Runs both sides on one NCHW input per graph input.
  CheckReport run(const std::vector<std::vector<float>>& inputs);
  const ConvertResult& result() const { return result_; }
  const Graph& graph() const { return graph_; }
  const Evaluation& evaluation() const { return evaluation_; }
  lowbit::Model& model() { return model_; }

 private:
  ConvertResult result_;
  Graph graph_;
  Evaluation evaluation_;
  lowbit::Model model_;
};

}  // namespace lowbit::converter::test
