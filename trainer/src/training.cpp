#include "training.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "atomic_file.h"
#include "networks.h"
#include "trained_model.h"

namespace lowbit::trainer {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kCheckpointFormat = "lowbit-checkpoint/1";
// Plots cost a python start-up (~1 s); during training they are redrawn at most this often.
constexpr double kPlotIntervalSeconds = 60.0;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct RunFiles {
  explicit RunFiles(const std::string& dir)
      : dir(dir),
        checkpoints((fs::path(dir) / "checkpoints").string()),
        last(checkpoint_path(dir, "last")),
        best(checkpoint_path(dir, "best")),
        metrics((fs::path(dir) / "metrics.jsonl").string()),
        curves((fs::path(dir) / "curves.png").string()),
        config((fs::path(dir) / "config.yaml").string()) {}
  std::string dir, checkpoints, last, best, metrics, curves, config;
};

// The dataset and its loaders. Loaders read the splits in place, so this object never moves.
class RunData {
 public:
  RunData(const Config& config, bool for_training) : splits(load_dataset(config.dataset)) {
    if (splits.val.size() == 0) throw ConfigError(config.source + ": dataset: the validation split is empty");
    try {
      if (for_training)
        train = std::make_unique<BatchLoader>(splits.train, config.preprocess, config.augmentation,
                                              config.training.batch_size, true, true, config.training.seed,
                                              config.training.workers);
      val = std::make_unique<BatchLoader>(splits.val, config.preprocess, std::vector<Augmentation>{},
                                          config.training.batch_size, false, false, config.training.seed,
                                          config.training.workers);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(config.source + ": " + e.what());
    }
    if (for_training && train->batches_per_epoch() == 0)
      throw ConfigError(config.source + ": training.batch_size: " + std::to_string(config.training.batch_size) +
                        " is more than the " + std::to_string(splits.train.size()) + " training images");
  }
  RunData(const RunData&) = delete;
  RunData& operator=(const RunData&) = delete;

  const std::vector<std::string>& class_names() const { return splits.train.class_names; }

