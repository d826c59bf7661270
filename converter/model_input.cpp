#include "converter/model_input.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>

#include <stb/stb_image.h>
#include <yaml-cpp/yaml.h>

#include "converter/ir.h"

namespace lowbit::converter {
namespace {

YAML::Node load_meta(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "meta.yaml").string();
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw ConvertError(path + ": " + e.what());
  }
}

// One float per channel: a list of `channels` values or one value for all.
std::vector<float> per_channel(const YAML::Node& node, int channels, const std::string& what) {
  std::vector<float> v = node.IsSequence() ? node.as<std::vector<float>>() : std::vector<float>{node.as<float>()};
  if (v.size() == 1) v.assign(static_cast<size_t>(channels), v[0]);
  if (v.size() != static_cast<size_t>(channels))
    throw ConvertError("preprocess '" + what + "' has " + std::to_string(v.size()) + " values for " +
                       std::to_string(channels) + " channels");
  return v;
}

// Pixel (x, y) of `image` converted to `channels`: ITU-R 601 luma for gray from colour.
void convert_channels(const Pixels& image, int channels, std::vector<float>& out) {
  const size_t n = static_cast<size_t>(image.width) * image.height;
  out.resize(n * channels);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &image.data[i * image.channels];
    const bool colour = image.channels >= 3;
    if (channels == 1) {
      out[i] = colour ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
    } else {
      for (int c = 0; c < 3; ++c) out[i * 3 + c] = colour ? p[c] : p[0];
    }
  }
}

// Resizes interleaved float pixels; bilinear uses half-pixel centres (align_corners = false).
std::vector<float> resize(const std::vector<float>& src, int w, int h, int c, int out_w, int out_h, bool bilinear) {
  std::vector<float> dst(static_cast<size_t>(out_w) * out_h * c);
  const float sx = static_cast<float>(w) / out_w, sy = static_cast<float>(h) / out_h;
  auto at = [&](int x, int y, int ch) { return src[(static_cast<size_t>(y) * w + x) * c + ch]; };
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x)
      for (int ch = 0; ch < c; ++ch) {
        float v;
        if (!bilinear) {
          v = at(std::min(static_cast<int>(x * sx), w - 1), std::min(static_cast<int>(y * sy), h - 1), ch);
        } else {
          const float fx = std::max(0.0f, (x + 0.5f) * sx - 0.5f), fy = std::max(0.0f, (y + 0.5f) * sy - 0.5f);
          const int x0 = std::min(static_cast<int>(fx), w - 1), y0 = std::min(static_cast<int>(fy), h - 1);
          const int x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
          const float ax = fx - x0, ay = fy - y0;
          v = (1 - ay) * ((1 - ax) * at(x0, y0, ch) + ax * at(x1, y0, ch)) +
              ay * ((1 - ax) * at(x0, y1, ch) + ax * at(x1, y1, ch));
        }
        dst[(static_cast<size_t>(y) * out_w + x) * c + ch] = v;
      }
  return dst;
}

struct GzFile {
  void operator()(gzFile f) const { gzclose(f); }
};

uint32_t big_endian(const uint8_t* b) {
  return static_cast<uint32_t>(b[0]) << 24 | static_cast<uint32_t>(b[1]) << 16 | static_cast<uint32_t>(b[2]) << 8 | b[3];
}

}  // namespace

