// lowbit init / train / eval / export. Every failure prints one line naming the file and the problem and
// exits with status 1.
#include "trainer/cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "atomic_file.h"
#include "config.h"
#include "export.h"
#include "training.h"

namespace lowbit::trainer {

namespace {

namespace fs = std::filesystem;

// Runs a command body; exceptions become one line on stderr and exit status 1.
template <class Body>
void run_command(const char* name, Body&& body) {
  try {
    body();
  } catch (const CLI::Error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string message = e.what();
    std::fprintf(stderr, "lowbit %s: %s\n", name, message.substr(0, message.find('\n')).c_str());
    throw CLI::RuntimeError(1);
  }
}

std::string default_run_dir(const std::string& config_path) {
  return (fs::path("runs") / fs::path(config_path).stem()).string();
}

bool is_config_file(const std::string& path) {
  const std::string extension = fs::path(path).extension().string();
  return extension == ".yaml" || extension == ".yml";
}

// ---- init ----

// Asks for the settings the user did not give as flags, when stdin is a terminal.
class Prompter {
 public:
  explicit Prompter(const CLI::App& command) : command_(command), interactive_(::isatty(STDIN_FILENO) == 1) {}

  template <class T>
  void ask(const std::string& flag, const std::string& question, T& value, const std::vector<std::string>& choices = {}) {
    if (!interactive_ || command_.count(flag) > 0) return;
    for (;;) {
      std::ostringstream current;
      current << value;
      std::cout << question << (choices.empty() ? "" : " (" + join(choices) + ")") << " [" << current.str() << "]: "
                << std::flush;
      std::string line;
      if (!std::getline(std::cin, line) || line.empty()) return;
      T parsed{};
      std::istringstream in(line);
      if constexpr (std::is_same_v<T, std::string>) {
        parsed = line;
      } else if (!(in >> parsed) || !(in >> std::ws).eof()) {
        std::cout << "  not a valid value\n";
        continue;
      }
      if (!choices.empty() && std::find(choices.begin(), choices.end(), line) == choices.end()) {
        std::cout << "  choose one of: " << join(choices) << "\n";
        continue;
      }
      value = parsed;
      return;
    }
  }

