#include "export.h"

#include <torch/types.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "atomic_file.h"
#include "export_onnx.h"
#include "quantizers.h"

namespace lowbit::trainer {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ONNX raw_data is little-endian");

constexpr const char* kQonnxDomain = "qonnx.custom_op.general";
constexpr const char* kInput = "input";
constexpr const char* kOutput = "logits";

// Appends initializers and nodes to a graph.
class GraphWriter {
 public:
  explicit GraphWriter(onnx::GraphProto& graph) : graph_(graph) {}

  // A float32 initializer with the tensor's dims (a 0-dim tensor is a scalar). Non-finite values
  // (a diverged training) cannot be quantized by anyone downstream, so they are an error here.
  std::string initializer(const std::string& name, const torch::Tensor& tensor) {
    const torch::Tensor t = tensor.detach().to(torch::kFloat32).contiguous();
    if (!torch::isfinite(t).all().item<bool>()) throw ExportError(name + ": holds NaN or infinite values");
    onnx::TensorProto* proto = graph_.add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx::TensorProto::FLOAT);
    for (const int64_t d : t.sizes()) proto->add_dims(d);
    proto->set_raw_data(
        std::string(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * sizeof(float)));
    return name;
  }
  std::string scalar(const std::string& name, float value) { return initializer(name, torch::full({}, value)); }

  // A node named like its one output.
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                        const std::string& output, const std::string& domain = "") {
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(name);
    if (!domain.empty()) n->set_domain(domain);
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(output);
    return *n;
  }

 private:
  onnx::GraphProto& graph_;
};

onnx::AttributeProto& attribute(onnx::NodeProto& n, const std::string& name, onnx::AttributeProto::AttributeType type) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(type);
  return *a;
}
void set_int(onnx::NodeProto& n, const std::string& name, int64_t v) {
  attribute(n, name, onnx::AttributeProto::INT).set_i(v);
}
void set_float(onnx::NodeProto& n, const std::string& name, float v) {
  attribute(n, name, onnx::AttributeProto::FLOAT).set_f(v);
}
void set_string(onnx::NodeProto& n, const std::string& name, const std::string& v) {
  attribute(n, name, onnx::AttributeProto::STRING).set_s(v);
}
void set_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  onnx::AttributeProto& a = attribute(n, name, onnx::AttributeProto::INTS);
  for (const int64_t x : v) a.add_ints(x);
}

// QONNX Quant(x, scale, zero_point = 0, bitwidth), its parameters named "<prefix>scale", ...
std::string quant_node(GraphWriter& g, const std::string& x, const std::string& name, const std::string& prefix,
                       const torch::Tensor& scale, int bits, bool is_signed, bool narrow, const char* rounding) {
  const std::string s = g.initializer(prefix + "scale", scale);
  const std::string zp = g.scalar(prefix + "zero_point", 0.0f);
  const std::string b = g.scalar(prefix + "bitwidth", static_cast<float>(bits));
  onnx::NodeProto& n = g.node("Quant", {x, s, zp, b}, name, name, kQonnxDomain);
  set_int(n, "signed", is_signed);
  set_int(n, "narrow", narrow);
  set_string(n, "rounding_mode", rounding);
  return name;
}

// The first output channel whose scale is not positive, or -1.
int64_t first_nonpositive(const torch::Tensor& scale) {
  const torch::Tensor bad = (scale.flatten() <= 0).nonzero();
  return bad.numel() == 0 ? -1 : bad[0][0].item<int64_t>();
}

// The tensor the Conv reads as W: the float weight, or its QONNX weight quantizer (onnx-interchange.md,
// "Quantizers"), whose output is exactly the trainer's `scale * code`.
std::string weight_input(GraphWriter& g, const std::string& layer, const QuantConv2dImpl& conv) {
  const std::string weight = layer + ".weight", quantized = layer + ".weight_q", prefix = layer + ".weight_";
  const WeightQuantizerConfig& q = conv.quantizer;
  if (q.kind == WeightQuantizerKind::kNone) return g.initializer(weight, conv.weight);
  const QuantizedWeight codes = weight_codes(conv.weight.detach(), q);
  switch (q.kind) {
    case WeightQuantizerKind::kBinaryMeanScaling: {
      // BipolarQuant's scale must be positive: an all-zero channel (mean|w| = 0, output 0 in the
      // trainer) has no ±scale form.
      const int64_t channel = first_nonpositive(codes.scale);
      if (channel >= 0) {
        const std::string what =
            q.per_channel ? "output channel " + std::to_string(channel) + " all zero" : "all weights zero";
        throw ExportError(
            weight + ": binary mean scaling with " + what +
            " (scale mean|w| = 0) cannot be expressed as a QONNX BipolarQuant, whose scale must be positive");
      }
      g.initializer(weight, conv.weight);
      g.node("BipolarQuant", {weight, g.initializer(prefix + "scale", codes.scale)}, quantized, quantized,
             kQonnxDomain);
      return quantized;
    }
    case WeightQuantizerKind::kTernary: {
      // TWN's threshold 0.7 mean|w| is no rounding of w / alpha, so the initializer is the
      // ternarised alpha * code and the Quant recovers the code exactly (x / alpha = ±1 or 0).
      // A channel without any weight above the threshold (all zero) has alpha 0 and codes 0:
      // any positive scale gives the same zeros.
      const torch::Tensor scale = torch::where(codes.scale > 0, codes.scale, torch::ones_like(codes.scale));
      const torch::Tensor values = codes.codes * codes.scale;
      if (!torch::equal(uniform_codes(values, scale, -1.0f, 1.0f, Rounding::kHalfEven), codes.codes))
        throw ExportError(weight + ": ternary codes do not survive Quant(alpha * code, alpha)");
      g.initializer(weight, values);
      return quant_node(g, weight, quantized, prefix, scale, 2, true, true, "ROUND");
    }
    case WeightQuantizerKind::kSignedNarrow:
      g.initializer(weight, conv.weight);
      return quant_node(g, weight, quantized, prefix, codes.scale, q.bits, true, true, "ROUND");
    case WeightQuantizerKind::kNone: break;
  }
  throw ExportError(weight + ": unknown weight quantizer kind " + std::to_string(static_cast<int>(q.kind)));
}

