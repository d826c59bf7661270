#include "converter/profile.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "converter/ir.h"
#include "converter/quantizer.h"
#include "lowbit/lowbit.hpp"

namespace lowbit::converter {
namespace {

std::vector<int32_t> dims_of(const lowbit_tensor_info& t) { return std::vector<int32_t>(t.dims, t.dims + t.rank); }

std::string type_of(const lowbit_tensor_info& t) {
  if (t.dtype == LOWBIT_CODES) return code_type_name(QuantType{static_cast<uint8_t>(t.bits), static_cast<QuantKind>(t.kind)});
  return t.dtype == LOWBIT_I32 ? "i32" : "f32";
}

// "W1A2" for a quantized conv/dense (weight bits, input activation bits), "A2" for another op
// reading codes, "f32" for float ops.
std::string bits_of(const lowbit_op_info& op) {
  const std::string type = op.type;
  if ((type == "QConv2D" || type == "QDense") && op.num_inputs >= 2)
    return "W" + std::to_string(op.inputs[1].bits) + "A" + std::to_string(op.inputs[0].bits);
  for (int i = 0; i < op.num_inputs && i < LOWBIT_MAX_OP_INPUTS; ++i)
    if (!op.input_is_constant[i] && op.inputs[i].name && op.inputs[i].dtype == LOWBIT_CODES)
      return "A" + std::to_string(op.inputs[i].bits);
  return "f32";
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string shape_string(const std::vector<int32_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

// 1234567 → "1,234,567".
std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string fixed(double v, int precision) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

}  // namespace

ModelProfile profile_model(const std::string& model_dir, int threads, int runs) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(model_dir)) throw ConvertError(model_dir + ": no such model directory");
  if (runs < 1 || threads < 1) throw ConvertError("profile needs at least one run and one thread");
  ModelProfile p;
  p.model_path = (fs::path(model_dir) / "model.lbm").string();
  p.threads = threads;
  p.runs = runs;
  std::string error;
  lowbit::Model model = lowbit::Model::load(p.model_path, &error);
  if (!model) throw ConvertError(error);  // the runtime names the file
  std::error_code ec;
  p.model_bytes = fs::file_size(p.model_path, ec);
  if (!model.set_threads(threads)) throw ConvertError(p.model_path + ": " + lowbit_last_error());
  // The packed kernels' run time does not depend on the input values (as for `lowbit bench`).
  for (int i = 0; i < model.num_inputs(); ++i)
    model.set_input(i, std::vector<float>(lowbit::Model::element_count(model.input_info(i)), 0.0f));

  const int ops = model.num_ops();
  model.set_profiling(true);
  std::vector<std::vector<double>> op_ms(static_cast<size_t>(ops));
  std::vector<double> run_ms;
  for (int r = 0; r <= runs; ++r) {  // run 0 warms caches and pages up
    const auto start = std::chrono::steady_clock::now();
    if (!model.run()) throw ConvertError(p.model_path + ": " + lowbit_last_error());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (r == 0) continue;
    run_ms.push_back(ms);
    for (int i = 0; i < ops; ++i) op_ms[static_cast<size_t>(i)].push_back(model.op_milliseconds(i));
  }
  p.run_median_ms = median(run_ms);

