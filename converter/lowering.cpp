#include "converter/lowering.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <optional>

#include "converter/activation_quantizer.h"
#include "converter/op_util.h"
#include "converter/quantizer.h"
#include "converter/thresholds.h"

namespace lowbit::converter {

std::vector<int32_t> runtime_dims(const Dims& d) {
  if (d.size() == 4) return {static_cast<int32_t>(d[0]), static_cast<int32_t>(d[2]), static_cast<int32_t>(d[3]),
                             static_cast<int32_t>(d[1])};
  return std::vector<int32_t>(d.begin(), d.end());
}

namespace {

using Id = ModelBuilder::Id;

// NCHW and NHWC order the elements alike when one of C and H*W is 1 (and for other ranks).
bool layout_free(const Dims& d) { return d.size() != 4 || d[1] == 1 || d[2] * d[3] == 1; }

std::vector<float> to_floats(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// Per-channel values (channel axis 1) of a constant broadcast onto an activation of dims `act`;
// nullopt when it varies along another axis or would widen the activation.
std::optional<std::vector<double>> channel_values(const Array& c, const Dims& act) {
  if (c.dims.size() > act.size() || act.size() < 2) return std::nullopt;
  const size_t offset = act.size() - c.dims.size();
  for (size_t k = 0; k < c.dims.size(); ++k)
    if (c.dims[k] != 1 && (k + offset != 1 || c.dims[k] != act[1])) return std::nullopt;
  std::vector<double> out(static_cast<size_t>(act[1]));
  for (size_t o = 0; o < out.size(); ++o) out[o] = c.values[c.size() == 1 ? 0 : o];
  return out;
}

// One op of the per-channel chain after a conv/dense layer, evaluated exactly as the interpreter does.
struct ChainOp {
  enum class Kind { kBatchNorm, kMul, kAdd, kRelu, kLeakyRelu } kind;
  std::vector<double> mean, var, gamma, beta;  // BatchNorm
  std::vector<double> constant;                // Mul / Add
  double eps = 0, alpha = 0;

  bool is_affine() const { return kind == Kind::kBatchNorm || kind == Kind::kMul || kind == Kind::kAdd; }
  double apply(double y, size_t o) const {
    switch (kind) {
      case Kind::kBatchNorm: return batch_norm_value(y, mean[o], var[o], eps, gamma[o], beta[o]);
      case Kind::kMul: return y * constant[o];
      case Kind::kAdd: return y + constant[o];
      case Kind::kRelu: return relu_value(y);
      case Kind::kLeakyRelu: return leaky_relu_value(y, alpha);
    }
    return y;
  }
  // The affine kinds as y -> m * y + a (for folding into float weights and output scales).
  void affine(size_t o, double* m, double* a) const {
    switch (kind) {
      case Kind::kBatchNorm:
        *m = gamma[o] / std::sqrt(var[o] + eps);
        *a = beta[o] - mean[o] * *m;
        return;
      case Kind::kMul: *m = constant[o], *a = 0; return;
      case Kind::kAdd: *m = 1, *a = constant[o]; return;
      default: *m = 1, *a = 0; return;
    }
  }
};

struct Chain {
  std::vector<ChainOp> ops;
  std::vector<int> nodes;                    // node index of each op
  std::optional<ActivationQuantizer> quantizer;
  int quantizer_node = -1;
  // Leading affine ops, and whether a Relu/LeakyRelu follows them.
  size_t affine_prefix() const {
    size_t p = 0;
    while (p < ops.size() && ops[p].is_affine()) ++p;
    return p;
  }
};

// Weights in the runtime's order [O, KH, KW, Cg]: float values, and integer codes with one scale
// per output channel when the weights are quantized that way.
struct LayerWeights {
  int64_t o = 0, kh = 1, kw = 1, cg = 0;
  std::vector<double> values;
  std::vector<int32_t> codes;
  std::optional<QuantType> type;
  std::vector<double> alpha;
  int64_t k() const { return kh * kw * cg; }
};

// Reads weights whose IR layout puts the reduction index k_ir = (c * KH + y) * KW + x either
// inner (w[o][k], Conv and Gemm transB=1) or outer (w[k][o], MatMul and Gemm transB=0).
LayerWeights layer_weights(const Value& w, int64_t o, int64_t kh, int64_t kw, int64_t cg, bool k_outer) {
  LayerWeights lw;
  lw.o = o, lw.kh = kh, lw.kw = kw, lw.cg = cg;
  const int64_t k = lw.k();
  std::vector<size_t> ir_index(static_cast<size_t>(o * k));  // runtime position -> IR flat index
  for (int64_t oc = 0; oc < o; ++oc)
    for (int64_t y = 0; y < kh; ++y)
      for (int64_t x = 0; x < kw; ++x)
        for (int64_t c = 0; c < cg; ++c) {
          const int64_t k_ir = (c * kh + y) * kw + x;
          ir_index[static_cast<size_t>(((oc * kh + y) * kw + x) * cg + c)] =
              static_cast<size_t>(k_outer ? k_ir * o + oc : oc * k + k_ir);
        }
  lw.values.resize(ir_index.size());
  for (size_t i = 0; i < ir_index.size(); ++i) lw.values[i] = w.constant->values[ir_index[i]];

  std::vector<int32_t> codes(ir_index.size());
  std::vector<double> alpha(static_cast<size_t>(o), 1.0);
  std::optional<QuantType> type;
  if (w.quantized && w.quantized->type) {
    // Quantizer output: codes with a scale that must be one value per output channel.
    const Broadcast scale_at(w.quantized->scale.dims, w.dims);
    for (size_t i = 0; i < ir_index.size(); ++i) {
      codes[i] = w.quantized->codes[ir_index[i]];
      const size_t oc = i / static_cast<size_t>(k);
      const double s = w.quantized->scale.values[scale_at(ir_index[i])];
      if (i % static_cast<size_t>(k) == 0) alpha[oc] = s;
      else if (s != alpha[oc]) return lw;  // scales vary inside an output channel: float weights
    }
    type = w.quantized->type;
  } else {
    // Float weights that hold small integers (streamlined QONNX graphs) are codes with scale 1.
    int64_t lo = 0, hi = 0;
    for (size_t i = 0; i < ir_index.size(); ++i) {
      const double v = lw.values[i];
      if (std::floor(v) != v || std::fabs(v) > 8) return lw;
      codes[i] = static_cast<int32_t>(v);
      lo = std::min<int64_t>(lo, codes[i]);
      hi = std::max<int64_t>(hi, codes[i]);
    }
    type = covering_code_type(lo, hi);
    if (!type) return lw;
  }
  // Codes that are all +-1 pack into one binary plane.
  if (std::all_of(codes.begin(), codes.end(), [](int32_t c) { return c == 1 || c == -1; })) {
    type->bits = 1;
    type->kind = QuantKind::kBinary;
  }
  lw.codes = std::move(codes);
  lw.type = type;
  lw.alpha = std::move(alpha);
  return lw;
}

struct Layer {
  const Node* node = nullptr;
  bool conv = false;
  LayerWeights w;
  std::vector<double> bias_term;  // per output channel: conv bias, or Gemm's beta * C
  double alpha = 1.0;             // Gemm's alpha
  ConvParams params;
  Chain chain;
};

// What an IR value became in the runtime graph.
struct RtValue {
  Id tensor = kNoTensor;
  bool codes = false;
  Id dequantized = kNoTensor;  // float copy of a codes tensor, made on first float use
  Dims flattened_from;         // NCHW dims when the value is a flattening of `tensor` read by dense layers
};

class Lowering {
 public:
  Lowering(const Graph& g, ModelBuilder& b, const LoweringOptions& options)
      : g_(g), b_(b), options_(options), consumers_(g.consumers()), absorbed_(g.nodes.size(), false), rt_(g.values.size()) {}

  Lowered run() {
    for (int id : g_.inputs) {
      const Value& v = g_.value(id);
      check_activation_rank(v, "graph input");
      bind(id, b_.input(v.name, runtime_dims(v.dims)), false);
    }
    for (size_t k = 0; k < g_.nodes.size(); ++k)
      if (!absorbed_[k]) lower_node(g_.nodes[k]);
    for (int id : g_.outputs) {
      const RtValue& r = rt_[static_cast<size_t>(id)];
      if (r.tensor == kNoTensor) throw ConvertError("graph output '" + g_.value(id).name + "' is a constant");
      if (!r.flattened_from.empty())
        throw ConvertError("graph output '" + g_.value(id).name + "' flattens NCHW data, which needs a transpose");
      b_.output(r.tensor);
    }
    int index = static_cast<int>(g_.outputs.size());
    for (QuantizedTensorLink& link : result_.quantized)
      if (options_.expose_quantized) {
        b_.output(link.tensor);
        link.output_index = index++;
      }
    if (!b_.error().empty()) throw ConvertError("the runtime rejects the graph: " + b_.error());
    return result_;
  }

 private:
  using Handler = void (Lowering::*)(const Node&);

  void lower_node(const Node& n) {
    static const std::map<std::string, Handler> kHandlers = {
        {"Conv", &Lowering::lower_linear},
        {"Gemm", &Lowering::lower_linear},
        {"MatMul", &Lowering::lower_linear},
        {"BatchNormalization", &Lowering::lower_batch_norm},
        {"Relu", &Lowering::lower_relu},
        {"LeakyRelu", &Lowering::lower_float_unary},
        {"Sigmoid", &Lowering::lower_float_unary},
        {"Softmax", &Lowering::lower_softmax},
        {"Add", &Lowering::lower_binary},
        {"Mul", &Lowering::lower_binary},
        {"MaxPool", &Lowering::lower_pool},
        {"AveragePool", &Lowering::lower_pool},
        {"GlobalAveragePool", &Lowering::lower_global_pool},
        {"Concat", &Lowering::lower_concat},
        {"SpaceToDepth", &Lowering::lower_space_depth},
        {"DepthToSpace", &Lowering::lower_space_depth},
        {"Resize", &Lowering::lower_resize},
        {"Upsample", &Lowering::lower_resize},
        {"Pad", &Lowering::lower_pad},
        {"Reshape", &Lowering::lower_reshape},
        {"Flatten", &Lowering::lower_reshape},
        {"Transpose", &Lowering::lower_transpose},
        {"Identity", &Lowering::lower_identity},
        {"Dropout", &Lowering::lower_identity},
        {"Quant", &Lowering::lower_quantizer},
        {"BipolarQuant", &Lowering::lower_quantizer},
        {"MultiThreshold", &Lowering::lower_quantizer},
        {"Trunc", &Lowering::lower_quantizer},
    };
    const auto it = kHandlers.find(n.op_type);
    if (it == kHandlers.end()) node_error(n, "has no lowering");
    (this->*(it->second))(n);
  }

  // ---- bookkeeping ----

  Id checked(Id id, const Node& n) {
    if (!b_.error().empty()) node_error(n, "the runtime rejects it: " + b_.error());
    return id;
  }

  static void check_activation_rank(const Value& v, const char* what) {
    if (v.dims.size() != 2 && v.dims.size() != 4)
      throw ConvertError(std::string(what) + " '" + v.name + "' is " + dims_string(v.dims) +
                         "; only 2-D [N, C] and 4-D [N, C, H, W] activations are supported");
  }

  void bind(int value, Id tensor, bool codes) {
    RtValue& r = rt_[static_cast<size_t>(value)];
    r.tensor = tensor;
    r.codes = codes;
  }

  // Binds a quantizer output to its runtime codes tensor and records the link for verification.
  void bind_quantized(int value, Id tensor) {
    bind(value, tensor, true);
    const Value& v = g_.value(value);
    result_.quantized.push_back({v.name, v.dims, tensor, -1});
  }

  const RtValue& input(const Node& n, size_t i) {
    const int id = n.input(i);
    const RtValue& r = rt_[static_cast<size_t>(id)];
    if (r.tensor == kNoTensor) {
      if (g_.value(id).is_constant()) node_error(n, "a constant as input " + std::to_string(i) + " is not supported here");
      node_error(n, "input '" + g_.value(id).name + "' was not lowered");
    }
    if (!r.flattened_from.empty()) node_error(n, "reads a flattening of NCHW data, which needs a transpose");
    return r;
  }

  // Input i as floats: a codes tensor is dequantized once, on its first float reader.
  Id float_of(const Node& n, size_t i) {
    input(n, i);
    return float_of_value(n.input(i), n);
  }

  Id float_of_value(int value, const Node& user) {
    RtValue& r = rt_[static_cast<size_t>(value)];
    if (!r.codes) return r.tensor;
    if (r.dequantized == kNoTensor) r.dequantized = checked(b_.dequantize(g_.value(value).name + ".float", r.tensor), user);
    return r.dequantized;
  }

  const std::string& out_name(const Node& n) const { return g_.value(n.outputs[0]).name; }
  const Dims& in_dims(const Node& n, size_t i = 0) const { return g_.value(n.input(i)).dims; }

  // An op that works on floats and codes alike: the output takes the input's kind.
  void bind_like_input(const Node& n, Id y) {
    const bool codes = rt_[static_cast<size_t>(n.inputs[0])].codes;
    check_activation_rank(g_.value(n.outputs[0]), "value");
    bind(n.outputs[0], checked(y, n), codes);
  }
  void bind_float(const Node& n, Id y) {
    check_activation_rank(g_.value(n.outputs[0]), "value");
    bind(n.outputs[0], checked(y, n), false);
  }

  // A constant operand of a broadcasting op next to an activation of IR dims `act`, laid out like it.
  Id constant_operand(const Node& n, int value, const Dims& act) {
    const Value& v = g_.value(value);
    Dims dims = v.constant->dims;
    if (dims.size() > act.size()) node_error(n, "constant '" + v.name + "' has more dims than the activation");
    if (act.size() == 4) dims.insert(dims.begin(), 4 - dims.size(), 1);
    if (dims.empty()) dims = {1};
    return checked(b_.constant_f32(v.name, runtime_dims(dims), to_floats(to_nhwc(dims, v.constant->values))), n);
  }

  // ---- conv / dense layers ----

  Chain collect_chain(int value, const Dims& act) {
    Chain chain;
    const int64_t channels = act[1];
    while (!g_.is_graph_output(value) && consumers_[static_cast<size_t>(value)].size() == 1) {
      const int k = consumers_[static_cast<size_t>(value)][0];
      const Node& m = g_.nodes[static_cast<size_t>(k)];
      std::optional<ChainOp> op = chain_op(m, value, act);
      if (!op) {
        std::string ignored;
        if (is_quantizer_op(m) && m.inputs[0] == value) {
          chain.quantizer = activation_quantizer(g_, m, channels, &ignored);
          if (chain.quantizer) chain.quantizer_node = k;
        }
        break;
      }
      chain.ops.push_back(std::move(*op));
      chain.nodes.push_back(k);
      value = m.outputs[0];
    }
    return chain;
  }

  std::optional<ChainOp> chain_op(const Node& m, int value, const Dims& act) {
    using Kind = ChainOp::Kind;
    ChainOp op{};
    if (m.op_type == "BatchNormalization" && m.inputs[0] == value) {
      std::vector<double>* fields[] = {&op.gamma, &op.beta, &op.mean, &op.var};
      for (size_t i = 0; i < 4; ++i) {
        const Value& p = g_.value(m.inputs[i + 1]);
        if (!p.is_constant()) return std::nullopt;
        *fields[i] = p.constant->values;
      }
      op.kind = Kind::kBatchNorm;
      op.eps = batch_norm_epsilon(m);
      return op;
    }
    if (m.op_type == "Mul" || m.op_type == "Add") {
      const int other = m.inputs[0] == value ? m.inputs[1] : m.inputs[0];
      if (other == value || !g_.value(other).is_constant()) return std::nullopt;
      std::optional<std::vector<double>> c = channel_values(*g_.value(other).constant, act);
      if (!c) return std::nullopt;
      op.kind = m.op_type == "Mul" ? Kind::kMul : Kind::kAdd;
      op.constant = std::move(*c);
      return op;
    }
    if (m.op_type == "Relu") return ChainOp{Kind::kRelu, {}, {}, {}, {}, {}, 0, 0};
    // A negative slope would make the chain non-monotone (thresholds need monotone).
    if (m.op_type == "LeakyRelu" && leaky_relu_alpha(m) >= 0)
      return ChainOp{Kind::kLeakyRelu, {}, {}, {}, {}, {}, 0, leaky_relu_alpha(m)};
    return std::nullopt;
  }

  void lower_linear(const Node& n) {
    Layer L;
    L.node = &n;
    L.conv = n.op_type == "Conv";
    const Value& w = g_.value(n.inputs[1]);
    if (!w.is_constant()) node_error(n, "weights must be constant (initializers, possibly quantized)");
    const Dims& out_dims = g_.value(n.outputs[0]).dims;
    const int64_t o = out_dims[1];
    L.bias_term.assign(static_cast<size_t>(o), 0.0);
    if (L.conv) {
      const Window2D win = window_2d(n, in_dims(n)[2], in_dims(n)[3], w.dims[2], w.dims[3], false);
      L.params.stride_h = static_cast<int32_t>(win.sh), L.params.stride_w = static_cast<int32_t>(win.sw);
      L.params.pad_top = static_cast<int32_t>(win.pt), L.params.pad_left = static_cast<int32_t>(win.pl);
      L.params.pad_bottom = static_cast<int32_t>(win.pb), L.params.pad_right = static_cast<int32_t>(win.pr);
      L.params.dilation_h = static_cast<int32_t>(win.dh), L.params.dilation_w = static_cast<int32_t>(win.dw);
      L.params.groups = static_cast<int32_t>(n.int_attr("group", 1));
      L.w = layer_weights(w, o, w.dims[2], w.dims[3], w.dims[1], false);
      if (n.input(2) != kNoValue) L.bias_term = g_.constant_input(n, 2, "bias").values;
    } else {
      const DenseForm f = dense_form(g_, n);
      const RtValue& x = rt_[static_cast<size_t>(n.inputs[0])];
      const Dims& src = x.flattened_from;  // dense input read straight from an NHWC tensor
      L.w = src.empty() ? layer_weights(w, o, 1, 1, f.k, f.transpose_weight)
                        : layer_weights(w, o, src[2], src[3], src[1], f.transpose_weight);
      L.alpha = f.alpha;
      if (n.input(2) != kNoValue) {
        const std::optional<std::vector<double>> c = channel_values(g_.constant_input(n, 2, "C"), out_dims);
        if (!c) node_error(n, "C must be one value per output (or a scalar)");
        for (size_t i = 0; i < c->size(); ++i) L.bias_term[i] = f.beta * (*c)[i];
      }
    }
    L.chain = collect_chain(n.outputs[0], out_dims);

    const RtValue& x = rt_[static_cast<size_t>(n.inputs[0])];
    if (x.tensor == kNoTensor) node_error(n, "its input was not lowered");
    const bool codes_in = x.codes && b_.tensor(x.tensor).quant.kind != QuantKind::kBinary;
    if (codes_in && L.w.type) lower_quantized_layer(L, x.tensor);
    else lower_float_layer(L);
  }

  // Marks ops [0, count) of the chain as part of the layer; returns the value the layer produces.
  int absorb_chain(const Layer& L, size_t count) {
    int value = L.node->outputs[0];
    for (size_t i = 0; i < count; ++i) {
      absorbed_[static_cast<size_t>(L.chain.nodes[i])] = true;
      value = g_.nodes[static_cast<size_t>(L.chain.nodes[i])].outputs[0];
    }
    return value;
  }

  // The combined affine map (m, a) per channel of the chain's leading affine ops.
  void fold_affine_prefix(const Layer& L, size_t count, std::vector<double>* m, std::vector<double>* a) {
    const size_t o = static_cast<size_t>(L.w.o);
    m->assign(o, 1.0);
    a->assign(o, 0.0);
    for (size_t i = 0; i < count; ++i)
      for (size_t c = 0; c < o; ++c) {
        double mi, ai;
        L.chain.ops[i].affine(c, &mi, &ai);
        (*m)[c] *= mi;
        (*a)[c] = (*a)[c] * mi + ai;
      }
  }

  Id layer_weights_constant(const Layer& L, const std::string& name) {
    const std::vector<int32_t> dims = {static_cast<int32_t>(L.w.o), static_cast<int32_t>(L.w.kh),
                                       static_cast<int32_t>(L.w.kw), static_cast<int32_t>(L.w.cg)};
    return checked(b_.constant_weights(name + ".weights", dims, *L.w.type, L.w.codes), *L.node);
  }

  void lower_quantized_layer(Layer& L, Id x) {
    const Node& n = *L.node;
    const TensorDesc& xd = b_.tensor(x);
    const size_t o = static_cast<size_t>(L.w.o);
    std::vector<double> step(o);  // value of one accumulator unit per output channel
    for (size_t c = 0; c < o; ++c) step[c] = static_cast<double>(xd.scale) * L.w.alpha[c];
    const QuantType w_type = *L.w.type;

    if (L.chain.quantizer) {
      // Threshold fusion: the whole chain and its quantizer, as a function of the accumulator.
      const ActivationQuantizer& q = *L.chain.quantizer;
      auto code = [&](int64_t c, int64_t acc) {
        double y = linear_output(static_cast<double>(acc) * step[static_cast<size_t>(c)], L.alpha,
                                 L.bias_term[static_cast<size_t>(c)]);
        for (const ChainOp& op : L.chain.ops) y = op.apply(y, static_cast<size_t>(c));
        return q.code(y, c);
      };
      const int64_t bound = L.w.k() * xd.quant.max_abs_code() * w_type.max_abs_code();
      if (bound >= INT32_MAX) node_error(n, "its accumulator bound " + std::to_string(bound) + " exceeds int32");
      QuantType out_type;
      if (q.type) {
        out_type = *q.type;
      } else {  // Trunc v1: the codes its input range reaches
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t c = 0; c < o; ++c)
          for (int64_t acc : {-bound, bound}) {
            lo = std::min(lo, code(static_cast<int64_t>(c), acc));
            hi = std::max(hi, code(static_cast<int64_t>(c), acc));
          }
        const std::optional<QuantType> t = covering_code_type(lo, hi);
        if (!t) node_error(*q.node, "its outputs need more than 4 bits");
        out_type = *t;
      }
      const std::vector<int32_t> table = derive_thresholds(static_cast<int64_t>(o), bound, out_type, code);
      absorb_chain(L, L.chain.ops.size());
      absorbed_[static_cast<size_t>(L.chain.quantizer_node)] = true;
      const Node& qn = *q.node;
      const std::string& name = out_name(qn);
      const Id thresholds = checked(b_.constant_i32(name + ".thresholds", {static_cast<int32_t>(o), 1 + out_type.threshold_count()}, table), n);
      const Id weights = layer_weights_constant(L, name);
      const CodeSpec spec{out_type, static_cast<float>(q.scale)};
      const Id y = L.conv ? b_.qconv2d_codes(name, x, weights, thresholds, L.params, spec)
                          : b_.qdense_codes(name, x, weights, thresholds, spec);
      check_activation_rank(g_.value(qn.outputs[0]), "value");
      bind_quantized(qn.outputs[0], checked(y, n));
      return;
    }
    // Float output (§6): y = scale * acc + bias with the leading affine ops folded in.
    const size_t prefix = L.chain.affine_prefix();
    std::vector<double> m, a;
    fold_affine_prefix(L, prefix, &m, &a);
    std::vector<double> scale(o), bias(o);
    for (size_t c = 0; c < o; ++c) {
      scale[c] = step[c] * L.alpha * m[c];
      bias[c] = L.bias_term[c] * m[c] + a[c];
    }
    const int value = absorb_chain(L, prefix);
    const std::string& name = g_.value(value).name;
    const std::vector<int32_t> od = {static_cast<int32_t>(o)};
    const Id s = checked(b_.constant_f32(name + ".scale", od, to_floats(scale)), n);
    const Id b = checked(b_.constant_f32(name + ".bias", od, to_floats(bias)), n);
    const Id weights = layer_weights_constant(L, name);
    const Id y = L.conv ? b_.qconv2d_float(name, x, weights, s, b, L.params) : b_.qdense_float(name, x, weights, s, b);
    bind_float_value(value, checked(y, n));
  }

  void lower_float_layer(Layer& L) {
    const Node& n = *L.node;
    const size_t o = static_cast<size_t>(L.w.o);
    const RtValue& xr = rt_[static_cast<size_t>(n.inputs[0])];
    const Id x = xr.codes ? float_of_value(n.inputs[0], n) : xr.tensor;
    // BatchNorm folding: the leading affine ops scale the weights and shift the bias.
    size_t prefix = L.chain.affine_prefix();
    std::vector<double> m, a;
    fold_affine_prefix(L, prefix, &m, &a);
    std::vector<float> weights(L.w.values.size());
    const size_t k = static_cast<size_t>(L.w.k());
    for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(L.w.values[i] * L.alpha * m[i / k]);
    std::vector<float> bias(o);
    for (size_t c = 0; c < o; ++c) bias[c] = static_cast<float>(L.bias_term[c] * m[c] + a[c]);
    Activation act = Activation::kNone;
    float leaky = 0.1f;
    if (prefix < L.chain.ops.size() && !L.chain.ops[prefix].is_affine()) {
      const ChainOp& op = L.chain.ops[prefix];
      act = op.kind == ChainOp::Kind::kRelu ? Activation::kRelu : Activation::kLeakyRelu;
      leaky = static_cast<float>(op.alpha);
      ++prefix;
    }
    const int value = absorb_chain(L, prefix);
    const std::string& name = g_.value(value).name;
    const Id b = checked(b_.constant_f32(name + ".bias", {static_cast<int32_t>(o)}, bias), n);
    Id y;
    if (L.conv) {
      const Id w = checked(b_.constant_f32(name + ".weights", {static_cast<int32_t>(o), static_cast<int32_t>(L.w.kh),
                                                              static_cast<int32_t>(L.w.kw), static_cast<int32_t>(L.w.cg)},
                                           weights),
                           n);
      y = b_.conv2d(name, x, w, b, L.params, act, leaky);
    } else {
      const Id w = checked(b_.constant_f32(name + ".weights", {static_cast<int32_t>(o), static_cast<int32_t>(k)}, weights), n);
      y = b_.dense(name, x, w, b, act, leaky);
    }
    bind_float_value(value, checked(y, n));
  }

  void bind_float_value(int value, Id y) {
    check_activation_rank(g_.value(value), "value");
    bind(value, y, false);
  }

  // ---- element-wise ----

  void lower_batch_norm(const Node& n) {
    const size_t c = static_cast<size_t>(in_dims(n)[1]);
    std::vector<float> scale(c), bias(c);
    const double eps = batch_norm_epsilon(n);
    const Array &gamma = g_.constant_input(n, 1, "scale"), &beta = g_.constant_input(n, 2, "B"),
                &mean = g_.constant_input(n, 3, "mean"), &var = g_.constant_input(n, 4, "var");
    for (size_t i = 0; i < c; ++i) {
      const double s = gamma.values[i] / std::sqrt(var.values[i] + eps);
      scale[i] = static_cast<float>(s);
      bias[i] = static_cast<float>(beta.values[i] - mean.values[i] * s);
    }
    const std::string& name = out_name(n);
    const std::vector<int32_t> dims = {static_cast<int32_t>(c)};
    const Id s = checked(b_.constant_f32(name + ".scale", dims, scale), n);
    const Id b = checked(b_.constant_f32(name + ".bias", dims, bias), n);
    bind_float(n, b_.affine(name, float_of(n, 0), s, b));
  }

  void lower_relu(const Node& n) {
    const RtValue& x = input(n, 0);
    if (x.codes && b_.tensor(x.tensor).quant.min_code() >= 0) {  // codes >= 0 already: Relu changes nothing
      bind(n.outputs[0], x.tensor, true);
      return;
    }
    bind_float(n, b_.relu(out_name(n), float_of(n, 0)));
  }

  void lower_float_unary(const Node& n) {
    const Id x = float_of(n, 0);
    if (n.op_type == "LeakyRelu") bind_float(n, b_.leaky_relu(out_name(n), x, static_cast<float>(leaky_relu_alpha(n))));
    else bind_float(n, b_.sigmoid(out_name(n), x));
  }

  void lower_softmax(const Node& n) {
    const Dims& d = in_dims(n);
    const int64_t axis = normalized_axis(n, n.int_attr("axis", g_.opset >= 13 ? -1 : 1), static_cast<int64_t>(d.size()));
    // The runtime's Softmax runs over the last NHWC axis: the channels alone.
    const bool channels_only = d.size() == 2 ? axis == 1 : axis == 1 && (g_.opset >= 13 || d[2] * d[3] == 1);
    if (!channels_only) node_error(n, "softmax must run over the channel axis");
    bind_float(n, b_.softmax(out_name(n), float_of(n, 0)));
  }

  void lower_binary(const Node& n) {
    const Dims& out = g_.value(n.outputs[0]).dims;
    Id operands[2];
    for (size_t i = 0; i < 2; ++i) {
      const int id = n.inputs[i];
      if (g_.value(id).is_constant()) {
        operands[i] = constant_operand(n, id, out);
      } else {
        if (g_.value(id).dims.size() != out.size()) node_error(n, "activations of different ranks do not broadcast in NHWC");
        operands[i] = float_of(n, i);
      }
    }
    bind_float(n, n.op_type == "Add" ? b_.add(out_name(n), operands[0], operands[1])
                                     : b_.mul(out_name(n), operands[0], operands[1]));
  }

  // ---- pooling ----

  void lower_pool(const Node& n) {
    const bool max = n.op_type == "MaxPool";
    const Dims& x = in_dims(n);
    const std::vector<int64_t> kernel = n.ints_attr("kernel_shape", {});
    const Window2D w = window_2d(n, x[2], x[3], kernel[0], kernel[1], true);
    if (w.dh != 1 || w.dw != 1) node_error(n, "dilated pooling is not supported");
    PoolParams p;
    p.kh = static_cast<int32_t>(w.kh), p.kw = static_cast<int32_t>(w.kw);
    p.stride_h = static_cast<int32_t>(w.sh), p.stride_w = static_cast<int32_t>(w.sw);
    p.pad_top = static_cast<int32_t>(w.pt), p.pad_left = static_cast<int32_t>(w.pl);
    p.pad_bottom = static_cast<int32_t>(w.pb), p.pad_right = static_cast<int32_t>(w.pr);
    p.count_include_pad = !max && n.int_attr("count_include_pad", 0) != 0;
    // ceil_mode: pad the bottom/right so the runtime's floor rule gives ONNX's output size; the
    // extra padding never counts (max ignores padding, average counts valid elements).
    const int64_t extra_h = (w.oh - 1) * w.sh + w.kh - (x[2] + w.pt + w.pb);
    const int64_t extra_w = (w.ow - 1) * w.sw + w.kw - (x[3] + w.pl + w.pr);
    if ((extra_h > 0 || extra_w > 0) && p.count_include_pad)
      node_error(n, "ceil_mode with count_include_pad is not supported");
    p.pad_bottom += static_cast<int32_t>(std::max<int64_t>(extra_h, 0));
    p.pad_right += static_cast<int32_t>(std::max<int64_t>(extra_w, 0));
    const std::string& name = out_name(n);
    if (max) bind_like_input(n, b_.max_pool(name, input(n, 0).tensor, p));
    else bind_float(n, b_.avg_pool(name, float_of(n, 0), p));
  }

  void lower_global_pool(const Node& n) { bind_float(n, b_.global_avg_pool(out_name(n), input(n, 0).tensor)); }

  // ---- layout ----

  void lower_concat(const Node& n) {
    const Dims& out = g_.value(n.outputs[0]).dims;
    if (normalized_axis(n, n.int_attr("axis", 1), static_cast<int64_t>(out.size())) != 1)
      node_error(n, "only concatenation along channels is supported");
    if (n.inputs.size() > 8) node_error(n, "the runtime concatenates at most 8 inputs");
    bool all_codes = true;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const RtValue& r = input(n, i);
      const TensorDesc& t = b_.tensor(r.tensor);
      const TensorDesc& first = b_.tensor(input(n, 0).tensor);
      all_codes = all_codes && r.codes && t.quant == first.quant && t.scale == first.scale;
    }
    std::vector<Id> xs;
    for (size_t i = 0; i < n.inputs.size(); ++i) xs.push_back(all_codes ? input(n, i).tensor : float_of(n, i));
    if (xs.size() == 1) {
      bind(n.outputs[0], xs[0], all_codes);
      return;
    }
    const Id y = checked(b_.concat(out_name(n), xs), n);
    if (all_codes) bind_like_input(n, y);
    else bind_float(n, y);
  }

