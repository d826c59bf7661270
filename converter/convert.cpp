#include "converter/convert.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <new>
#include <sstream>

#include "converter/onnx_import.h"
#include "converter/passes.h"
#include "converter/quantizer.h"
#include "lowbit/model_builder.h"

namespace lowbit::converter {

namespace {

// Runs `step`, turning every failure into one ConvertError that names the file.
template <typename F>
auto naming_file(const std::string& path, F step) -> decltype(step()) {
  try {
    return step();
  } catch (const ConvertError& e) {
    throw ConvertError(path + ": " + e.what());
  } catch (const std::bad_alloc&) {
    throw ConvertError(path + ": out of memory");
  } catch (const std::exception& e) {
    throw ConvertError(path + ": " + e.what());
  }
}

uint64_t float_parameter_bytes(const Graph& g) {
  uint64_t bytes = 0;
  for (const Value& v : g.values)
    if (v.is_constant() && v.type == ElemType::kFloat) bytes += 4 * v.constant->size();
  return bytes;
}

std::string type_of(const TensorDesc& t) {
  return t.dtype == DType::kCodes ? code_type_name(t.quant) : dtype_name(t.dtype);
}

}  // namespace

Graph load_onnx(const std::string& path, int64_t batch) {
  return naming_file(path, [&] {
    ImportOptions options;
    options.batch = batch;
    return import_onnx_file(path, options);
  });
}

std::vector<LayerSummary> summarize(const GraphDesc& graph) {
  std::vector<LayerSummary> layers;
  for (const OpDesc& op : graph.ops) {
    const TensorDesc& y = graph.tensors[op.outputs[0]];
    LayerSummary s{op_name(op.type), y.name, y.shape_string(), type_of(y), "", 0};
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      if (op.inputs[i] == kNoTensor || !graph.tensors[op.inputs[i]].is_constant()) continue;
      const TensorDesc& c = graph.tensors[op.inputs[i]];
      s.parameters += c.element_count();
      const bool conv_family = op.type == OpType::kConv2D || op.type == OpType::kQConv2D || op.type == OpType::kDense ||
                               op.type == OpType::kQDense;
      if (conv_family && i == 1) s.weights = type_of(c) + " " + c.shape_string();
    }
    layers.push_back(std::move(s));
  }
  return layers;
}

std::string format_summary(const ConvertResult& r) {
  std::ostringstream out;
  size_t name_width = 4;
  for (const LayerSummary& l : r.layers) name_width = std::max(name_width, l.name.size());
  out << std::left << std::setw(static_cast<int>(name_width)) << "name" << "  " << std::setw(14) << "op" << std::setw(20)
      << "output" << std::setw(6) << "type" << std::setw(24) << "weights" << "params\n";
  for (const LayerSummary& l : r.layers)
    out << std::setw(static_cast<int>(name_width)) << l.name << "  " << std::setw(14) << l.op << std::setw(20) << l.shape
        << std::setw(6) << l.type << std::setw(24) << l.weights << l.parameters << "\n";
  out << std::fixed << std::setprecision(1) << r.model_path << ": " << r.model_bytes / 1024.0 << " KiB ("
      << r.float_parameter_bytes / 1024.0 << " KiB of float32 parameters in the ONNX model), " << r.layers.size()
      << " ops, converted in " << std::setprecision(2) << r.seconds << " s\n";
  return out.str();
}

ConvertedModel convert_in_memory(const std::string& onnx_path, const ConvertOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  ConvertedModel converted;
  Graph g = load_onnx(onnx_path, options.batch);
  converted.result.float_parameter_bytes = float_parameter_bytes(g);
  ModelBuilder builder;
  naming_file(onnx_path, [&] {
    run_graph_passes(g);
    LoweringOptions lowering;
    lowering.expose_quantized = options.expose_quantized;
    converted.result.quantized = lower_to_runtime(g, builder, lowering).quantized;
    const Status s = builder.serialize(&converted.bytes);
    if (!s.ok) throw ConvertError("the runtime rejects the converted graph: " + s.message);
    converted.meta = model_meta_yaml(g, builder.graph());
    return 0;
  });
  converted.result.layers = summarize(builder.graph());
  converted.result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return converted;
}

ConvertResult convert_onnx(const std::string& onnx_path, const std::string& out_dir, const ConvertOptions& options) {
  ConvertedModel converted = convert_in_memory(onnx_path, options);
  // Everything is checked; now write, each file atomically.
  ConvertResult& result = converted.result;
  const std::filesystem::path dir(out_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw ConvertError(out_dir + ": cannot create the directory: " + ec.message());
  result.model_path = (dir / "model.lbm").string();
  result.meta_path = (dir / "meta.yaml").string();
  Status s = write_file_atomic(result.model_path, converted.bytes.data(), converted.bytes.size());
  if (s.ok)
    s = write_file_atomic(result.meta_path, reinterpret_cast<const uint8_t*>(converted.meta.data()), converted.meta.size());
  if (!s.ok) throw ConvertError(s.message);
  result.model_bytes = converted.bytes.size();
  return result;
}

std::vector<int32_t> runtime_codes(const lowbit_model* model, int index) {
  lowbit_tensor_info info{};
  lowbit_output_info(model, index, &info);
  QuantType q;
  q.bits = static_cast<uint8_t>(info.bits);
  q.kind = static_cast<QuantKind>(info.kind);
  std::vector<uint32_t> words(info.bytes / 4);
  std::memcpy(words.data(), lowbit_output_buffer(model, index), info.bytes);
  size_t count = 1;
  for (int i = 0; i < info.rank; ++i) count *= static_cast<size_t>(info.dims[i]);
  const size_t channels = static_cast<size_t>(info.dims[info.rank - 1]);
  std::vector<int32_t> codes(count);
  unpack_pixel_planes(words.data(), count / channels, channels, q, codes.data());
  return codes;
}

}  // namespace lowbit::converter
