// The ONNX and QONNX ops the converter understands: one table row per op with its shape
// inference and its interpreter kernel (the same pattern as the runtime's op table).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "converter/ir.h"
#include "converter/quantizer.h"

namespace lowbit::converter {

// What an interpreter kernel sees: inputs (nullptr when absent) and outputs shaped by inference.
struct EvalArgs {
  const Graph& graph;
  const Node& node;
  std::vector<const Array*> in;
  std::vector<Array>& out;
  std::shared_ptr<QuantizedData>& quantized;  // set by quantizer kernels: the integer codes of out[0]
  const Array& input(size_t i) const;  // throws when absent
};

struct OpSchema {
  const char* op_type;
  bool qonnx;  // in the QONNX domains (qonnx.custom_op.general, onnx.brevitas)
  int min_inputs, max_inputs;
  int max_outputs;  // outputs beyond the first must be unused (Dropout's mask, BatchNorm's statistics)
  // Sets the dims and element types of the node's outputs; throws ConvertError naming the node.
  void (*infer)(Graph& g, const Node& n);
  void (*eval)(const EvalArgs& args);
};

bool is_qonnx_domain(const std::string& domain);
// nullptr when the op is not supported.
const OpSchema* find_op_schema(const std::string& domain, const std::string& op_type);
const OpSchema& op_schema(const Node& n);  // throws for an unsupported op

// Runs shape inference over the whole graph in node order.
void infer_shapes(Graph& g);

// ---- geometry shared by inference, the interpreter and lowering ----

// A 2-D sliding window (Conv, MaxPool, AveragePool) over NCHW input, after auto_pad and ceil_mode.
struct Window2D {
  int64_t kh, kw, sh, sw, dh, dw;
  int64_t pt, pl, pb, pr;
  int64_t oh, ow;
};
// `kernel` is the window size (for Conv, the weight's spatial dims). Validates every attribute.
Window2D window_2d(const Node& n, int64_t ih, int64_t iw, int64_t kh, int64_t kw, bool allow_ceil_mode);

// Gemm/MatMul seen as y[n, o] = alpha * sum_k x[n, k] * w[o, k] + bias_term[o].
struct DenseForm {
  int64_t k = 0, o = 0;
  bool transpose_weight = false;  // the file's B is [K, O]
  double alpha = 1.0, beta = 1.0;
};
DenseForm dense_form(const Graph& g, const Node& n);

// The conv-family output formula both the interpreter and threshold derivation evaluate, so that
// a quantized layer's codes are a function of the integer accumulator alone.
inline double linear_output(double dot, double alpha, double bias_term) { return alpha * dot + bias_term; }

// Resize/Upsample (nearest only): output dims and the per-axis scales ONNX's index rule uses.
struct ResizePlan {
  Dims out;
  std::vector<double> scales;
};
ResizePlan resize_plan(const Graph& g, const Node& n);

// Pad (constant mode only): ONNX-order pads (all begins, then all ends) and the fill value.
struct PadPlan {
  std::vector<int64_t> pads;
  double value = 0.0;
};
PadPlan pad_plan(const Graph& g, const Node& n);

// Source index along one axis for each output position of a nearest Resize/Upsample (ONNX rules).
std::vector<int64_t> nearest_source_index(const Node& n, int64_t in, int64_t out, double scale);

inline double relu_value(double x) { return x > 0 ? x : 0.0; }
inline double leaky_relu_value(double x, double alpha) { return x > 0 ? x : alpha * x; }
double leaky_relu_alpha(const Node& n);  // the attribute or ONNX's default 0.01

// BatchNormalization on one number, in the operation order the interpreter uses.
double batch_norm_value(double x, double mean, double var, double eps, double gamma, double beta);
double batch_norm_epsilon(const Node& n);  // the attribute, or ONNX's float32 default 1e-5

// Attributes of a QONNX Quant node with its (scalar) bit width: the integer range and rounding.
struct QuantAttrs {
  IntRange range;
  RoundingMode mode;
};
QuantAttrs quant_attrs(const Node& n, double bitwidth);
// Trunc's parameters from its scalar inputs, indexed by input position (x's slot unused);
// 5 inputs: version 1, 7 inputs: version 2.
TruncParams trunc_params(const Node& n, const std::vector<double>& scalar_inputs);

}  // namespace lowbit::converter
