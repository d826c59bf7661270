#include "conversion_check.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "lowbit/model_builder.h"

namespace lowbit::converter::test {

namespace {
// ctest runs every test case as its own process, two at a time: each process gets its own
// directory (removed at exit), so suites that share fixture files never see each other's.
struct ProcessTempDir {
  std::string path = ::testing::TempDir() + "/lowbit-converter-test-" + std::to_string(::getpid());
  ProcessTempDir() { std::filesystem::create_directories(path); }
  ~ProcessTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};
}  // namespace

std::string temp_path(const std::string& name) {
  static const ProcessTempDir dir;
  return dir.path + "/" + name;
}

ConversionCheck::ConversionCheck(const OnnxMaker& maker, const std::string& name) {
  const std::string path = temp_path(name + ".onnx");
  maker.save(path);
  ConvertOptions options;
  options.expose_quantized = true;
  result_ = convert_onnx(path, temp_path(name), options);
  graph_ = load_onnx(path);
  std::string error;
  model_ = lowbit::Model::load(result_.model_path, &error);
  if (!model_) throw ConvertError("the runtime cannot load " + result_.model_path + ": " + error);
}

CheckReport ConversionCheck::run(const std::vector<std::vector<float>>& inputs) {
  std::vector<Array> arrays;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Dims& dims = graph_.value(graph_.inputs[k]).dims;
    arrays.emplace_back(dims, std::vector<double>(inputs[k].begin(), inputs[k].end()));
    if (!model_.set_input(static_cast<int>(k), to_nhwc(dims, inputs[k])))
      throw ConvertError(std::string("set_input: ") + lowbit_last_error());
  }
  evaluation_ = evaluate(graph_, arrays);
  if (!model_.run()) throw ConvertError(std::string("run: ") + lowbit_last_error());

  CheckReport report;
  for (size_t k = 0; k < graph_.outputs.size(); ++k) {
    const Array& want = *evaluation_.values[static_cast<size_t>(graph_.outputs[k])];
    const std::vector<double> want_nhwc = to_nhwc(want.dims, want.values);
    const std::vector<float> got = model_.output(static_cast<int>(k));
    if (got.size() != want_nhwc.size()) throw ConvertError("output " + std::to_string(k) + " has the wrong size");
    for (size_t i = 0; i < got.size(); ++i) {
      report.max_output_error = std::max(report.max_output_error, std::fabs(got[i] - want_nhwc[i]));
      report.max_output_value = std::max(report.max_output_value, std::fabs(want_nhwc[i]));
    }
  }
  for (const QuantizedTensorLink& link : result_.quantized) {
    const QuantizedData& want = evaluation_.quantized(graph_, link.name);
    const std::vector<int32_t> want_nhwc = to_nhwc(link.dims, want.codes);
    const std::vector<int32_t> got = runtime_codes(model_.get(), link.output_index);
    const std::set<int32_t> distinct(want.codes.begin(), want.codes.end());
    report.fewest_distinct_codes =
        report.quantized_tensors++ == 0 ? distinct.size() : std::min(report.fewest_distinct_codes, distinct.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ++report.codes_compared;
      if (got[i] == want_nhwc[i]) continue;
      if (report.codes_differing++ == 0)
        report.first_difference = link.name + "[" + std::to_string(i) + "]: runtime " + std::to_string(got[i]) +
                                  ", interpreter " + std::to_string(want_nhwc[i]);
    }
  }
  return report;
}

}  // namespace lowbit::converter::test
