#include "converter/activation_quantizer.h"

#include <cmath>
#include <memory>

#include "converter/ops.h"

namespace lowbit::converter {
namespace {

// A parameter input that must hold one value for the whole tensor.
std::optional<double> tensor_wide(const Graph& g, const Node& n, size_t i, const char* role, std::string* why_not) {
  const int id = n.input(i);
  if (id == kNoValue || !g.value(id).is_constant()) {
    *why_not = std::string(role) + " is not a constant";
    return std::nullopt;
  }
  const Array& a = *g.value(id).constant;
  for (double v : a.values)
    if (v != a.values[0]) {
      *why_not = std::string("per-channel ") + role + " (runtime codes carry one scale per tensor)";
      return std::nullopt;
    }
  if (a.values.empty()) {
    *why_not = std::string(role) + " is empty";
    return std::nullopt;
  }
  return a.values[0];
}

std::optional<ActivationQuantizer> quant(const Graph& g, const Node& n, std::string* why_not) {
  const auto scale = tensor_wide(g, n, 1, "scale", why_not);
  const auto zero_point = scale ? tensor_wide(g, n, 2, "zero point", why_not) : std::nullopt;
  const auto bits = zero_point ? tensor_wide(g, n, 3, "bit width", why_not) : std::nullopt;
  if (!bits) return std::nullopt;
  const QuantAttrs attrs = quant_attrs(n, *bits);
  const double zp = *zero_point;
  if (std::floor(zp) != zp) return *why_not = "the zero point is not an integer", std::nullopt;
  const int64_t shift = static_cast<int64_t>(zp);
  const std::optional<QuantType> type = exact_code_type(attrs.range.lo - shift, attrs.range.hi - shift);
  if (!type)
    return *why_not = "its integer range [" + std::to_string(attrs.range.lo - shift) + ", " +
                      std::to_string(attrs.range.hi - shift) + "] is no runtime code type (1..4 bits)",
           std::nullopt;
  ActivationQuantizer q;
  q.node = &n;
  q.scale = *scale;
  q.type = type;
  const double s = *scale;
  const IntRange range = attrs.range;
  const RoundingMode mode = attrs.mode;
  q.code = [s, zp, range, mode](double x, int64_t) {
    return static_cast<int64_t>(quant_level(x, s, zp, range, mode) - zp);
  };
  // Quantize rounds half to even, or half towards +inf; QONNX HALF_UP (ties away from zero) is
  // that for codes >= 0, and for signed codes differs only on exact negative ties.
  if (mode == RoundingMode::kHalfEven) q.quantize_rounding = Rounding::kHalfEven;
  else if (mode == RoundingMode::kHalfUp) q.quantize_rounding = Rounding::kHalfUp;
  else q.quantize_obstacle = std::string("rounding mode ") + rounding_mode_name(mode) + " has no runtime Quantize";
  return q;
}

std::optional<ActivationQuantizer> bipolar(const Graph& g, const Node& n, std::string* why_not) {
  const auto scale = tensor_wide(g, n, 1, "scale", why_not);
  if (!scale) return std::nullopt;
  ActivationQuantizer q;
  q.node = &n;
  q.scale = *scale;
  // +-1 activations are 2-bit signed narrow codes: binary codes have no zero to pad with.
  q.type = exact_code_type(-1, 1);
  q.code = [](double x, int64_t) { return static_cast<int64_t>(bipolar_code(x)); };
  q.quantize_obstacle = "+-1 codes from float input need a binary Quantize that quantized layers cannot read";
  return q;
}

std::optional<ActivationQuantizer> multithreshold(const Graph& g, const Node& n, int64_t channels, std::string* why_not) {
  const int id = n.input(1);
  if (!g.value(id).is_constant()) return *why_not = "thresholds are not a constant", std::nullopt;
  if (n.string_attr("data_layout", "NCHW") != "NCHW" && g.value(n.inputs[0]).dims.size() == 4)
    return *why_not = "data_layout NHWC on a 4-D tensor", std::nullopt;
  const auto table = g.value(id).constant;  // [C or 1, T]
  const int64_t steps = table->dims.at(1);
  const bool shared = table->dims[0] == 1;
  if (!shared && table->dims[0] != channels) return *why_not = "threshold rows do not match the channels", std::nullopt;
  const std::optional<LevelCodes> lc = level_codes(n.float_attr("out_scale", 1.0), n.float_attr("out_bias", 0.0));
  if (!lc) return *why_not = "out_bias is not a whole number of output steps", std::nullopt;
  const int64_t top = lc->offset + steps * lc->step;
  ActivationQuantizer q;
  q.node = &n;
  q.scale = lc->scale;
  q.type = covering_code_type(std::min(lc->offset, top), std::max(lc->offset, top));
  if (!q.type) return *why_not = "its output levels need more than 4 bits", std::nullopt;
  const LevelCodes codes = *lc;
  q.code = [table, steps, shared, codes](double x, int64_t channel) {
    const double* row = &table->values[static_cast<size_t>((shared ? 0 : channel) * steps)];
    return threshold_level(x, row, steps) * codes.step + codes.offset;
  };
  q.quantize_obstacle = "MultiThreshold has no runtime op of its own; it must follow a quantized Conv/Gemm/MatMul";
  return q;
}

std::optional<ActivationQuantizer> trunc(const Graph& g, const Node& n, std::string* why_not) {
  std::vector<double> scalars(n.inputs.size(), 0.0);
  for (size_t i = 1; i < n.inputs.size(); ++i) {
    const auto v = tensor_wide(g, n, i, "Trunc parameter", why_not);
    if (!v) return std::nullopt;
    scalars[i] = *v;
  }
  const TruncParams p = trunc_params(n, scalars);
  if (std::floor(p.out_zero_point) != p.out_zero_point) return *why_not = "the output zero point is not an integer", std::nullopt;
  ActivationQuantizer q;
  q.node = &n;
  q.scale = p.out_scale;
  if (p.clamp) {
    const int64_t shift = static_cast<int64_t>(p.out_zero_point);
    q.type = covering_code_type(p.clamp->lo - shift, p.clamp->hi - shift);
    if (!q.type) return *why_not = "its output range needs more than 4 bits", std::nullopt;
  }
  q.code = [p](double x, int64_t) { return static_cast<int64_t>(trunc_level(x, p) - p.out_zero_point); };
  q.quantize_obstacle = "Trunc has no runtime op of its own; it must follow a quantized Conv/Gemm/MatMul";
  return q;
}

}  // namespace

bool is_quantizer_op(const Node& n) {
  return is_qonnx_domain(n.domain) &&
         (n.op_type == "Quant" || n.op_type == "BipolarQuant" || n.op_type == "MultiThreshold" || n.op_type == "Trunc");
}

std::optional<ActivationQuantizer> activation_quantizer(const Graph& g, const Node& n, int64_t channels,
                                                        std::string* why_not) {
  if (n.op_type == "Quant") return quant(g, n, why_not);
  if (n.op_type == "BipolarQuant") return bipolar(g, n, why_not);
  if (n.op_type == "MultiThreshold") return multithreshold(g, n, channels, why_not);
  if (n.op_type == "Trunc") return trunc(g, n, why_not);
  *why_not = "not a quantizer";
  return std::nullopt;
}

}  // namespace lowbit::converter
