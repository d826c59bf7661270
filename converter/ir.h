// The converter's intermediate representation: an ONNX-level graph of values and nodes.
//
// Import fills it from an ONNX file (NCHW, ONNX op semantics), shape inference completes every
// value's dims, the interpreter evaluates it, the cleanup passes simplify it, and lowering turns it
// into a runtime graph. Values are addressed by index; nodes are kept in a topological order.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lowbit/packing.h"

namespace lowbit::converter {

using Dims = std::vector<int64_t>;

// A conversion failure: one line saying what is wrong (the caller adds the file name).
class ConvertError : public std::runtime_error {
 public:
  explicit ConvertError(const std::string& message) : std::runtime_error(message) {}
};

uint64_t element_count(const Dims& dims);
std::string dims_string(const Dims& dims);

// A dense row-major array: IR constants and every value the interpreter computes. Doubles hold
// float32 data exactly and integer data (shapes, pads) up to 2^53.
struct Array {
  Dims dims;
  std::vector<double> values;

  Array() = default;
  Array(Dims d, std::vector<double> v) : dims(std::move(d)), values(std::move(v)) {}
  static Array zeros(const Dims& dims) { return Array(dims, std::vector<double>(element_count(dims), 0.0)); }
  static Array scalar(double v) { return Array({}, {v}); }
  size_t size() const { return values.size(); }
};

// The integer side of a quantizer's output: value = code * scale, with the zero point removed, so
// code 0 always means 0 (docs/quantization.md §1).
struct QuantizedData {
  std::vector<int32_t> codes;     // one per element, row-major like the value
  Array scale;                    // broadcastable to the value's dims (per tensor or per channel)
  std::optional<QuantType> type;  // the runtime code type whose range is exactly the codes' range, if any
};

enum class ElemType : uint8_t { kFloat, kInt, kBool };

struct Value {
  std::string name;
  ElemType type = ElemType::kFloat;
  Dims dims;
  bool shape_known = false;
  std::shared_ptr<const Array> constant;          // initializers and folded constants
  std::shared_ptr<const QuantizedData> quantized;  // constants folded from a weight quantizer
  bool is_constant() const { return constant != nullptr; }
};

struct Attribute {
  enum class Kind { kInt, kFloat, kString, kInts, kFloats, kTensor, kOther } kind = Kind::kOther;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::shared_ptr<const Array> tensor;
};

constexpr int kNoValue = -1;  // an absent optional input

struct Node {
  std::string op_type;
  std::string domain;  // "" for standard ONNX
  std::string name;    // the file's node name, or a made-up one that says where the node is
  std::vector<int> inputs;   // value ids, kNoValue for absent optional inputs
  std::vector<int> outputs;
  std::map<std::string, Attribute> attributes;

  bool has(const std::string& attr) const { return attributes.count(attr) != 0; }
  int64_t int_attr(const std::string& attr, int64_t fallback) const;
  double float_attr(const std::string& attr, double fallback) const;
  std::string string_attr(const std::string& attr, const std::string& fallback) const;
  std::vector<int64_t> ints_attr(const std::string& attr, const std::vector<int64_t>& fallback) const;
  std::vector<double> floats_attr(const std::string& attr) const;
  int input(size_t i) const { return i < inputs.size() ? inputs[i] : kNoValue; }
  // "Conv 'conv3'": how error messages name the node.
  std::string label() const;
};

struct Graph {
  std::string source;  // the file it came from
  std::vector<Value> values;
  std::vector<Node> nodes;  // topological order
  std::vector<int> inputs, outputs;
  std::map<std::string, std::string> metadata;  // metadata_props
  int64_t opset = 13;                            // of the default ONNX domain

  int add_value(Value v);
  int find_value(const std::string& name) const;  // kNoValue when absent
  const Value& value(int id) const { return values.at(static_cast<size_t>(id)); }
  Value& value(int id) { return values.at(static_cast<size_t>(id)); }
  // The constant array of a node input; throws naming the node when the input is absent or not constant.
  const Array& constant_input(const Node& n, size_t i, const char* role) const;
  bool is_graph_output(int value) const;
  // Node index producing each value (-1 for inputs and constants) and each value's consumers.
  std::vector<int> producers() const;
  std::vector<std::vector<int>> consumers() const;
};

// Orders nodes so every input is produced before it is read; throws on a read of a value nothing
// produces (naming the node and the value) or on a cycle.
void sort_topologically(Graph& g);

}  // namespace lowbit::converter
