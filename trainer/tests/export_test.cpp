// `lowbit export`: the graph structure of every zoo network and quantizer kind against
// docs/onnx-interchange.md (node types and counts, attributes, initializer names and shapes,
// metadata), errors for what cannot be expressed, and the command on a real run directory.
// Numerical agreement with the trainer is tests/integration/ (it needs the converter).
#include <gtest/gtest.h>
#include <torch/types.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "atomic_file.h"
#include "data_test_support.h"
#include "export_onnx.h"
#include "quantizers.h"
#include "trainer/cli.h"
#include "training.h"

namespace lowbit::trainer {
namespace {

using test::TempDir;

constexpr const char* kQonnx = "qonnx.custom_op.general";

// A freshly initialised zoo network on `size` x `size` images of `channels` channels and 10
// classes, as if loaded from a checkpoint. `network_yaml` is the config's network section.
TrainedModel zoo_model(const std::string& network_yaml, int channels = 1, int size = 8) {
  const std::string mean = channels == 1 ? "[0.5]" : "[0.5, 0.4, 0.3]";
  const std::string yaml = "network: " + network_yaml + "\n" +
                           "dataset: {format: idx, path: /nonexistent}\n"
                           "preprocess: {channels: " +
                           std::to_string(channels) + ", input_size: [" + std::to_string(size) + ", " +
                           std::to_string(size) + "], mean: " + mean + ", std: " + mean + "}\ntraining: {steps: 1}\n";
  TrainedModel model;
  model.config = parse_config(yaml, "export_test.yaml");
  for (int k = 0; k < 10; ++k) model.class_names.push_back("class " + std::to_string(k));
  torch::manual_seed(3);
  model.network = build_network(model.config.network, channels, 10, size, size);
  model.network->eval();
  return model;
}

std::map<std::string, size_t> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, size_t> counts;
  for (const auto& n : m.graph().node()) ++counts[n.op_type()];
  return counts;
}

const onnx::NodeProto& node_named(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& n : m.graph().node())
    if (n.name() == name) return n;
  throw std::out_of_range("no node " + name);
}

const onnx::TensorProto& initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) return t;
  throw std::out_of_range("no initializer " + name);
}

