// The dataset readers behind load_dataset: each returns the splits stored on disk.
#pragma once

#include <string>

#include "data.h"

namespace lowbit::trainer::data {

struct StoredSplits {
  ImageSet train;
  ImageSet test;  // empty unless asked for
};

// IDX (MNIST / Fashion-MNIST) directory; class names built in (Fashion-MNIST when the path says
// "fashion", the digits otherwise).
StoredSplits read_idx_dataset(const std::string& dir, bool with_test);

// CIFAR-10 binary directory; names from batches.meta.txt when present, else built in.
StoredSplits read_cifar10_dataset(const std::string& dir, bool with_test);

// Image-folder directory; config.class_names (when given) fix the class folders and their order,
// config.resize* the load-time resize.
StoredSplits read_image_folder_dataset(const DatasetConfig& config, bool with_test);

}  // namespace lowbit::trainer::data

namespace lowbit::trainer::data {

// Throws DataError(path, ...) for the first of set.labels[first ..] outside the class range; the
// message counts entries from `first` (the entries read from `path`).
void check_label_range(const ImageSet& set, size_t first, const std::string& path);

}  // namespace lowbit::trainer::data
