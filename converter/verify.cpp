#include "converter/verify.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "converter/convert.h"
#include "converter/interpreter.h"
#include "lowbit/lowbit.hpp"

namespace lowbit::converter {
namespace {

lowbit::Model load_model(const void* data, size_t size, const std::string& what) {
  std::string error;
  lowbit::Model m = lowbit::Model::load(data, size, &error);
  if (!m) throw ConvertError(what + ": the runtime cannot load it: " + error);
  return m;
}

void run(lowbit::Model& m, const std::vector<float>& input, const std::string& what) {
  if (!m.set_input(0, input) || !m.run()) throw ConvertError(what + ": " + lowbit_last_error());
}

template <typename T>
size_t argmax(const std::vector<T>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// NHWC [1, H, W, C] input data to the interpreter's NCHW array.
Array to_nchw(const Dims& dims, const std::vector<float>& nhwc) {
  const size_t c = static_cast<size_t>(dims[1]), hw = static_cast<size_t>(dims[2] * dims[3]);
  Array a = Array::zeros(dims);
  for (size_t p = 0; p < hw; ++p)
    for (size_t ch = 0; ch < c; ++ch) a.values[ch * hw + p] = nhwc[p * c + ch];
  return a;
}

}  // namespace

VerifyReport verify_model(const std::string& onnx_path, const std::string& model_dir, const std::vector<Pixels>& images) {
  const Graph graph = load_onnx(onnx_path);
  if (graph.inputs.size() != 1 || graph.outputs.empty()) throw ConvertError(onnx_path + ": verify needs one input");
  const Dims& input_dims = graph.value(graph.inputs[0]).dims;
  const Preprocess pre = read_preprocess(model_dir);
  if (input_dims.size() != 4 || input_dims[0] != 1 || input_dims[1] != pre.channels || input_dims[2] != pre.height ||
      input_dims[3] != pre.width)
    throw ConvertError(onnx_path + ": its input " + dims_string(input_dims) + " is not the [1, " +
                       std::to_string(pre.channels) + ", " + std::to_string(pre.height) + ", " +
                       std::to_string(pre.width) + "] of " + model_dir + "/meta.yaml");

  ConvertOptions options;
  options.expose_quantized = true;
  const ConvertedModel twin_bytes = convert_in_memory(onnx_path, options);
  lowbit::Model twin = load_model(twin_bytes.bytes.data(), twin_bytes.bytes.size(), onnx_path + " (converted for verify)");
  const std::string lbm_path = model_dir + "/model.lbm";
  std::string error;
  lowbit::Model deployed = lowbit::Model::load(lbm_path, &error);
  if (!deployed) throw ConvertError(error);  // the runtime names the file

  VerifyReport report;
  report.inputs = images.size();
  for (const QuantizedTensorLink& link : twin_bytes.result.quantized) report.layers.push_back({link.name});
  for (size_t k = 0; k < images.size(); ++k) {
    const std::vector<float> input = preprocess_pixels(pre, images[k], "input " + std::to_string(k));
    const Evaluation eval = evaluate(graph, {to_nchw(input_dims, input)});
    run(twin, input, onnx_path + " (converted for verify)");
    run(deployed, input, lbm_path);

    const std::vector<float> got = deployed.output(0);
    if (got != twin.output(0))
      throw ConvertError(lbm_path + ": its output differs from a fresh conversion of " + onnx_path +
                         " (converted from another model?)");
    const Array& want = *eval.values[static_cast<size_t>(graph.outputs[0])];
    if (argmax(got) == argmax(want.values)) ++report.identical_top1;

    for (size_t l = 0; l < report.layers.size(); ++l) {
      const QuantizedTensorLink& link = twin_bytes.result.quantized[l];
      const std::vector<int32_t> want_codes = to_nhwc(link.dims, eval.quantized(graph, link.name).codes);
      const std::vector<int32_t> got_codes = runtime_codes(twin.get(), link.output_index);
      LayerAgreement& layer = report.layers[l];
      layer.codes += want_codes.size();
      for (size_t i = 0; i < want_codes.size(); ++i) layer.identical += got_codes[i] == want_codes[i];
    }
  }
  for (const LayerAgreement& layer : report.layers) {
    report.codes += layer.codes;
    report.identical_codes += layer.identical;
  }
  return report;
}

std::string format_verify_report(const VerifyReport& r) {
  std::ostringstream out;
  size_t width = 5;
  for (const LayerAgreement& l : r.layers) width = std::max(width, l.name.size());
  out << std::left << std::setw(static_cast<int>(width)) << "layer" << std::right << std::setw(14) << "codes"
      << std::setw(12) << "identical\n";
  out << std::fixed << std::setprecision(3);
  auto percent = [](uint64_t part, uint64_t whole) { return whole ? 100.0 * part / whole : 100.0; };
  for (const LayerAgreement& l : r.layers)
    out << std::left << std::setw(static_cast<int>(width)) << l.name << std::right << std::setw(14) << l.codes
        << std::setw(10) << percent(l.identical, l.codes) << " %\n";
  out << std::left << std::setw(static_cast<int>(width)) << "all" << std::right << std::setw(14) << r.codes
      << std::setw(10) << 100 * r.identical_codes_fraction() << " %\n"
      << "identical top-1: " << r.identical_top1 << " of " << r.inputs << " inputs (" << 100 * r.identical_top1_fraction()
      << " %), inputs: " << r.input_source << "\n";
  return out.str();
}

std::string verify_report_json(const VerifyReport& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerAgreement& l : r.layers)
    layers.push_back({{"name", l.name},
                      {"codes", l.codes},
                      {"identical_codes", l.codes ? static_cast<double>(l.identical) / l.codes : 1.0}});
  const nlohmann::json j = {{"inputs", r.inputs},
                            {"input_source", r.input_source},
                            {"codes", r.codes},
                            {"identical_codes", r.identical_codes_fraction()},
                            {"identical_top1", r.identical_top1_fraction()},
                            {"layers", layers}};
  return j.dump(2) + "\n";
}

}  // namespace lowbit::converter
