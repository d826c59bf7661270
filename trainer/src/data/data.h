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
                                           // Fashion-MNIST / MNIST / CIFAR-10, folder names);
                                           // idx/cifar10: as many as the dataset's classes;
                                           // image_folder: the class folders, in label order
  // image_folder only: "bilinear" / "nearest" resizes every image to resize_height x resize_width
  // while loading (so folders of mixed sizes load); "none" needs one size per set.
  std::string resize = "none";
  int resize_height = 0, resize_width = 0;
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
  int height = 32, width = 32;  // input_size ([height, width] in JSON), padding included
  std::string resize = "none";  // "none" | "bilinear" | "nearest"
  int pad[4] = {0, 0, 0, 0};    // top, left, bottom, right
  int pad_value = 0;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean{0.0f}, std{1.0f};
  std::string to_json() const;
  // channels and input_size are required; absent keys keep the defaults above (mean 0 and std 1
  // per channel). Throws std::invalid_argument naming the bad key.
  static Preprocess from_json(const std::string& json);
};

// Applied in list order after the geometric pre-processing (resize/pad) and before the
// normalisation, on float pixels in 0..255 units. Names and parameters (defaults):
//   random_crop {padding (4)}        pad by `padding` (pad_value), crop back at a random offset
//   horizontal_flip {p (0.5)}  vertical_flip {p (0.5)}
//   brightness {delta (0.2)}         add U(-delta, delta) * 255, clamped to 0..255
//   contrast {delta (0.2)}           scale around the mean of the input (padding included) by
//                                    U(1-delta, 1+delta), clamped to 0..255
//   random_erasing {p (0.5), area_min (0.02), area_max (0.33), ratio_min (0.3), ratio_max (3.3)}
//                                    fill a random box with pad_value (area: fraction of the
//                                    image; ratio: height / width, drawn log-uniform)
// Unknown names or parameters, and values out of range, throw std::invalid_argument naming them.
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
  // workers = 0 decodes on the calling thread. `set` is read, not copied: it must outlive the
  // loader. Throws std::invalid_argument for a bad preprocess / augmentation / batch size, or a
  // set the preprocess cannot map (resize "none" and another image size).
  BatchLoader(const ImageSet& set, const Preprocess& preprocess, std::vector<Augmentation> augmentations,
              int batch_size, bool shuffle, bool drop_last, uint64_t seed, int workers);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t batches_per_epoch() const;
  void start_epoch(int64_t epoch);  // next() / skip() before any start_epoch start epoch 0
  void skip(int64_t batches);
  bool next(Batch& out);  // false at the end of the epoch

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit::trainer
