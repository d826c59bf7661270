#include "converter/interpreter.h"

#include "converter/ops.h"

namespace lowbit::converter {

void evaluate_node(const Graph& g, const Node& n, const std::vector<const Array*>& inputs, std::vector<Array>& outputs,
                   std::shared_ptr<QuantizedData>& quantized) {
  outputs.clear();
  for (int id : n.outputs) outputs.push_back(Array::zeros(g.value(id).dims));
  quantized.reset();
  op_schema(n).eval(EvalArgs{g, n, inputs, outputs, quantized});
}

Evaluation evaluate(const Graph& g, const std::vector<Array>& inputs) {
  Evaluation e;
  e.values.resize(g.values.size());
  e.codes.resize(g.values.size());
  if (inputs.size() != g.inputs.size())
    throw ConvertError(std::to_string(inputs.size()) + " inputs given, the graph has " + std::to_string(g.inputs.size()));
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Value& v = g.value(g.inputs[k]);
    if (inputs[k].dims != v.dims || inputs[k].size() != element_count(v.dims))
      throw ConvertError("input '" + v.name + "' is " + dims_string(inputs[k].dims) + ", the graph expects " +
                         dims_string(v.dims));
    e.values[static_cast<size_t>(g.inputs[k])] = std::make_shared<Array>(inputs[k]);
  }
  for (size_t i = 0; i < g.values.size(); ++i) {
    if (g.values[i].is_constant()) e.values[i] = g.values[i].constant;
    if (g.values[i].quantized) e.codes[i] = g.values[i].quantized;
  }
  std::vector<Array> outputs;
  for (const Node& n : g.nodes) {
    std::vector<const Array*> in;
    for (int id : n.inputs) in.push_back(id == kNoValue ? nullptr : e.values[static_cast<size_t>(id)].get());
    std::shared_ptr<QuantizedData> quantized;
    evaluate_node(g, n, in, outputs, quantized);
    for (size_t k = 0; k < n.outputs.size(); ++k)
      e.values[static_cast<size_t>(n.outputs[k])] = std::make_shared<Array>(std::move(outputs[k]));
    e.codes[static_cast<size_t>(n.outputs[0])] = std::move(quantized);
  }
  return e;
}

const Array& Evaluation::value(const Graph& g, const std::string& name) const {
  const int id = g.find_value(name);
  if (id == kNoValue || !values[static_cast<size_t>(id)]) throw ConvertError("no computed value '" + name + "'");
  return *values[static_cast<size_t>(id)];
}

const QuantizedData& Evaluation::quantized(const Graph& g, const std::string& name) const {
  const int id = g.find_value(name);
  if (id == kNoValue || !codes[static_cast<size_t>(id)]) throw ConvertError("'" + name + "' has no quantizer codes");
  return *codes[static_cast<size_t>(id)];
}

}  // namespace lowbit::converter
