// Writers of small generated datasets (IDX, CIFAR-10 binary, image folder) for the reader tests.
#pragma once

#include <stb/stb_image_write.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data_test_support.h"

namespace lowbit::trainer::test {

// `format` read from `dir`, validated on the dataset's own test split.
inline DatasetConfig dataset_config(const std::string& format, const TempDir& dir) {
  DatasetConfig config;
  config.format = format;
  config.path = dir.path().string();
  return config;
}

// ---- IDX
constexpr uint32_t kRows = 3, kCols = 4;

// Image i's pixel k is (i * 31 + k) mod 256 except pixel 0, which is i itself (so tests can tell
// which image is which); its label is i mod 10.
inline uint8_t pixel_of(uint32_t image, uint32_t k) {
  return static_cast<uint8_t>(k == 0 ? image : (image * 31 + k) & 255);
}

inline std::vector<uint8_t> idx_images(uint32_t count) {
  std::vector<uint8_t> bytes;
  append_be32(bytes, 0x803);
  append_be32(bytes, count);
  append_be32(bytes, kRows);
  append_be32(bytes, kCols);
  for (uint32_t i = 0; i < count; ++i)
    for (uint32_t k = 0; k < kRows * kCols; ++k) bytes.push_back(pixel_of(i, k));
  return bytes;
}

inline std::vector<uint8_t> idx_labels(uint32_t count) {
  std::vector<uint8_t> bytes;
  append_be32(bytes, 0x801);
  append_be32(bytes, count);
  for (uint32_t i = 0; i < count; ++i) bytes.push_back(static_cast<uint8_t>(i % 10));
  return bytes;
}

// Writes {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] with `train` and `test` images.
inline void write_idx_dataset(const TempDir& dir, uint32_t train, uint32_t test, bool gzipped) {
  const auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    write_bytes(dir / (name + (gzipped ? ".gz" : "")), gzipped ? gzip(bytes) : bytes);
  };
  write("train-images-idx3-ubyte", idx_images(train));
  write("train-labels-idx1-ubyte", idx_labels(train));
  write("t10k-images-idx3-ubyte", idx_images(test));
  write("t10k-labels-idx1-ubyte", idx_labels(test));
}

// ---- CIFAR-10 binary
constexpr size_t kPlane = 32 * 32, kRecord = 1 + 3 * kPlane;

// Record r of a file: label `r % 10`, planar byte (c, i) = (r * 13 + c * 101 + i) mod 256.
inline uint8_t planar_byte(size_t record, size_t c, size_t i) {
  return static_cast<uint8_t>((record * 13 + c * 101 + i) & 255);
}

inline std::vector<uint8_t> cifar_batch(size_t records) {
  std::vector<uint8_t> bytes;
  for (size_t r = 0; r < records; ++r) {
    bytes.push_back(static_cast<uint8_t>(r % 10));
    for (size_t c = 0; c < 3; ++c)
      for (size_t i = 0; i < kPlane; ++i) bytes.push_back(planar_byte(r, c, i));
  }
  return bytes;
}

// data_batch_1..5.bin with 2 records each, test_batch.bin with 3.
inline void write_cifar_dataset(const TempDir& dir) {
  for (int b = 1; b <= 5; ++b) write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), cifar_batch(2));
  write_bytes(dir / "test_batch.bin", cifar_batch(3));
}

// ---- image folder
// A width x height image with `channels` channels whose pixel values start at `base`.
inline std::vector<uint8_t> pattern(int width, int height, int channels, int base) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * channels);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(base + 3 * i);
  return pixels;
}

inline void write_png(const std::string& path, int width, int height, int channels, int base) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::vector<uint8_t> pixels = pattern(width, height, channels, base);
  ASSERT_NE(stbi_write_png(path.c_str(), width, height, channels, pixels.data(), width * channels), 0) << path;
}

inline void write_jpeg(const std::string& path, int width, int height) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::vector<uint8_t> pixels = pattern(width, height, 3, 0);
  ASSERT_NE(stbi_write_jpg(path.c_str(), width, height, 3, pixels.data(), 90), 0) << path;
}

// train/cat: two RGB 4x3 PNGs; train/dog: one gray PNG (and a README that is not an image);
// test/dog: one RGB PNG.
inline void write_small_folder(const TempDir& dir) {
  write_png(dir / "train/cat/b.png", 4, 3, 3, 20);
  write_png(dir / "train/cat/a.png", 4, 3, 3, 10);
  write_png(dir / "train/dog/x.PNG", 4, 3, 1, 50);
  write_bytes(dir / "train/dog/README.txt", {'h', 'i'});
  write_png(dir / "test/dog/y.png", 4, 3, 3, 5);
}

}  // namespace lowbit::trainer::test
