// lowbit-run: the device-side runner. Loads a .lbm model, feeds .npy or image inputs, runs, writes
// .npy outputs, and optionally times runs and ops.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "image_input.h"
#include "lowbit/lowbit.hpp"
#include "npy.h"

namespace {

int die(const std::string& message) {
  std::fprintf(stderr, "lowbit-run: %s\n", message.c_str());
  return 1;
}

std::string shape_string(const lowbit_tensor_info& t) {
  std::string s = "[";
  for (int i = 0; i < t.rank; ++i) s += (i ? ", " : "") + std::to_string(t.dims[i]);
  return s + "]";
}

std::string type_string(const lowbit_tensor_info& t) {
  if (t.dtype == LOWBIT_F32) return "f32";
  static const char* kinds[] = {"u", "s", "sn", "bin"};
  return std::string("codes ") + kinds[t.kind] + std::to_string(t.bits) + " x" + std::to_string(t.scale);
}

// Dims without leading 1s, so [1, 28, 28, 1] matches an array of shape (1, 28, 28, 1) or (28, 28, 1).
std::vector<int64_t> squeezed(std::vector<int64_t> dims) {
  while (dims.size() > 1 && dims.front() == 1) dims.erase(dims.begin());
  return dims;
}

bool read_input(const std::string& path, const lowbit_tensor_info& info, std::vector<float>* values,
                std::string* error) {
  if (lowbit::is_image_path(path)) {
    if (info.rank != 4 || info.dims[0] != 1) {
      *error = path + ": images feed [1, H, W, C] inputs; '" + info.name + "' is " + shape_string(info);
      return false;
    }
    return lowbit::load_image(path, info.dims[1], info.dims[2], info.dims[3], values, error);
  }
  lowbit::NpyArray array;
  if (!lowbit::read_npy(path, &array, error)) return false;
  std::vector<int64_t> want(info.dims, info.dims + info.rank);
  if (squeezed(array.shape) != squeezed(want)) {
    std::string got = "(";
    for (size_t i = 0; i < array.shape.size(); ++i) got += (i ? ", " : "") + std::to_string(array.shape[i]);
    *error = path + ": array shape " + got + ") does not fit input '" + info.name + "' " + shape_string(info);
    return false;
  }
  *values = std::move(array.values);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run a lowbit model (.lbm) on .npy or image inputs."};
  std::string model_path;
  std::vector<std::string> inputs, outputs;
  int repeat = 1, threads = 1;
  bool profile = false;
  app.add_option("model", model_path, "model file (.lbm)")->required();
  app.add_option("-i,--input", inputs, "one per model input, in order: float32 .npy or PNG/JPEG/BMP/PNM image");
  app.add_option("-o,--output", outputs, "one per model output, in order: float32 .npy to write");
  app.add_option("-r,--repeat", repeat, "runs to time (the outputs are those of the last run)")->check(CLI::Range(1, 1000000));
  app.add_option("-t,--threads", threads, "worker threads")->check(CLI::Range(1, 256));
  app.add_flag("-p,--profile", profile, "print the time of each op (of the last run)");
  CLI11_PARSE(app, argc, argv);

  std::string error;
  lowbit::Model model = lowbit::Model::load(model_path, &error);
  if (!model) return die(error);
  if (!model.set_threads(threads)) return die(lowbit_last_error());

  std::printf("model %s: %d ops, %zu bytes of activations planned\n", model_path.c_str(), lowbit_num_ops(model.get()),
              model.peak_activation_bytes());
  if (static_cast<int>(inputs.size()) != model.num_inputs())
    return die(model_path + ": the model has " + std::to_string(model.num_inputs()) + " input(s), " +
               std::to_string(inputs.size()) + " given with --input");
  if (static_cast<int>(outputs.size()) > model.num_outputs())
    return die(model_path + ": the model has " + std::to_string(model.num_outputs()) + " output(s), " +
               std::to_string(outputs.size()) + " given with --output");

  for (int i = 0; i < model.num_inputs(); ++i) {
    const lowbit_tensor_info info = model.input_info(i);
    std::vector<float> values;
    if (!read_input(inputs[static_cast<size_t>(i)], info, &values, &error)) return die(error);
    if (!model.set_input(i, values)) return die(inputs[static_cast<size_t>(i)] + ": " + lowbit_last_error());
    std::printf("input  %-16s %-18s %s <- %s\n", info.name, shape_string(info).c_str(), type_string(info).c_str(),
                inputs[static_cast<size_t>(i)].c_str());
  }

  lowbit_set_profiling(model.get(), profile ? 1 : 0);
  std::vector<double> ms;
  for (int r = 0; r < repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    if (!model.run()) return die(lowbit_last_error());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  double total = 0;
  for (double m : ms) total += m;
  std::printf("ran %d time(s) on %d thread(s): median %.3f ms, min %.3f ms, mean %.3f ms\n", repeat, threads,
              ms[ms.size() / 2], ms.front(), total / static_cast<double>(ms.size()));

  if (profile) {
    double sum = 0;
    for (int i = 0; i < lowbit_num_ops(model.get()); ++i) {
      double t;
      lowbit_op_profile(model.get(), i, nullptr, nullptr, &t);
      sum += t;
    }
    std::printf("%4s  %-14s %-24s %10s %6s\n", "step", "op", "output", "ms", "%");
    for (int i = 0; i < lowbit_num_ops(model.get()); ++i) {
      const char *type, *name;
      double t;
      lowbit_op_profile(model.get(), i, &type, &name, &t);
      std::printf("%4d  %-14s %-24s %10.4f %5.1f%%\n", i, type, name, t, sum > 0 ? 100.0 * t / sum : 0.0);
    }
  }

  for (int i = 0; i < model.num_outputs(); ++i) {
    const lowbit_tensor_info info = model.output_info(i);
    lowbit::NpyArray array;
    array.shape.assign(info.dims, info.dims + info.rank);
    array.values = model.output(i);
    const auto top = std::max_element(array.values.begin(), array.values.end());
    std::printf("output %-16s %-18s %s, max %g at flat index %td", info.name, shape_string(info).c_str(),
                type_string(info).c_str(), static_cast<double>(*top), top - array.values.begin());
    if (static_cast<size_t>(i) < outputs.size()) {
      if (!lowbit::write_npy(outputs[static_cast<size_t>(i)], array, &error)) return die(error);
      std::printf(" -> %s", outputs[static_cast<size_t>(i)].c_str());
    }
    std::printf("\n");
  }
  return 0;
}