std::string conv_node(GraphWriter& g, const Layer& layer, const std::string& x, const std::string& output) {
  const auto& conv = *layer.module->as<QuantConv2dImpl>();
  std::vector<std::string> inputs = {x, weight_input(g, layer.name, conv)};
  if (conv.bias.defined()) inputs.push_back(g.initializer(layer.name + ".bias", conv.bias));
  onnx::NodeProto& n = g.node("Conv", inputs, layer.name, output);
  set_ints(n, "kernel_shape", {conv.kernel, conv.kernel});
  set_ints(n, "pads", {conv.padding, conv.padding, conv.padding, conv.padding});
  set_ints(n, "strides", {1, 1});
  set_ints(n, "dilations", {1, 1});
  set_int(n, "group", 1);
  return output;
}

std::string batch_norm_node(GraphWriter& g, const Layer& layer, const std::string& x, const std::string& output) {
  const auto& bn = *layer.module->as<torch::nn::BatchNorm2dImpl>();
  if (!bn.options.affine() || !bn.options.track_running_stats())
    throw ExportError(layer.name + ": only BatchNorm with affine parameters and running statistics is exported");
  const std::string& p = layer.name;
  onnx::NodeProto& n = g.node("BatchNormalization",
                              {x, g.initializer(p + ".scale", bn.weight), g.initializer(p + ".bias", bn.bias),
                               g.initializer(p + ".mean", bn.running_mean), g.initializer(p + ".var", bn.running_var)},
                              p, output);
  set_float(n, "epsilon", static_cast<float>(bn.options.eps()));
  return output;
}

std::string activation_node(GraphWriter& g, const Layer& layer, const std::string& x, const std::string& output) {
  const ActivationConfig& a = layer.module->as<ActivationImpl>()->config;
  switch (a.kind) {
    case ActivationKind::kRelu: g.node("Relu", {x}, layer.name, output); return output;
    case ActivationKind::kLinearMidTreadHalf:
      return quant_node(g, x, output, layer.name + ".", torch::full({}, activation_scale(a)), a.bits, false, false,
                        "HALF_UP");
  }
  throw ExportError(layer.name + ": unknown activation kind " + std::to_string(static_cast<int>(a.kind)));
}

void set_shape(onnx::ValueInfoProto& value, const std::string& name, const std::vector<int64_t>& dims) {
  value.set_name(name);
  onnx::TypeProto::Tensor* t = value.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (size_t k = 0; k < dims.size(); ++k) {
    onnx::TensorShapeProto::Dimension* d = t->mutable_shape()->add_dim();
    if (k == 0) d->set_dim_param("batch");  // dims[0] is a placeholder
    else d->set_dim_value(dims[k]);
  }
}

void add_metadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* e = model.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

bool is_quantizer(const std::string& op) { return op == "Quant" || op == "BipolarQuant"; }

std::string format_bytes(uint64_t bytes) {
  char text[32];
  if (bytes >= 1000000) std::snprintf(text, sizeof text, "%.2f MB", static_cast<double>(bytes) / 1e6);
  else std::snprintf(text, sizeof text, "%.1f kB", static_cast<double>(bytes) / 1e3);
  return text;
}

}  // namespace

