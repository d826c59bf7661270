// End to end: an LmnetV1Quantize-shaped QONNX graph as the trainer exports it
// (docs/onnx-interchange.md; random weights) converts through the `lowbit convert` command, writes
// model.lbm and meta.yaml, and the runtime reproduces the interpreter.
#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>

#include "conversion_check.h"
#include "converter/cli.h"

namespace lowbit::converter::test {
namespace {

constexpr float kActScale = 2.0f / 3.0f;  // 2 bits, max 2.0

// LmnetV1Quantize (REFERENCE.md §2) on a 1x32x32 image with 10 classes, W1A2.
class LmnetV1Onnx {
 public:
  explicit LmnetV1Onnx(uint32_t seed) : rng_(seed) {}

  OnnxMaker make() {
    m_.input("input", {1, 1, 32, 32});
    std::string x = block("input", "conv1", 1, 32, 3);
    x = block(x, "conv2", 32, 64, 3);
    x = m_.node("SpaceToDepth", {x}, "s2d1", {Attr::i("blocksize", 2)});
    x = block(x, "conv3", 256, 128, 3);
    x = block(x, "conv4", 128, 64, 3);
    x = m_.node("SpaceToDepth", {x}, "s2d2", {Attr::i("blocksize", 2)});
    x = block(x, "conv5", 256, 128, 3);
    x = m_.node("SpaceToDepth", {x}, "s2d3", {Attr::i("blocksize", 2)});
    // conv6 keeps a float ReLU activation; conv7 is the float classifier with bias.
    conv_bn(x, "conv6", 512, 64, 1);
    m_.node("Relu", {"conv6.bn"}, "conv6.relu");
    m_.conv("conv6.relu", m_.constant("conv7.weight", {10, 64, 1, 1}, rng_.normal(640, 0.2f)),
            m_.constant("conv7.bias", {10}, rng_.normal(10, 0.1f)), "conv7", 1, 0);
    m_.node("GlobalAveragePool", {"conv7"}, "pool");
    m_.node("Flatten", {"pool"}, "logits", {Attr::i("axis", 1)});
    m_.output("logits");
    m_.metadata("lowbit.task", "classification");
    m_.metadata("lowbit.network", "LmnetV1Quantize");
    m_.metadata("lowbit.classes", R"(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                      "Sneaker", "Bag", "Ankle boot"])");
    m_.metadata("lowbit.preprocess", R"({"channels": 1, "input_size": [32, 32], "resize": "none", "pad": [2, 2, 2, 2],
                                         "pad_value": 0, "scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530]})");
    m_.metadata("lowbit.config", "network: LmnetV1Quantize\n");
    return m_;
  }

  // A pre-processed Fashion-MNIST-like image: padded, normalized.
  std::vector<float> image() {
    std::vector<float> x(32 * 32, (0.0f - 0.2860f) / 0.3530f);
    std::uniform_int_distribution<int> pixel(0, 255);
    for (int y = 2; y < 30; ++y)
      for (int c = 2; c < 30; ++c)
        x[static_cast<size_t>(y * 32 + c)] = (static_cast<float>(pixel(rng_.engine())) * 0.00392156862745098f - 0.2860f) / 0.3530f;
    return x;
  }

 private:
  void conv_bn(const std::string& x, const std::string& name, int64_t cin, int64_t cout, int64_t kernel) {
    const size_t wn = static_cast<size_t>(cout * cin * kernel * kernel);
    const std::vector<float> w = rng_.normal(wn, 0.1f);
    float mean_abs = 0;  // the exporter writes alpha = mean(|w|) per output channel
    std::vector<float> alpha(static_cast<size_t>(cout));
    for (size_t o = 0; o < alpha.size(); ++o) {
      mean_abs = 0;
      for (size_t i = 0; i < wn / alpha.size(); ++i) mean_abs += std::fabs(w[o * (wn / alpha.size()) + i]);
      alpha[o] = mean_abs / static_cast<float>(wn / alpha.size());
    }
    const std::string wq = m_.bipolar(m_.constant(name + ".weight", {cout, cin, kernel, kernel}, w), name + ".weight_q",
                                      {cout, 1, 1, 1}, alpha);
    m_.conv(x, wq, "", name, kernel, kernel / 2);
    // Running statistics on the scale of the conv output (binary weights, 2-bit inputs).
    const float spread = 0.08f * std::sqrt(static_cast<float>(cin * kernel * kernel));
    m_.batch_norm(name, name + ".bn", rng_.uniform(static_cast<size_t>(cout), 0.5f, 1.5f),
                  rng_.normal(static_cast<size_t>(cout), 0.3f, 0.8f), rng_.normal(static_cast<size_t>(cout), spread * 0.5f),
                  rng_.uniform(static_cast<size_t>(cout), spread * spread * 0.5f, spread * spread * 1.5f));
  }