std::vector<int64_t> dims(const onnx::TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

std::vector<float> values(const onnx::TensorProto& t) {
  std::vector<float> v(t.raw_data().size() / sizeof(float));
  std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
  return v;
}

const onnx::AttributeProto& attribute(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a;
  throw std::out_of_range(n.name() + " has no attribute " + name);
}

std::string metadata(const onnx::ModelProto& m, const std::string& key) {
  for (const auto& e : m.metadata_props())
    if (e.key() == key) return e.value();
  return "<missing>";
}

// Rules every export follows: the header, graph input/output, unique node names, nodes in
// topological order reading only known tensors, float32 initializers, no Dropout.
void expect_well_formed(const onnx::ModelProto& m, int channels, int size) {
  EXPECT_EQ(m.ir_version(), 8);
  std::map<std::string, int64_t> opsets;
  for (const auto& o : m.opset_import()) opsets[o.domain()] = o.version();
  EXPECT_EQ(opsets, (std::map<std::string, int64_t>{{"", 13}, {kQonnx, 1}}));

  const onnx::GraphProto& g = m.graph();
  ASSERT_EQ(g.input_size(), 1);
  ASSERT_EQ(g.output_size(), 1);
  EXPECT_EQ(g.input(0).name(), "input");
  EXPECT_EQ(g.output(0).name(), "logits");
  const auto& in_shape = g.input(0).type().tensor_type().shape();
  EXPECT_EQ(g.input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  ASSERT_EQ(in_shape.dim_size(), 4);
  EXPECT_EQ(in_shape.dim(0).dim_param(), "batch");
  EXPECT_EQ(in_shape.dim(1).dim_value(), channels);
  EXPECT_EQ(in_shape.dim(2).dim_value(), size);
  EXPECT_EQ(in_shape.dim(3).dim_value(), size);
  const auto& out_shape = g.output(0).type().tensor_type().shape();
  ASSERT_EQ(out_shape.dim_size(), 2);
  EXPECT_EQ(out_shape.dim(0).dim_param(), "batch");
  EXPECT_EQ(out_shape.dim(1).dim_value(), 10);

  std::set<std::string> known = {"input"}, node_names;
  for (const auto& t : g.initializer()) {
    EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT) << t.name();
    EXPECT_TRUE(known.insert(t.name()).second) << "duplicate initializer " << t.name();
    int64_t elements = 1;
    for (int64_t d : t.dims()) elements *= d;
    EXPECT_EQ(t.raw_data().size(), static_cast<size_t>(elements) * sizeof(float)) << t.name();
  }
  for (const auto& n : g.node()) {
    EXPECT_TRUE(node_names.insert(n.name()).second) << "duplicate node " << n.name();
    EXPECT_NE(n.op_type(), "Dropout");
    for (const auto& input : n.input()) EXPECT_TRUE(known.count(input)) << n.name() << " reads unknown " << input;
    for (const auto& output : n.output())
      EXPECT_TRUE(known.insert(output).second) << "tensor written twice: " << output;
    const bool qonnx = n.op_type() == "Quant" || n.op_type() == "BipolarQuant";
    EXPECT_EQ(n.domain(), qonnx ? kQonnx : "") << n.name();
  }
  EXPECT_TRUE(known.count("logits"));
}

// Conv's W input: the quantizer node producing it, or nullptr when W is a float initializer.
const onnx::NodeProto* weight_quantizer(const onnx::ModelProto& m, const std::string& conv) {
  const std::string w = node_named(m, conv).input(1);
  for (const auto& n : m.graph().node())
    if (n.output(0) == w) return &n;
  return nullptr;
}

void expect_activation_quant(const onnx::ModelProto& m, const std::string& act, float scale, int bits) {
  const onnx::NodeProto& n = node_named(m, act);
  ASSERT_EQ(n.op_type(), "Quant") << act;
  EXPECT_EQ(n.input(1), act + ".scale");
  EXPECT_EQ(n.input(2), act + ".zero_point");
  EXPECT_EQ(n.input(3), act + ".bitwidth");
  EXPECT_EQ(dims(initializer(m, act + ".scale")), std::vector<int64_t>{});
  EXPECT_EQ(values(initializer(m, act + ".scale")), std::vector<float>{scale});
  EXPECT_EQ(values(initializer(m, act + ".zero_point")), std::vector<float>{0.0f});
  EXPECT_EQ(values(initializer(m, act + ".bitwidth")), std::vector<float>{static_cast<float>(bits)});
  EXPECT_EQ(attribute(n, "signed").i(), 0);
  EXPECT_EQ(attribute(n, "narrow").i(), 0);
  EXPECT_EQ(attribute(n, "rounding_mode").s(), "HALF_UP");
}

TEST(Export, LmnetV1QuantizeStructureMetadataAndShapes) {
  const TrainedModel model = zoo_model("{name: LmnetV1Quantize}");
  const onnx::ModelProto m = export_onnx(model);
  expect_well_formed(m, 1, 8);
  EXPECT_EQ(op_counts(m), (std::map<std::string, size_t>{{"BatchNormalization", 6},
                                                         {"BipolarQuant", 6},
                                                         {"Conv", 7},
                                                         {"Flatten", 1},
                                                         {"GlobalAveragePool", 1},
                                                         {"Quant", 5},
                                                         {"Relu", 1},
                                                         {"SpaceToDepth", 3}}));
  // The chain of the first blocks, by tensor names.
  EXPECT_EQ(node_named(m, "conv1").input(0), "input");
  EXPECT_EQ(node_named(m, "bn1").input(0), "conv1");
  EXPECT_EQ(node_named(m, "act1").input(0), "bn1");
  EXPECT_EQ(node_named(m, "s2d2").input(0), "act2");
  EXPECT_EQ(attribute(node_named(m, "s2d2"), "blocksize").i(), 2);
  EXPECT_EQ(node_named(m, "conv7").input(0), "act6");  // dropout6 is gone
  EXPECT_EQ(node_named(m, "pool7").op_type(), "GlobalAveragePool");
  EXPECT_EQ(node_named(m, "pool7.flatten").output(0), "logits");
  EXPECT_EQ(attribute(node_named(m, "pool7.flatten"), "axis").i(), 1);

  // Convs: attributes, binary per-channel weights except the float classifier with bias.
  for (const std::string conv : {"conv1", "conv2", "conv3", "conv4", "conv5", "conv6"}) {
    const onnx::NodeProto* q = weight_quantizer(m, conv);
    ASSERT_NE(q, nullptr) << conv;
    EXPECT_EQ(q->op_type(), "BipolarQuant");
    EXPECT_EQ(q->input(0), conv + ".weight");
    EXPECT_EQ(node_named(m, conv).input_size(), 2) << conv << " has no bias";
  }
  EXPECT_EQ(weight_quantizer(m, "conv7"), nullptr);
  EXPECT_EQ(node_named(m, "conv7").input(2), "conv7.bias");
  const onnx::NodeProto& conv3 = node_named(m, "conv3");
  EXPECT_EQ(std::vector<int64_t>(attribute(conv3, "kernel_shape").ints().begin(),
                                 attribute(conv3, "kernel_shape").ints().end()),
            (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(std::vector<int64_t>(attribute(conv3, "pads").ints().begin(), attribute(conv3, "pads").ints().end()),
            (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(attribute(conv3, "group").i(), 1);
  EXPECT_EQ(attribute(node_named(m, "conv6"), "pads").ints(0), 0);

  EXPECT_EQ(dims(initializer(m, "conv1.weight")), (std::vector<int64_t>{32, 1, 3, 3}));
  EXPECT_EQ(dims(initializer(m, "conv3.weight")), (std::vector<int64_t>{128, 256, 3, 3}));
  EXPECT_EQ(dims(initializer(m, "conv3.weight_scale")), (std::vector<int64_t>{128, 1, 1, 1}));
  EXPECT_EQ(dims(initializer(m, "conv6.weight")), (std::vector<int64_t>{64, 512, 1, 1}));
  EXPECT_EQ(dims(initializer(m, "conv7.weight")), (std::vector<int64_t>{10, 64, 1, 1}));
  EXPECT_EQ(dims(initializer(m, "conv7.bias")), (std::vector<int64_t>{10}));
  for (const std::string p : {".scale", ".bias", ".mean", ".var"})
    EXPECT_EQ(dims(initializer(m, "bn3" + p)), (std::vector<int64_t>{128})) << p;
  const onnx::NodeProto& bn3 = node_named(m, "bn3");
  EXPECT_EQ(bn3.op_type(), "BatchNormalization");
  EXPECT_FLOAT_EQ(attribute(bn3, "epsilon").f(), 1e-5f);

  // The exported values are the trainer's: latent weights, alpha = mean|w| per channel, BN stats.
  const auto& c3 = *model.network->named_modules()["conv3"]->as<QuantConv2dImpl>();
  const QuantizedWeight q3 = weight_codes(c3.weight, c3.quantizer);
  EXPECT_TRUE(torch::equal(torch::tensor(values(initializer(m, "conv3.weight_scale"))), q3.scale.flatten()));
  EXPECT_TRUE(torch::equal(torch::tensor(values(initializer(m, "conv3.weight"))), c3.weight.detach().flatten()));
  const auto& b3 = *model.network->named_modules()["bn3"]->as<torch::nn::BatchNorm2dImpl>();
  EXPECT_TRUE(torch::equal(torch::tensor(values(initializer(m, "bn3.var"))), b3.running_var));

  for (const std::string act : {"act1", "act2", "act3", "act4", "act5"})
    expect_activation_quant(m, act, 2.0f / 3.0f, 2);
  EXPECT_EQ(node_named(m, "act6").op_type(), "Relu");

  EXPECT_EQ(metadata(m, "lowbit.task"), "classification");
  EXPECT_EQ(metadata(m, "lowbit.network"), "LmnetV1Quantize");
  EXPECT_EQ(nlohmann::json::parse(metadata(m, "lowbit.classes")), nlohmann::json(model.class_names));
  const nlohmann::json pre = nlohmann::json::parse(metadata(m, "lowbit.preprocess"));
  EXPECT_EQ(pre["channels"], 1);
  EXPECT_EQ(pre["input_size"], nlohmann::json({8, 8}));
  EXPECT_EQ(pre["mean"], nlohmann::json({0.5}));
  EXPECT_EQ(metadata(m, "lowbit.preprocess"), model.config.preprocess.to_json());
  EXPECT_EQ(metadata(m, "lowbit.config"), model.config.text);

  const ExportSummary s = summarize_onnx(m);
  EXPECT_EQ(s.nodes, 30u);
  EXPECT_EQ(s.weight_quantizers, 6u);
  EXPECT_EQ(s.activation_quantizers, 5u);
  EXPECT_EQ(s.network, "LmnetV1Quantize");
}

TEST(Export, FloatTwinsHaveNoQuantizers) {
  for (const auto& [name, convs, relus, adds] : std::vector<std::tuple<std::string, size_t, size_t, size_t>>{
           {"LmnetV1", 7, 6, 0}, {"TinyNet", 4, 3, 0}, {"LmResnet", 21, 17, 8}}) {
    SCOPED_TRACE(name);
    const TrainedModel model = zoo_model("{name: " + name + ", base_channels: 4}");
    const onnx::ModelProto m = export_onnx(model);
    expect_well_formed(m, 1, 8);
    const auto counts = op_counts(m);
    EXPECT_EQ(counts.count("Quant") + counts.count("BipolarQuant"), 0u);
    EXPECT_EQ(counts.at("Conv"), convs);
    EXPECT_EQ(counts.at("Relu"), relus);
    EXPECT_EQ(counts.count("Add") ? counts.at("Add") : 0, adds);
    EXPECT_EQ(metadata(m, "lowbit.network"), name);
  }
}

TEST(Export, TinyNetQuantizeStructure) {
  const onnx::ModelProto m = export_onnx(zoo_model("{name: TinyNetQuantize}", 3, 8));
  expect_well_formed(m, 3, 8);
  EXPECT_EQ(op_counts(m), (std::map<std::string, size_t>{{"BatchNormalization", 3},
                                                         {"BipolarQuant", 3},
                                                         {"Conv", 4},
                                                         {"Flatten", 1},
                                                         {"GlobalAveragePool", 1},
                                                         {"Quant", 2},
                                                         {"Relu", 1},
                                                         {"SpaceToDepth", 2}}));
  EXPECT_EQ(dims(initializer(m, "conv1.weight")), (std::vector<int64_t>{16, 3, 3, 3}));
  EXPECT_EQ(dims(initializer(m, "conv2.weight")), (std::vector<int64_t>{32, 64, 3, 3}));
  EXPECT_EQ(node_named(m, "conv4").input(0), "act3");
  EXPECT_EQ(node_named(m, "pool4.flatten").output(0), "logits");
}

TEST(Export, LmResnetQuantizeResidualsAndProjections) {
  const onnx::ModelProto m = export_onnx(zoo_model("{name: LmResnetQuantize, base_channels: 4}"));
  expect_well_formed(m, 1, 8);
  EXPECT_EQ(op_counts(m), (std::map<std::string, size_t>{{"Add", 8},
                                                         {"BatchNormalization", 17},
                                                         {"BipolarQuant", 20},
                                                         {"Conv", 21},
                                                         {"Flatten", 1},
                                                         {"GlobalAveragePool", 1},
                                                         {"Quant", 16},
                                                         {"Relu", 1},
                                                         {"SpaceToDepth", 3}}));
  // A plain block adds its input; a downsampling one adds the projected space-to-depth output.
  const onnx::NodeProto& add11 = node_named(m, "layer1_block1_add");
  EXPECT_EQ(add11.input(0), "conv1");
  EXPECT_EQ(add11.input(1), "layer1_block1_conv2");
  const onnx::NodeProto& add21 = node_named(m, "layer2_block1_add");
  EXPECT_EQ(add21.input(0), "layer2_block1_shortcut");
  EXPECT_EQ(node_named(m, "layer2_block1_shortcut").input(0), "layer2_block1_s2d");
  EXPECT_EQ(node_named(m, "layer2_block1_s2d").input(0), "layer2_block1_act1");
  EXPECT_EQ(dims(initializer(m, "layer2_block1_shortcut.weight")), (std::vector<int64_t>{8, 16, 1, 1}));
  EXPECT_EQ(node_named(m, "layer2_block2_add").input(0), "layer2_block1_add");
  EXPECT_EQ(node_named(m, "act_final").op_type(), "Relu");
  EXPECT_EQ(node_named(m, "fc").input(0), "act_final");
  EXPECT_EQ(node_named(m, "pool.flatten").output(0), "logits");
}

TEST(Export, PerTensorBinaryScalesAreScalars) {
  const onnx::ModelProto m = export_onnx(
      zoo_model("{name: TinyNetQuantize, weight_quantizer: {kind: binary_mean_scaling, per_channel: false}}"));
  for (const std::string conv : {"conv1", "conv2", "conv3"})
    EXPECT_EQ(dims(initializer(m, conv + ".weight_scale")), std::vector<int64_t>{}) << conv;
}

TEST(Export, TernaryWeightsAreQuantOnTheTernarisedValues) {
  const TrainedModel model = zoo_model("{name: TinyNetQuantize, weight_quantizer: {kind: ternary, per_channel: true}}");
  const onnx::ModelProto m = export_onnx(model);
  expect_well_formed(m, 1, 8);
  const onnx::NodeProto* q = weight_quantizer(m, "conv2");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->op_type(), "Quant");
  EXPECT_EQ(attribute(*q, "signed").i(), 1);
  EXPECT_EQ(attribute(*q, "narrow").i(), 1);
  EXPECT_EQ(attribute(*q, "rounding_mode").s(), "ROUND");
  EXPECT_EQ(values(initializer(m, "conv2.weight_bitwidth")), std::vector<float>{2.0f});
  EXPECT_EQ(values(initializer(m, "conv2.weight_zero_point")), std::vector<float>{0.0f});
  // The initializer is alpha_o * code: every value of channel o is 0 or ±alpha_o.
  const auto& conv2 = *model.network->named_modules()["conv2"]->as<QuantConv2dImpl>();
  const QuantizedWeight want = weight_codes(conv2.weight, conv2.quantizer);
  EXPECT_TRUE(torch::equal(torch::tensor(values(initializer(m, "conv2.weight"))), (want.codes * want.scale).flatten()));
  EXPECT_TRUE(torch::equal(torch::tensor(values(initializer(m, "conv2.weight_scale"))), want.scale.flatten()));
  EXPECT_EQ(dims(initializer(m, "conv2.weight_scale")), (std::vector<int64_t>{32, 1, 1, 1}));
}

TEST(Export, SignedNarrowWeightsAndWiderActivations) {
  const TrainedModel model = zoo_model(
      "{name: LmnetV1Quantize, weight_quantizer: {kind: signed_narrow, bits: 3, per_channel: false}, "
      "activation_quantizer: {kind: linear_mid_tread_half, bits: 3, max: 4.0}, quantize_first_layer: false, "
      "quantize_last_layer: true}");
  const onnx::ModelProto m = export_onnx(model);
  expect_well_formed(m, 1, 8);
  EXPECT_EQ(weight_quantizer(m, "conv1"), nullptr);  // quantize_first_layer: false
  for (const std::string conv : {"conv2", "conv7"}) {
    const onnx::NodeProto* q = weight_quantizer(m, conv);
    ASSERT_NE(q, nullptr) << conv;
    EXPECT_EQ(q->op_type(), "Quant");
    EXPECT_EQ(q->input(0), conv + ".weight");
    EXPECT_EQ(attribute(*q, "signed").i(), 1);
    EXPECT_EQ(attribute(*q, "narrow").i(), 1);
    EXPECT_EQ(attribute(*q, "rounding_mode").s(), "ROUND");
    EXPECT_EQ(values(initializer(m, conv + ".weight_bitwidth")), std::vector<float>{3.0f});
    EXPECT_EQ(dims(initializer(m, conv + ".weight_scale")), std::vector<int64_t>{});
  }
  const auto& conv2 = *model.network->named_modules()["conv2"]->as<QuantConv2dImpl>();
  EXPECT_EQ(values(initializer(m, "conv2.weight_scale"))[0],
            weight_codes(conv2.weight, conv2.quantizer).scale.item<float>());
  // quantize_last_layer: the classifier reads codes, so act6 is a quantizer too.
  for (const std::string act : {"act1", "act2", "act3", "act4", "act5", "act6"})
    expect_activation_quant(m, act, 4.0f / 7.0f, 3);
  EXPECT_EQ(op_counts(m).count("Relu"), 0u);
}

TEST(Export, WhatCannotBeExpressedIsAnErrorNamingIt) {
  TrainedModel model = zoo_model("{name: TinyNetQuantize}");
  auto& conv2 = *model.network->named_modules()["conv2"]->as<QuantConv2dImpl>();
  {
    torch::NoGradGuard no_grad;
    conv2.weight[3].zero_();
  }
  try {
    export_onnx(model);
    FAIL() << "an all-zero binary channel exported";
  } catch (const ExportError& e) {
    EXPECT_NE(std::string(e.what()).find("conv2.weight: binary mean scaling with output channel 3 all zero"),
              std::string::npos)
        << e.what();
  }
  {
    torch::NoGradGuard no_grad;
    conv2.weight[3].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  try {
    export_onnx(model);
    FAIL() << "NaN weights exported";
  } catch (const ExportError& e) {
    EXPECT_EQ(std::string(e.what()), "conv2.weight: holds NaN or infinite values");
  }
}

// `lowbit export` on a run directory written by a real (two-step) training run, and its errors.
TEST(Export, CommandExportsARunDirectoryAtomically) {
  const TempDir dir("lowbit-export");
  const Config config = parse_config(R"(network: {name: TinyNetQuantize}
dataset: {format: idx, path: /usr/share/datasets/fashion-mnist, train_limit: 64, val_limit: 32}
preprocess: {channels: 1, input_size: [32, 32], pad: [2, 2, 2, 2], mean: [0.2860], std: [0.3530]}
training: {batch_size: 32, steps: 2, seed: 1, workers: 1, threads: 1}
)",
                                     dir / "tiny.yaml");
  TrainOptions options;
  options.out_dir = dir / "run";
  train(config, options);

  CLI::App app;
  add_cli_commands(app);
  const std::string out = dir / "tiny.onnx";
  ::testing::internal::CaptureStdout();
  app.parse("export " + options.out_dir + " --out " + out, false);
  const std::string printed = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(printed.find("wrote " + out + ": TinyNetQuantize from " + options.out_dir + "/checkpoints/best.pt"),
            std::string::npos)
      << printed;
  EXPECT_NE(printed.find("17 nodes (BatchNormalization 3, BipolarQuant 3, Conv 4,"), std::string::npos) << printed;
  EXPECT_NE(printed.find("5 quantizers (3 weight, 2 activation)"), std::string::npos) << printed;

  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(read_file(out)));
  expect_well_formed(m, 1, 32);
  EXPECT_EQ(metadata(m, "lowbit.config"), config.text);
  const nlohmann::json classes = nlohmann::json::parse(metadata(m, "lowbit.classes"));
  EXPECT_EQ(classes.size(), 10u);
  EXPECT_EQ(classes[9], "Ankle boot");
  EXPECT_EQ(nlohmann::json::parse(metadata(m, "lowbit.preprocess"))["pad"], nlohmann::json({2, 2, 2, 2}));
  const TrainedModel trained = load_trained_model(options.out_dir + "/checkpoints/best.pt");
  EXPECT_TRUE(torch::equal(torch::tensor(values(initializer(m, "bn2.mean"))),
                           trained.network->named_buffers()["bn2.running_mean"]));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << "left behind: " << entry.path();

  // Errors: one line naming the file, exit status 1, nothing written.
  const auto failure = [&](const std::string& command) {
    ::testing::internal::CaptureStderr();
    try {
      CLI::App cli;
      add_cli_commands(cli);
      cli.parse(command, false);
      ADD_FAILURE() << command << " succeeded";
    } catch (const CLI::Error& e) {
      EXPECT_EQ(e.get_exit_code(), 1) << command;
    }
    return ::testing::internal::GetCapturedStderr();
  };
  EXPECT_EQ(failure("export " + (dir / "tiny.yaml") + " --out " + (dir / "x.onnx"))
                .rfind("lowbit export: " + (dir / "tiny.yaml"), 0),
            0u);
  EXPECT_EQ(failure("export " + dir.path().string() + " --out " + (dir / "x.onnx")),
            "lowbit export: " + dir.path().string() + ": not a run directory (no checkpoints/best.pt)\n");
  const std::string unwritable = failure("export " + options.out_dir + " --out " + (dir / "missing/x.onnx"));
  EXPECT_EQ(unwritable.rfind("lowbit export: " + (dir / "missing/x.onnx") + ": ", 0), 0u) << unwritable;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.onnx"));
}

}  // namespace
}  // namespace lowbit::trainer