onnx::ModelProto export_onnx(const TrainedModel& trained) {
  const Config& config = trained.config;
  if (config.task != "classification") throw ExportError("task '" + config.task + "' cannot be exported yet");
  const std::vector<Layer>& layers = trained.network->layers();
  if (layers.empty() || layers.back().kind == LayerKind::kDropout)
    throw ExportError(trained.network->zoo_name() + ": the last layer must compute the logits");

  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("lowbit");
  model.set_producer_version("1");
  for (const auto& [domain, version] : {std::pair<const char*, int>{"", 13}, {kQonnxDomain, 1}}) {
    onnx::OperatorSetIdProto* opset = model.add_opset_import();
    opset->set_domain(domain);
    opset->set_version(version);
  }
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name(trained.network->zoo_name());
  const Preprocess& pre = config.preprocess;
  set_shape(*graph.add_input(), kInput, {0, pre.channels, pre.height, pre.width});
  set_shape(*graph.add_output(), kOutput, {0, static_cast<int64_t>(trained.class_names.size())});

  GraphWriter g(graph);
  std::vector<std::string> outputs(layers.size());  // the tensor holding each layer's result
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& layer = layers[i];
    const auto input = [&](size_t k) {
      const int index = layer.inputs.at(k);
      return index == Layer::kNetworkInput ? std::string(kInput) : outputs.at(static_cast<size_t>(index));
    };
    const std::string out = i + 1 == layers.size() ? kOutput : layer.name;
    switch (layer.kind) {
      case LayerKind::kConv: outputs[i] = conv_node(g, layer, input(0), out); break;
      case LayerKind::kBatchNorm: outputs[i] = batch_norm_node(g, layer, input(0), out); break;
      case LayerKind::kActivation: outputs[i] = activation_node(g, layer, input(0), out); break;
      case LayerKind::kSpaceToDepth:
        set_int(g.node("SpaceToDepth", {input(0)}, layer.name, out), "blocksize",
                layer.module->as<SpaceToDepthImpl>()->block_size);
        outputs[i] = out;
        break;
      case LayerKind::kDropout: outputs[i] = input(0); break;
      case LayerKind::kAdd:
        g.node("Add", {input(0), input(1)}, layer.name, out);
        outputs[i] = out;
        break;
      case LayerKind::kGlobalAvgPool: {
        const std::string flat = layer.name + ".flatten";
        g.node("GlobalAveragePool", {input(0)}, layer.name, layer.name);
        outputs[i] = out == kOutput ? out : flat;
        set_int(g.node("Flatten", {layer.name}, flat, outputs[i]), "axis", 1);
        break;
      }
    }
  }

  add_metadata(model, "lowbit.task", config.task);
  add_metadata(model, "lowbit.network", trained.network->zoo_name());
  add_metadata(model, "lowbit.classes", nlohmann::json(trained.class_names).dump());
  add_metadata(model, "lowbit.preprocess", pre.to_json());
  add_metadata(model, "lowbit.config", config.text);
  return model;
}

ExportSummary summarize_onnx(const onnx::ModelProto& model) {
  ExportSummary s;
  for (const auto& e : model.metadata_props())
    if (e.key() == "lowbit.network") s.network = e.value();
  std::set<std::string> initializers;
  for (const onnx::TensorProto& t : model.graph().initializer()) {
    initializers.insert(t.name());
    uint64_t elements = 1;
    for (const int64_t d : t.dims()) elements *= static_cast<uint64_t>(d);
    s.parameters += elements;
  }
  for (const onnx::NodeProto& n : model.graph().node()) {
    ++s.nodes;
    ++s.op_counts[n.op_type()];
    if (!is_quantizer(n.op_type())) continue;
    ++(initializers.count(n.input(0)) ? s.weight_quantizers : s.activation_quantizers);
  }
  s.bytes = model.ByteSizeLong();
  return s;
}

std::string resolve_checkpoint(const std::string& target) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(target)) return target;
  const std::string best = (fs::path(target) / "checkpoints" / "best.pt").string();
  if (!fs::exists(best)) throw std::runtime_error(target + ": not a run directory (no checkpoints/best.pt)");
  return best;
}

ExportSummary export_checkpoint(const std::string& target, const std::string& out_path) {
  namespace fs = std::filesystem;
  // Checked before the (slow) checkpoint load; write_file_atomically would name its temp file.
  const fs::path parent = fs::path(out_path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    throw std::runtime_error(out_path + ": directory " + parent.string() + " does not exist");
  if (fs::is_directory(out_path)) throw std::runtime_error(out_path + ": is a directory");
  const std::string checkpoint = resolve_checkpoint(target);
  const TrainedModel trained = load_trained_model(checkpoint);
  onnx::ModelProto model;
  try {
    model = export_onnx(trained);
  } catch (const ExportError& e) {
    throw std::runtime_error(checkpoint + ": " + e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes))
    throw std::runtime_error(out_path + ": the model does not serialize (over 2 GB?)");
  write_file_atomically(out_path, bytes);
  ExportSummary s = summarize_onnx(model);
  s.checkpoint = checkpoint;
  s.out_path = out_path;
  s.bytes = bytes.size();
  return s;
}

std::string format_export_summary(const ExportSummary& s) {
  std::ostringstream text;
  text << "wrote " << s.out_path << ": " << s.network << " from " << s.checkpoint << "\n  " << s.nodes << " nodes (";
  const char* separator = "";
  for (const auto& [op, count] : s.op_counts) text << std::exchange(separator, ", ") << op << " " << count;
  text << ")\n  " << s.weight_quantizers + s.activation_quantizers << " quantizers (" << s.weight_quantizers
       << " weight, " << s.activation_quantizers << " activation), " << s.parameters << " initializer values, "
       << format_bytes(s.bytes) << "\n";
  return text.str();
}

}  // namespace lowbit::trainer
