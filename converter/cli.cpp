#include "converter/cli.h"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "converter/convert.h"
#include "converter/emit_c.h"
#include "converter/package.h"
#include "converter/predict.h"
#include "converter/profile.h"
#include "converter/verify.h"
#include "lowbit/lowbit.hpp"
#include "lowbit/model_builder.h"

namespace lowbit::converter {
namespace {

struct ConvertArgs {
  std::string model;
  std::string out;
  std::vector<std::string> targets;
  bool emit_c = false;
};

void run_convert(const ConvertArgs& args) {
  ConvertResult result;
  try {
    check_device_builds(args.targets);  // before anything is written
    result = convert_onnx(args.model, args.out);
    std::cout << format_summary(result) << "wrote " << result.model_path << " and " << result.meta_path << "\n";
    if (!args.targets.empty()) {
      write_device_packages(args.out, args.targets);
      std::cout << "wrote device packages for";
      for (const std::string& t : args.targets) std::cout << " " << t;
      std::cout << " (" << args.out << "/lib/<target>/, include/, README.md)\n";
    }
    if (args.emit_c) {
      const EmitCResult c = emit_c_tree(args.out);
      std::cout << "wrote " << c.dir << "/ (" << c.files << " files; weights " << c.model_bytes
                << " bytes, static workspace " << c.workspace_bytes << " bytes): cd " << c.dir
                << " && make\n";
    }
  } catch (const ConvertError& e) {
    std::cerr << "lowbit convert: " << e.what() << "\n";
    throw CLI::RuntimeError(1);
  }
}

// Runs a command body; a ConvertError becomes one line "lowbit COMMAND: message" and exit status 1.
template <typename F>
void reporting_errors(const std::string& command, F body) {
  try {
    body();
  } catch (const ConvertError& e) {
    std::cerr << "lowbit " << command << ": " << e.what() << "\n";
    throw CLI::RuntimeError(1);
  }
}

void write_text(const std::string& path, const std::string& text) {
  const Status s = write_file_atomic(path, reinterpret_cast<const uint8_t*>(text.data()), text.size());
  if (!s.ok) throw ConvertError(s.message);
}

struct VerifyArgs {
  std::string model, dir, data, json;
  size_t images = 100;
};

// The bar of issue #5: converted models must agree with the interpreter on 99.9 % of codes and top-1.
constexpr double kRequiredAgreement = 0.999;

void run_verify(const VerifyArgs& args) {
  reporting_errors("verify", [&] {
    const Preprocess pre = read_preprocess(args.dir);
    VerifyReport report = verify_model(args.model, args.dir,
                                       args.data.empty() ? random_images(pre, args.images)
                                                         : load_dataset(args.data, args.images));
    report.input_source = args.data.empty() ? "random pixels" : args.data;
    std::cout << format_verify_report(report);
    if (!args.json.empty()) write_text(args.json, verify_report_json(report));
    if (report.identical_codes_fraction() < kRequiredAgreement || report.identical_top1_fraction() < kRequiredAgreement)
      throw ConvertError(args.dir + "/model.lbm: below 99.9 % identical codes or top-1");
  });
}

struct BenchArgs {
  std::string dir, json;
  int runs = 100, threads = 1;
};

// Times `runs` runs of DIR/model.lbm on a zero input after one warm-up run.
void run_bench(const BenchArgs& args) {
  reporting_errors("bench", [&] {
    const std::string path = args.dir + "/model.lbm";
    std::string error;
    lowbit::Model model = lowbit::Model::load(path, &error);
    if (!model) throw ConvertError(error);  // the runtime names the file
    if (!model.set_threads(args.threads)) throw ConvertError(path + ": " + lowbit_last_error());
    for (int i = 0; i < model.num_inputs(); ++i)
      model.set_input(i, std::vector<float>(lowbit::Model::element_count(model.input_info(i)), 0.0f));
    std::vector<double> ms;
    for (int r = 0; r <= args.runs; ++r) {
      const auto start = std::chrono::steady_clock::now();
      if (!model.run()) throw ConvertError(path + ": " + lowbit_last_error());
      if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    double sum = 0;
    for (double t : ms) sum += t;
    const auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))]; };
    std::cout << std::fixed << std::setprecision(3) << path << ": " << ms.size() << " runs, " << args.threads
              << " thread(s): mean " << sum / ms.size() << " ms, median " << at(0.5) << " ms, p95 " << at(0.95)
              << " ms\n";
    if (!args.json.empty())
      write_text(args.json, nlohmann::json{{"model", path},
                                           {"runs", ms.size()},
                                           {"threads", args.threads},
                                           {"mean_ms", sum / ms.size()},
                                           {"median_ms", at(0.5)},
                                           {"p95_ms", at(0.95)}}
                                    .dump(2) + "\n");
  });
}

struct ProfileArgs {
  std::string dir, json;
  int runs = 100, threads = 1;
};

// Per-op table of DIR/model.lbm: shapes, bits, parameters, MACs, activation bytes, median latency.
void run_profile(const ProfileArgs& args) {
  reporting_errors("profile", [&] {
    const ModelProfile profile = profile_model(args.dir, args.threads, args.runs);
    std::cout << format_profile(profile);
    if (!args.json.empty()) write_text(args.json, profile_json(profile));
  });
}

struct PredictArgs {
  std::string dir, json, data;
  std::vector<std::string> images;
  size_t top_k = 5, limit = SIZE_MAX;
  int threads = 1;
};

