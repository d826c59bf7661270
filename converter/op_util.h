// Helpers shared by the op implementations (ops_*.cpp): checks that name the node, output shaping
// and NumPy broadcasting.
#pragma once

#include <string>
#include <vector>

#include "converter/ops.h"

namespace lowbit::converter {

[[noreturn]] void node_error(const Node& n, const std::string& message);

// Input i with a known shape; throws when it is absent.
const Value& input_value(const Graph& g, const Node& n, size_t i);
const Dims& input_dims(const Graph& g, const Node& n, size_t i);
void expect_rank(const Graph& g, const Node& n, size_t i, size_t rank);
// Declares output i; rejects dims beyond the runtime's limits (dims up to 2^24, 2^31 elements).
void set_output(Graph& g, const Node& n, size_t i, const Dims& dims, ElemType type = ElemType::kFloat);
void same_shape_output(Graph& g, const Node& n);  // output 0 shaped like input 0

int64_t normalized_axis(const Node& n, int64_t axis, int64_t rank);
Dims broadcast_dims(const Node& n, const Dims& a, const Dims& b);

// Maps a flat index of `out` dims to the flat index of an input broadcast to them (NumPy rules).
class Broadcast {
 public:
  Broadcast(const Dims& in, const Dims& out);
  size_t operator()(size_t out_index) const;

 private:
  std::vector<size_t> out_strides_, in_strides_;  // in_strides_ are 0 on broadcast axes
};

// Integer values of a constant input (pads, shapes, axes); throws naming the node if not integers.
std::vector<int64_t> integer_values(const Node& n, const Array& a, const char* role);
// The single value of a constant input that must hold one number (scale, bit width, ...).
double scalar_value(const Node& n, const Array& a, const char* role);

}  // namespace lowbit::converter