Preprocess read_preprocess(const std::string& model_dir) {
  const YAML::Node meta = load_meta(model_dir);
  Preprocess p;
  try {
    // The model's own channels and input_size; a preprocess block repeats or overrides them.
    const auto read_shape = [&p](const YAML::Node& node) {
      if (node["channels"]) p.channels = node["channels"].as<int>();
      if (!node["input_size"]) return;
      const auto size = node["input_size"].as<std::vector<int>>();
      if (size.size() != 2) throw ConvertError("input_size needs [height, width]");
      p.height = size[0];
      p.width = size[1];
    };
    read_shape(meta);
    if (const YAML::Node pre = meta["preprocess"]) {
      read_shape(pre);
      if (pre["resize"]) p.resize = pre["resize"].as<std::string>();
      if (pre["pad"]) {
        const auto pad = pre["pad"].as<std::vector<int>>();
        if (pad.size() != 4) throw ConvertError("preprocess pad needs [top, left, bottom, right]");
        std::copy(pad.begin(), pad.end(), p.pad.begin());
      }
      if (pre["pad_value"]) p.pad_value = pre["pad_value"].as<float>();
      if (pre["scale"]) p.scale = pre["scale"].as<float>();
      p.mean = per_channel(pre["mean"] ? pre["mean"] : YAML::Node(0.0f), p.channels, "mean");
      p.std = per_channel(pre["std"] ? pre["std"] : YAML::Node(1.0f), p.channels, "std");
    } else {
      p.mean.assign(static_cast<size_t>(p.channels), 0.0f);
      p.std.assign(static_cast<size_t>(p.channels), 1.0f);
    }
  } catch (const YAML::Exception& e) {
    throw ConvertError(model_dir + "/meta.yaml: " + e.what());
  } catch (const ConvertError& e) {
    throw ConvertError(model_dir + "/meta.yaml: " + e.what());
  }
  const std::string path = model_dir + "/meta.yaml";
  if (p.channels != 1 && p.channels != 3) throw ConvertError(path + ": preprocess channels must be 1 or 3");
  if (p.resize != "none" && p.resize != "bilinear" && p.resize != "nearest")
    throw ConvertError(path + ": unknown resize '" + p.resize + "'");
  if (p.height - p.pad[0] - p.pad[2] < 1 || p.width - p.pad[1] - p.pad[3] < 1 ||
      *std::min_element(p.pad.begin(), p.pad.end()) < 0)
    throw ConvertError(path + ": input_size and pad leave no image");
  return p;
}

std::vector<std::string> read_class_names(const std::string& model_dir) {
  const YAML::Node classes = load_meta(model_dir)["classes"];
  return classes ? classes.as<std::vector<std::string>>() : std::vector<std::string>{};
}

std::vector<float> preprocess_pixels(const Preprocess& p, const Pixels& image, const std::string& source) {
  const int inner_h = p.height - p.pad[0] - p.pad[2], inner_w = p.width - p.pad[1] - p.pad[3];
  std::vector<float> pixels;
  convert_channels(image, p.channels, pixels);
  if (image.width != inner_w || image.height != inner_h) {
    if (p.resize == "none")
      throw ConvertError(source + ": the image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                         ", the model takes " + std::to_string(inner_w) + "x" + std::to_string(inner_h) +
                         " (preprocess resize: none)");
    pixels = resize(pixels, image.width, image.height, p.channels, inner_w, inner_h, p.resize == "bilinear");
  }
  const size_t c = static_cast<size_t>(p.channels);
  std::vector<float> out(static_cast<size_t>(p.height) * p.width * c);
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x) {
      const int iy = y - p.pad[0], ix = x - p.pad[1];
      const bool inside = iy >= 0 && iy < inner_h && ix >= 0 && ix < inner_w;
      for (size_t ch = 0; ch < c; ++ch) {
        const float pixel = inside ? pixels[(static_cast<size_t>(iy) * inner_w + ix) * c + ch] : p.pad_value;
        out[(static_cast<size_t>(y) * p.width + x) * c + ch] = (pixel * p.scale - p.mean[ch]) / p.std[ch];
      }
    }
  return out;
}

Pixels decode_image(const std::string& path) {
  Pixels image;
  std::unique_ptr<uint8_t, void (*)(void*)> data(stbi_load(path.c_str(), &image.width, &image.height, &image.channels, 0),
                                                 stbi_image_free);
  if (!data) throw ConvertError(path + ": cannot decode the image: " + stbi_failure_reason());
  image.data.assign(data.get(), data.get() + static_cast<size_t>(image.width) * image.height * image.channels);
  return image;
}

