// meta.yaml: what a device needs besides the model to use it (docs/onnx-interchange.md).
#include <filesystem>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "converter/convert.h"

namespace lowbit::converter {
namespace {

nlohmann::json parse_json_metadata(const Graph& g, const std::string& key) {
  const auto it = g.metadata.find(key);
  if (it == g.metadata.end()) return nullptr;
  try {
    return nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw ConvertError("metadata '" + key + "' is not valid JSON: " + e.what());
  }
}

void emit_json(YAML::Emitter& out, const nlohmann::json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (auto it = j.begin(); it != j.end(); ++it) {
      out << YAML::Key << it.key() << YAML::Value;
      emit_json(out, it.value());
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const nlohmann::json& e : j) emit_json(out, e);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    out << YAML::DoubleQuoted << j.get<std::string>();
  } else if (j.is_boolean()) {
    out << j.get<bool>();
  } else if (j.is_number_integer()) {
    out << j.get<int64_t>();
  } else if (j.is_number()) {
    out << YAML::Precision(17) << j.get<double>();
  } else {
    out << YAML::Null;
  }
}

void emit_tensor(YAML::Emitter& out, const TensorDesc& t) {
  out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << t.name << YAML::Key << "shape" << YAML::Value
      << YAML::Flow << std::vector<int32_t>(t.dims, t.dims + t.rank);
  if (t.rank == 4) out << YAML::Key << "layout" << YAML::Value << "NHWC";
  out << YAML::EndMap;
}

std::string metadata_or(const Graph& g, const std::string& key, const std::string& fallback) {
  const auto it = g.metadata.find(key);
  return it == g.metadata.end() ? fallback : it->second;
}

}  // namespace

std::string model_meta_yaml(const Graph& g, const GraphDesc& runtime) {
  const nlohmann::json classes = parse_json_metadata(g, "lowbit.classes");
  const nlohmann::json preprocess = parse_json_metadata(g, "lowbit.preprocess");
  if (!classes.is_null() && !classes.is_array()) throw ConvertError("metadata 'lowbit.classes' is not a JSON array");
  if (!preprocess.is_null() && !preprocess.is_object()) throw ConvertError("metadata 'lowbit.preprocess' is not a JSON object");
  const std::string task = metadata_or(g, "lowbit.task", "unknown");

  YAML::Emitter out;
  out << YAML::Comment("lowbit model description, written by `lowbit convert`") << YAML::BeginMap;
  out << YAML::Key << "model" << YAML::Value << "model.lbm";
  out << YAML::Key << "source" << YAML::Value << std::filesystem::path(g.source).filename().string();
  out << YAML::Key << "task" << YAML::Value << task;
  out << YAML::Key << "network" << YAML::Value << metadata_or(g, "lowbit.network", "unknown");
  if (!classes.is_null()) {
    out << YAML::Key << "classes" << YAML::Value;
    emit_json(out, classes);
  }
  const TensorDesc& input = runtime.tensors[runtime.inputs.at(0)];
  out << YAML::Key << "input" << YAML::Value;
  emit_tensor(out, input);
  if (input.rank == 4)
    out << YAML::Key << "input_size" << YAML::Value << YAML::Flow << std::vector<int32_t>{input.dims[1], input.dims[2]}
        << YAML::Key << "channels" << YAML::Value << input.dims[3];
  if (!preprocess.is_null()) {
    out << YAML::Key << "preprocess" << YAML::Value;
    emit_json(out, preprocess);
  }
  out << YAML::Key << "outputs" << YAML::Value << YAML::BeginSeq;
  for (uint32_t id : runtime.outputs) emit_tensor(out, runtime.tensors[id]);
  out << YAML::EndSeq;
  out << YAML::Key << "postprocess" << YAML::Value << YAML::BeginMap;
  if (task == "classification") {
    out << YAML::Key << "type" << YAML::Value << "classification" << YAML::Key << "output" << YAML::Value
        << runtime.tensors[runtime.outputs.at(0)].name << YAML::Key << "scores" << YAML::Value
        << "softmax over the output (logits)" << YAML::Key << "top_k" << YAML::Value << 5;
  } else {
    out << YAML::Key << "type" << YAML::Value << (task == "unknown" ? "none" : task);
  }
  out << YAML::EndMap << YAML::EndMap;
  if (!out.good()) throw ConvertError(std::string("cannot write meta.yaml: ") + out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

}  // namespace lowbit::converter
