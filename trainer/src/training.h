// Training, evaluation and checkpoints behind a plain interface (no LibTorch types), for the CLI.
//
// A run directory holds:
//   config.yaml                the config the run started from
//   metrics.jsonl              one JSON object per evaluation and split (reports.h)
//   curves.png                 loss and top-1 of both splits
//   checkpoints/last.pt        the latest state: model, optimizer, step/epoch, RNG state, config
//   checkpoints/best.pt        the state with the best validation top-1 so far
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config.h"
#include "reports.h"

namespace lowbit::trainer {

struct TrainOptions {
  std::string out_dir;
  bool resume = false;  // continue from out_dir/checkpoints/last.pt, bit-identically
  // Return after this step as if the process had been killed there (tests of --resume);
  // 0 runs to the end.
  int64_t stop_after_step = 0;
};

struct TrainResult {
  int64_t steps = 0;                    // steps done in total (including those before a resume)
  EvaluationSummary last_validation;
  double best_val_top1 = 0.0;
  int64_t best_step = 0;
  double seconds = 0.0;                 // wall time of this process's training loop
};

// Throws ConfigError, DataError or std::runtime_error (naming the file) on bad input.
TrainResult train(const Config& config, const TrainOptions& options);

// Times `steps` training steps on real batches after `warmup` untimed ones; writes nothing.
struct StepTiming {
  double ms_per_step = 0.0;
  double ms_data = 0.0;  // of which waiting for the data loader
  int batch_size = 0;
};
StepTiming measure_steps(const Config& config, int64_t warmup, int64_t steps);

// Inference latency of a network in LibTorch: batch 1, eval mode, no autograd, `threads`
// intra-op threads; returns the milliseconds of each of `runs` forward passes after `warmup`
// untimed ones. `target` is a checkpoint (.pt, its trained weights) or a config (.yaml, the
// network with its initial weights: latency does not depend on the values).
std::vector<double> measure_inference(const std::string& target, int threads, int64_t warmup, int64_t runs);

std::string checkpoint_path(const std::string& run_dir, const std::string& which);  // "last" / "best"

// Evaluates a checkpoint on the validation split of `data_config`'s dataset, or of the dataset
// it was trained on when that is null. Throws std::runtime_error naming the file.
EvaluationSummary evaluate_checkpoint(const std::string& checkpoint, const Config* data_config);

}  // namespace lowbit::trainer
