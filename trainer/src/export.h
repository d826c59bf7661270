// `lowbit export`: a trained network as an ONNX file with QONNX quantizers, exactly the profile of
// docs/onnx-interchange.md. Plain interface for the CLI (no LibTorch or protobuf types);
// export_onnx.h builds the ModelProto itself.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

namespace lowbit::trainer {

// What cannot be exported; what() names the layer or tensor (export_checkpoint adds the file).
struct ExportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ExportSummary {
  std::string checkpoint;  // the .pt file exported
  std::string out_path;
  std::string network;     // zoo name
  size_t nodes = 0;
  std::map<std::string, size_t> op_counts;  // ONNX op type -> nodes
  size_t weight_quantizers = 0;             // quantizer nodes reading an initializer
  size_t activation_quantizers = 0;         // the other quantizer nodes
  uint64_t parameters = 0;                  // elements of the initializers
  uint64_t bytes = 0;                       // size of the file
};

// A run directory stands for its checkpoints/best.pt; anything else is taken as a checkpoint.
std::string resolve_checkpoint(const std::string& checkpoint_or_run_dir);

// Loads the checkpoint and writes the ONNX file atomically. Throws std::runtime_error
// "<file>: <problem>" (a missing/corrupt checkpoint, a network that cannot be expressed, an
// unwritable output).
ExportSummary export_checkpoint(const std::string& checkpoint_or_run_dir, const std::string& out_path);

// "wrote OUT: NETWORK from CHECKPOINT\n  N nodes (Op n, ...), ...": what `lowbit export` prints.
std::string format_export_summary(const ExportSummary& summary);

}  // namespace lowbit::trainer