  for (int i = 0; i < ops; ++i) {
    const lowbit_op_info info = model.op_info(i);
    OpProfileRow row;
    row.name = info.output.name;
    row.op = info.type;
    for (int k = 0; k < info.num_inputs && k < LOWBIT_MAX_OP_INPUTS; ++k)
      if (info.inputs[k].name && !info.input_is_constant[k]) row.input_dims.push_back(dims_of(info.inputs[k]));
    row.output_dims = dims_of(info.output);
    row.bits = bits_of(info);
    row.output_type = type_of(info.output);
    row.params = info.param_count;
    row.param_bytes = info.param_bytes;
    row.macs = info.macs;
    row.bytes_read = info.activation_bytes_read;
    row.bytes_written = info.activation_bytes_written;
    row.median_ms = median(op_ms[static_cast<size_t>(i)]);
    p.params += row.params;
    p.param_bytes += row.param_bytes;
    p.macs += row.macs;
    p.bytes_read += row.bytes_read;
    p.bytes_written += row.bytes_written;
    p.ops_ms += row.median_ms;
    p.ops.push_back(std::move(row));
  }
  for (OpProfileRow& row : p.ops) row.share = p.ops_ms > 0 ? row.median_ms / p.ops_ms : 1.0 / p.ops.size();
  return p;
}

std::string format_profile(const ModelProfile& p) {
  const std::vector<std::string> header = {"#",    "name",   "op",      "input",  "output",  "bits",      "out",
                                           "params", "param B", "MACs", "read B", "written B", "median ms", "share"};
  const size_t columns = header.size();
  const std::vector<bool> left = {false, true, true, true, true, true, true,
                                  false, false, false, false, false, false, false};
  std::vector<std::vector<std::string>> rows = {header};
  for (size_t i = 0; i < p.ops.size(); ++i) {
    const OpProfileRow& r = p.ops[i];
    std::string inputs;
    for (const auto& d : r.input_dims) inputs += (inputs.empty() ? "" : ",") + shape_string(d);
    rows.push_back({std::to_string(i), r.name, r.op, inputs, shape_string(r.output_dims), r.bits, r.output_type,
                    grouped(r.params), grouped(r.param_bytes), grouped(r.macs), grouped(r.bytes_read),
                    grouped(r.bytes_written), fixed(r.median_ms, 4), fixed(100 * r.share, 1) + " %"});
  }
  rows.push_back({"", "total", "", "", "", "", "", grouped(p.params), grouped(p.param_bytes), grouped(p.macs),
                  grouped(p.bytes_read), grouped(p.bytes_written), fixed(p.ops_ms, 4), "100.0 %"});
  std::vector<size_t> width(columns, 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < columns; ++c) width[c] = std::max(width[c], row[c].size());

  std::ostringstream out;
  out << p.model_path << ": " << p.ops.size() << " ops, median of " << p.runs << " run(s), " << p.threads
      << " thread(s)\n";
  const auto line = [&](const std::vector<std::string>& row) {
    std::string text;
    for (size_t c = 0; c < columns; ++c) {
      const std::string pad(width[c] - row[c].size(), ' ');
      text += (c ? "  " : "") + (left[c] ? row[c] + pad : pad + row[c]);
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << "\n";
  };
  size_t total_width = 0;
  for (size_t w : width) total_width += w + 2;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i == 1 || i + 1 == rows.size()) out << std::string(total_width - 2, '-') << "\n";
    line(rows[i]);
  }
  const double ratio = p.model_bytes ? static_cast<double>(p.float32_bytes()) / p.model_bytes : 0;
  out << "model size: " << grouped(p.model_bytes) << " bytes (model.lbm) vs " << grouped(p.float32_bytes())
      << " bytes as float32 parameters (" << fixed(ratio, 1) << "x smaller)\n"
      << "whole run: median " << fixed(p.run_median_ms, 4) << " ms (sum of the ops' medians " << fixed(p.ops_ms, 4)
      << " ms)\n";
  return out.str();
}

std::string profile_json(const ModelProfile& p) {
  nlohmann::ordered_json ops = nlohmann::ordered_json::array();
  for (const OpProfileRow& r : p.ops)
    ops.push_back({{"name", r.name},
                   {"op", r.op},
                   {"inputs", r.input_dims},
                   {"output", r.output_dims},
                   {"bits", r.bits},
                   {"output_type", r.output_type},
                   {"params", r.params},
                   {"param_bytes", r.param_bytes},
                   {"macs", r.macs},
                   {"activation_bytes_read", r.bytes_read},
                   {"activation_bytes_written", r.bytes_written},
                   {"median_ms", r.median_ms},
                   {"share", r.share}});
  const nlohmann::ordered_json j = {{"model", p.model_path},
                            {"threads", p.threads},
                            {"runs", p.runs},
                            {"ops", ops},
                            {"total",
                             {{"params", p.params},
                              {"param_bytes", p.param_bytes},
                              {"macs", p.macs},
                              {"activation_bytes_read", p.bytes_read},
                              {"activation_bytes_written", p.bytes_written},
                              {"median_ms", p.ops_ms}}},
                            {"run_median_ms", p.run_median_ms},
                            {"model_bytes", p.model_bytes},
                            {"float32_parameter_bytes", p.float32_bytes()}};
  return j.dump(2) + "\n";
}

}  // namespace lowbit::converter
