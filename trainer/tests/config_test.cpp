// Config parsing: values land in the right fields; unknown keys, wrong types and bad values are
// errors that name the file, the line and the key path.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config.h"

namespace lowbit::trainer {
namespace {

const char* const kValid = R"(task: classification
network:
  name: LmnetV1Quantize
  weight_quantizer: {kind: binary_mean_scaling, per_channel: false}
  activation_quantizer: {kind: linear_mid_tread_half, bits: 3, max: 4.0}
  quantize_last_layer: true
dataset:
  format: idx
  path: /usr/share/datasets/fashion-mnist
  train_limit: 2000
preprocess:
  channels: 1
  input_size: [32, 32]
  pad: [2, 2, 2, 2]
  mean: [0.2860]
  std: [0.3530]
augmentation:
  - random_crop: {padding: 2}
  - horizontal_flip
training:
  batch_size: 32
  steps: 100
  optimizer: {kind: sgd, lr: 0.1, momentum: 0.8, nesterov: true, weight_decay: 0.0005}
  lr_schedule: {kind: step, milestones: [1, 2.5], gamma: 0.5, warmup_epochs: 0.25}
  seed: 7
)";

// kValid with `from` replaced by `to` (each must occur exactly once).
std::string edited(const std::string& from, const std::string& to) {
  std::string text = kValid;
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

void expect_error(const std::string& yaml, const std::vector<std::string>& parts) {
  try {
    parse_config(yaml, "cfg.yaml");
    ADD_FAILURE() << "no error; expected one mentioning " << parts.front();
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("cfg.yaml", 0), 0u) << message;
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message << " / " << part;
  }
}

TEST(Config, ValuesLandInTheirFields) {
  const Config c = parse_config(kValid, "cfg.yaml");
  EXPECT_EQ(c.network.name, "LmnetV1Quantize");
  EXPECT_TRUE(c.network.quantized());
  EXPECT_EQ(c.network.weight_quantizer.kind, WeightQuantizerKind::kBinaryMeanScaling);
  EXPECT_FALSE(c.network.weight_quantizer.per_channel);
  EXPECT_EQ(c.network.activation.bits, 3);
  EXPECT_DOUBLE_EQ(c.network.activation.max, 4.0);
  EXPECT_TRUE(c.network.quantize_first_layer);
  EXPECT_TRUE(c.network.quantize_last_layer);
  EXPECT_EQ(c.dataset.format, "idx");
  EXPECT_EQ(c.dataset.train_limit, 2000);
  EXPECT_EQ(c.dataset.seed, 7u);
  EXPECT_EQ(c.preprocess.pad[3], 2);
  EXPECT_FLOAT_EQ(c.preprocess.mean[0], 0.2860f);
  ASSERT_EQ(c.augmentation.size(), 2u);
  EXPECT_EQ(c.augmentation[0].name, "random_crop");
  EXPECT_DOUBLE_EQ(c.augmentation[0].params.at("padding"), 2.0);
  EXPECT_EQ(c.augmentation[1].name, "horizontal_flip");
  EXPECT_TRUE(c.augmentation[1].params.empty());
  EXPECT_EQ(c.training.steps, 100);
  EXPECT_EQ(c.training.epochs, 0);
  EXPECT_EQ(c.training.optimizer.kind, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(c.training.optimizer.momentum, 0.8);
  EXPECT_TRUE(c.training.optimizer.nesterov);
  EXPECT_EQ(c.training.lr_schedule.kind, LrScheduleKind::kStep);
  EXPECT_EQ(c.training.lr_schedule.milestones, (std::vector<double>{1.0, 2.5}));
  EXPECT_EQ(c.text, kValid);
}

TEST(Config, UnknownKeysNameTheirPathAndLine) {
  expect_error(edited("task: classification", "task: classification\nmodel: x"), {"cfg.yaml:2:", "model", "unknown key"});
  expect_error(edited("lr: 0.1,", "lr: 0.1, lr_max: 3,"), {"cfg.yaml:23:", "training.optimizer.lr_max", "unknown key"});
  expect_error(edited("  train_limit: 2000", "  train_limits: 2000"), {"cfg.yaml:10:", "dataset.train_limits"});
}

TEST(Config, WrongTypesNameTheirPathAndLine) {
  expect_error(edited("batch_size: 32", "batch_size: many"), {"cfg.yaml:21:", "training.batch_size", "integer", "many"});
  expect_error(edited("batch_size: 32", "batch_size: 3.5"), {"training.batch_size", "integer"});
  expect_error(edited("mean: [0.2860]", "mean: 0.2860"), {"cfg.yaml:15:", "preprocess.mean", "expected a list"});
  expect_error(edited("mean: [0.2860]", "mean: [zero]"), {"preprocess.mean[0]", "number"});
  expect_error(edited("nesterov: true", "nesterov: 3"), {"training.optimizer.nesterov", "true or false"});
  expect_error(edited("input_size: [32, 32]", "input_size: [32]"), {"preprocess.input_size", "2 values"});
  expect_error(edited("  seed: 7", "  seed: {a: 1}"), {"training.seed", "a map"});
  expect_error(edited("task: classification\n", "task: classification\nnetwork: 5\n"), {"network"});
}

TEST(Config, BadValuesAreErrors) {
  expect_error(edited("kind: sgd", "kind: rmsprop"), {"training.optimizer.kind", "rmsprop", "adam"});
  expect_error(edited("name: LmnetV1Quantize", "name: VGG"), {"network.name", "VGG", "LmnetV1Quantize"});
  expect_error(edited("bits: 3", "bits: 5"), {"network.activation_quantizer.bits", "[1, 4]"});
  expect_error(edited("steps: 100", "steps: 100\n  epochs: 3"), {"training", "exactly one"});
  expect_error(edited("name: LmnetV1Quantize", "name: LmnetV1"), {"network.weight_quantizer", "float network"});
  expect_error(edited("per_channel: false}", "per_channel: false, bits: 3}"), {"weight_quantizer.bits"});
  expect_error(edited("horizontal_flip", "sideways_flip"), {"sideways_flip"});
  expect_error(edited("{padding: 2}", "{padding: 2, angle: 3}"), {"angle"});
  expect_error(edited("channels: 1", "channels: 1\n  colour: true"), {"preprocess.colour"});
  expect_error("network: [", {"not valid YAML"});
}

TEST(Config, MissingFileIsAnError) {
  try {
    load_config("/nonexistent/x.yaml");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.yaml"), std::string::npos);
  }
}

// What `lowbit init` writes loads again, for every dataset format and network.
TEST(Config, InitTemplatesLoad) {
  for (const std::string format : {"idx", "cifar10", "image_folder"}) {
    for (const std::string& network : zoo_network_names()) {
      InitChoices choices;
      choices.dataset_format = format;
      choices.network = network;
      choices.epochs = 3;
      SCOPED_TRACE(format + " " + network);
      const Config c = parse_config(render_config(choices), "init.yaml");
      EXPECT_EQ(c.network.name, network);
      EXPECT_EQ(c.dataset.format, format);
      EXPECT_EQ(c.training.epochs, 3);
      EXPECT_EQ(c.preprocess.channels, format == "idx" ? 1 : 3);
    }
  }
}

// The configs shipped in configs/ load.
TEST(Config, ShippedConfigsLoad) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(LOWBIT_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(load_config(entry.path().string()));
    ++loaded;
  }
  EXPECT_GE(loaded, 3);
}

}  // namespace
}  // namespace lowbit::trainer
