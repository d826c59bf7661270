// The classification zoo as a flat list of named layers, so that the forward pass and the ONNX
// exporter walk the same description.
//
// Module naming scheme (what the exporter maps to ONNX nodes and initializers):
//   * Every layer is one entry of Network::layers(), in execution order, with a unique name; a
//     layer with parameters registers its module under that name, so state-dict keys are
//     "<layer>.weight", "<layer>.bias", "<layer>.running_mean", ... .
//   * Kinds: kConv (QuantConv2d: quantized or float weight, optional bias, stride 1, "same"
//     padding), kBatchNorm (torch BatchNorm2d), kActivation (ReLU or the activation quantizer;
//     Activation module), kSpaceToDepth (ONNX channel order), kDropout (training only, not
//     exported), kAdd (two inputs), kGlobalAvgPool (ONNX GlobalAveragePool + Flatten: [N, C]).
//   * inputs: indices into layers(); kNetworkInput is the image. The last layer is the output
//     (logits, [N, classes]).
//   * LmnetV1[Quantize]: conv1 bn1 act1 conv2 bn2 act2 s2d2 conv3 bn3 act3 conv4 bn4 act4 s2d4
//     conv5 bn5 act5 s2d5 conv6 bn6 act6 dropout6 conv7 pool7. act6 is a ReLU unless the last
//     layer is quantized; conv7 is the classifier (1x1, bias).
//   * LmResnet[Quantize]: conv1 (stem), then per stage s = 1..4 and block b = 1..2 the
//     pre-activation block "layer<s>_block<b>_": bn1 act1 [s2d shortcut] conv1 bn2 act2 conv2 add,
//     where the first block of stages 2..4 downsamples: s2d after act1, and a 1x1 conv "shortcut"
//     on that; the other blocks add their input. Then bn_final act_final fc (1x1, bias) pool.
//   * TinyNet[Quantize]: conv1 bn1 act1 s2d1 conv2 bn2 act2 s2d2 conv3 bn3 act3 dropout3 conv4 (1x1,
//     bias) pool4.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>

#include <memory>
#include <string>
#include <vector>

#include "config.h"

namespace lowbit::trainer {

class QuantConv2dImpl : public torch::nn::Module {
 public:
  QuantConv2dImpl(int in_channels, int out_channels, int kernel, bool bias, WeightQuantizerConfig quantizer);
  torch::Tensor forward(const torch::Tensor& x);

  int in_channels, out_channels, kernel, padding;
  WeightQuantizerConfig quantizer;  // kind kNone: a float conv
  torch::Tensor weight;             // [out, in, kernel, kernel], the latent float weight
  torch::Tensor bias;               // [out] or undefined
};

class ActivationImpl : public torch::nn::Module {
 public:
  explicit ActivationImpl(ActivationConfig config) : config(config) {}
  torch::Tensor forward(const torch::Tensor& x);
  ActivationConfig config;
};

class SpaceToDepthImpl : public torch::nn::Module {
 public:
  explicit SpaceToDepthImpl(int block_size) : block_size(block_size) {}
  // Output channel (by * b + bx) * C + c, as ONNX SpaceToDepth.
  torch::Tensor forward(const torch::Tensor& x);
  int block_size;
};

class DropoutImpl : public torch::nn::Module {
 public:
  explicit DropoutImpl(double rate) : rate(rate) {}
  torch::Tensor forward(const torch::Tensor& x);
  double rate;
};

enum class LayerKind { kConv, kBatchNorm, kActivation, kSpaceToDepth, kDropout, kAdd, kGlobalAvgPool };

struct Layer {
  static constexpr int kNetworkInput = -1;
  std::string name;
  LayerKind kind;
  std::vector<int> inputs;
  std::shared_ptr<torch::nn::Module> module;  // null for kAdd and kGlobalAvgPool
  int out_channels = 0;
};

class NetworkImpl : public torch::nn::Module {
 public:
  explicit NetworkImpl(std::string zoo_name) : zoo_name_(std::move(zoo_name)) {}
  torch::Tensor forward(const torch::Tensor& images);

  const std::string& zoo_name() const { return zoo_name_; }
  const std::vector<Layer>& layers() const { return layers_; }

  // Builders (used by build_network): each appends a layer and returns its index.
  int add_layer(Layer layer);

 private:
  std::string zoo_name_;
  std::vector<Layer> layers_;
};
TORCH_MODULE(Network);

// The zoo network `config.name` for images of `in_channels` x height x width and `classes` outputs.
// Throws std::invalid_argument when the input size does not fit the network (LmnetV1 and
// LmResnet need height and width divisible by 8, TinyNet by 4).
Network build_network(const NetworkConfig& config, int in_channels, int classes, int height, int width);

}  // namespace lowbit::trainer
