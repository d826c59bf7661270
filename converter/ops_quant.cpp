// QONNX quantizers: Quant, BipolarQuant, MultiThreshold, Trunc. Shape inference and interpreter
// kernels; each kernel also reports its output's integer codes (QuantizedData).
#include <cmath>

#include "converter/op_util.h"

namespace lowbit::converter {
namespace {

void check_positive(const Node& n, const Array& a, const char* role) {
  for (double v : a.values)
    if (!(v > 0) || !std::isfinite(v)) node_error(n, std::string(role) + " must be positive and finite");
}

// Quantizer parameters broadcast onto x; checked for positivity when they are constants.
void infer_quantizer(Graph& g, const Node& n) {
  const Dims& x = input_dims(g, n, 0);
  for (size_t i = 1; i < n.inputs.size(); ++i) {
    if (n.input(i) == kNoValue) continue;
    if (broadcast_dims(n, x, input_dims(g, n, i)) != x) node_error(n, "parameter " + std::to_string(i) + " does not broadcast to the input");
  }
  if (g.value(n.input(1)).is_constant() && n.op_type != "MultiThreshold") check_positive(n, *g.value(n.input(1)).constant, "scale");
  same_shape_output(g, n);
}

// Codes are integers only where the zero point is; all-integer codes get the runtime type matching their range.
void set_codes(const EvalArgs& a, std::vector<int32_t> codes, const Array& scale, std::optional<QuantType> type) {
  auto q = std::make_shared<QuantizedData>();
  q->codes = std::move(codes);
  q->scale = scale;
  q->type = type;
  a.quantized = std::move(q);
}

bool all_integers(const std::vector<double>& v) {
  for (double x : v)
    if (std::floor(x) != x || std::fabs(x) > 2e9) return false;
  return true;
}

void eval_quant(const EvalArgs& a) {
  const Array& x = a.input(0);
  const Array& scale = a.input(1);
  const Array& zero_point = a.input(2);
  const QuantAttrs attrs = quant_attrs(a.node, scalar_value(a.node, a.input(3), "bitwidth"));
  check_positive(a.node, scale, "scale");
  Array& y = a.out[0];
  const Broadcast si(scale.dims, y.dims), zi(zero_point.dims, y.dims);
  const bool integer_codes = all_integers(zero_point.values);
  std::vector<int32_t> codes(integer_codes ? y.size() : 0);
  for (size_t i = 0; i < y.size(); ++i) {
    const double s = scale.values[si(i)], zp = zero_point.values[zi(i)];
    const double code = quant_level(x.values[i], s, zp, attrs.range, attrs.mode) - zp;
    y.values[i] = code * s;
    if (integer_codes) codes[i] = static_cast<int32_t>(code);
  }
  if (!integer_codes) return;
  std::optional<QuantType> type;
  if (zero_point.size() == 1)
    type = exact_code_type(attrs.range.lo - static_cast<int64_t>(zero_point.values[0]),
                           attrs.range.hi - static_cast<int64_t>(zero_point.values[0]));
  set_codes(a, std::move(codes), scale, type);
}

void eval_bipolar_quant(const EvalArgs& a) {
  const Array& x = a.input(0);
  const Array& scale = a.input(1);
  check_positive(a.node, scale, "scale");
  Array& y = a.out[0];
  const Broadcast si(scale.dims, y.dims);
  std::vector<int32_t> codes(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    codes[i] = bipolar_code(x.values[i]);
    y.values[i] = codes[i] * scale.values[si(i)];
  }
  QuantType binary;
  binary.bits = 1;
  binary.kind = QuantKind::kBinary;
  set_codes(a, std::move(codes), scale, binary);
}

// ---- MultiThreshold ----

struct ThresholdLayout {
  size_t channels, inner, steps;  // channel count, elements per channel run, thresholds per channel
  bool shared;                    // one threshold row for all channels
};

ThresholdLayout threshold_layout(const Node& n, const Dims& x, const Dims& t) {
  if (x.size() < 2 || t.size() != 2) node_error(n, "needs an input with channels and thresholds [C, T]");
  const std::string layout = n.string_attr("data_layout", "NCHW");
  if (layout != "NCHW" && layout != "NHWC") node_error(n, "unknown data_layout '" + layout + "'");
  const bool channels_last = layout == "NHWC" || x.size() == 2;
  ThresholdLayout l{};
  l.channels = static_cast<size_t>(channels_last ? x.back() : x[1]);
  l.inner = channels_last ? 1 : static_cast<size_t>(element_count(Dims(x.begin() + 2, x.end())));
  l.steps = static_cast<size_t>(t[1]);
  l.shared = t[0] == 1;
  if (!l.shared && static_cast<size_t>(t[0]) != l.channels) node_error(n, "thresholds must have 1 or C rows");
  return l;
}

void infer_multithreshold(Graph& g, const Node& n) {
  threshold_layout(n, input_dims(g, n, 0), input_dims(g, n, 1));
  same_shape_output(g, n);
}

void eval_multithreshold(const EvalArgs& a) {
  const Array& x = a.input(0);
  const Array& t = a.input(1);
  const ThresholdLayout l = threshold_layout(a.node, x.dims, t.dims);
  const double out_scale = a.node.float_attr("out_scale", 1.0), out_bias = a.node.float_attr("out_bias", 0.0);
  const std::optional<LevelCodes> lc = level_codes(out_scale, out_bias);
  std::vector<int32_t> codes(lc ? x.size() : 0);
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t c = i / l.inner % l.channels;
    const int64_t level = threshold_level(x.values[i], &t.values[(l.shared ? 0 : c) * l.steps], static_cast<int64_t>(l.steps));
    a.out[0].values[i] = static_cast<double>(level) * out_scale + out_bias;
    if (lc) codes[i] = static_cast<int32_t>(level * lc->step + lc->offset);
  }
  if (!lc) return;
  const int64_t top = lc->offset + static_cast<int64_t>(l.steps) * lc->step;
  set_codes(a, std::move(codes), Array::scalar(lc->scale),
            exact_code_type(std::min(lc->offset, top), std::max(lc->offset, top)));
}

// ---- Trunc ----

void eval_trunc(const EvalArgs& a) {
  std::vector<double> scalars(a.in.size(), 0.0);  // indexed by input position; x's slot unused
  for (size_t i = 1; i < a.in.size(); ++i) scalars[i] = scalar_value(a.node, a.input(i), "Trunc parameter");
  const TruncParams p = trunc_params(a.node, scalars);
  const Array& x = a.input(0);
  const bool integer_codes = std::floor(p.out_zero_point) == p.out_zero_point;
  std::vector<int32_t> codes(integer_codes ? x.size() : 0);
  for (size_t i = 0; i < x.size(); ++i) {
    const double code = trunc_level(x.values[i], p) - p.out_zero_point;
    a.out[0].values[i] = code * p.out_scale;
    if (integer_codes) codes[i] = static_cast<int32_t>(code);
  }
  if (integer_codes) set_codes(a, std::move(codes), Array::scalar(p.out_scale), std::nullopt);
}

void infer_trunc(Graph& g, const Node& n) {
  if (n.inputs.size() != 5 && n.inputs.size() != 7) node_error(n, "takes 5 (version 1) or 7 (version 2) inputs");
  infer_quantizer(g, n);
}

}  // namespace

extern const OpSchema kQuantSchema{"Quant", true, 4, 4, 1, infer_quantizer, eval_quant};
extern const OpSchema kBipolarQuantSchema{"BipolarQuant", true, 2, 2, 1, infer_quantizer, eval_bipolar_quant};
extern const OpSchema kMultiThresholdSchema{"MultiThreshold", true, 2, 2, 1, infer_multithreshold, eval_multithreshold};
extern const OpSchema kTruncSchema{"Trunc", true, 5, 7, 1, infer_trunc, eval_trunc};

}  // namespace lowbit::converter