  Splits splits;
  std::unique_ptr<BatchLoader> train, val;
};

// Everything besides tensors that a resumed run needs to continue bit-identically.
struct Position {
  int64_t step = 0, epoch = 0, batch_in_epoch = 0;
  double best_val_top1 = -1.0;
  int64_t best_step = 0;
  // Training-split sums since the last evaluation (the "train" lines of metrics.jsonl).
  double loss_sum = 0.0;
  int64_t correct = 0, images = 0;
};

struct Model {
  Network network{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
};

// Weight decay applies to conv weights only; BatchNorm parameters and biases are left alone.
template <class OptimizerType, class Options>
std::unique_ptr<torch::optim::Optimizer> grouped(const Network& network, Options options, double weight_decay) {
  std::vector<torch::Tensor> decayed, plain;
  for (const torch::Tensor& parameter : network->parameters()) (parameter.dim() > 1 ? decayed : plain).push_back(parameter);
  Options no_decay = options;
  no_decay.weight_decay(0.0);
  options.weight_decay(weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, std::make_unique<Options>(options));
  if (!plain.empty()) groups.emplace_back(plain, std::make_unique<Options>(no_decay));
  return std::make_unique<OptimizerType>(std::move(groups), options);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Network& network, const OptimizerConfig& c) {
  switch (c.kind) {
    case OptimizerKind::kSgd:
      return grouped<torch::optim::SGD>(
          network, torch::optim::SGDOptions(c.lr).momentum(c.momentum).nesterov(c.nesterov), c.weight_decay);
    case OptimizerKind::kAdam:
      return grouped<torch::optim::Adam>(network, torch::optim::AdamOptions(c.lr).betas({c.beta1, c.beta2}),
                                         c.weight_decay);
    case OptimizerKind::kAdamW:
      return grouped<torch::optim::AdamW>(network, torch::optim::AdamWOptions(c.lr).betas({c.beta1, c.beta2}),
                                          c.weight_decay);
  }
  throw std::logic_error("unknown optimizer kind");
}

Network make_network(const Config& config, size_t classes) {
  // Same seed, same initial weights: a run and its float twin start comparably.
  torch::manual_seed(config.training.seed);
  try {
    return build_network(config.network, config.preprocess.channels, static_cast<int>(classes),
                         config.preprocess.height, config.preprocess.width);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(config.source + ": network: " + e.what());
  }
}

Model make_model(const Config& config, size_t classes) {
  Model model;
  model.network = make_network(config, classes);
  model.optimizer = make_optimizer(model.network, config.training.optimizer);
  return model;
}

// `step` counts the updates already made; the value applies to the next one.
double learning_rate(const TrainingConfig& training, int64_t step, int64_t total_steps, int64_t steps_per_epoch) {
  const LrScheduleConfig& s = training.lr_schedule;
  const double base = training.optimizer.lr;
  const double warmup_steps = s.warmup_epochs * static_cast<double>(steps_per_epoch);
  const auto now = static_cast<double>(step);
  if (now < warmup_steps) return base * (now + 1.0) / warmup_steps;
  switch (s.kind) {
    case LrScheduleKind::kConstant: return base;
    case LrScheduleKind::kCosine: {
      const double span = std::max(1.0, static_cast<double>(total_steps) - warmup_steps - 1.0);
      const double progress = std::min(1.0, (now - warmup_steps) / span);
      return s.min_lr + (base - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
    }
    case LrScheduleKind::kStep: {
      const double epoch = now / static_cast<double>(steps_per_epoch);
      double lr = base;
      for (double milestone : s.milestones)
        if (epoch >= milestone) lr *= s.gamma;
      return lr;
    }
  }
  return base;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (torch::optim::OptimizerParamGroup& group : optimizer.param_groups()) group.options().set_lr(lr);
}

torch::Tensor batch_images(Batch& batch) {
  return torch::from_blob(batch.images.data(), {batch.n, batch.c, batch.h, batch.w}, torch::kFloat32);
}
torch::Tensor batch_labels(Batch& batch) { return torch::from_blob(batch.labels.data(), {batch.n}, torch::kInt64); }

struct StepResult {
  double loss;
  int64_t correct;
};

StepResult train_step(Model& model, Batch& batch) {
  const torch::Tensor labels = batch_labels(batch);
  model.optimizer->zero_grad();
  const torch::Tensor logits = model.network->forward(batch_images(batch));
  const torch::Tensor loss = torch::cross_entropy_loss(logits, labels);
  loss.backward();
  model.optimizer->step();
  return {loss.item<double>(), logits.argmax(1).eq(labels).sum().item<int64_t>()};
}

EvaluationSummary evaluate(Network& network, BatchLoader& loader, const std::vector<std::string>& class_names) {
  torch::NoGradGuard no_grad;
  network->eval();
  const auto k = static_cast<int64_t>(class_names.size());
  EvaluationSummary summary;
  summary.class_names = class_names;
  summary.confusion.assign(static_cast<size_t>(k * k), 0);
  double loss_sum = 0.0;
  int64_t top1 = 0, top5 = 0;
  loader.start_epoch(0);
  Batch batch;
  while (loader.next(batch)) {
    const torch::Tensor labels = batch_labels(batch);
    const torch::Tensor logits = network->forward(batch_images(batch));
    loss_sum += torch::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum).item<double>();
    const torch::Tensor best = std::get<1>(logits.topk(std::min<int64_t>(5, k), 1));
    top5 += best.eq(labels.unsqueeze(1)).any(1).sum().item<int64_t>();
    const torch::Tensor predicted = logits.argmax(1).contiguous();
    const int64_t* p = predicted.data_ptr<int64_t>();
    for (int i = 0; i < batch.n; ++i) {
      summary.confusion[static_cast<size_t>(batch.labels[i] * k + p[i])] += 1;
      top1 += batch.labels[i] == p[i];
    }
    summary.images += batch.n;
  }
  network->train();
  const auto images = static_cast<double>(std::max<int64_t>(1, summary.images));
  summary.loss = loss_sum / images;
  summary.top1 = static_cast<double>(top1) / images;
  summary.top5 = static_cast<double>(top5) / images;
  return summary;
}

// ---- checkpoints ----

torch::Tensor generator_state() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_generator_state(const torch::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

void save_checkpoint(const std::string& path, const Config& config, const std::vector<std::string>& class_names,
                     Model& model, const Position& position) {
  torch::serialize::OutputArchive archive, network_archive, optimizer_archive;
  model.network->save(network_archive);
  model.optimizer->save(optimizer_archive);
  archive.write("format", c10::IValue(std::string(kCheckpointFormat)));
  archive.write("config", c10::IValue(config.text));
  archive.write("class_names", c10::IValue(nlohmann::json(class_names).dump()));
  archive.write("network", network_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("rng", generator_state());
  for (const auto& [key, value] : {std::pair<const char*, int64_t>{"step", position.step},
                                   {"epoch", position.epoch},
                                   {"batch_in_epoch", position.batch_in_epoch},
                                   {"best_step", position.best_step},
                                   {"interval_correct", position.correct},
                                   {"interval_images", position.images}})
    archive.write(key, c10::IValue(value));
  archive.write("best_val_top1", c10::IValue(position.best_val_top1));
  archive.write("interval_loss_sum", c10::IValue(position.loss_sum));
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomically(path, bytes.str());
}

// An opened checkpoint: every read goes through it so LibTorch's errors name the file.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& path) : path_(path) {
    if (!fs::exists(path)) throw std::runtime_error(path + ": no such checkpoint");
    guarded([&] { archive_.load_from(path); });
    if (string("format") != kCheckpointFormat) throw std::runtime_error(path + ": not a lowbit checkpoint");
  }

  std::string string(const char* key) {
    return guarded([&] { return value(key).toStringRef(); });
  }
  int64_t integer(const char* key) {
    return guarded([&] { return value(key).toInt(); });
  }
  double real(const char* key) {
    return guarded([&] { return value(key).toDouble(); });
  }
  std::vector<std::string> class_names() {
    const nlohmann::json names = nlohmann::json::parse(string("class_names"), nullptr, false);
    if (!names.is_array()) throw std::runtime_error(path_ + ": class names are corrupt");
    return names.get<std::vector<std::string>>();
  }
  Config config() { return parse_config(string("config"), path_ + " (its config)"); }

  void load_network(Network& network) {
    guarded([&] {
      torch::serialize::InputArchive nested;
      archive_.read("network", nested);
      network->load(nested);
    });
  }
  void load_training_state(Model& model, Position& position) {
    load_network(model.network);
    guarded([&] {
      torch::serialize::InputArchive nested;
      archive_.read("optimizer", nested);
      model.optimizer->load(nested);
      torch::Tensor rng;
      archive_.read("rng", rng);
      set_generator_state(rng);
    });
    position.step = integer("step");
    position.epoch = integer("epoch");
    position.batch_in_epoch = integer("batch_in_epoch");
    position.best_step = integer("best_step");
    position.correct = integer("interval_correct");
    position.images = integer("interval_images");
    position.best_val_top1 = real("best_val_top1");
    position.loss_sum = real("interval_loss_sum");
  }

 private:
  c10::IValue value(const char* key) {
    c10::IValue v;
    archive_.read(key, v);
    return v;
  }
  // LibTorch reports a corrupt or mismatched file with a c10::Error and a backtrace; keep the
  // first line and name the file.
  template <class F>
  auto guarded(F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const c10::Error& e) {
      const std::string message = e.what_without_backtrace();
      throw std::runtime_error(path_ + ": unreadable checkpoint (" + message.substr(0, message.find('\n')) + ")");
    }
  }

