// CIFAR-10 binary reader on small generated batch files.
#include <filesystem>

#include "data_dataset_writers.h"

namespace lowbit::trainer::test {
namespace {

TEST(DataCifar10, ReadsPlanarRecordsAsInterleavedImages) {
  TempDir dir("cifar");
  write_cifar_dataset(dir);
  const Splits splits = load_dataset(dataset_config("cifar10", dir));
  ASSERT_EQ(splits.train.size(), 10u);
  ASSERT_EQ(splits.val.size(), 3u);
  EXPECT_EQ(splits.train.height, 32);
  EXPECT_EQ(splits.train.width, 32);
  EXPECT_EQ(splits.train.channels, 3);
  ASSERT_EQ(splits.val.pixels.size(), 3 * 3 * kPlane);
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(splits.val.labels[r], static_cast<int32_t>(r));
    for (size_t i = 0; i < kPlane; ++i)
      for (size_t c = 0; c < 3; ++c) ASSERT_EQ(splits.val.pixels[(r * kPlane + i) * 3 + c], planar_byte(r, c, i));
  }
  // Batch files follow each other: image 2 of train is record 0 of data_batch_2.bin.
  EXPECT_EQ(splits.train.pixels[2 * 3 * kPlane], planar_byte(0, 0, 0));
  EXPECT_EQ(splits.train.class_names.size(), 10u);
  EXPECT_EQ(splits.train.class_names[0], "airplane");
  EXPECT_EQ(splits.train.class_names[9], "truck");
}

TEST(DataCifar10, ClassNamesFromBatchesMeta) {
  TempDir dir("cifar");
  write_cifar_dataset(dir);
  const std::string names = "zero\none\r\ntwo \nthree\nfour\nfive\nsix\nseven\neight\nnine\n\n";
  write_bytes(dir / "batches.meta.txt", std::vector<uint8_t>(names.begin(), names.end()));
  const Splits splits = load_dataset(dataset_config("cifar10", dir));
  ASSERT_EQ(splits.train.class_names.size(), 10u);
  EXPECT_EQ(splits.train.class_names[1], "one");
  EXPECT_EQ(splits.train.class_names[2], "two");
  EXPECT_EQ(splits.val.class_names[9], "nine");
}

TEST(DataCifar10, DamagedFilesGiveAnErrorNamingTheFile) {
  {
    TempDir dir("cifar");
    write_cifar_dataset(dir);
    std::vector<uint8_t> batch = cifar_batch(2);
    batch.pop_back();
    write_bytes(dir / "data_batch_3.bin", batch);
    expect_data_error([&] { load_dataset(dataset_config("cifar10", dir)); }, "data_batch_3.bin",
                      "not a positive multiple");
  }
  {
    TempDir dir("cifar");
    write_cifar_dataset(dir);
    std::vector<uint8_t> batch = cifar_batch(3);
    batch[kRecord] = 10;  // record 1's label
    write_bytes(dir / "test_batch.bin", batch);
    expect_data_error([&] { load_dataset(dataset_config("cifar10", dir)); }, "test_batch.bin", "entry 1 has label 10");
  }
  {
    TempDir dir("cifar");
    write_cifar_dataset(dir);
    std::filesystem::remove(dir / "data_batch_5.bin");
    expect_data_error([&] { load_dataset(dataset_config("cifar10", dir)); }, "data_batch_5.bin", "not found");
  }
  {
    TempDir dir("cifar");
    write_cifar_dataset(dir);
    write_bytes(dir / "data_batch_1.bin", {});
    expect_data_error([&] { load_dataset(dataset_config("cifar10", dir)); }, "data_batch_1.bin", "size 0");
  }
  {
    TempDir dir("cifar");
    write_cifar_dataset(dir);
    // Fewer names than the labels need: the train batches use labels 0 and 1, the test batch 0..2.
    const std::string names = "cat\ndog\n";
    write_bytes(dir / "batches.meta.txt", std::vector<uint8_t>(names.begin(), names.end()));
    expect_data_error([&] { load_dataset(dataset_config("cifar10", dir)); }, "test_batch.bin",
                      "entry 2 has label 2, outside the 2 classes");
    write_bytes(dir / "batches.meta.txt", {' ', '\n'});
    expect_data_error([&] { load_dataset(dataset_config("cifar10", dir)); }, "batches.meta.txt", "no class names");
  }
}

}  // namespace
}  // namespace lowbit::trainer::test
