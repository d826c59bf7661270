// Whole-file reads for the dataset readers; every failure is a DataError naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::trainer::data {

std::vector<uint8_t> read_file_bytes(const std::string& path);

// The file's bytes, inflated when they start with the gzip magic (concatenated members too).
std::vector<uint8_t> read_possibly_gzipped(const std::string& path);

inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace lowbit::trainer::data
