// Training data for the trainer: dataset readers, pre-processing, augmentation and a threaded
// batch loader. Plain C++ (no LibTorch): the training loop wraps a Batch with torch::from_blob.
//
// Determinism contract (resume must be bit-identical): the order of an epoch and every random
// augmentation decision are functions of (seed, epoch, position in the epoch) only, never of
// thread scheduling or of how many batches were drawn before. start_epoch(e) + skip(k) therefore
// yields exactly the batches a run that never stopped would have drawn after k batches of epoch e.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace lowbit::trainer {

// Every reader error names the offending file: what() == "<file>: <what is wrong>".
struct DataError : std::runtime_error {
  DataError(const std::string& file, const std::string& message)
      : std::runtime_error(file + ": " + message), file(file) {}
  std::string file;
};

// A labelled image set decoded into memory: N images, H x W x C uint8, HWC order.
struct ImageSet {
  int height = 0, width = 0, channels = 0;
  std::vector<std::string> class_names;
  std::vector<uint8_t> pixels;   // N * H * W * C
  std::vector<int32_t> labels;   // N, 0 .. class_names.size() - 1
  size_t size() const { return labels.size(); }
};

struct DatasetConfig {
  // "idx": directory with {train,t10k}-images-idx3-ubyte and -labels-idx1-ubyte, each optionally .gz
  //        (Fashion-MNIST / MNIST; Debian: /usr/share/datasets/fashion-mnist).
  // "cifar10": directory with data_batch_1..5.bin, test_batch.bin and optional batches.meta.txt.
  // "image_folder": directory with train/ and optional test/ (or val/), one subfolder per class,
  //        PNG/JPEG files; all images of a set must decode to one size unless resize is used.
  std::string format;
  std::string path;
  // "test": validate on the dataset's own test split; "split": hold out val_fraction of train.
  std::string validation = "test";
  double val_fraction = 0.1;
  int64_t train_limit = 0, val_limit = 0;  // 0 = all, else the first N of a seeded shuffle
  uint64_t seed = 0;
  std::vector<std::string> class_names;    // empty = the dataset's own (built-in names for
                                           // Fashion-MNIST / MNIST / CIFAR-10, folder names)
};

struct Splits {
  ImageSet train, val;
};
Splits load_dataset(const DatasetConfig& config);  // throws DataError

// Decoded 8-bit image -> network input (the same JSON object as lowbit.preprocess in
// docs/onnx-interchange.md): channel conversion, resize, pad, then per channel
// x = (pixel * scale - mean[c]) / std[c] in float32.
struct Preprocess {
  int channels = 1;
  int height = 32, width = 32;  // input_size, padding included
  std::string resize = "none";  // "none" | "bilinear" | "nearest"
  int pad[4] = {0, 0, 0, 0};    // top, left, bottom, right
  int pad_value = 0;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean{0.0f}, std{1.0f};
  std::string to_json() const;
  static Preprocess from_json(const std::string& json);  // throws std::invalid_argument
};

// Applied in list order after the geometric pre-processing (resize/pad) and before the
// normalisation, on float pixels in 0..255 units. Names and parameters:
//   random_crop {padding}            pad by `padding` (pad_value), crop back at a random offset
//   horizontal_flip {p}  vertical_flip {p}
//   brightness {delta}               add U(-delta, delta) * 255
//   contrast {delta}                 scale around the image mean by U(1-delta, 1+delta)
//   random_erasing {p, area_min, area_max, ratio_min, ratio_max}   fill a random box with pad_value
// Unknown names or parameters throw std::invalid_argument naming them.
struct Augmentation {
  std::string name;
  std::map<std::string, double> params;
};

struct Batch {
  int n = 0, c = 0, h = 0, w = 0;
  std::vector<float> images;     // n * c * h * w, NCHW, normalised
  std::vector<int64_t> labels;   // n
};

class BatchLoader {
 public:
  // workers = 0 decodes on the calling thread.
  BatchLoader(const ImageSet& set, const Preprocess& preprocess, std::vector<Augmentation> augmentations,
              int batch_size, bool shuffle, bool drop_last, uint64_t seed, int workers);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t batches_per_epoch() const;
  void start_epoch(int64_t epoch);
  void skip(int64_t batches);
  bool next(Batch& out);  // false at the end of the epoch

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit::trainer
