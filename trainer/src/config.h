// The training configuration: one YAML file (docs/training.md lists every key) parsed into plain
// structs. No LibTorch here, so the CLI and the config tests stay cheap to compile.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/data.h"

namespace lowbit::trainer {

// what() == "<file>:<line>: <key.path>: <problem>" (line omitted when the problem has no place,
// e.g. a missing file or a key that is absent but required).
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Weight quantizers (docs/quantization.md §3). Values are scale * code; backward is identity.
enum class WeightQuantizerKind {
  kNone,               // float weights
  kBinaryMeanScaling,  // sign(w) * mean|w|, sign(0) = +1
  kTernary,            // TWN: delta = 0.7 mean|w|, codes {-1, 0, +1}, alpha = mean of |w| > delta
  kSignedNarrow,       // k-bit signed narrow codes, scale = max|w| / (2^(k-1) - 1), round half even
};

struct WeightQuantizerConfig {
  WeightQuantizerKind kind = WeightQuantizerKind::kBinaryMeanScaling;
  bool per_channel = true;  // one scale per output channel (XNOR-Net) or one per tensor
  int bits = 1;             // signed_narrow: 2..4; fixed by the kind otherwise (binary 1, ternary 2)
};

// What follows BatchNorm in a conv block: ReLU (float networks) or the activation quantizer.
enum class ActivationKind {
  kRelu,
  kLinearMidTreadHalf,  // codes 0..2^k-1, scale M / (2^k - 1), round half up (quantization.md §2)
};

struct ActivationConfig {
  ActivationKind kind = ActivationKind::kLinearMidTreadHalf;
  int bits = 2;       // 1..4
  double max = 2.0;   // M, the clip maximum
};

struct NetworkConfig {
  // Zoo name: LmnetV1Quantize, LmResnetQuantize, TinyNetQuantize and their float twins
  // LmnetV1, LmResnet, TinyNet (same structure, float weights, ReLU).
  std::string name = "LmnetV1Quantize";
  WeightQuantizerConfig weight_quantizer;  // kind kNone for float networks
  ActivationConfig activation;             // kind kRelu for float networks
  // The first conv always sees the float image; this only decides whether its weights are
  // quantized. A quantized last layer also gets a quantized input (codes instead of ReLU).
  bool quantize_first_layer = true;
  bool quantize_last_layer = false;
  double dropout = 0.5;  // LmnetV1 and TinyNet, before the classifier
  int base_channels = 64;  // LmResnet: channels of the first stage (doubled per stage)

  bool quantized() const;
};

enum class OptimizerKind { kSgd, kAdam, kAdamW };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kAdam;
  double lr = 1e-3;
  double momentum = 0.9;  // SGD
  bool nesterov = false;  // SGD
  double beta1 = 0.9, beta2 = 0.999;  // Adam, AdamW
  // Applied to conv weights only: BatchNorm parameters and biases are not decayed.
  double weight_decay = 0.0;
};

enum class LrScheduleKind { kConstant, kCosine, kStep };

struct LrScheduleConfig {
  LrScheduleKind kind = LrScheduleKind::kCosine;
  double warmup_epochs = 0.0;           // linear ramp from 0 to lr
  double min_lr = 0.0;                  // cosine: the value reached at the last step
  std::vector<double> milestones;       // step: epochs at which lr is multiplied by gamma
  double gamma = 0.1;
};

struct TrainingConfig {
  int batch_size = 64;
  int64_t epochs = 0;  // exactly one of epochs / steps is set
  int64_t steps = 0;
  OptimizerConfig optimizer;
  LrScheduleConfig lr_schedule;
  uint64_t seed = 0;
  int64_t eval_interval = 0;        // steps between evaluations; 0 = at the end of every epoch
  int64_t checkpoint_interval = 0;  // steps between checkpoints; 0 = at every evaluation
  int workers = 2;                  // data loader threads
  int threads = 2;                  // LibTorch intra-op threads
};

struct Config {
  std::string source;  // the file it came from (for messages)
  std::string text;    // the YAML text itself (kept in checkpoints and exported models)
  std::string task = "classification";
  NetworkConfig network;
  DatasetConfig dataset;
  Preprocess preprocess;
  std::vector<Augmentation> augmentation;
  TrainingConfig training;
};

// Throws ConfigError for unreadable files, YAML syntax errors, unknown keys, wrong types and
// values out of range.
Config load_config(const std::string& path);
Config parse_config(const std::string& yaml_text, const std::string& source);

// The names accepted for network.name, in documentation order.
const std::vector<std::string>& zoo_network_names();

// `lowbit init`: the choices a user makes, and the annotated YAML they turn into.
struct InitChoices {
  std::string task = "classification";
  std::string network = "LmnetV1Quantize";
  std::string dataset_format = "idx";
  std::string dataset_path = "/usr/share/datasets/fashion-mnist";
  int image_height = 32, image_width = 32;  // network input, padding included
  int batch_size = 64;
  int64_t epochs = 20;
  std::string optimizer = "adam";
  double lr = 1e-3;
  uint64_t seed = 1;
};
std::string render_config(const InitChoices& choices);

}  // namespace lowbit::trainer