  void lower_space_depth(const Node& n) {
    const int32_t block = static_cast<int32_t>(n.int_attr("blocksize", 0));
    const Id x = input(n, 0).tensor;
    const std::string& name = out_name(n);
    if (n.op_type == "SpaceToDepth") {
      bind_like_input(n, b_.space_to_depth(name, x, block));
      return;
    }
    const DepthToSpaceMode mode = n.string_attr("mode", "DCR") == "CRD" ? DepthToSpaceMode::kCRD : DepthToSpaceMode::kDCR;
    bind_like_input(n, b_.depth_to_space(name, x, block, mode));
  }

  void lower_resize(const Node& n) {
    const Dims& x = in_dims(n);
    const ResizePlan plan = resize_plan(g_, n);
    if (x.size() != 4 || plan.out[0] != x[0] || plan.out[1] != x[1]) node_error(n, "only spatial resizing is supported");
    int32_t factor[2];
    for (size_t axis = 2; axis < 4; ++axis) {
      const int64_t f = plan.out[axis] / x[axis];
      if (f < 1 || plan.out[axis] != x[axis] * f) node_error(n, "only integer upscaling factors are supported");
      // The runtime repeats each input pixel f times; ONNX's index rule must do the same.
      const std::vector<int64_t> src = nearest_source_index(n, x[axis], plan.out[axis], plan.scales[axis]);
      for (int64_t i = 0; i < plan.out[axis]; ++i)
        if (src[static_cast<size_t>(i)] != i / f) node_error(n, "its nearest-neighbour rule does not repeat pixels evenly");
      factor[axis - 2] = static_cast<int32_t>(f);
    }
    bind_like_input(n, b_.resize_nearest(out_name(n), input(n, 0).tensor, factor[0], factor[1]));
  }

