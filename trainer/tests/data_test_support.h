// Helpers for the data tests: temporary dataset directories, file writers, DataError checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/data.h"

namespace lowbit::trainer::test {

// A fresh directory whose name starts with `prefix` (readers look at names, e.g. "fashion"),
// removed with everything in it when the object goes away.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "data") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& relative) const { return (path_ / relative).string(); }

 private:
  std::filesystem::path path_;
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes `bytes` to `path`, creating its parent folders.
inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

// One gzip member holding `bytes`.
inline std::vector<uint8_t> gzip(const std::vector<uint8_t>& bytes) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::vector<uint8_t> out(deflateBound(&zs, bytes.size()));
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int status = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (status != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return out;
}

inline void append_be32(std::vector<uint8_t>& bytes, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(value >> shift));
}

// Runs `action` and checks it throws a DataError for a file whose path ends with `file_suffix`,
// with `fragment` in the message.
template <typename Action>
void expect_data_error(Action action, const std::string& file_suffix, const std::string& fragment) {
  try {
    action();
    ADD_FAILURE() << "no DataError (expected one for " << file_suffix << ": " << fragment << ")";
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_GE(e.file.size(), file_suffix.size()) << what;
    EXPECT_EQ(e.file.substr(e.file.size() - std::min(e.file.size(), file_suffix.size())), file_suffix) << what;
    EXPECT_EQ(what.rfind(e.file + ": ", 0), 0u) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

// Runs `action` and checks it throws std::invalid_argument with every one of `fragments` in the message.
template <typename Action>
void expect_invalid_argument(Action action, const std::vector<std::string>& fragments) {
  try {
    action();
    ADD_FAILURE() << "no std::invalid_argument (expected one mentioning " << fragments.front() << ")";
  } catch (const std::invalid_argument& e) {
    for (const std::string& fragment : fragments)
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace lowbit::trainer::test
