// Training end to end on a Fashion-MNIST subset (Debian dataset-fashion-mnist, a declared
// dependency): the loss goes down, an interrupted run resumes bit-identically, outputs exist and
// bad checkpoints are clear errors.
#include <gtest/gtest.h>
#include <torch/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trained_model.h"
#include "training.h"

namespace lowbit::trainer {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "lowbit-training-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// A TinyNetQuantize run on the first 3,200 training / 500 test images.
Config tiny_config(int64_t steps, int64_t eval_interval, int64_t checkpoint_interval) {
  const std::string yaml = R"(network: {name: TinyNetQuantize, dropout: 0.2}
dataset: {format: idx, path: /usr/share/datasets/fashion-mnist, train_limit: 3200, val_limit: 500}
preprocess: {channels: 1, input_size: [32, 32], pad: [2, 2, 2, 2], mean: [0.2860], std: [0.3530]}
augmentation:
  - random_crop: {padding: 2}
  - horizontal_flip: {p: 0.5}
training:
  batch_size: 32
  steps: )" + std::to_string(steps) + R"(
  optimizer: {kind: adam, lr: 0.003}
  lr_schedule: {kind: cosine, warmup_epochs: 0.1}
  eval_interval: )" + std::to_string(eval_interval) + R"(
  checkpoint_interval: )" + std::to_string(checkpoint_interval) + R"(
  seed: 5
  workers: 2
  threads: 1
)";
  return parse_config(yaml, "tiny.yaml");
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

// Every parameter and buffer of a checkpoint's network, by name.
std::vector<std::pair<std::string, torch::Tensor>> checkpoint_tensors(const std::string& path) {
  const TrainedModel model = load_trained_model(path);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : model.network->named_parameters()) tensors.emplace_back(item.key(), item.value());
  for (const auto& item : model.network->named_buffers()) tensors.emplace_back(item.key(), item.value());
  return tensors;
}

TEST(Training, TwoHundredStepsLowerTheLoss) {
  const TempDir dir;
  TrainOptions options;
  options.out_dir = dir / "run";
  const TrainResult result = train(tiny_config(200, 50, 0), options);
  EXPECT_EQ(result.steps, 200);
  const std::vector<nlohmann::json> records = read_metrics(dir / "run/metrics.jsonl");
  ASSERT_EQ(records.size(), 8u);  // train + val at steps 50, 100, 150, 200
  EXPECT_EQ(records.front()["split"], "train");
  EXPECT_EQ(records[1]["split"], "val");
  EXPECT_EQ(records.back()["step"], 200);
  EXPECT_DOUBLE_EQ(records.back()["epoch"].get<double>(), 2.0);  // 3,200 images / 32 = 100 steps an epoch
  // The first interval starts near ln(10) = 2.30; 150 steps later both splits are well below.
  EXPECT_LT(records[6]["loss"].get<double>(), 0.8 * records[0]["loss"].get<double>());
  EXPECT_LT(records[7]["loss"].get<double>(), records[1]["loss"].get<double>());
  EXPECT_GT(result.last_validation.top1, 0.5);
  EXPECT_EQ(result.last_validation.images, 500);
  EXPECT_TRUE(fs::exists(dir / "run/checkpoints/last.pt"));
  EXPECT_TRUE(fs::exists(dir / "run/checkpoints/best.pt"));
  EXPECT_TRUE(fs::exists(dir / "run/config.yaml"));
  EXPECT_TRUE(fs::exists(dir / "run/curves.png"));
  // The best checkpoint evaluates to the best validation top-1 the run reported.
  const EvaluationSummary best = evaluate_checkpoint(dir / "run/checkpoints/best.pt", nullptr);
  EXPECT_DOUBLE_EQ(best.top1, result.best_val_top1);
  int64_t counted = 0;
  for (int64_t n : best.confusion) counted += n;
  EXPECT_EQ(counted, 500);
}

TEST(Training, ResumeContinuesBitIdentically) {
  const TempDir dir;
  // Checkpoints at 10, 20, 30; the interrupted run stops at 17, so the resumed one redoes 11..17.
  const Config config = tiny_config(30, 15, 10);
  TrainOptions whole;
  whole.out_dir = dir / "whole";
  train(config, whole);

  TrainOptions interrupted;
  interrupted.out_dir = dir / "interrupted";
  interrupted.stop_after_step = 17;
  EXPECT_EQ(train(config, interrupted).steps, 17);
  TrainOptions resumed = interrupted;
  resumed.stop_after_step = 0;
  resumed.resume = true;
  EXPECT_EQ(train(config, resumed).steps, 30);

  const auto expected = checkpoint_tensors(dir / "whole/checkpoints/last.pt");
  const auto actual = checkpoint_tensors(dir / "interrupted/checkpoints/last.pt");
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(expected[i].first, actual[i].first);
    EXPECT_TRUE(expected[i].second.equal(actual[i].second)) << expected[i].first;
  }
  // The metrics agree too, once each (no duplicate lines from the redone steps).
  const auto a = read_metrics(dir / "whole/metrics.jsonl");
  const auto b = read_metrics(dir / "interrupted/metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["step"], b[i]["step"]);
    EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << "record " << i;
    EXPECT_EQ(a[i]["top1"], b[i]["top1"]) << "record " << i;
  }
}

TEST(Training, RefusesToOverwriteARun) {
  const TempDir dir;
  TrainOptions options;
  options.out_dir = dir / "run";
  options.stop_after_step = 1;
  train(tiny_config(10, 10, 1), options);
  try {
    train(tiny_config(10, 10, 1), options);
    ADD_FAILURE() << "a second run overwrote the first";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("--resume"), std::string::npos) << e.what();
  }
}

TEST(Training, CorruptCheckpointIsAnErrorNamingTheFile) {
  const TempDir dir;
  const std::string path = dir / "broken.pt";
  std::ofstream(path) << "not a checkpoint";
  for (const std::string& file : {path, dir / "missing.pt"}) {
    try {
      evaluate_checkpoint(file, nullptr);
      ADD_FAILURE() << "no error for " << file;
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(file, 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace lowbit::trainer
