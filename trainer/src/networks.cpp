#include "networks.h"

#include <torch/nn/init.h>
#include <torch/nn/functional/conv.h>

#include <cmath>
#include <stdexcept>

#include "quantizers.h"

namespace lowbit::trainer {

QuantConv2dImpl::QuantConv2dImpl(int in_channels, int out_channels, int kernel, bool with_bias,
                                 WeightQuantizerConfig quantizer)
    : in_channels(in_channels), out_channels(out_channels), kernel(kernel), padding(kernel / 2), quantizer(quantizer) {
  // LibTorch's Conv2d initialisation, so float twins train as torch users expect.
  weight = register_parameter("weight", torch::empty({out_channels, in_channels, kernel, kernel}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_channels * kernel * kernel));
    bias = register_parameter("bias", torch::empty({out_channels}));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

torch::Tensor QuantConv2dImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, quantize_weight(weight, quantizer), bias, 1, padding);
}

torch::Tensor ActivationImpl::forward(const torch::Tensor& x) { return apply_activation(x, config); }

torch::Tensor SpaceToDepthImpl::forward(const torch::Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), b = block_size;
  return x.reshape({n, c, h / b, b, w / b, b}).permute({0, 3, 5, 1, 2, 4}).reshape({n, b * b * c, h / b, w / b});
}

torch::Tensor DropoutImpl::forward(const torch::Tensor& x) { return torch::dropout(x, rate, is_training()); }

int NetworkImpl::add_layer(Layer layer) {
  if (layer.module) register_module(layer.name, layer.module);
  layers_.push_back(std::move(layer));
  return static_cast<int>(layers_.size()) - 1;
}

torch::Tensor NetworkImpl::forward(const torch::Tensor& images) {
  std::vector<torch::Tensor> outputs(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    const auto input = [&](size_t k) -> const torch::Tensor& {
      const int index = layer.inputs[k];
      return index == Layer::kNetworkInput ? images : outputs[static_cast<size_t>(index)];
    };
    switch (layer.kind) {
      case LayerKind::kConv: outputs[i] = layer.module->as<QuantConv2dImpl>()->forward(input(0)); break;
      case LayerKind::kBatchNorm: outputs[i] = layer.module->as<torch::nn::BatchNorm2dImpl>()->forward(input(0)); break;
      case LayerKind::kActivation: outputs[i] = layer.module->as<ActivationImpl>()->forward(input(0)); break;
      case LayerKind::kSpaceToDepth: outputs[i] = layer.module->as<SpaceToDepthImpl>()->forward(input(0)); break;
      case LayerKind::kDropout: outputs[i] = layer.module->as<DropoutImpl>()->forward(input(0)); break;
      case LayerKind::kAdd: outputs[i] = input(0) + input(1); break;
      case LayerKind::kGlobalAvgPool: outputs[i] = input(0).mean({2, 3}); break;
    }
  }
  return outputs.back();
}

namespace {

// Appends layers to a network, tracking channel counts so convs know their input width.
class Builder {
 public:
  Builder(NetworkImpl& network, int in_channels) : network_(network), in_channels_(in_channels) {}

  int conv(const std::string& name, int input, int out_channels, int kernel, bool bias,
           const WeightQuantizerConfig& quantizer) {
    auto module = std::make_shared<QuantConv2dImpl>(channels(input), out_channels, kernel, bias, quantizer);
    return add(name, LayerKind::kConv, {input}, module, out_channels);
  }
  int batch_norm(const std::string& name, int input) {
    auto module = std::make_shared<torch::nn::BatchNorm2dImpl>(channels(input));
    return add(name, LayerKind::kBatchNorm, {input}, module, channels(input));
  }
  int activation(const std::string& name, int input, const ActivationConfig& config) {
    return add(name, LayerKind::kActivation, {input}, std::make_shared<ActivationImpl>(config), channels(input));
  }
  int space_to_depth(const std::string& name, int input, int block_size) {
    return add(name, LayerKind::kSpaceToDepth, {input}, std::make_shared<SpaceToDepthImpl>(block_size),
               channels(input) * block_size * block_size);
  }
  int dropout(const std::string& name, int input, double rate) {
    return add(name, LayerKind::kDropout, {input}, std::make_shared<DropoutImpl>(rate), channels(input));
  }
  int add_tensors(const std::string& name, int a, int b) {
    if (channels(a) != channels(b)) throw std::logic_error(name + ": adding different channel counts");
    return add(name, LayerKind::kAdd, {a, b}, nullptr, channels(a));
  }
  int global_avg_pool(const std::string& name, int input) {
    return add(name, LayerKind::kGlobalAvgPool, {input}, nullptr, channels(input));
  }
  // conv<i> -> bn<i> -> act<i>, the block of LmnetV1 and TinyNet.
  int conv_block(const std::string& index, int input, int out_channels, int kernel,
                 const WeightQuantizerConfig& quantizer, const ActivationConfig& activation_config) {
    const int c = conv("conv" + index, input, out_channels, kernel, false, quantizer);
    return activation("act" + index, batch_norm("bn" + index, c), activation_config);
  }

 private:
  int channels(int layer) const {
    return layer == Layer::kNetworkInput ? in_channels_ : network_.layers()[static_cast<size_t>(layer)].out_channels;
  }
  int add(const std::string& name, LayerKind kind, std::vector<int> inputs, std::shared_ptr<torch::nn::Module> module,
          int out_channels) {
    return network_.add_layer(Layer{name, kind, std::move(inputs), std::move(module), out_channels});
  }

