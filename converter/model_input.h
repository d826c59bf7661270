// Model inputs for `lowbit verify` and `lowbit predict`: the documented `lowbit.preprocess`
// (docs/onnx-interchange.md) applied to images, IDX image files or random pixels.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::converter {

// `preprocess` of a model directory's meta.yaml; without one, pixels / 255 at the input's size.
struct Preprocess {
  int channels = 1;                  // 1 = ITU-R 601 luma, 3 = RGB
  int height = 0, width = 0;         // input_size, padding included
  std::string resize = "none";       // none, bilinear, nearest
  std::array<int, 4> pad{0, 0, 0, 0};  // top, left, bottom, right
  float pad_value = 0;               // raw 0..255 units
  float scale = 1.0f / 255.0f;
  std::vector<float> mean{0.0f}, std{1.0f};  // per channel, or one for all
};

// An 8-bit image, interleaved channels.
struct Pixels {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> data;
};

// Reads DIR/meta.yaml. Throws ConvertError "PATH: problem".
Preprocess read_preprocess(const std::string& model_dir);
// Class names of DIR/meta.yaml (empty when it has none).
std::vector<std::string> read_class_names(const std::string& model_dir);

// The model input (NHWC [height, width, channels], float32) for one image.
// Throws ConvertError naming `source` when the image does not fit the preprocessing.
std::vector<float> preprocess_pixels(const Preprocess& p, const Pixels& image, const std::string& source);

// Decodes a PNG/JPEG/BMP/PNM file. Throws ConvertError "PATH: problem".
Pixels decode_image(const std::string& path);

// Up to `limit` images of an IDX3 ubyte file (gzip-compressed or not). Throws ConvertError.
std::vector<Pixels> read_idx_images(const std::string& path, size_t limit);

// Up to `limit` labels of an IDX1 ubyte file (gzip-compressed or not). Throws ConvertError.
std::vector<uint8_t> read_idx_labels(const std::string& path, size_t limit);

// The labels file that goes with --data: t10k-labels-idx1-ubyte(.gz) in a dataset directory, or
// the images file's name with "images-idx3" replaced by "labels-idx1"; empty when there is none.
std::string labels_file_for(const std::string& data_path);

// `limit` images from --data: a directory of images (sorted by name), an IDX file, or a directory
// holding t10k-images-idx3-ubyte(.gz). Throws ConvertError.
std::vector<Pixels> load_dataset(const std::string& path, size_t limit);

// Deterministic random 8-bit images of the model's pre-padding size: after preprocessing they
// cover exactly the input's range.
std::vector<Pixels> random_images(const Preprocess& p, size_t count, uint32_t seed = 1);

}  // namespace lowbit::converter
