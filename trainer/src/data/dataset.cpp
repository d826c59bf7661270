// load_dataset: the reader for the format, then the validation split and the limits.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <stdexcept>

#include "data.h"
#include "image_ops.h"
#include "random.h"
#include "readers.h"

namespace lowbit::trainer {
namespace data {

void check_label_range(const ImageSet& set, size_t first, const std::string& path) {
  const auto classes = static_cast<int32_t>(set.class_names.size());
  for (size_t i = first; i < set.labels.size(); ++i)
    if (set.labels[i] < 0 || set.labels[i] >= classes)
      throw DataError(path, "entry " + std::to_string(i - first) + " has label " + std::to_string(set.labels[i]) +
                                ", outside the " + std::to_string(classes) + " classes 0.." +
                                std::to_string(classes - 1));
}

}  // namespace data

namespace {

using data::Rng;
using data::Stream;

void check_config(const DatasetConfig& config) {
  const auto fail = [&](const std::string& message) { throw DataError(config.path, message); };
  if (config.format != "idx" && config.format != "cifar10" && config.format != "image_folder")
    fail("unknown dataset format \"" + config.format + "\" (idx, cifar10, image_folder)");
  if (config.validation != "test" && config.validation != "split")
    fail("validation must be \"test\" or \"split\", not \"" + config.validation + "\"");
  if (config.validation == "split" && !(config.val_fraction > 0.0 && config.val_fraction < 1.0))
    fail("val_fraction must be between 0 and 1 (exclusive), got " + std::to_string(config.val_fraction));
  if (config.train_limit < 0 || config.val_limit < 0) fail("train_limit and val_limit must not be negative");
  try {
    data::parse_resize_mode(config.resize, "resize");
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  if (config.resize != "none" && config.format != "image_folder") fail("resize applies to image_folder datasets only");
  std::error_code ec;
  if (!std::filesystem::is_directory(config.path, ec)) fail("no such directory");
}

// The reader for the format; file-system failures (an unreadable folder, say) become DataErrors too.
data::StoredSplits read_stored_splits(const DatasetConfig& config, bool with_test) {
  try {
    if (config.format == "idx") return data::read_idx_dataset(config.path, with_test);
    if (config.format == "cifar10") return data::read_cifar10_dataset(config.path, with_test);
    return data::read_image_folder_dataset(config, with_test);
  } catch (const std::filesystem::filesystem_error& e) {
    throw DataError(e.path1().empty() ? config.path : e.path1().string(), e.code().message());
  }
}

ImageSet subset(const ImageSet& set, const std::vector<int64_t>& indices) {
  ImageSet out;
  out.height = set.height;
  out.width = set.width;
  out.channels = set.channels;
  out.class_names = set.class_names;
  const size_t image_size = static_cast<size_t>(set.height) * set.width * set.channels;
  out.pixels.resize(indices.size() * image_size);
  for (size_t i = 0; i < indices.size(); ++i) {
    const auto index = static_cast<size_t>(indices[i]);
    std::copy_n(set.pixels.begin() + index * image_size, image_size, out.pixels.begin() + i * image_size);
    out.labels.push_back(set.labels[index]);
  }
  return out;
}

std::vector<int64_t> shuffled_indices(size_t count, uint64_t seed, Stream stream) {
  std::vector<int64_t> indices(count);
  std::iota(indices.begin(), indices.end(), 0);
  Rng rng(data::derive_seed(seed, stream));
  data::shuffle(indices, rng);
  return indices;
}

// The first `limit` of a seeded shuffle, kept in dataset order.
ImageSet limited(ImageSet set, int64_t limit, uint64_t seed, Stream stream) {
  if (limit == 0 || static_cast<size_t>(limit) >= set.size()) return set;
  std::vector<int64_t> chosen = shuffled_indices(set.size(), seed, stream);
  chosen.resize(static_cast<size_t>(limit));
  std::sort(chosen.begin(), chosen.end());
  return subset(set, chosen);
}

}  // namespace

Splits load_dataset(const DatasetConfig& config) {
  check_config(config);
  const bool with_test = config.validation == "test";
  data::StoredSplits stored = read_stored_splits(config, with_test);
  const size_t classes = stored.train.class_names.size();
  if (!config.class_names.empty()) {
    if (config.class_names.size() != classes)
      throw DataError(config.path, "class_names lists " + std::to_string(config.class_names.size()) +
                                       " names but the dataset has " + std::to_string(classes) + " classes");
    stored.train.class_names = stored.test.class_names = config.class_names;
  }
  if (stored.train.size() == 0) throw DataError(config.path, "the training set is empty");

  Splits splits;
  if (with_test) {
    splits.train = std::move(stored.train);
    splits.val = std::move(stored.test);
  } else {
    const size_t total = stored.train.size();
    const auto held_out = static_cast<size_t>(std::llround(config.val_fraction * static_cast<double>(total)));
    if (held_out == 0 || held_out == total)
      throw DataError(config.path, "val_fraction " + std::to_string(config.val_fraction) + " of " +
                                       std::to_string(total) + " images leaves an empty training or validation set");
    const std::vector<int64_t> order = shuffled_indices(total, config.seed, Stream::kValidationSplit);
    std::vector<int64_t> val(order.begin(), order.begin() + held_out), train(order.begin() + held_out, order.end());
    std::sort(val.begin(), val.end());
    std::sort(train.begin(), train.end());
    splits.train = subset(stored.train, train);
    splits.val = subset(stored.train, val);
  }
  splits.train = limited(std::move(splits.train), config.train_limit, config.seed, Stream::kTrainLimit);
  splits.val = limited(std::move(splits.val), config.val_limit, config.seed, Stream::kValLimit);
  return splits;
}

}  // namespace lowbit::trainer
