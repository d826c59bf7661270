// IDX reader (MNIST / Fashion-MNIST): big-endian header, magic 0x803 (images: count, rows, cols,
// then uint8 pixels) or 0x801 (labels: count, then uint8), plain or gzipped.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "file_bytes.h"
#include "readers.h"

namespace lowbit::trainer::data {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kImagesMagic = 0x00000803, kLabelsMagic = 0x00000801;
constexpr uint32_t kMaxSide = 1 << 15;  // keeps count * rows * cols far from overflowing 64 bits

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

std::string find_idx_file(const fs::path& dir, const std::string& name) {
  for (const std::string& candidate : {name, name + ".gz"})
    if (fs::exists(dir / candidate)) return (dir / candidate).string();
  throw DataError((dir / name).string(), "missing (also looked for " + name + ".gz)");
}

// The bytes of an IDX file after checking its magic and that the payload has exactly the size the
// header promises; `header_words` are the big-endian words after the magic.
std::vector<uint8_t> read_idx_file(const std::string& path, uint32_t magic, std::vector<uint32_t>& header_words) {
  std::vector<uint8_t> bytes = read_possibly_gzipped(path);
  const size_t header_size = 4 * (1 + header_words.size());
  if (bytes.size() < header_size)
    throw DataError(path, "too short for an IDX header (" + std::to_string(bytes.size()) + " bytes)");
  const uint32_t found_magic = load_be32(bytes.data());
  if (found_magic != magic)
    throw DataError(path, "not an IDX " + std::string(magic == kImagesMagic ? "image" : "label") + " file (magic " +
                              hex32(found_magic) + ", expected " + hex32(magic) + ")");
  uint64_t payload = 1;
  for (size_t i = 0; i < header_words.size(); ++i) {
    header_words[i] = load_be32(bytes.data() + 4 * (i + 1));
    if (i > 0 && (header_words[i] == 0 || header_words[i] > kMaxSide))
      throw DataError(path, "implausible image side " + std::to_string(header_words[i]));
    payload *= header_words[i];
  }
  const uint64_t available = bytes.size() - header_size;
  if (available < payload)
    throw DataError(path, "truncated: the header promises " + std::to_string(payload) +
                              " bytes of data, the file has " + std::to_string(available));
  if (available > payload)
    throw DataError(path,
                    std::to_string(available - payload) + " unexpected bytes after the data the header describes");
  return bytes;
}

ImageSet read_idx_split(const fs::path& dir, const std::string& prefix, const std::vector<std::string>& class_names) {
  const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  std::vector<uint32_t> image_header(3), label_header(1);  // count, rows, cols / count
  const std::vector<uint8_t> images = read_idx_file(images_path, kImagesMagic, image_header);
  const std::vector<uint8_t> labels = read_idx_file(labels_path, kLabelsMagic, label_header);
  if (label_header[0] != image_header[0])
    throw DataError(labels_path, "has " + std::to_string(label_header[0]) + " labels but " + images_path + " has " +
                                     std::to_string(image_header[0]) + " images");
  ImageSet set;
  set.height = static_cast<int>(image_header[1]);
  set.width = static_cast<int>(image_header[2]);
  set.channels = 1;
  set.class_names = class_names;
  set.pixels.assign(images.begin() + 16, images.end());
  set.labels.assign(labels.begin() + 8, labels.end());
  check_label_range(set, 0, labels_path);
  return set;
}

bool looks_like_fashion_mnist(const std::string& dir) {
  std::string lower = dir;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.find("fashion") != std::string::npos;
}

}  // namespace

StoredSplits read_idx_dataset(const std::string& dir, bool with_test) {
  static const std::vector<std::string> fashion_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                         "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  static const std::vector<std::string> digit_names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  const std::vector<std::string>& names = looks_like_fashion_mnist(dir) ? fashion_names : digit_names;
  StoredSplits splits;
  splits.train = read_idx_split(dir, "train", names);
  if (with_test) splits.test = read_idx_split(dir, "t10k", names);
  return splits;
}

}  // namespace lowbit::trainer::data
