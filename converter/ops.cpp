// The op table, shape inference over a graph, and the helpers every op implementation shares.
#include <cmath>
#include <limits>

#include "converter/op_util.h"

namespace lowbit::converter {

// Rows defined next to their implementations (ops_*.cpp).
extern const OpSchema kConvSchema, kGemmSchema, kMatMulSchema;
extern const OpSchema kAddSchema, kMulSchema, kBatchNormSchema, kReluSchema, kLeakyReluSchema, kSigmoidSchema,
    kSoftmaxSchema, kIdentitySchema, kDropoutSchema;
extern const OpSchema kMaxPoolSchema, kAveragePoolSchema, kGlobalAveragePoolSchema;
extern const OpSchema kConcatSchema, kSpaceToDepthSchema, kDepthToSpaceSchema, kResizeSchema, kUpsampleSchema,
    kPadSchema, kReshapeSchema, kFlattenSchema, kTransposeSchema;
extern const OpSchema kQuantSchema, kBipolarQuantSchema, kMultiThresholdSchema, kTruncSchema;

namespace {
const OpSchema* const kSchemas[] = {
    &kConvSchema,       &kGemmSchema,       &kMatMulSchema,       &kAddSchema,
    &kMulSchema,        &kBatchNormSchema,  &kReluSchema,         &kLeakyReluSchema,
    &kSigmoidSchema,    &kSoftmaxSchema,    &kIdentitySchema,     &kDropoutSchema,
    &kMaxPoolSchema,    &kAveragePoolSchema, &kGlobalAveragePoolSchema, &kConcatSchema,
    &kSpaceToDepthSchema, &kDepthToSpaceSchema, &kResizeSchema,   &kUpsampleSchema,
    &kPadSchema,        &kReshapeSchema,    &kFlattenSchema,      &kTransposeSchema,
    &kQuantSchema,      &kBipolarQuantSchema, &kMultiThresholdSchema, &kTruncSchema,
};

constexpr int64_t kMaxDim = int64_t{1} << 24;       // the runtime's dim limit
constexpr uint64_t kMaxElements = uint64_t{1} << 31;  // and its element limit
}  // namespace

bool is_qonnx_domain(const std::string& domain) {
  return domain == "qonnx.custom_op.general" || domain == "onnx.brevitas" || domain == "finn.custom_op.general";
}

const OpSchema* find_op_schema(const std::string& domain, const std::string& op_type) {
  const bool standard = domain.empty() || domain == "ai.onnx";
  if (!standard && !is_qonnx_domain(domain)) return nullptr;
  for (const OpSchema* s : kSchemas)
    if (op_type == s->op_type && s->qonnx == !standard) return s;
  return nullptr;
}

const OpSchema& op_schema(const Node& n) {
  const OpSchema* s = find_op_schema(n.domain, n.op_type);
  if (!s) throw ConvertError(n.label() + ": unsupported op");
  return *s;
}

void infer_shapes(Graph& g) {
  for (const Node& n : g.nodes) {
    const OpSchema& s = op_schema(n);
    if (static_cast<int>(n.inputs.size()) < s.min_inputs || static_cast<int>(n.inputs.size()) > s.max_inputs)
      node_error(n, "takes " + std::to_string(s.min_inputs) + ".." + std::to_string(s.max_inputs) + " inputs, has " +
                        std::to_string(n.inputs.size()));
    if (n.outputs.empty() || static_cast<int>(n.outputs.size()) > s.max_outputs)
      node_error(n, "has " + std::to_string(n.outputs.size()) + " outputs");
    for (size_t i = 0; i < static_cast<size_t>(s.min_inputs); ++i)
      if (n.input(i) == kNoValue) node_error(n, "misses required input " + std::to_string(i));
    s.infer(g, n);
  }
}

// ---- helpers ----

void node_error(const Node& n, const std::string& message) { throw ConvertError(n.label() + ": " + message); }

const Value& input_value(const Graph& g, const Node& n, size_t i) {
  const int id = n.input(i);
  if (id == kNoValue) node_error(n, "misses input " + std::to_string(i));
  const Value& v = g.value(id);
  if (!v.shape_known) node_error(n, "input '" + v.name + "' has no known shape");
  return v;
}

const Dims& input_dims(const Graph& g, const Node& n, size_t i) { return input_value(g, n, i).dims; }

void expect_rank(const Graph& g, const Node& n, size_t i, size_t rank) {
  const Value& v = input_value(g, n, i);
  if (v.dims.size() != rank)
    node_error(n, "input '" + v.name + "' is " + dims_string(v.dims) + ", expected rank " + std::to_string(rank));
}

void set_output(Graph& g, const Node& n, size_t i, const Dims& dims, ElemType type) {
  uint64_t count = 1;
  for (int64_t d : dims) {
    if (d < 1 || d > kMaxDim) node_error(n, "output dims " + dims_string(dims) + " are out of range");
    count *= static_cast<uint64_t>(d);
    if (count > kMaxElements) node_error(n, "output " + dims_string(dims) + " is too large");
  }
  Value& v = g.value(n.outputs.at(i));
  v.dims = dims;
  v.type = type;
  v.shape_known = true;
}

void same_shape_output(Graph& g, const Node& n) {
  const Value& x = input_value(g, n, 0);
  set_output(g, n, 0, x.dims, x.type);
}

int64_t normalized_axis(const Node& n, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) node_error(n, "axis " + std::to_string(axis) + " is out of range");
  return axis < 0 ? axis + rank : axis;
}