// --data: a whole dataset through the model, with its accuracy when labels go with it.
void run_predict_dataset(const PredictArgs& args) {
  reporting_errors("predict", [&] {
    const DatasetReport report = predict_dataset(args.dir, args.data, args.limit, args.threads);
    std::cout << format_dataset_report(report);
    if (!args.json.empty()) write_text(args.json, dataset_report_json(report));
  });
}

// Classifies every image; a bad image is reported (one line naming the file) and skipped, and the
// command then exits with status 1 after the others have been classified.
void run_predict(const PredictArgs& args) {
  if (!args.data.empty()) {
    if (!args.images.empty()) {
      std::cerr << "lowbit predict: give either IMAGES or --data, not both\n";
      throw CLI::RuntimeError(1);
    }
    return run_predict_dataset(args);
  }
  if (args.images.empty()) {
    std::cerr << "lowbit predict: no images (give IMAGES or --data)\n";
    throw CLI::RuntimeError(1);
  }
  size_t failed = 0;
  reporting_errors("predict", [&] {
    const std::vector<Prediction> predictions = predict_images(args.dir, args.images, args.top_k, args.threads);
    std::cout << format_predictions(predictions);
    for (const Prediction& p : predictions)
      if (!p.error.empty()) {
        std::cerr << "lowbit predict: " << p.error << "\n";
        ++failed;
      }
    if (!args.json.empty()) write_text(args.json, predictions_json(predictions));
  });
  if (failed) throw CLI::RuntimeError(1);
}

}  // namespace

void add_cli_commands(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* convert = app.add_subcommand("convert", "Convert an ONNX/QONNX model into a lowbit model directory");
  convert->add_option("MODEL", args->model, "ONNX model file")->required();
  convert->add_option("--out", args->out, "Output directory (model.lbm, meta.yaml)")->required();
  convert->add_option("--targets", args->targets,
                      "Device packages to write: x86_64,aarch64,armv7 (libraries, lowbit-run, headers, README)")
      ->delimiter(',')
      ->check(CLI::IsMember({"x86_64", "aarch64", "armv7"}));
  convert->add_flag("--emit-c", args->emit_c, "Also write DIR/c/: the model as a self-contained C/C++ source tree (weights as const arrays, "
                    "static workspace, no heap or files at run time) with a Makefile for model-run and libmodel.a");
  convert->callback([args] { run_convert(*args); });

  auto verify_args = std::make_shared<VerifyArgs>();
  CLI::App* verify = app.add_subcommand("verify", "Compare a converted model with the reference interpreter of its ONNX file");
  verify->add_option("MODEL", verify_args->model, "ONNX model file")->required();
  verify->add_option("DIR", verify_args->dir, "Converted model directory (model.lbm, meta.yaml)")->required();
  verify->add_option("--images", verify_args->images, "Number of inputs")->check(CLI::PositiveNumber);
  verify->add_option("--data", verify_args->data,
                     "Directory of PNG/JPEG images, an IDX images file, or a directory with t10k-images-idx3-ubyte(.gz);"
                     " without it, deterministic random images");
  verify->add_option("--json", verify_args->json, "Also write the report as JSON");
  verify->callback([verify_args] { run_verify(*verify_args); });

  auto bench_args = std::make_shared<BenchArgs>();
  CLI::App* bench = app.add_subcommand("bench", "Latency of a converted model (mean, median, p95)");
  bench->add_option("DIR", bench_args->dir, "Converted model directory")->required();
  bench->add_option("--runs", bench_args->runs, "Timed runs")->check(CLI::PositiveNumber);
  bench->add_option("--threads", bench_args->threads, "Worker threads")->check(CLI::PositiveNumber);
  bench->add_option("--json", bench_args->json, "Also write the statistics as JSON (mean_ms, median_ms, p95_ms)");
  bench->callback([bench_args] { run_bench(*bench_args); });

  auto profile_args = std::make_shared<ProfileArgs>();
  CLI::App* profile = app.add_subcommand(
      "profile", "Per-op table of a converted model: shapes, bits, parameters, MACs, activation bytes, latency");
  profile->add_option("DIR", profile_args->dir, "Converted model directory")->required();
  profile->add_option("--runs", profile_args->runs, "Timed runs (the per-op median is reported)")
      ->check(CLI::PositiveNumber);
  profile->add_option("--threads", profile_args->threads, "Worker threads")->check(CLI::PositiveNumber);
  profile->add_option("--json", profile_args->json, "Also write the table as JSON");
  profile->callback([profile_args] { run_profile(*profile_args); });

  auto predict_args = std::make_shared<PredictArgs>();
  CLI::App* predict = app.add_subcommand("predict", "Classify PNG/JPEG images with a converted model (top-k classes)");
  predict->add_option("DIR", predict_args->dir, "Converted model directory (model.lbm, meta.yaml)")->required();
  predict->add_option("IMAGES", predict_args->images, "Image files");
  predict->add_option("--data", predict_args->data,
                      "Instead of IMAGES: an IDX images file, a directory with t10k-images-idx3-ubyte(.gz) or a "
                      "directory of PNG/JPEG images; prints the top-1 accuracy when IDX labels go with it");
  predict->add_option("--images", predict_args->limit, "With --data: at most this many images")
      ->check(CLI::PositiveNumber);
  predict->add_option("--top-k", predict_args->top_k, "Classes shown per image")->check(CLI::PositiveNumber);
  predict->add_option("--threads", predict_args->threads, "Worker threads")->check(CLI::PositiveNumber);
  predict->add_option("--json", predict_args->json, "Also write the predictions as JSON");
  predict->callback([predict_args] { run_predict(*predict_args); });
}

}  // namespace lowbit::converter
