// Preprocess <-> the lowbit.preprocess JSON object of docs/onnx-interchange.md, and its checks.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>

#include "data.h"
#include "sample_pipeline.h"

namespace lowbit::trainer {
namespace {

using nlohmann::json;

std::invalid_argument key_error(const std::string& key, const std::string& message) {
  return std::invalid_argument("preprocess: \"" + key + "\" " + message);
}

// The shortest decimal that reads back as the same float, so 0.286f is written 0.286 and not
// 0.28600001335144043 (the double nearest to it).
double shortest_decimal(float value) {
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text - 1, value).ptr;
  *end = '\0';
  return std::strtod(text, nullptr);
}

json float_array(const std::vector<float>& values) {
  json array = json::array();
  for (float v : values) array.push_back(shortest_decimal(v));
  return array;
}

int read_int(const json& object, const std::string& key) {
  const json& value = object.at(key);
  if (!value.is_number_integer() || value.get<int64_t>() < INT32_MIN || value.get<int64_t>() > INT32_MAX)
    throw key_error(key, "must be an integer, got " + value.dump());
  return value.get<int>();
}

std::vector<int> read_int_array(const json& object, const std::string& key, size_t size) {
  const json& value = object.at(key);
  const bool all_integers =
      value.is_array() && value.size() == size && std::all_of(value.begin(), value.end(), [](const json& v) {
        return v.is_number_integer() && v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX;
      });
  if (!all_integers)
    throw key_error(key, "must be an array of " + std::to_string(size) + " integers, got " + value.dump());
  return value.get<std::vector<int>>();
}

float read_float(const json& value, const std::string& key) {
  if (!value.is_number()) throw key_error(key, "must be a number, got " + value.dump());
  return static_cast<float>(value.get<double>());
}

std::vector<float> read_float_array(const json& object, const std::string& key) {
  const json& value = object.at(key);
  if (!value.is_array()) throw key_error(key, "must be an array of numbers, got " + value.dump());
  std::vector<float> numbers;
  for (const json& item : value) numbers.push_back(read_float(item, key));
  return numbers;
}

bool all_finite(const std::vector<float>& values) {
  return std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); });
}

}  // namespace

namespace data {

void validate_preprocess(const Preprocess& p) {
  if (p.channels != 1 && p.channels != 3)
    throw key_error("channels", "must be 1 or 3, got " + std::to_string(p.channels));
  constexpr int kMaxSide = 1 << 15;
  if (p.height < 1 || p.width < 1 || p.height > kMaxSide || p.width > kMaxSide)
    throw key_error("input_size", "must be two sizes in 1.." + std::to_string(kMaxSide) + ", got [" +
                                      std::to_string(p.height) + ", " + std::to_string(p.width) + "]");
  const std::string pad_text = "[" + std::to_string(p.pad[0]) + ", " + std::to_string(p.pad[1]) + ", " +
                               std::to_string(p.pad[2]) + ", " + std::to_string(p.pad[3]) + "]";
  if (std::any_of(p.pad, p.pad + 4, [](int v) { return v < 0; }))
    throw key_error("pad", "must not be negative, got " + pad_text);
  if (int64_t{p.pad[0]} + p.pad[2] >= p.height || int64_t{p.pad[1]} + p.pad[3] >= p.width)
    throw key_error("pad", pad_text + " leaves no image inside input_size");
  parse_resize_mode(p.resize, "resize");
  if (p.pad_value < 0 || p.pad_value > 255)
    throw key_error("pad_value", "must be in 0..255, got " + std::to_string(p.pad_value));
  if (!std::isfinite(p.scale)) throw key_error("scale", "must be finite");
  if (p.mean.size() != static_cast<size_t>(p.channels) || !all_finite(p.mean))
    throw key_error("mean", "must hold one finite number per channel (" + std::to_string(p.channels) + ")");
  if (p.std.size() != static_cast<size_t>(p.channels) || !all_finite(p.std) ||
      std::any_of(p.std.begin(), p.std.end(), [](float v) { return v == 0.0f; }))
    throw key_error("std", "must hold one finite non-zero number per channel (" + std::to_string(p.channels) + ")");
}

}  // namespace data

std::string Preprocess::to_json() const {
  nlohmann::ordered_json j;
  j["channels"] = channels;
  j["input_size"] = {height, width};
  j["resize"] = resize;
  j["pad"] = {pad[0], pad[1], pad[2], pad[3]};
  j["pad_value"] = pad_value;
  j["scale"] = shortest_decimal(scale);
  j["mean"] = float_array(mean);
  j["std"] = float_array(std);
  return j.dump();
}

Preprocess Preprocess::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::invalid_argument(std::string("preprocess: not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("preprocess: must be a JSON object, got " + j.dump());
  static const std::set<std::string> known = {"channels",  "input_size", "resize", "pad",
                                              "pad_value", "scale",      "mean",   "std"};
  for (const auto& item : j.items())
    if (!known.count(item.key())) throw std::invalid_argument("preprocess: unknown key \"" + item.key() + "\"");
  for (const char* required : {"channels", "input_size"})
    if (!j.contains(required)) throw key_error(required, "is missing");

  Preprocess p;
  p.channels = read_int(j, "channels");
  const std::vector<int> size = read_int_array(j, "input_size", 2);
  p.height = size[0];
  p.width = size[1];
  if (j.contains("resize")) {
    if (!j["resize"].is_string()) throw key_error("resize", "must be a string, got " + j["resize"].dump());
    p.resize = j["resize"].get<std::string>();
  }
  if (j.contains("pad")) {
    const std::vector<int> pad = read_int_array(j, "pad", 4);
    std::copy(pad.begin(), pad.end(), p.pad);
  }
  if (j.contains("pad_value")) p.pad_value = read_int(j, "pad_value");
  if (j.contains("scale")) p.scale = read_float(j["scale"], "scale");
  p.mean = j.contains("mean") ? read_float_array(j, "mean") : std::vector<float>(p.channels, 0.0f);
  p.std = j.contains("std") ? read_float_array(j, "std") : std::vector<float>(p.channels, 1.0f);
  data::validate_preprocess(p);
  return p;
}

}  // namespace lowbit::trainer