  void lower_pad(const Node& n) {
    const Dims& x = in_dims(n);
    const PadPlan plan = pad_plan(g_, n);
    const size_t rank = x.size();
    // ONNX pads (begins, ends) in NCHW dim order → runtime (before, after) pairs for the NHWC
    // shape right-aligned to rank 4.
    std::vector<size_t> order(rank);
    for (size_t k = 0; k < rank; ++k) order[k] = k;
    if (rank == 4) order = {0, 2, 3, 1};
    std::vector<int32_t> pads(8, 0);
    for (size_t k = 0; k < rank; ++k) {
      const size_t slot = 4 - rank + k;
      pads[2 * slot] = static_cast<int32_t>(plan.pads[order[k]]);
      pads[2 * slot + 1] = static_cast<int32_t>(plan.pads[order[k] + rank]);
    }
    const RtValue& r = input(n, 0);
    if (r.codes && plan.value != 0.0) {
      bind_float(n, b_.pad(out_name(n), float_of(n, 0), pads, static_cast<float>(plan.value)));
      return;
    }
    bind_like_input(n, b_.pad(out_name(n), r.tensor, pads, static_cast<float>(plan.value)));
  }

  void lower_reshape(const Node& n) {
    const Dims& x = in_dims(n);
    const Dims& out = g_.value(n.outputs[0]).dims;
    const std::vector<int>& readers = consumers_[static_cast<size_t>(n.outputs[0])];
    const bool dense_readers =
        !readers.empty() && !g_.is_graph_output(n.outputs[0]) && std::all_of(readers.begin(), readers.end(), [&](int k) {
          const Node& m = g_.nodes[static_cast<size_t>(k)];
          return (m.op_type == "Gemm" || m.op_type == "MatMul") && m.inputs[0] == n.outputs[0] &&
                 std::count(m.inputs.begin(), m.inputs.end(), n.outputs[0]) == 1;
        });
    const RtValue& r = input(n, 0);
    if (x.size() == 4 && out.size() == 2 && out[0] == x[0] && dense_readers) {
      // Dense layers read the NHWC tensor directly; their weights get the matching order.
      RtValue& y = rt_[static_cast<size_t>(n.outputs[0])];
      y = r;
      y.flattened_from = x;
      return;
    }
    if (!layout_free(x) || !layout_free(out))
      node_error(n, "reshaping " + dims_string(x) + " to " + dims_string(out) +
                        " reorders NCHW data, which needs a transpose the runtime does not have");
    bind_like_input(n, b_.reshape(out_name(n), r.tensor, runtime_dims(out)));
  }

