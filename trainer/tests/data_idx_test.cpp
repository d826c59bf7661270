// IDX reader, validation split and limits on small generated files; the real Fashion-MNIST.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include "data_dataset_writers.h"

namespace lowbit::trainer::test {
namespace {

void expect_generated_images(const ImageSet& set, uint32_t count) {
  ASSERT_EQ(set.size(), count);
  EXPECT_EQ(set.height, static_cast<int>(kRows));
  EXPECT_EQ(set.width, static_cast<int>(kCols));
  EXPECT_EQ(set.channels, 1);
  ASSERT_EQ(set.pixels.size(), count * kRows * kCols);
  for (uint32_t i = 0; i < count; ++i) {
    EXPECT_EQ(set.labels[i], static_cast<int32_t>(i % 10));
    for (uint32_t k = 0; k < kRows * kCols; ++k) ASSERT_EQ(set.pixels[i * kRows * kCols + k], pixel_of(i, k));
  }
}

// The generated image index of every image of `set` (pixel 0).
std::vector<int> image_ids(const ImageSet& set) {
  std::vector<int> ids;
  for (size_t i = 0; i < set.size(); ++i) ids.push_back(set.pixels[i * kRows * kCols]);
  return ids;
}

TEST(DataIdx, ReadsPlainFilesWithDigitNames) {
  TempDir dir("mnist");
  write_idx_dataset(dir, 7, 3, false);
  const Splits splits = load_dataset(dataset_config("idx", dir));
  expect_generated_images(splits.train, 7);
  expect_generated_images(splits.val, 3);
  EXPECT_EQ(splits.train.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
  EXPECT_EQ(splits.val.class_names, splits.train.class_names);
}

TEST(DataIdx, ReadsGzippedFilesWithFashionNames) {
  TempDir dir("fashion-mnist");
  write_idx_dataset(dir, 7, 3, true);
  // A file of two concatenated gzip members (as `cat a.gz b.gz` makes) reads as one.
  const std::vector<uint8_t> labels = idx_labels(3);
  std::vector<uint8_t> two_members = gzip({labels.begin(), labels.begin() + 5});
  const std::vector<uint8_t> second = gzip({labels.begin() + 5, labels.end()});
  two_members.insert(two_members.end(), second.begin(), second.end());
  write_bytes(dir / "t10k-labels-idx1-ubyte.gz", two_members);

  const Splits splits = load_dataset(dataset_config("idx", dir));
  expect_generated_images(splits.train, 7);
  expect_generated_images(splits.val, 3);
  ASSERT_EQ(splits.train.class_names.size(), 10u);
  EXPECT_EQ(splits.train.class_names.front(), "T-shirt/top");
  EXPECT_EQ(splits.train.class_names.back(), "Ankle boot");
}

TEST(DataIdx, DamagedFilesGiveAnErrorNamingTheFile) {
  using Bytes = std::vector<uint8_t>;
  struct Damage {
    const char* what;
    bool gzipped;
    const char* file;  // the file the damage goes to (and the error must name)
    std::function<Bytes(Bytes)> damage;
    const char* fragment;
  };
  const auto cut = [](size_t keep) { return [keep](Bytes b) { return Bytes(b.begin(), b.begin() + keep); }; };
  const auto grow = [](size_t extra) {
    return [extra](Bytes b) {
      b.resize(b.size() + extra);
      return b;
    };
  };
  const auto set_byte = [](size_t index, uint8_t value) {
    return [=](Bytes b) {
      b[index] = value;
      return b;
    };
  };
  const auto replace_with = [](const Bytes& bytes) { return [bytes](Bytes) { return bytes; }; };
  const std::vector<Damage> cases = {
      {"pixels truncated", false, "train-images-idx3-ubyte", cut(16 + 7 * kRows * kCols - 1), "truncated"},
      {"bytes after the data", false, "train-images-idx3-ubyte", grow(1), "1 unexpected bytes"},
      {"header cut", false, "train-images-idx3-ubyte", cut(10), "too short"},
      {"empty", false, "t10k-images-idx3-ubyte", cut(0), "too short"},
      {"wrong magic", false, "train-images-idx3-ubyte", set_byte(3, 0x01), "magic 0x00000801"},
      {"labels for images", false, "train-labels-idx1-ubyte", replace_with(idx_images(7)), "not an IDX label file"},
      {"implausible side", false, "train-images-idx3-ubyte", set_byte(9, 0xff), "implausible"},
      {"label count differs", false, "train-labels-idx1-ubyte", replace_with(idx_labels(6)), "has 6 labels"},
      {"label out of range", false, "t10k-labels-idx1-ubyte", set_byte(8 + 2, 10), "entry 2 has label 10"},
      {"gzip truncated", true, "train-images-idx3-ubyte.gz", cut(60), "truncated gzip"},
      {"gzip corrupted", true, "t10k-labels-idx1-ubyte.gz",
       [](Bytes b) {
         for (size_t i = 12; i < b.size() - 8; ++i) b[i] ^= 0x5a;
         return b;
       },
       "corrupt gzip"},
  };
  for (const Damage& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir dir("mnist");
    write_idx_dataset(dir, 7, 3, c.gzipped);
    write_bytes(dir / c.file, c.damage(read_bytes(dir / c.file)));
    expect_data_error([&] { load_dataset(dataset_config("idx", dir)); }, c.file, c.fragment);
  }
}

TEST(DataIdx, MissingFileIsNamed) {
  TempDir dir("mnist");
  write_idx_dataset(dir, 7, 3, false);
  std::filesystem::remove(dir / "t10k-labels-idx1-ubyte");
  expect_data_error([&] { load_dataset(dataset_config("idx", dir)); }, "t10k-labels-idx1-ubyte", "missing");
  // With a held-out split the test files are not needed.
  DatasetConfig config = dataset_config("idx", dir);
  config.validation = "split";
  EXPECT_EQ(load_dataset(config).train.size() + load_dataset(config).val.size(), 7u);
}

TEST(DataIdx, BadConfigurationNamesTheDatasetPath) {
  TempDir dir("mnist");
  write_idx_dataset(dir, 7, 3, false);
  const std::string path = dir.path().string();
  const auto expect_config_error = [&](const std::function<void(DatasetConfig&)>& change, const std::string& fragment) {
    DatasetConfig config = dataset_config("idx", dir);
    change(config);
    expect_data_error([&] { load_dataset(config); }, path, fragment);
  };
  expect_config_error([](DatasetConfig& c) { c.format = "csv"; }, "unknown dataset format \"csv\"");
  expect_config_error([](DatasetConfig& c) { c.validation = "none"; }, "validation must be");
  expect_config_error(
      [](DatasetConfig& c) {
        c.validation = "split";
        c.val_fraction = 1.0;
      },
      "val_fraction");
  expect_config_error(
      [](DatasetConfig& c) {
        c.validation = "split";
        c.val_fraction = 0.01;
      },
      "leaves an empty");
  expect_config_error([](DatasetConfig& c) { c.train_limit = -1; }, "must not be negative");
  expect_config_error([](DatasetConfig& c) { c.class_names = {"a", "b"}; }, "class_names lists 2 names");
  expect_config_error([](DatasetConfig& c) { c.resize = "bilinear"; }, "image_folder datasets only");
  DatasetConfig missing = dataset_config("idx", dir);
  missing.path += "/nowhere";
  expect_data_error([&] { load_dataset(missing); }, "/nowhere", "no such directory");
}

TEST(DataIdx, ConfiguredClassNamesReplaceTheBuiltInOnes) {
  TempDir dir("mnist");
  write_idx_dataset(dir, 7, 3, false);
  DatasetConfig config = dataset_config("idx", dir);
  config.class_names = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  const Splits splits = load_dataset(config);
  EXPECT_EQ(splits.train.class_names, config.class_names);
  EXPECT_EQ(splits.val.class_names, config.class_names);
}

TEST(DataSplit, HoldsOutASeededFractionOfTrain) {
  TempDir dir("mnist");
  write_idx_dataset(dir, 40, 3, false);
  DatasetConfig config = dataset_config("idx", dir);
  config.validation = "split";
  config.val_fraction = 0.25;
  config.seed = 7;
  const Splits splits = load_dataset(config);
  ASSERT_EQ(splits.train.size(), 30u);
  ASSERT_EQ(splits.val.size(), 10u);
  std::vector<int> all = image_ids(splits.train);
  const std::vector<int> val = image_ids(splits.val);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  EXPECT_TRUE(std::is_sorted(val.begin(), val.end()));
  all.insert(all.end(), val.begin(), val.end());
  std::sort(all.begin(), all.end());
  for (int i = 0; i < 40; ++i) EXPECT_EQ(all[i], i);  // disjoint, and together the whole train set
  for (size_t i = 0; i < splits.val.size(); ++i)      // images keep their labels
    EXPECT_EQ(splits.val.labels[i], val[i] % 10);

  EXPECT_EQ(image_ids(load_dataset(config).val), val);
  config.seed = 8;
  EXPECT_NE(image_ids(load_dataset(config).val), val);
}

TEST(DataSplit, LimitsTakeTheFirstOfASeededShuffle) {
  TempDir dir("mnist");
  write_idx_dataset(dir, 40, 20, false);
  DatasetConfig config = dataset_config("idx", dir);
  config.train_limit = 9;
  config.val_limit = 5;
  config.seed = 3;
  const Splits splits = load_dataset(config);
  ASSERT_EQ(splits.train.size(), 9u);
  ASSERT_EQ(splits.val.size(), 5u);
  const std::vector<int> train = image_ids(splits.train);
  EXPECT_EQ(std::set<int>(train.begin(), train.end()).size(), 9u);
  EXPECT_NE(train, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}));  // not simply the first images
  EXPECT_EQ(image_ids(load_dataset(config).train), train);
  config.train_limit = 100;  // above the size: everything
  EXPECT_EQ(load_dataset(config).train.size(), 40u);
}

TEST(DataIdx, RealFashionMnist) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << dir << " is not installed (dataset-fashion-mnist)";
  DatasetConfig config;
  config.format = "idx";
  config.path = dir;
  const Splits splits = load_dataset(config);
  EXPECT_EQ(splits.train.size(), 60000u);
  EXPECT_EQ(splits.val.size(), 10000u);
  EXPECT_EQ(splits.train.height, 28);
  EXPECT_EQ(splits.train.width, 28);
  EXPECT_EQ(splits.train.channels, 1);
  ASSERT_EQ(splits.train.class_names.size(), 10u);
  EXPECT_EQ(splits.train.class_names[9], "Ankle boot");
  std::vector<int> per_class(10, 0);
  for (int32_t label : splits.val.labels) ++per_class[label];
  EXPECT_EQ(per_class, std::vector<int>(10, 1000));
}

}  // namespace
}  // namespace lowbit::trainer::test
