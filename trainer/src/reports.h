// What training and evaluation show and leave behind: the progress display, metrics.jsonl,
// the plots (a small matplotlib script run by /usr/bin/python3) and the evaluation report.
// Plain C++: no LibTorch.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lowbit::trainer {

// One line of metrics.jsonl: step, epoch, split ("train" / "val"), loss, top1, then `extra`
// (lr, images_per_s, ms_per_step for train; top5 for val).
struct MetricRecord {
  int64_t step = 0;
  double epoch = 0.0;
  std::string split;
  double loss = 0.0, top1 = 0.0;
  std::map<std::string, double> extra;
};

// metrics.jsonl, rewritten atomically on every append (it holds one line per evaluation).
class MetricsLog {
 public:
  explicit MetricsLog(std::string path) : path_(std::move(path)) {}
  void start_new();                    // an empty log (a new run)
  void resume(int64_t up_to_step);     // keep the lines of steps <= up_to_step (a resumed run)
  void append(const std::vector<MetricRecord>& records);
  const std::string& path() const { return path_; }

 private:
  void write() const;
  std::string path_;
  std::vector<std::string> lines_;
};

// Step counter on a terminal (one redrawn line: step, loss, top-1, images/s, ETA); plain lines
// every ~30 s otherwise, so logs stay readable.
class ProgressDisplay {
 public:
  ProgressDisplay(int64_t total_steps, int64_t start_step);
  void step(int64_t step, double epoch, double loss, double top1, int64_t images);
  void message(const std::string& line);  // a line of its own (evaluations, checkpoints)
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  bool terminal_;
  int64_t total_steps_, start_step_;
  Clock::time_point started_, last_draw_;
  int64_t images_since_draw_ = 0;
  double images_per_second_ = 0.0;
  bool line_open_ = false;
};

// Runs the plotting script; returns "" or a warning (python or matplotlib missing, plot failed).
std::string plot_curves(const std::string& metrics_path, const std::string& png_path, const std::string& title);
std::string plot_confusion(const std::vector<std::string>& class_names, const std::vector<int64_t>& confusion,
                           const std::string& png_path, const std::string& title);

struct EvaluationSummary {
  int64_t images = 0;
  double loss = 0.0, top1 = 0.0, top5 = 0.0;
  std::vector<std::string> class_names;
  std::vector<int64_t> confusion;  // classes x classes, row = true class, column = prediction
};
// top-1 / top-5, per-class accuracy and the confusion matrix as text.
std::string format_evaluation(const EvaluationSummary& summary);
// {"images", "loss", "top1", "top5", "class_names", "per_class_top1", "confusion" (rows = true class)}
std::string evaluation_json(const EvaluationSummary& summary);

// Statistics of timed runs (milliseconds).
struct LatencyStats {
  size_t runs = 0;
  double mean_ms = 0.0, median_ms = 0.0, p95_ms = 0.0;
};
LatencyStats latency_stats(std::vector<double> ms);
// {"target", "framework": "LibTorch", "threads", "runs", "mean_ms", "median_ms", "p95_ms"}
std::string latency_json(const std::string& target, int threads, const LatencyStats& stats);

}  // namespace lowbit::trainer