  NetworkImpl& network_;
  int in_channels_;
};

WeightQuantizerConfig float_weights() {
  WeightQuantizerConfig weights;
  weights.kind = WeightQuantizerKind::kNone;
  return weights;
}

ActivationConfig relu() {
  ActivationConfig activation;
  activation.kind = ActivationKind::kRelu;
  return activation;
}

// The per-layer choices every zoo network derives from the config.
struct LayerPolicy {
  explicit LayerPolicy(const NetworkConfig& config)
      : weights(config.weight_quantizer),
        first_weights(config.quantize_first_layer ? config.weight_quantizer : float_weights()),
        last_weights(config.quantize_last_layer ? config.weight_quantizer : float_weights()),
        activation(config.activation),
        // A float classifier reads a float ReLU (Blueoil's LmnetV1 conv6); a quantized one reads codes.
        before_classifier(config.quantize_last_layer ? config.activation : relu()) {}
  WeightQuantizerConfig weights, first_weights, last_weights;
  ActivationConfig activation, before_classifier;
};

// dropout<i> -> conv<i+1> (the 1x1 classifier, with bias) -> pool<i+1> (global average).
void classifier_head(Builder& b, const LayerPolicy& p, const NetworkConfig& config, int index, int x, int classes) {
  const std::string next = std::to_string(index + 1);
  x = b.dropout("dropout" + std::to_string(index), x, config.dropout);
  x = b.conv("conv" + next, x, classes, 1, true, p.last_weights);
  b.global_avg_pool("pool" + next, x);
}

void build_lmnet_v1(Builder& b, const LayerPolicy& p, const NetworkConfig& config, int classes) {
  int x = b.conv_block("1", Layer::kNetworkInput, 32, 3, p.first_weights, p.activation);
  x = b.conv_block("2", x, 64, 3, p.weights, p.activation);
  x = b.space_to_depth("s2d2", x, 2);
  x = b.conv_block("3", x, 128, 3, p.weights, p.activation);
  x = b.conv_block("4", x, 64, 3, p.weights, p.activation);
  x = b.space_to_depth("s2d4", x, 2);
  x = b.conv_block("5", x, 128, 3, p.weights, p.activation);
  x = b.space_to_depth("s2d5", x, 2);
  x = b.conv_block("6", x, 64, 1, p.weights, p.before_classifier);
  classifier_head(b, p, config, 6, x, classes);
}

void build_lm_resnet(Builder& b, const LayerPolicy& p, const NetworkConfig& config, int classes) {
  int x = b.conv("conv1", Layer::kNetworkInput, config.base_channels, 3, false, p.first_weights);
  for (int stage = 1; stage <= 4; ++stage) {
    const int channels = config.base_channels << (stage - 1);
    for (int block = 1; block <= 2; ++block) {
      const std::string prefix = "layer" + std::to_string(stage) + "_block" + std::to_string(block) + "_";
      int pre = b.activation(prefix + "act1", b.batch_norm(prefix + "bn1", x), p.activation);
      int shortcut = x;
      if (stage > 1 && block == 1) {  // downsample: space_to_depth, then a 1x1 projection for the skip
        pre = b.space_to_depth(prefix + "s2d", pre, 2);
        shortcut = b.conv(prefix + "shortcut", pre, channels, 1, false, p.weights);
      }
      int y = b.conv(prefix + "conv1", pre, channels, 3, false, p.weights);
      y = b.activation(prefix + "act2", b.batch_norm(prefix + "bn2", y), p.activation);
      y = b.conv(prefix + "conv2", y, channels, 3, false, p.weights);
      x = b.add_tensors(prefix + "add", shortcut, y);
    }
  }
  x = b.activation("act_final", b.batch_norm("bn_final", x), p.before_classifier);
  x = b.conv("fc", x, classes, 1, true, p.last_weights);
  b.global_avg_pool("pool", x);
}

void build_tiny_net(Builder& b, const LayerPolicy& p, const NetworkConfig& config, int classes) {
  int x = b.conv_block("1", Layer::kNetworkInput, 16, 3, p.first_weights, p.activation);
  x = b.space_to_depth("s2d1", x, 2);
  x = b.conv_block("2", x, 32, 3, p.weights, p.activation);
  x = b.space_to_depth("s2d2", x, 2);
  x = b.conv_block("3", x, 64, 3, p.weights, p.before_classifier);
  classifier_head(b, p, config, 3, x, classes);
}

}  // namespace

Network build_network(const NetworkConfig& config, int in_channels, int classes, int height, int width) {
  const std::string family = config.quantized() ? config.name.substr(0, config.name.size() - 8) : config.name;
  const int divisor = family == "TinyNet" ? 4 : 8;
  if (height % divisor != 0 || width % divisor != 0)
    throw std::invalid_argument(config.name + " needs an input size divisible by " + std::to_string(divisor) +
                                ", got " + std::to_string(height) + "x" + std::to_string(width));
  if (classes < 1) throw std::invalid_argument(config.name + " needs at least one class");
  Network network(config.name);
  Builder builder(*network, in_channels);
  const LayerPolicy policy(config);
  if (family == "LmnetV1") {
    build_lmnet_v1(builder, policy, config, classes);
  } else if (family == "LmResnet") {
    build_lm_resnet(builder, policy, config, classes);
  } else if (family == "TinyNet") {
    build_tiny_net(builder, policy, config, classes);
  } else {
    throw std::invalid_argument("unknown network '" + config.name + "'");
  }
  return network;
}

}  // namespace lowbit::trainer