  std::string path_;
  torch::serialize::InputArchive archive_;
};

std::string evaluation_line(const char* split, double loss, double top1) {
  std::ostringstream line;
  line.setf(std::ios::fixed);
  line.precision(4);
  line << split << " loss " << loss;
  line.precision(2);
  line << " top-1 " << 100.0 * top1 << "%";
  return line.str();
}

}  // namespace

std::string checkpoint_path(const std::string& run_dir, const std::string& which) {
  return (fs::path(run_dir) / "checkpoints" / (which + ".pt")).string();
}

TrainResult train(const Config& config, const TrainOptions& options) {
  const RunFiles files(options.out_dir);
  torch::set_num_threads(config.training.threads);
  RunData data(config, true);
  const std::vector<std::string>& class_names = data.class_names();
  const int64_t steps_per_epoch = data.train->batches_per_epoch();
  const TrainingConfig& training = config.training;
  const int64_t total_steps = training.steps > 0 ? training.steps : training.epochs * steps_per_epoch;
  const int64_t eval_interval = training.eval_interval > 0 ? training.eval_interval : steps_per_epoch;
  const int64_t checkpoint_interval = training.checkpoint_interval > 0 ? training.checkpoint_interval : eval_interval;

  Model model = make_model(config, class_names.size());
  Position position;
  MetricsLog metrics(files.metrics);
  std::string notice;
  if (options.resume) {
    CheckpointReader checkpoint(files.last);
    if (checkpoint.string("config") != config.text)
      notice = "warning: " + config.source + " differs from the config of " + files.last + "; continuing with it";
    checkpoint.load_training_state(model, position);
    metrics.resume(position.step);
  } else {
    if (fs::exists(files.last))
      throw std::runtime_error(files.dir + ": already holds a training run (--resume continues it)");
    fs::create_directories(files.checkpoints);
    write_file_atomically(files.config, config.text);
    metrics.start_new();
  }
  ProgressDisplay display(total_steps, position.step);
  if (!notice.empty()) display.message(notice);
  display.message("training " + config.network.name + " on " + std::to_string(data.splits.train.size()) +
                  " images (" + std::to_string(steps_per_epoch) + " steps per epoch, " + std::to_string(total_steps) +
                  " steps), validating on " + std::to_string(data.splits.val.size()) + "; run directory " + files.dir +
                  (position.step ? ", resumed at step " + std::to_string(position.step) : ""));

  data.train->start_epoch(position.epoch);
  data.train->skip(position.batch_in_epoch);
  TrainResult result;
  const Clock::time_point started = Clock::now();
  Clock::time_point interval_started = started, last_plot = started - std::chrono::hours(1);
  int64_t interval_steps = 0;
  bool plot_warned = false;
  double lr = 0.0;
  Batch batch;
  while (position.step < total_steps) {
    if (!data.train->next(batch)) throw std::logic_error("the training loader ended an epoch early");
    lr = learning_rate(training, position.step, total_steps, steps_per_epoch);
    set_learning_rate(*model.optimizer, lr);
    const StepResult step = train_step(model, batch);
    ++position.step;
    ++interval_steps;
    position.loss_sum += step.loss * batch.n;
    position.correct += step.correct;
    position.images += batch.n;
    const double epoch = static_cast<double>(position.step) / static_cast<double>(steps_per_epoch);
    display.step(position.step, epoch, position.loss_sum / static_cast<double>(position.images),
                 static_cast<double>(position.correct) / static_cast<double>(position.images), batch.n);
    if (++position.batch_in_epoch == steps_per_epoch) {
      ++position.epoch;
      position.batch_in_epoch = 0;
      data.train->start_epoch(position.epoch);
    }

    const bool finished = position.step == total_steps;
    if (position.step % eval_interval == 0 || finished) {
      const double interval_seconds = seconds_since(interval_started);
      const auto images = static_cast<double>(position.images);
      MetricRecord train_record{position.step, epoch, "train", position.loss_sum / images,
                                static_cast<double>(position.correct) / images,
                                {{"lr", lr},
                                 {"images_per_s", images / interval_seconds},
                                 {"ms_per_step", 1000.0 * interval_seconds / static_cast<double>(interval_steps)}}};
      result.last_validation = evaluate(model.network, *data.val, class_names);
      const EvaluationSummary& val = result.last_validation;
      MetricRecord val_record{position.step, epoch, "val", val.loss, val.top1, {{"top5", val.top5}}};
      metrics.append({train_record, val_record});
      const bool best = val.top1 > position.best_val_top1;
      if (best) {
        position.best_val_top1 = val.top1;
        position.best_step = position.step;
      }
      position.loss_sum = 0.0;
      position.correct = position.images = 0;
      display.message("step " + std::to_string(position.step) + ": " +
                      evaluation_line("train", train_record.loss, train_record.top1) + " | " +
                      evaluation_line("val", val.loss, val.top1) + (best ? " (best)" : ""));
      if (best) save_checkpoint(files.best, config, class_names, model, position);
      if (finished || seconds_since(last_plot) >= kPlotIntervalSeconds) {
        const std::string warning = plot_curves(files.metrics, files.curves, config.network.name);
        if (!warning.empty() && !plot_warned) display.message("warning: " + warning);
        plot_warned |= !warning.empty();
        last_plot = Clock::now();
      }
      interval_started = Clock::now();
      interval_steps = 0;
    }
    if (position.step % checkpoint_interval == 0 || finished)
      save_checkpoint(files.last, config, class_names, model, position);
    if (position.step == options.stop_after_step) break;
  }
  display.finish();
  if (result.last_validation.images == 0 && position.step == total_steps) {  // resumed a finished run
    result.last_validation = evaluate(model.network, *data.val, class_names);
  }
  result.steps = position.step;
  result.best_val_top1 = position.best_val_top1;
  result.best_step = position.best_step;
  result.seconds = seconds_since(started);
  return result;
}

