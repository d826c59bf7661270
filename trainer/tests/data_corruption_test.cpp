// Random damage to dataset files: load_dataset either loads or throws a DataError naming a file
// of the dataset -- never another exception, a crash or undefined behaviour (run under ASan/UBSan).
#include <functional>
#include <map>
#include <random>

#include "data_dataset_writers.h"

namespace lowbit::trainer::test {
namespace {

struct Format {
  const char* name;
  const char* format;
  std::function<void(const TempDir&)> write;
};

std::map<std::string, std::vector<uint8_t>> snapshot(const TempDir& dir) {
  std::map<std::string, std::vector<uint8_t>> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path()))
    if (entry.is_regular_file()) files[entry.path().string()] = read_bytes(entry.path().string());
  return files;
}

std::vector<uint8_t> damaged(std::vector<uint8_t> bytes, std::mt19937& rng) {
  if (bytes.empty()) return {0};
  const auto position = [&](size_t limit) { return std::uniform_int_distribution<size_t>(0, limit - 1)(rng); };
  switch (rng() % 3) {
    case 0:  // truncation
      bytes.resize(position(bytes.size()));
      break;
    case 1:  // a few flipped bytes anywhere
      for (int i = 0; i < 4; ++i) bytes[position(bytes.size())] ^= static_cast<uint8_t>(1 + rng() % 255);
      break;
    default:  // one header byte (sizes, counts, magic numbers) set to an extreme
      bytes[position(std::min<size_t>(bytes.size(), 40))] = (rng() % 2) ? 0xff : 0x00;
      break;
  }
  return bytes;
}

TEST(DataCorruption, RandomDamageGivesADataErrorOrALoad) {
  const std::vector<Format> formats = {
      {"idx", "idx", [](const TempDir& d) { write_idx_dataset(d, 7, 3, false); }},
      {"idx.gz", "idx", [](const TempDir& d) { write_idx_dataset(d, 7, 3, true); }},
      {"cifar10", "cifar10", write_cifar_dataset},
      {"image_folder", "image_folder",
       [](const TempDir& d) {
         write_small_folder(d);
         write_jpeg(d / "train/cat/c.jpg", 4, 3);
       }},
  };
  std::mt19937 rng(20240601);
  for (const Format& format : formats) {
    SCOPED_TRACE(format.name);
    TempDir dir(format.name);
    format.write(dir);
    const auto originals = snapshot(dir);
    int errors = 0;
    for (int trial = 0; trial < 80; ++trial) {
      auto victim = originals.begin();
      std::advance(victim, rng() % originals.size());
      write_bytes(victim->first, damaged(victim->second, rng));
      try {
        load_dataset(dataset_config(format.format, dir));
      } catch (const DataError& e) {
        ++errors;
        EXPECT_EQ(e.file.rfind(dir.path().string(), 0), 0u) << e.what();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "damaging " << victim->first << " gave a non-DataError exception: " << e.what();
      }
      write_bytes(victim->first, victim->second);
    }
    EXPECT_GT(errors, 20);
  }
}

}  // namespace
}  // namespace lowbit::trainer::test
