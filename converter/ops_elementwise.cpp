// Element-wise ops, BatchNormalization and Softmax: shape inference and interpreter kernels.
#include <cmath>

#include "converter/op_util.h"

namespace lowbit::converter {
namespace {

void infer_binary(Graph& g, const Node& n) {
  set_output(g, n, 0, broadcast_dims(n, input_dims(g, n, 0), input_dims(g, n, 1)));
}

template <typename F>
void eval_broadcast(const EvalArgs& a, F f) {
  const Array& x = a.input(0);
  const Array& z = a.input(1);
  Array& y = a.out[0];
  const Broadcast xi(x.dims, y.dims), zi(z.dims, y.dims);
  for (size_t i = 0; i < y.size(); ++i) y.values[i] = f(x.values[xi(i)], z.values[zi(i)]);
}

void eval_add(const EvalArgs& a) { eval_broadcast(a, [](double x, double z) { return x + z; }); }
void eval_mul(const EvalArgs& a) { eval_broadcast(a, [](double x, double z) { return x * z; }); }

template <typename F>
void eval_unary(const EvalArgs& a, F f) {
  const Array& x = a.input(0);
  for (size_t i = 0; i < x.size(); ++i) a.out[0].values[i] = f(x.values[i]);
}

void eval_relu(const EvalArgs& a) { eval_unary(a, relu_value); }
void eval_sigmoid(const EvalArgs& a) { eval_unary(a, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }); }
void eval_identity(const EvalArgs& a) { eval_unary(a, [](double x) { return x; }); }
void eval_leaky_relu(const EvalArgs& a) {
  const double alpha = leaky_relu_alpha(a.node);
  eval_unary(a, [alpha](double x) { return leaky_relu_value(x, alpha); });
}

void infer_dropout(Graph& g, const Node& n) {
  same_shape_output(g, n);
  if (n.outputs.size() > 1) set_output(g, n, 1, input_dims(g, n, 0), ElemType::kBool);
}

void eval_dropout(const EvalArgs& a) {
  eval_identity(a);
  if (a.out.size() > 1) a.out[1].values.assign(a.out[1].size(), 1.0);  // inference keeps every element
}

void infer_batch_norm(Graph& g, const Node& n) {
  const Dims& x = input_dims(g, n, 0);
  if (x.size() < 2) node_error(n, "input must have a channel axis");
  for (size_t i = 1; i <= 4; ++i)
    if (input_dims(g, n, i) != Dims{x[1]}) node_error(n, "parameter " + std::to_string(i) + " must be [channels]");
  if (n.int_attr("training_mode", 0) != 0 || n.outputs.size() > 1) node_error(n, "training mode is not supported");
  same_shape_output(g, n);
}

void eval_batch_norm(const EvalArgs& a) {
  const Array& x = a.input(0);
  const std::vector<double>&gamma = a.input(1).values, &beta = a.input(2).values, &mean = a.input(3).values,
  &var = a.input(4).values;
  const double eps = batch_norm_epsilon(a.node);
  const size_t channels = static_cast<size_t>(x.dims[1]);
  const size_t inner = x.size() / (static_cast<size_t>(x.dims[0]) * channels);
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t c = i / inner % channels;
    a.out[0].values[i] = batch_norm_value(x.values[i], mean[c], var[c], eps, gamma[c], beta[c]);
  }
}

// Softmax normalizes over `axis` alone from opset 13 on; before, over all dims from `axis` on.
struct SoftmaxSpan {
  size_t outer, axis, inner;  // the reduced run is `axis` elements with stride `inner`
};

SoftmaxSpan softmax_span(const Graph& g, const Node& n, const Dims& dims) {
  const int64_t rank = static_cast<int64_t>(dims.size());
  const int64_t axis = normalized_axis(n, n.int_attr("axis", g.opset >= 13 ? -1 : 1), rank);
  SoftmaxSpan s{1, 1, 1};
  for (int64_t k = 0; k < rank; ++k) {
    const size_t d = static_cast<size_t>(dims[static_cast<size_t>(k)]);
    if (k < axis) s.outer *= d;
    else if (k == axis || g.opset < 13) s.axis *= d;
    else s.inner *= d;
  }
  return s;
}

void infer_softmax(Graph& g, const Node& n) {
  softmax_span(g, n, input_dims(g, n, 0));
  same_shape_output(g, n);
}

void eval_softmax(const EvalArgs& a) {
  const Array& x = a.input(0);
  const SoftmaxSpan s = softmax_span(a.graph, a.node, x.dims);
  for (size_t o = 0; o < s.outer; ++o)
    for (size_t in = 0; in < s.inner; ++in) {
      auto at = [&](size_t k) { return (o * s.axis + k) * s.inner + in; };
      double top = x.values[at(0)];
      for (size_t k = 1; k < s.axis; ++k) top = std::max(top, x.values[at(k)]);
      double sum = 0;
      for (size_t k = 0; k < s.axis; ++k) sum += std::exp(x.values[at(k)] - top);
      for (size_t k = 0; k < s.axis; ++k) a.out[0].values[at(k)] = std::exp(x.values[at(k)] - top) / sum;
    }
}

}  // namespace

extern const OpSchema kAddSchema{"Add", false, 2, 2, 1, infer_binary, eval_add};
extern const OpSchema kMulSchema{"Mul", false, 2, 2, 1, infer_binary, eval_mul};
extern const OpSchema kBatchNormSchema{"BatchNormalization", false, 5, 5, 3, infer_batch_norm, eval_batch_norm};
extern const OpSchema kReluSchema{"Relu", false, 1, 1, 1, same_shape_output, eval_relu};
extern const OpSchema kLeakyReluSchema{"LeakyRelu", false, 1, 1, 1, same_shape_output, eval_leaky_relu};
extern const OpSchema kSigmoidSchema{"Sigmoid", false, 1, 1, 1, same_shape_output, eval_sigmoid};
extern const OpSchema kSoftmaxSchema{"Softmax", false, 1, 1, 1, infer_softmax, eval_softmax};
extern const OpSchema kIdentitySchema{"Identity", false, 1, 1, 1, same_shape_output, eval_identity};
extern const OpSchema kDropoutSchema{"Dropout", false, 1, 3, 2, infer_dropout, eval_dropout};

}  // namespace lowbit::converter