 private:
  static std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
  }
  const CLI::App& command_;
  bool interactive_;
};

void add_init(CLI::App& app) {
  struct Args {
    std::string output;
    InitChoices choices;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  InitChoices& c = args->choices;
  CLI::App* command = app.add_subcommand("init", "Write an annotated training config (prompts on a terminal)");
  command->add_option("output", args->output, "Config file to write (.yaml)")->required();
  command->add_option("--task", c.task, "Task")->check(CLI::IsMember({"classification"}))->capture_default_str();
  command->add_option("--network", c.network, "Zoo network")->check(CLI::IsMember(zoo_network_names()))
      ->capture_default_str();
  command->add_option("--dataset-format", c.dataset_format, "Dataset format")
      ->check(CLI::IsMember({"idx", "cifar10", "image_folder"}))->capture_default_str();
  command->add_option("--dataset-path", c.dataset_path, "Dataset directory")->capture_default_str();
  command->add_option("--image-height", c.image_height, "Network input height (padding included)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  command->add_option("--image-width", c.image_width, "Network input width (padding included)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  command->add_option("--batch-size", c.batch_size, "Batch size")->check(CLI::PositiveNumber)->capture_default_str();
  command->add_option("--epochs", c.epochs, "Epochs")->check(CLI::PositiveNumber)->capture_default_str();
  command->add_option("--optimizer", c.optimizer, "Optimizer")->check(CLI::IsMember({"sgd", "adam", "adamw"}))
      ->capture_default_str();
  command->add_option("--lr", c.lr, "Learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  command->add_option("--seed", c.seed, "Random seed")->capture_default_str();
  command->add_flag("--force", args->force, "Overwrite an existing file");
  command->callback([args, command] {
    run_command("init", [&] {
      InitChoices& c = args->choices;
      Prompter prompt(*command);
      prompt.ask("--task", "task", c.task, {"classification"});
      prompt.ask("--network", "network", c.network, zoo_network_names());
      prompt.ask("--dataset-format", "dataset format", c.dataset_format, {"idx", "cifar10", "image_folder"});
      prompt.ask("--dataset-path", "dataset directory", c.dataset_path);
      prompt.ask("--image-height", "input height", c.image_height);
      prompt.ask("--image-width", "input width", c.image_width);
      prompt.ask("--batch-size", "batch size", c.batch_size);
      prompt.ask("--epochs", "epochs", c.epochs);
      prompt.ask("--optimizer", "optimizer", c.optimizer, {"sgd", "adam", "adamw"});
      prompt.ask("--lr", "learning rate", c.lr);
      const std::string text = render_config(c);
      parse_config(text, args->output);  // what init writes must load
      if (fs::exists(args->output) && !args->force)
        throw std::runtime_error(args->output + ": exists (--force overwrites it)");
      write_file_atomically(args->output, text);
      std::printf("wrote %s; train with: lowbit train %s\n", args->output.c_str(), args->output.c_str());
    });
  });
}

// ---- train ----

void add_train(CLI::App& app) {
  struct Args {
    std::string config, out;
    bool resume = false;
    int threads = 0;
    int64_t measure_steps = 0, epochs = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command = app.add_subcommand("train", "Train a network from a YAML config");
  command->add_option("config", args->config, "Training config (.yaml)")->required();
  command->add_option("--out", args->out, "Run directory (default: runs/<config name>)");
  command->add_flag("--resume", args->resume, "Continue the run in --out from its last checkpoint");
  command->add_option("--threads", args->threads,
                      "LibTorch threads, overriding training.threads (1 is fastest on a machine busy with "
                      "other work: threads waiting for a preempted one stall every operation)")
      ->check(CLI::Range(1, 256));
  command->add_option("--epochs", args->epochs,
                      "Train for this many epochs instead of the config's schedule (the LR schedule is stretched "
                      "to fit; e.g. the demo's short run)")
      ->check(CLI::PositiveNumber);
  command->add_option("--measure-steps", args->measure_steps,
                      "Only time this many training steps (after 5 warm-up steps) and print ms/step")
      ->check(CLI::PositiveNumber);
  command->callback([args] {
    run_command("train", [&] {
      Config config = load_config(args->config);
      if (args->threads > 0) config.training.threads = args->threads;
      if (args->epochs > 0) {
        config.training.epochs = args->epochs;
        config.training.steps = 0;
      }
      if (args->measure_steps > 0) {
        const StepTiming t = measure_steps(config, 5, args->measure_steps);
        std::printf("%s: %.1f ms per training step (batch %d, %.1f ms of it waiting for data), %.0f images/s\n",
                    config.network.name.c_str(), t.ms_per_step, t.batch_size, t.ms_data,
                    1000.0 * t.batch_size / t.ms_per_step);
        return;
      }
      TrainOptions options;
      options.out_dir = args->out.empty() ? default_run_dir(args->config) : args->out;
      options.resume = args->resume;
      const TrainResult result = train(config, options);
      std::printf("done: %lld steps in %.1f s; val top-1 %.2f %% (best %.2f %% at step %lld); %s\n",
                  static_cast<long long>(result.steps), result.seconds, 100.0 * result.last_validation.top1,
                  100.0 * result.best_val_top1, static_cast<long long>(result.best_step), options.out_dir.c_str());
    });
  });
}

// ---- eval ----

void add_eval(CLI::App& app) {
  struct Args {
    std::string target, out, which = "best", report, json;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command = app.add_subcommand(
      "eval", "Evaluate a checkpoint on the validation split: top-1/top-5, per-class accuracy, confusion matrix");
  command->add_option("target", args->target, "A checkpoint (.pt), or a config whose run to evaluate")->required();
  command->add_option("--out", args->out, "With a config: its run directory (default: runs/<config name>)");
  command->add_option("--checkpoint", args->which, "With a config: which checkpoint")
      ->check(CLI::IsMember({"best", "last"}))->capture_default_str();
  command->add_option("--json", args->json, "Also write the results as JSON (top1, top5, per-class, confusion)");
  command->add_option("--report", args->report,
                      "Directory for confusion.txt and confusion.png (default: the run directory)");
  command->callback([args] {
    run_command("eval", [&] {
      std::string checkpoint = args->target;
      std::unique_ptr<Config> config;
      if (is_config_file(args->target)) {
        config = std::make_unique<Config>(load_config(args->target));
        checkpoint = checkpoint_path(args->out.empty() ? default_run_dir(args->target) : args->out, args->which);
      }
      const EvaluationSummary summary = evaluate_checkpoint(checkpoint, config.get());
      const std::string text = format_evaluation(summary);
      std::printf("%s\n%s", checkpoint.c_str(), text.c_str());
      // A checkpoint in <run>/checkpoints/ reports into <run>.
      fs::path report = args->report;
      if (report.empty()) {
        const fs::path parent = fs::path(checkpoint).parent_path();
        report = parent.filename() == "checkpoints" ? parent.parent_path() : parent;
      }
      if (!report.empty()) fs::create_directories(report);
      write_file_atomically((report / "confusion.txt").string(), checkpoint + "\n" + text);
      if (!args->json.empty()) write_file_atomically(args->json, evaluation_json(summary));
      const std::string png = (report / "confusion.png").string();
      const std::string warning = plot_confusion(summary.class_names, summary.confusion, png, checkpoint);
      if (!warning.empty()) std::fprintf(stderr, "lowbit eval: warning: %s\n", warning.c_str());
      std::printf("wrote %s and %s\n", (report / "confusion.txt").string().c_str(),
                  warning.empty() ? png.c_str() : "(no plot)");
    });
  });
}

// ---- export ----

void add_export(CLI::App& app) {
  struct Args {
    std::string target, out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command = app.add_subcommand(
      "export", "Write a trained network as ONNX with QONNX quantizers (docs/onnx-interchange.md)");
  command->add_option("target", args->target, "A checkpoint (.pt), or a run directory (its checkpoints/best.pt)")
      ->required();
  command->add_option("--out", args->out, "ONNX file to write")->required();
  command->callback([args] {
    run_command("export", [&] {
      std::printf("%s", format_export_summary(export_checkpoint(args->target, args->out)).c_str());
    });
  });
}

}  // namespace

// ---- torch-bench ----

void add_torch_bench(CLI::App& app) {
  struct Args {
    std::string target, json;
    int threads = 1;
    int64_t runs = 200, warmup = 20;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command = app.add_subcommand(
      "torch-bench", "Inference latency of a network in LibTorch (batch 1): the float baseline of a deployed model");
  command->add_option("target", args->target, "A checkpoint (.pt), or a config (.yaml: the network, untrained)")
      ->required();
  command->add_option("--threads", args->threads, "LibTorch threads")->check(CLI::Range(1, 256))->capture_default_str();
  command->add_option("--runs", args->runs, "Timed forward passes")->check(CLI::PositiveNumber)->capture_default_str();
  command->add_option("--warmup", args->warmup, "Untimed forward passes first")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command->add_option("--json", args->json, "Also write the statistics as JSON (mean_ms, median_ms, p95_ms)");
  command->callback([args] {
    run_command("torch-bench", [&] {
      const LatencyStats stats = latency_stats(measure_inference(args->target, args->threads, args->warmup, args->runs));
      std::printf("%s: LibTorch, %zu runs, %d thread(s), batch 1: mean %.3f ms, median %.3f ms, p95 %.3f ms\n",
                  args->target.c_str(), stats.runs, args->threads, stats.mean_ms, stats.median_ms, stats.p95_ms);
      if (!args->json.empty()) write_file_atomically(args->json, latency_json(args->target, args->threads, stats));
    });
  });
}

void add_cli_commands(CLI::App& app) {
  add_init(app);
  add_train(app);
  add_eval(app);
  add_torch_bench(app);
  add_export(app);
}

}  // namespace lowbit::trainer