StepTiming measure_steps(const Config& config, int64_t warmup, int64_t steps) {
  torch::set_num_threads(config.training.threads);
  RunData data(config, true);
  Model model = make_model(config, data.class_names().size());
  set_learning_rate(*model.optimizer, config.training.optimizer.lr);
  StepTiming timing;
  timing.batch_size = config.training.batch_size;
  double data_seconds = 0.0;
  Clock::time_point timed_start;
  int64_t epoch = 0;
  Batch batch;
  for (int64_t i = 0; i < warmup + steps; ++i) {
    if (i == warmup) timed_start = Clock::now();
    const Clock::time_point fetch = Clock::now();
    if (!data.train->next(batch)) {
      data.train->start_epoch(++epoch);
      data.train->next(batch);
    }
    if (i >= warmup) data_seconds += seconds_since(fetch);
    train_step(model, batch);
  }
  const double total = seconds_since(timed_start);
  timing.ms_per_step = 1000.0 * total / static_cast<double>(std::max<int64_t>(1, steps));
  timing.ms_data = 1000.0 * data_seconds / static_cast<double>(std::max<int64_t>(1, steps));
  return timing;
}

std::vector<double> measure_inference(const std::string& target, int threads, int64_t warmup, int64_t runs) {
  torch::set_num_threads(threads);
  const bool is_config = std::filesystem::path(target).extension() == ".yaml" ||
                         std::filesystem::path(target).extension() == ".yml";
  Network network{nullptr};
  Config config;
  if (is_config) {
    config = load_config(target);
    network = make_network(config, RunData(config, false).class_names().size());
    network->eval();
  } else {
    TrainedModel model = load_trained_model(target);
    config = model.config;
    network = model.network;
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor input = torch::randn({1, config.preprocess.channels, config.preprocess.height, config.preprocess.width});
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(runs));
  for (int64_t i = 0; i < warmup + runs; ++i) {
    const Clock::time_point start = Clock::now();
    const torch::Tensor logits = network->forward(input);
    if (i >= warmup) ms.push_back(1000.0 * seconds_since(start));
    if (!logits.defined()) throw std::runtime_error(target + ": the network produced no output");
  }
  return ms;
}

TrainedModel load_trained_model(const std::string& path) {
  CheckpointReader checkpoint(path);
  TrainedModel model{checkpoint.config(), checkpoint.class_names(), nullptr};
  model.network = make_network(model.config, model.class_names.size());
  checkpoint.load_network(model.network);
  model.network->eval();
  return model;
}

EvaluationSummary evaluate_checkpoint(const std::string& checkpoint, const Config* data_config) {
  TrainedModel model = load_trained_model(checkpoint);
  const Config& config = data_config ? *data_config : model.config;
  torch::set_num_threads(config.training.threads);
  RunData data(config, false);
  if (model.class_names.size() != data.class_names().size())
    throw std::runtime_error(checkpoint + ": trained for " + std::to_string(model.class_names.size()) +
                             " classes, the dataset of " + config.source + " has " +
                             std::to_string(data.class_names().size()));
  return evaluate(model.network, *data.val, model.class_names);
}

}  // namespace lowbit::trainer
