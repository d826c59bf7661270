// The zoo: layer lists (the exporter's contract), shapes, parameter counts, space-to-depth order,
// the first/last layer policy and gradients reaching every latent weight.
#include <gtest/gtest.h>
#include <torch/types.h>

#include <string>
#include <vector>

#include "networks.h"

namespace lowbit::trainer {
namespace {

NetworkConfig network_config(const std::string& name) {
  NetworkConfig c;
  c.name = name;
  if (!c.quantized()) {
    c.weight_quantizer.kind = WeightQuantizerKind::kNone;
    c.activation.kind = ActivationKind::kRelu;
  }
  return c;
}

std::vector<std::string> layer_names(const Network& network) {
  std::vector<std::string> names;
  for (const Layer& layer : network->layers()) names.push_back(layer.name);
  return names;
}

const Layer& layer_named(const Network& network, const std::string& name) {
  for (const Layer& layer : network->layers())
    if (layer.name == name) return layer;
  throw std::out_of_range("no layer " + name);
}

int64_t parameter_count(const Network& network) {
  int64_t count = 0;
  for (const torch::Tensor& p : network->parameters()) count += p.numel();
  return count;
}

TEST(Networks, LmnetV1LayersAndBlueoilParameterCount) {
  Network net = build_network(network_config("LmnetV1Quantize"), 3, 10, 32, 32);
  EXPECT_EQ(layer_names(net),
            (std::vector<std::string>{"conv1", "bn1", "act1", "conv2", "bn2", "act2", "s2d2", "conv3", "bn3", "act3",
                                      "conv4", "bn4", "act4", "s2d4", "conv5", "bn5", "act5", "s2d5", "conv6", "bn6",
                                      "act6", "dropout6", "conv7", "pool7"}));
  EXPECT_EQ(parameter_count(net), 717226);  // REFERENCE.md §2 (3-channel input, 10 classes)
  const torch::Tensor logits = net->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 10}));
  // Defaults: conv1 binary (float input), conv7 float with bias, act6 a ReLU feeding it.
  EXPECT_EQ(layer_named(net, "conv1").module->as<QuantConv2dImpl>()->quantizer.kind,
            WeightQuantizerKind::kBinaryMeanScaling);
  const auto conv7 = layer_named(net, "conv7").module->as<QuantConv2dImpl>();
  EXPECT_EQ(conv7->quantizer.kind, WeightQuantizerKind::kNone);
  EXPECT_TRUE(conv7->bias.defined());
  EXPECT_EQ(layer_named(net, "act6").module->as<ActivationImpl>()->config.kind, ActivationKind::kRelu);
  EXPECT_EQ(layer_named(net, "act5").module->as<ActivationImpl>()->config.kind, ActivationKind::kLinearMidTreadHalf);
  // State-dict keys follow layer names.
  const auto params = net->named_parameters();
  EXPECT_TRUE(params.contains("conv3.weight"));
  EXPECT_TRUE(params.contains("bn3.weight"));
  EXPECT_TRUE(net->named_buffers().contains("bn3.running_mean"));
}

TEST(Networks, FirstAndLastLayerPolicy) {
  NetworkConfig c = network_config("LmnetV1Quantize");
  c.quantize_first_layer = false;
  c.quantize_last_layer = true;
  Network net = build_network(c, 1, 10, 32, 32);
  EXPECT_EQ(layer_named(net, "conv1").module->as<QuantConv2dImpl>()->quantizer.kind, WeightQuantizerKind::kNone);
  EXPECT_EQ(layer_named(net, "conv7").module->as<QuantConv2dImpl>()->quantizer.kind,
            WeightQuantizerKind::kBinaryMeanScaling);
  EXPECT_EQ(layer_named(net, "act6").module->as<ActivationImpl>()->config.kind, ActivationKind::kLinearMidTreadHalf);
}