Dims broadcast_dims(const Node& n, const Dims& a, const Dims& b) {
  Dims out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    const int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    if (da != db && da != 1 && db != 1)
      node_error(n, "shapes " + dims_string(a) + " and " + dims_string(b) + " do not broadcast");
    out[i] = std::max(da, db);
  }
  return out;
}

Broadcast::Broadcast(const Dims& in, const Dims& out) : out_strides_(out.size()), in_strides_(out.size(), 0) {
  size_t out_stride = 1, in_stride = 1;
  for (size_t k = out.size(); k-- > 0;) {
    out_strides_[k] = out_stride;
    out_stride *= static_cast<size_t>(out[k]);
    const size_t offset = out.size() - in.size();
    if (k >= offset) {
      const int64_t d = in[k - offset];
      if (d != 1) in_strides_[k] = in_stride;
      in_stride *= static_cast<size_t>(d);
    }
  }
}

size_t Broadcast::operator()(size_t out_index) const {
  size_t in_index = 0;
  for (size_t k = 0; k < out_strides_.size(); ++k) {
    in_index += (out_index / out_strides_[k]) * in_strides_[k];
    out_index %= out_strides_[k];
  }
  return in_index;
}

std::vector<int64_t> integer_values(const Node& n, const Array& a, const char* role) {
  std::vector<int64_t> out;
  out.reserve(a.size());
  for (double v : a.values) {
    if (!std::isfinite(v) || std::floor(v) != v || std::fabs(v) > 9e15) node_error(n, std::string(role) + " must be integers");
    out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

double scalar_value(const Node& n, const Array& a, const char* role) {
  if (a.size() != 1) node_error(n, std::string(role) + " must be a single number, is " + dims_string(a.dims));
  return a.values[0];
}

// ---- shared geometry and quantizer parameters ----

Window2D window_2d(const Node& n, int64_t ih, int64_t iw, int64_t kh, int64_t kw, bool allow_ceil_mode) {
  Window2D w{};
  w.kh = kh;
  w.kw = kw;
  const std::vector<int64_t> strides = n.ints_attr("strides", {1, 1});
  const std::vector<int64_t> dilations = n.ints_attr("dilations", {1, 1});
  std::vector<int64_t> pads = n.ints_attr("pads", {0, 0, 0, 0});
  if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4)
    node_error(n, "only 2-D windows are supported (strides, dilations, pads)");
  w.sh = strides[0];
  w.sw = strides[1];
  w.dh = dilations[0];
  w.dw = dilations[1];
  if (kh < 1 || kw < 1 || kh > kMaxDim || kw > kMaxDim) node_error(n, "window must be at least 1x1");
  if (w.sh < 1 || w.sw < 1 || w.sh > kMaxDim || w.sw > kMaxDim) node_error(n, "strides must be >= 1");
  if (w.dh < 1 || w.dw < 1 || w.dh > kMaxDim || w.dw > kMaxDim) node_error(n, "dilations must be >= 1");
  const int64_t eh = (kh - 1) * w.dh + 1, ew = (kw - 1) * w.dw + 1;  // dilated extent
  const std::string auto_pad = n.string_attr("auto_pad", "NOTSET");
  if (auto_pad == "VALID") {
    pads = {0, 0, 0, 0};
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const int64_t extents[2] = {eh, ew}, sizes[2] = {ih, iw}, steps[2] = {w.sh, w.sw};
    for (int d = 0; d < 2; ++d) {
      const int64_t out = (sizes[d] + steps[d] - 1) / steps[d];
      const int64_t total = std::max<int64_t>((out - 1) * steps[d] + extents[d] - sizes[d], 0);
      const int64_t small = total / 2, large = total - small;
      pads[d] = auto_pad == "SAME_UPPER" ? small : large;
      pads[d + 2] = auto_pad == "SAME_UPPER" ? large : small;
    }
  } else if (auto_pad != "NOTSET") {
    node_error(n, "unknown auto_pad '" + auto_pad + "'");
  }
  w.pt = pads[0];
  w.pl = pads[1];
  w.pb = pads[2];
  w.pr = pads[3];
  for (int64_t p : pads)
    if (p < 0 || p > kMaxDim) node_error(n, "pads must be >= 0");
  const bool ceil_mode = n.int_attr("ceil_mode", 0) != 0;
  if (ceil_mode && !allow_ceil_mode) node_error(n, "ceil_mode is not supported here");
  auto out_size = [&](int64_t in, int64_t before, int64_t after, int64_t extent, int64_t stride) {
    const int64_t span = in + before + after - extent;
    if (span < 0) node_error(n, "window larger than the padded input");
    int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    // A last window that would start inside the end padding is dropped (ONNX / PyTorch rule).
    if (ceil_mode && (out - 1) * stride >= in + before) --out;
    return out;
  };
  w.oh = out_size(ih, w.pt, w.pb, eh, w.sh);
  w.ow = out_size(iw, w.pl, w.pr, ew, w.sw);
  return w;
}

double batch_norm_value(double x, double mean, double var, double eps, double gamma, double beta) {
  return (x - mean) / std::sqrt(var + eps) * gamma + beta;
}

double leaky_relu_alpha(const Node& n) { return n.float_attr("alpha", static_cast<double>(0.01f)); }

double batch_norm_epsilon(const Node& n) { return n.float_attr("epsilon", static_cast<double>(1e-5f)); }

QuantAttrs quant_attrs(const Node& n, double bitwidth) {
  if (!(bitwidth >= 1 && bitwidth <= 32) || std::floor(bitwidth) != bitwidth)
    node_error(n, "bit width must be an integer in 1..32");
  const bool is_signed = n.int_attr("signed", 1) != 0;
  const bool narrow = n.int_attr("narrow", 0) != 0;
  if (is_signed && narrow && bitwidth < 2) node_error(n, "a narrow signed range needs at least 2 bits");
  const std::string mode_name = n.string_attr("rounding_mode", "ROUND");
  const std::optional<RoundingMode> mode = parse_rounding_mode(mode_name);
  if (!mode) node_error(n, "unknown rounding_mode '" + mode_name + "'");
  return {quant_int_range(static_cast<int64_t>(bitwidth), is_signed, narrow), *mode};
}

TruncParams trunc_params(const Node& n, const std::vector<double>& s) {
  const std::string mode_name = n.string_attr("rounding_mode", "FLOOR");
  const std::optional<RoundingMode> mode = parse_rounding_mode(mode_name);
  if (!mode) node_error(n, "unknown rounding_mode '" + mode_name + "'");
  TruncParams p{};
  p.mode = *mode;
  p.scale = s[1];
  p.zero_point = s[2];
  if (!(p.scale > 0) || !std::isfinite(p.scale)) node_error(n, "scale must be positive");
  if (s.size() == 5) {  // version 1: x, scale, zeropt, in_bitwidth, out_bitwidth
    const double shift = s[3] - s[4];
    if (std::floor(shift) != shift || shift < 0 || shift > 31) node_error(n, "bit widths must be integers, in >= out");
    p.trunc_scale = std::ldexp(1.0, static_cast<int>(shift));
    p.out_scale = p.scale;
    p.out_zero_point = p.zero_point;
    return p;
  }
  // version 2: x, scale, zeropt, in_bitwidth, out_scale, out_zeropt, out_bitwidth
  p.out_scale = s[4];
  if (!(p.out_scale > 0) || !std::isfinite(p.out_scale)) node_error(n, "output scale must be positive");
  p.trunc_scale = std::exp2(std::round(std::log2(p.out_scale / p.scale)));
  p.out_zero_point = p.zero_point / p.trunc_scale;
  const double bits = s[6];
  if (!(bits >= 1 && bits <= 32) || std::floor(bits) != bits) node_error(n, "output bit width must be in 1..32");
  p.clamp = quant_int_range(static_cast<int64_t>(bits), n.int_attr("signed", 1) != 0, n.int_attr("narrow", 0) != 0);
  return p;
}

DenseForm dense_form(const Graph& g, const Node& n) {
  DenseForm f;
  const Dims& a = input_dims(g, n, 0);
  const Dims& b = input_dims(g, n, 1);
  if (a.size() != 2 || b.size() != 2) node_error(n, "only 2-D inputs are supported");
  if (n.op_type == "Gemm") {
    if (n.int_attr("transA", 0) != 0) node_error(n, "transA=1 is not supported");
    f.transpose_weight = n.int_attr("transB", 0) == 0;
    f.alpha = n.float_attr("alpha", 1.0);
    f.beta = n.float_attr("beta", 1.0);
  } else {
    f.transpose_weight = true;  // MatMul: x[N, K] @ w[K, O]
  }
  f.k = a[1];
  f.o = f.transpose_weight ? b[1] : b[0];
  const int64_t wk = f.transpose_weight ? b[0] : b[1];
  if (wk != f.k) node_error(n, "input " + dims_string(a) + " and weights " + dims_string(b) + " do not match");
  return f;
}

const Array& EvalArgs::input(size_t i) const {
  if (i >= in.size() || !in[i]) node_error(node, "misses input " + std::to_string(i));
  return *in[i];
}

}  // namespace lowbit::converter
