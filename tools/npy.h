// Minimal .npy (NumPy array file) reading and writing for float32 tensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> values;  // C order
};

// Reads a C-ordered little-endian float32 or float64 array (float64 is narrowed to float32).
// On failure returns false and sets *error to a message naming what is wrong.
bool read_npy(const std::string& path, NpyArray* out, std::string* error);
// Writes a float32 array (format 1.0) atomically.
bool write_npy(const std::string& path, const NpyArray& array, std::string* error);

}  // namespace lowbit