TEST(Networks, FloatTwinHasTheSameLayersWithoutQuantizers) {
  const Network twin = build_network(network_config("LmnetV1"), 1, 10, 32, 32);
  const Network quantized = build_network(network_config("LmnetV1Quantize"), 1, 10, 32, 32);
  EXPECT_EQ(layer_names(twin), layer_names(quantized));
  EXPECT_EQ(parameter_count(twin), parameter_count(quantized));
  for (const Layer& layer : twin->layers()) {
    if (layer.kind == LayerKind::kConv) {
      EXPECT_EQ(layer.module->as<QuantConv2dImpl>()->quantizer.kind, WeightQuantizerKind::kNone) << layer.name;
    }
    if (layer.kind == LayerKind::kActivation) {
      EXPECT_EQ(layer.module->as<ActivationImpl>()->config.kind, ActivationKind::kRelu) << layer.name;
    }
  }
}

TEST(Networks, LmResnetPreActivationBlocksWithSpaceToDepth) {
  NetworkConfig c = network_config("LmResnetQuantize");
  c.base_channels = 8;
  Network net = build_network(c, 3, 7, 32, 32);
  int adds = 0, shortcuts = 0, s2d = 0;
  for (const Layer& layer : net->layers()) {
    adds += layer.kind == LayerKind::kAdd;
    s2d += layer.kind == LayerKind::kSpaceToDepth;
    shortcuts += layer.name.find("_shortcut") != std::string::npos;
  }
  EXPECT_EQ(adds, 8);  // ResNet-18: 4 stages x 2 basic blocks
  EXPECT_EQ(s2d, 3);
  EXPECT_EQ(shortcuts, 3);
  EXPECT_EQ(layer_names(net).front(), "conv1");
  const std::vector<std::string> block = {"layer2_block1_bn1",   "layer2_block1_act1",  "layer2_block1_s2d",
                                          "layer2_block1_shortcut", "layer2_block1_conv1", "layer2_block1_bn2",
                                          "layer2_block1_act2",  "layer2_block1_conv2", "layer2_block1_add"};
  const std::vector<std::string> names = layer_names(net);
  const auto start = std::find(names.begin(), names.end(), block.front());
  ASSERT_NE(start, names.end());
  EXPECT_EQ(std::vector<std::string>(start, start + static_cast<ptrdiff_t>(block.size())), block);
  EXPECT_EQ(layer_named(net, "layer4_block2_conv2").out_channels, 64);
  EXPECT_EQ(net->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 7}));
  EXPECT_THROW(build_network(c, 3, 7, 28, 28), std::invalid_argument);  // 28 is not a multiple of 8
}

TEST(Networks, SpaceToDepthUsesOnnxChannelOrder) {
  const int64_t n = 2, c = 3, h = 4, w = 6, b = 2;
  const torch::Tensor x = torch::arange(n * c * h * w, torch::kFloat32).reshape({n, c, h, w});
  const torch::Tensor y = SpaceToDepthImpl(static_cast<int>(b)).forward(x);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{n, b * b * c, h / b, w / b}));
  const auto in = x.accessor<float, 4>();
  const torch::Tensor y_contiguous = y.contiguous();
  const auto out = y_contiguous.accessor<float, 4>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t by = 0; by < b; ++by)
      for (int64_t bx = 0; bx < b; ++bx)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t oy = 0; oy < h / b; ++oy)
            for (int64_t ox = 0; ox < w / b; ++ox)
              ASSERT_EQ(out[i][(by * b + bx) * c + ch][oy][ox], in[i][ch][oy * b + by][ox * b + bx]);
}

TEST(Networks, GradientsReachEveryLatentWeight) {
  Network net = build_network(network_config("TinyNetQuantize"), 1, 10, 16, 16);
  const torch::Tensor loss = net->forward(torch::randn({4, 1, 16, 16})).pow(2).sum();
  loss.backward();
  for (const auto& item : net->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<float>(), 0.0f) << item.key();
  }
}

}  // namespace
}  // namespace lowbit::trainer
