// A trained network loaded back from a checkpoint, with what it was trained on: for the ONNX
// exporter and for tests (LibTorch types; the CLI uses training.h).
#pragma once

#include <string>
#include <vector>

#include "config.h"
#include "networks.h"

namespace lowbit::trainer {

struct TrainedModel {
  Config config;                         // the training config; config.text is its YAML
  std::vector<std::string> class_names;  // logit index -> class name
  Network network{nullptr};              // weights loaded, in eval mode
};

// Throws std::runtime_error naming the file (missing, not a checkpoint, corrupt).
TrainedModel load_trained_model(const std::string& checkpoint);

}  // namespace lowbit::trainer