std::vector<Pixels> read_idx_images(const std::string& path, size_t limit) {
  // gzread reads uncompressed files unchanged, so one reader serves .gz and plain IDX files.
  std::unique_ptr<gzFile_s, GzFile> file(gzopen(path.c_str(), "rb"));
  if (!file) throw ConvertError(path + ": cannot open");
  uint8_t header[16];
  if (gzread(file.get(), header, sizeof header) != static_cast<int>(sizeof header) || big_endian(header) != 0x803)
    throw ConvertError(path + ": not an IDX3 ubyte images file");
  const uint32_t count = big_endian(header + 4), rows = big_endian(header + 8), cols = big_endian(header + 12);
  if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096) throw ConvertError(path + ": implausible image size");
  std::vector<Pixels> images;
  for (size_t i = 0; i < std::min<size_t>(count, limit); ++i) {
    Pixels image{static_cast<int>(cols), static_cast<int>(rows), 1, std::vector<uint8_t>(size_t{rows} * cols)};
    if (gzread(file.get(), image.data.data(), static_cast<unsigned>(image.data.size())) !=
        static_cast<int>(image.data.size()))
      throw ConvertError(path + ": truncated after " + std::to_string(i) + " images");
    images.push_back(std::move(image));
  }
  return images;
}

std::vector<uint8_t> read_idx_labels(const std::string& path, size_t limit) {
  std::unique_ptr<gzFile_s, GzFile> file(gzopen(path.c_str(), "rb"));
  if (!file) throw ConvertError(path + ": cannot open");
  uint8_t header[8];
  if (gzread(file.get(), header, sizeof header) != static_cast<int>(sizeof header) || big_endian(header) != 0x801)
    throw ConvertError(path + ": not an IDX1 ubyte labels file");
  std::vector<uint8_t> labels(std::min<size_t>(big_endian(header + 4), limit));
  if (gzread(file.get(), labels.data(), static_cast<unsigned>(labels.size())) != static_cast<int>(labels.size()))
    throw ConvertError(path + ": truncated: fewer than " + std::to_string(labels.size()) + " labels");
  return labels;
}

std::string labels_file_for(const std::string& data_path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(data_path)) {
    for (const char* name : {"t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz"})
      if (fs::exists(fs::path(data_path) / name)) return (fs::path(data_path) / name).string();
    return "";
  }
  std::string name = fs::path(data_path).filename().string();
  const size_t at = name.find("images-idx3");
  if (at == std::string::npos) return "";
  name.replace(at, 11, "labels-idx1");
  const fs::path labels = fs::path(data_path).parent_path() / name;
  return fs::exists(labels) ? labels.string() : "";
}

std::vector<Pixels> load_dataset(const std::string& path, size_t limit) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(path)) return read_idx_images(path, limit);
  for (const char* name : {"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"})
    if (fs::exists(fs::path(path) / name)) return read_idx_images((fs::path(path) / name).string(), limit);
  std::vector<std::string> files;
  for (const fs::directory_entry& e : fs::directory_iterator(path)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) files.push_back(e.path().string());
  }
  if (files.empty()) throw ConvertError(path + ": no PNG/JPEG images and no t10k-images-idx3-ubyte(.gz)");
  std::sort(files.begin(), files.end());
  files.resize(std::min(files.size(), limit));
  std::vector<Pixels> images;
  for (const std::string& f : files) images.push_back(decode_image(f));
  return images;
}

std::vector<Pixels> random_images(const Preprocess& p, size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pixel(0, 255);
  const int h = p.height - p.pad[0] - p.pad[2], w = p.width - p.pad[1] - p.pad[3];
  std::vector<Pixels> images(count, Pixels{w, h, p.channels, {}});
  for (Pixels& image : images) {
    image.data.resize(static_cast<size_t>(w) * h * p.channels);
    for (uint8_t& v : image.data) v = static_cast<uint8_t>(pixel(rng));
  }
  return images;
}

}  // namespace lowbit::converter