  // conv → BatchNorm → 2-bit activation quantizer. conv1 sees the float image with the same nodes;
  // the converter makes it a float conv.
  std::string block(const std::string& x, const std::string& name, int64_t cin, int64_t cout, int64_t kernel) {
    conv_bn(x, name, cin, cout, kernel);
    return m_.quant(name + ".bn", name + ".act", kActScale, 2, false);
  }

  TestRng rng_;
  OnnxMaker m_;
};

TEST(LmnetV1, ConvertsThroughTheCliAndMatchesTheInterpreter) {
  LmnetV1Onnx net(2024);
  const OnnxMaker model = net.make();
  const std::string path = temp_path("lmnet_v1.onnx"), out = temp_path("lmnet_v1_cli");
  model.save(path);
  std::filesystem::remove_all(out);

  // `lowbit convert` writes the model directory and prints the per-layer summary.
  CLI::App app;
  add_cli_commands(app);
  ::testing::internal::CaptureStdout();
  app.parse("convert " + path + " --out " + out, false);
  const std::string summary = ::testing::internal::GetCapturedStdout();
  const auto summary_line = [&](const std::string& name) {
    const size_t at = summary.find("\n" + name + " ");
    return at == std::string::npos ? std::string() : summary.substr(at + 1, summary.find('\n', at + 1) - at - 1);
  };
  EXPECT_NE(summary_line("conv2.act").find("QConv2D"), std::string::npos) << summary;
  EXPECT_NE(summary_line("conv1.act").find("Quantize"), std::string::npos) << summary;
  EXPECT_TRUE(std::filesystem::exists(out + "/model.lbm"));

  const YAML::Node meta = YAML::LoadFile(out + "/meta.yaml");
  EXPECT_EQ(meta["task"].as<std::string>(), "classification");
  EXPECT_EQ(meta["network"].as<std::string>(), "LmnetV1Quantize");
  EXPECT_EQ(meta["classes"].size(), 10u);
  EXPECT_EQ(meta["classes"][9].as<std::string>(), "Ankle boot");
  EXPECT_EQ(meta["input"]["shape"].as<std::vector<int>>(), (std::vector<int>{1, 32, 32, 1}));
  EXPECT_EQ(meta["input_size"].as<std::vector<int>>(), (std::vector<int>{32, 32}));
  EXPECT_EQ(meta["preprocess"]["pad"].as<std::vector<int>>(), (std::vector<int>{2, 2, 2, 2}));
  EXPECT_DOUBLE_EQ(meta["preprocess"]["std"][0].as<double>(), 0.3530);
  EXPECT_EQ(meta["outputs"][0]["name"].as<std::string>(), "logits");
  EXPECT_EQ(meta["postprocess"]["type"].as<std::string>(), "classification");

  // The runtime against the interpreter, every quantized layer's codes and the logits.
  ConversionCheck check(model, "lmnet_v1");
  const std::vector<LayerSummary>& layers = check.result().layers;
  const auto op_of = [&](const std::string& name) {
    for (const LayerSummary& l : layers)
      if (l.name == name) return l.op + " " + l.type + " " + l.weights;
    return std::string("missing");
  };
  EXPECT_EQ(op_of("conv1.bn"), "Conv2D f32 f32 [32, 3, 3, 1]");  // float first conv, BatchNorm folded
  EXPECT_EQ(op_of("conv1.act"), "Quantize u2 ");
  EXPECT_EQ(op_of("conv3.act"), "QConv2D u2 bin1 [128, 3, 3, 256]");
  EXPECT_EQ(op_of("conv6.bn"), "QConv2D f32 bin1 [64, 1, 1, 512]");  // float output (§6)
  EXPECT_EQ(op_of("conv7"), "Conv2D f32 f32 [10, 1, 1, 64]");
  EXPECT_EQ(layers.size(), 14u);
  size_t compared = 0, differing = 0;
  for (int trial = 0; trial < 3; ++trial) {
    const CheckReport r = check.run({net.image()});
    EXPECT_EQ(r.quantized_tensors, 5u);
    EXPECT_GE(r.fewest_distinct_codes, 4u);
    compared += r.codes_compared;
    differing += r.codes_differing;
    // The float first conv rounds in float32 on the device: a code on a rounding boundary may flip
    // and move later codes; every other difference would be a conversion error.
    if (r.codes_differing == 0) {
      EXPECT_LE(r.max_output_error, 1e-4 * (1 + r.max_output_value));
    }
  }
  EXPECT_LE(static_cast<double>(differing), 1e-4 * static_cast<double>(compared)) << differing << " of " << compared;
}

}  // namespace
}  // namespace lowbit::converter::test