  void lower_transpose(const Node& n) {
    const std::vector<int64_t> perm = n.ints_attr("perm", {});
    for (size_t k = 0; k < perm.size(); ++k)
      if (perm[k] != static_cast<int64_t>(k))
        node_error(n, "only transposes of constants (folded) or identity permutations are supported");
    const RtValue& r = input(n, 0);
    bind(n.outputs[0], r.tensor, r.codes);
  }

  // An Identity kept because its output is a graph output that must keep its own name.
  void lower_identity(const Node& n) {
    bind_like_input(n, b_.reshape(out_name(n), input(n, 0).tensor, runtime_dims(in_dims(n))));
  }

  // ---- quantizers not fused into a layer ----

  void lower_quantizer(const Node& n) {
    const Dims& x = in_dims(n);
    std::string why;
    const std::optional<ActivationQuantizer> q = activation_quantizer(g_, n, x.size() > 1 ? x[1] : 1, &why);
    if (!q) node_error(n, "its output cannot be runtime codes: " + why);
    const RtValue& r = input(n, 0);
    if (r.codes && q->type && q->quantize_rounding) {
      // Codes re-quantized with their own scale into a range that holds them come out unchanged.
      const TensorDesc& t = b_.tensor(r.tensor);
      if (t.scale == static_cast<float>(q->scale) && t.quant.min_code() >= q->type->min_code() &&
          t.quant.max_code() <= q->type->max_code()) {
        bind_quantized(n.outputs[0], r.tensor);
        return;
      }
    }
    if (!q->quantize_rounding) node_error(n, q->quantize_obstacle);
    check_activation_rank(g_.value(n.outputs[0]), "value");
    const Id y = b_.quantize(out_name(n), float_of(n, 0), CodeSpec{*q->type, static_cast<float>(q->scale)}, *q->quantize_rounding);
    bind_quantized(n.outputs[0], checked(y, n));
  }

  const Graph& g_;
  ModelBuilder& b_;
  LoweringOptions options_;
  std::vector<std::vector<int>> consumers_;
  std::vector<bool> absorbed_;
  std::vector<RtValue> rt_;
  Lowered result_;
};

}  // namespace

Lowered lower_to_runtime(const Graph& g, ModelBuilder& builder, const LoweringOptions& options) {
  return Lowering(g, builder, options).run();
}

}  // namespace lowbit::converter
