// Trainer → `lowbit export` → converter → runtime, on networks with a few training steps behind
// them (generated data, then running statistics of the final weights):
//   (a) the converter's float64 interpreter, evaluating the exported ONNX file on its own,
//       reproduces the trainer's eval-mode forward: the integer codes of every activation quantizer
//       exactly, the logits within 1e-4 relative;
//   (b) the model `lowbit convert` makes of that file computes the interpreter's codes (`lowbit
//       verify`: 100 % identical) and the trainer's logits.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "converter/convert.h"
#include "converter/interpreter.h"
#include "converter/model_input.h"
#include "converter/verify.h"
#include "data_test_support.h"
#include "export.h"
#include "export_onnx.h"
#include "lowbit/lowbit.hpp"
#include "quantizers.h"

namespace lowbit {
namespace {

using trainer::ActivationImpl;
using trainer::ActivationKind;
using trainer::Layer;
using trainer::LayerKind;
using trainer::Network;
using trainer::TrainedModel;

using trainer::test::TempDir;

struct Scenario {
  std::string name;
  std::string network;  // the config's network section
  int channels, size;   // network input, padding included
};

void PrintTo(const Scenario& s, std::ostream* os) { *os << s.name; }

constexpr int kClasses = 10;
constexpr int kPad = 2;

// `scenario`'s network after 12 Adam steps on generated images (a fixed random pattern per class
// plus noise, padded and normalised like the real pipeline), with BatchNorm running statistics
// gathered over 40 further batches: realistic scales, no saturated or all-zero quantizers.
TrainedModel trained_ish(const Scenario& s) {
  const std::string mean = s.channels == 1 ? "[0.45]" : "[0.45, 0.5, 0.55]";
  const std::string std = s.channels == 1 ? "[0.3]" : "[0.3, 0.25, 0.28]";
  const std::string size = std::to_string(s.size);
  const std::string yaml = "network: " + s.network +
                           "\ndataset: {format: idx, path: /nonexistent}\n"
                           "preprocess: {channels: " +
                           std::to_string(s.channels) + ", input_size: [" + size + ", " + size +
                           "], pad: [2, 2, 2, 2], scale: 0.00392156862745098, mean: " + mean + ", std: " + std +
                           "}\ntraining: {steps: 12, seed: 7}\n";
  TrainedModel model;
  model.config = trainer::parse_config(yaml, s.name + ".yaml");
  for (int k = 0; k < kClasses; ++k) model.class_names.push_back("class " + std::to_string(k));
  torch::manual_seed(7);
  model.network = trainer::build_network(model.config.network, s.channels, kClasses, s.size, s.size);

  const int inner = s.size - 2 * kPad;
  const torch::Tensor patterns = torch::randint(0, 256, {kClasses, s.channels, inner, inner});
  const trainer::Preprocess& pre = model.config.preprocess;
  const torch::Tensor channel_mean = torch::tensor(pre.mean).reshape({1, -1, 1, 1});
  const torch::Tensor channel_std = torch::tensor(pre.std).reshape({1, -1, 1, 1});
  const auto batch = [&](torch::Tensor labels) {
    const torch::Tensor pixels =
        (patterns.index_select(0, labels) + 40 * torch::randn({16, s.channels, inner, inner})).clamp(0, 255);
    const torch::Tensor padded = torch::constant_pad_nd(pixels, {kPad, kPad, kPad, kPad}, 0.0);
    return (padded * pre.scale - channel_mean) / channel_std;
  };
  torch::optim::Adam optimizer(model.network->parameters(), torch::optim::AdamOptions(3e-3));
  model.network->train();
  for (int step = 0; step < 12; ++step) {
    const torch::Tensor labels = torch::randint(0, kClasses, {16}, torch::kLong);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(model.network->forward(batch(labels)), labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  {
    torch::NoGradGuard no_grad;
    for (int k = 0; k < 40; ++k) model.network->forward(batch(torch::randint(0, kClasses, {16}, torch::kLong)));
  }
  model.network->eval();
  return model;
}

// The trainer's forward with every layer's output kept (NetworkImpl::forward returns the last);
// the test checks that the last equals NetworkImpl::forward bit for bit.
std::vector<torch::Tensor> layer_outputs(const Network& network, const torch::Tensor& images) {
  const std::vector<Layer>& layers = network->layers();
  std::vector<torch::Tensor> out(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    const auto in = [&](size_t k) {
      return l.inputs[k] == Layer::kNetworkInput ? images : out[static_cast<size_t>(l.inputs[k])];
    };
    switch (l.kind) {
      case LayerKind::kConv: out[i] = l.module->as<trainer::QuantConv2dImpl>()->forward(in(0)); break;
      case LayerKind::kBatchNorm: out[i] = l.module->as<torch::nn::BatchNorm2dImpl>()->forward(in(0)); break;
      case LayerKind::kActivation: out[i] = l.module->as<ActivationImpl>()->forward(in(0)); break;
      case LayerKind::kSpaceToDepth: out[i] = l.module->as<trainer::SpaceToDepthImpl>()->forward(in(0)); break;
      case LayerKind::kDropout: out[i] = l.module->as<trainer::DropoutImpl>()->forward(in(0)); break;
      case LayerKind::kAdd: out[i] = in(0) + in(1); break;
      case LayerKind::kGlobalAvgPool: out[i] = in(0).mean({2, 3}); break;
    }
  }
  return out;
}

class ExportRoundTrip : public ::testing::TestWithParam<Scenario> {};

TEST_P(ExportRoundTrip, InterpreterAndRuntimeReproduceTheTrainer) {
  torch::set_num_threads(1);
  const Scenario& s = GetParam();
  const TempDir dir("lowbit-integration");
  TrainedModel model = trained_ish(s);
  torch::NoGradGuard no_grad;
  const std::string onnx_path = dir / (s.name + ".onnx"), model_dir = dir / s.name;
  {
    const onnx::ModelProto proto = trainer::export_onnx(model);
    std::string bytes;
    ASSERT_TRUE(proto.SerializeToString(&bytes));
    std::ofstream(onnx_path, std::ios::binary) << bytes;
  }
  const converter::ConvertResult converted = converter::convert_onnx(onnx_path, model_dir);

  // Inputs as `lowbit verify` makes them: random 8-bit images pre-processed per the exported
  // lowbit.preprocess (via meta.yaml), so the trainer sees exactly what the other two see.
  const converter::Preprocess pre = converter::read_preprocess(model_dir);
  const std::vector<converter::Pixels> images = converter::random_images(pre, 6, 3);
  const int64_t n = static_cast<int64_t>(images.size()), c = s.channels, hw = s.size;
  std::vector<std::vector<float>> nhwc;
  for (const converter::Pixels& image : images) nhwc.push_back(converter::preprocess_pixels(pre, image, "random"));
  torch::Tensor input = torch::empty({n, hw, hw, c});
  for (int64_t k = 0; k < n; ++k) std::copy(nhwc[k].begin(), nhwc[k].end(), input[k].data_ptr<float>());
  input = input.permute({0, 3, 1, 2}).contiguous();

  const std::vector<torch::Tensor> outputs = layer_outputs(model.network, input);
  const torch::Tensor logits = outputs.back();
  ASSERT_TRUE(torch::equal(logits, model.network->forward(input)));

  // (a) The interpreter on the ONNX file, all images as one batch.
  const converter::Graph graph = converter::load_onnx(onnx_path, n);
  const converter::Array array({n, c, hw, hw},
                               std::vector<double>(input.data_ptr<float>(), input.data_ptr<float>() + input.numel()));
  const converter::Evaluation evaluation = converter::evaluate(graph, {array});

  const std::vector<Layer>& layers = model.network->layers();
  size_t quantizers = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& layer = layers[i];
    if (layer.kind != LayerKind::kActivation) continue;
    const trainer::ActivationConfig& activation = layer.module->as<ActivationImpl>()->config;
    if (activation.kind == ActivationKind::kRelu) continue;
    SCOPED_TRACE(layer.name);
    ++quantizers;
    const torch::Tensor before = outputs[static_cast<size_t>(layer.inputs[0])];
    const torch::Tensor codes = trainer::activation_codes(before, activation).contiguous();
    // The forward's values are these codes times the scale, so comparing codes compares the forward.
    ASSERT_TRUE(torch::equal(outputs[i], codes * trainer::activation_scale(activation)));
    const std::vector<int32_t>& want = evaluation.quantized(graph, layer.name).codes;
    ASSERT_EQ(want.size(), static_cast<size_t>(codes.numel()));
    const float* got = codes.data_ptr<float>();
    size_t differing = 0;
    std::string first;
    for (size_t k = 0; k < want.size(); ++k) {
      if (static_cast<int32_t>(got[k]) == want[k]) continue;
      if (differing++ == 0)
        first = "[" + std::to_string(k) + "] trainer " + std::to_string(got[k]) +
                " (x = " + std::to_string(before.flatten()[static_cast<int64_t>(k)].item<float>()) + "), interpreter " +
                std::to_string(want[k]) + " (x = " +
                std::to_string(evaluation.value(graph, layers[static_cast<size_t>(layer.inputs[0])].name).values[k]) +
                ")";
    }
    EXPECT_EQ(differing, 0u) << "of " << want.size() << " codes; first " << first;
    const std::set<int32_t> distinct(want.begin(), want.end());
    // Every scenario reaches at least four levels (both, at 1 bit): the comparison is not vacuous.
    EXPECT_GE(distinct.size(), std::min<size_t>(4, size_t{1} << activation.bits));
  }
  EXPECT_GT(quantizers, 0u);

  // Logits: float32 (trainer) against float64 (interpreter) on identical codes differ only by the
  // float32 rounding of the float layers (the first conv and BatchNorm before the first quantizer,
  // the BatchNorm, conv and mean of the head): relative ~1e-6 per operation over at most a few
  // thousand terms, far below 1e-4 of the logits' magnitude.
  const converter::Array& interpreted = evaluation.value(graph, "logits");
  ASSERT_EQ(interpreted.size(), static_cast<size_t>(logits.numel()));
  const double magnitude = 1.0 + logits.abs().max().item<double>();
  double max_error = 0;
  for (size_t k = 0; k < interpreted.size(); ++k)
    max_error = std::max(max_error,
                         std::fabs(interpreted.values[k] - logits.flatten()[static_cast<int64_t>(k)].item<double>()));
  EXPECT_LE(max_error, 1e-4 * magnitude);

  // (b) The converted model: `lowbit verify` (its codes against the interpreter's, per layer) ...
  const converter::VerifyReport report = converter::verify_model(onnx_path, model_dir, images);
  EXPECT_GT(report.codes, 0u);
  EXPECT_EQ(report.identical_codes, report.codes) << converter::format_verify_report(report);
  EXPECT_EQ(report.identical_top1, report.inputs) << converter::format_verify_report(report);
  // ... and its logits against the trainer's (float32 on both sides, BatchNorm folded differently).
  std::string error;
  Model runtime = Model::load(converted.model_path, &error);
  ASSERT_TRUE(runtime) << error;
  for (int64_t k = 0; k < n; ++k) {
    ASSERT_TRUE(runtime.set_input(0, nhwc[static_cast<size_t>(k)]));
    ASSERT_TRUE(runtime.run());
    const std::vector<float> got = runtime.output(0);
    ASSERT_EQ(got.size(), static_cast<size_t>(kClasses));
    for (int j = 0; j < kClasses; ++j)
      EXPECT_NEAR(got[j], logits[k][j].item<float>(), 1e-4 * magnitude) << "image " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, ExportRoundTrip,
    ::testing::Values(
        Scenario{"TinyNetQuantize_W1A2", "{name: TinyNetQuantize}", 1, 16},
        Scenario{"LmnetV1Quantize_W1A2_RGB", "{name: LmnetV1Quantize}", 3, 16},
        Scenario{"TinyNetQuantize_PerTensorBinary_A1",
                 "{name: TinyNetQuantize, weight_quantizer: {kind: binary_mean_scaling, per_channel: false}, "
                 "activation_quantizer: {kind: linear_mid_tread_half, bits: 1, max: 1.0}}",
                 1, 16},
        Scenario{"TinyNetQuantize_Ternary_A3_QuantizedLast",
                 "{name: TinyNetQuantize, weight_quantizer: {kind: ternary, per_channel: true}, "
                 "activation_quantizer: {kind: linear_mid_tread_half, bits: 3, max: 4.0}, quantize_last_layer: true}",
                 1, 16},
        Scenario{"TinyNetQuantize_SignedNarrow3_FloatFirst",
                 "{name: TinyNetQuantize, weight_quantizer: {kind: signed_narrow, bits: 3, per_channel: false}, "
                 "quantize_first_layer: false}",
                 1, 16},
        Scenario{"LmResnetQuantize_W1A2", "{name: LmResnetQuantize, base_channels: 8}", 1, 16}),
    [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

}  // namespace
}  // namespace lowbit
