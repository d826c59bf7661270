// CIFAR-10 binary reader: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B
// planes of 32x32), 10,000 per batch file; class names from batches.meta.txt (one per line).
#include <filesystem>

#include "file_bytes.h"
#include "readers.h"

namespace lowbit::trainer::data {
namespace {

namespace fs = std::filesystem;

constexpr int kSide = 32, kChannels = 3;
constexpr size_t kPlane = kSide * kSide;
constexpr size_t kRecordBytes = 1 + kChannels * kPlane;

void append_batch(const std::string& path, ImageSet& set) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  if (bytes.empty() || bytes.size() % kRecordBytes != 0)
    throw DataError(path, "size " + std::to_string(bytes.size()) + " is not a positive multiple of the " +
                              std::to_string(kRecordBytes) + "-byte record (truncated or not CIFAR-10 binary)");
  const size_t records = bytes.size() / kRecordBytes;
  const size_t first_pixel = set.pixels.size(), first_label = set.labels.size();
  set.pixels.resize(first_pixel + records * kPlane * kChannels);
  for (size_t r = 0; r < records; ++r) {
    const uint8_t* record = bytes.data() + r * kRecordBytes;
    set.labels.push_back(record[0]);
    uint8_t* hwc = set.pixels.data() + first_pixel + r * kPlane * kChannels;
    for (size_t i = 0; i < kPlane; ++i)
      for (int c = 0; c < kChannels; ++c) hwc[i * kChannels + c] = record[1 + c * kPlane + i];
  }
  check_label_range(set, first_label, path);
}

ImageSet read_batches(const fs::path& dir, const std::vector<std::string>& files,
                      const std::vector<std::string>& class_names) {
  ImageSet set;
  set.height = set.width = kSide;
  set.channels = kChannels;
  set.class_names = class_names;
  for (const std::string& file : files) append_batch((dir / file).string(), set);
  return set;
}

std::vector<std::string> read_class_names(const fs::path& dir) {
  const fs::path meta = dir / "batches.meta.txt";
  if (!fs::exists(meta))
    return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  const std::vector<uint8_t> bytes = read_file_bytes(meta.string());
  std::vector<std::string> names;
  std::string line;
  for (size_t i = 0; i <= bytes.size(); ++i) {
    if (i < bytes.size() && bytes[i] != '\n') {
      line += static_cast<char>(bytes[i]);
      continue;
    }
    const size_t begin = line.find_first_not_of(" \t\r"), end = line.find_last_not_of(" \t\r");
    if (begin != std::string::npos) names.push_back(line.substr(begin, end - begin + 1));
    line.clear();
  }
  if (names.empty()) throw DataError(meta.string(), "holds no class names");
  return names;
}

}  // namespace

StoredSplits read_cifar10_dataset(const std::string& dir, bool with_test) {
  const std::vector<std::string> names = read_class_names(dir);
  StoredSplits splits;
  splits.train = read_batches(
      dir, {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}, names);
  if (with_test) splits.test = read_batches(dir, {"test_batch.bin"}, names);
  return splits;
}

}  // namespace lowbit::trainer::data
