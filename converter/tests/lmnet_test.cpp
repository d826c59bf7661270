// End to end: an LmnetV1Quantize-shaped QONNX graph as the trainer exports it
// (docs/onnx-interchange.md; random weights) converts through the `lowbit convert` command, writes
// model.lbm and meta.yaml, and the runtime reproduces the interpreter.
#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>

#include "conversion_check.h"
#include "converter/cli.h"
#include "lmnet_model.h"

namespace lowbit::converter::test {
namespace {

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
