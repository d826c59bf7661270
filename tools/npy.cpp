#include "npy.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "lowbit/model_builder.h"

namespace lowbit {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

// Value of `key` in the header dict, e.g. "'<f4'" or "(1, 2, 3)", or "" if absent.
std::string dict_value(const std::string& header, const std::string& key) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t p = header.find(':', k);
  if (p == std::string::npos) return "";
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p >= header.size()) return "";
  const char open = header[p];
  const char close = open == '(' ? ')' : (open == '\'' ? '\'' : ',');
  const size_t end = header.find(close, p + 1);
  if (end == std::string::npos) return "";
  return header.substr(p, end - p + (close == ',' ? 0 : 1));
}

bool parse_shape(const std::string& text, std::vector<int64_t>* shape) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') return false;
  shape->clear();
  size_t p = 1;
  while (p < text.size() - 1) {
    while (p < text.size() - 1 && (text[p] == ' ' || text[p] == ',')) ++p;
    if (p >= text.size() - 1) break;
    int64_t v = 0;
    size_t digits = 0;
    while (p < text.size() - 1 && text[p] >= '0' && text[p] <= '9') {
      v = v * 10 + (text[p++] - '0');
      if (v > (int64_t{1} << 40)) return false;
      ++digits;
    }
    if (digits == 0) return false;
    shape->push_back(v);
  }
  return true;
}

}  // namespace

bool read_npy(const std::string& path, NpyArray* out, std::string* error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return *error = path + ": cannot open", false;
  const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto bad = [&](const std::string& why) { return *error = path + ": not a usable .npy file: " + why, false; };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) return bad("bad magic");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad("truncated header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    return bad("format version " + std::to_string(major));
  }
  if (header_len > bytes.size() - header_start) return bad("truncated header");
  const std::string header(bytes.data() + header_start, header_len);
  const std::string descr = dict_value(header, "descr");
  size_t item;
  if (descr == "'<f4'") item = 4;
  else if (descr == "'<f8'") item = 8;
  else return bad("dtype " + (descr.empty() ? std::string("missing") : descr) + " (float32 or float64 expected)");
  if (dict_value(header, "fortran_order") != "False") return bad("Fortran order is not supported");
  if (!parse_shape(dict_value(header, "shape"), &out->shape)) return bad("cannot read the shape");
  uint64_t count = 1;
  for (int64_t d : out->shape) {
    count *= static_cast<uint64_t>(d);
    if (count > (uint64_t{1} << 32)) return bad("too many elements");
  }
  const size_t data_start = header_start + header_len;
  if (bytes.size() - data_start != count * item)
    return bad("holds " + std::to_string(bytes.size() - data_start) + " data bytes, shape needs " +
               std::to_string(count * item));
  out->values.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (item == 4) {
      std::memcpy(&out->values[i], bytes.data() + data_start + i * 4, 4);
    } else {
      double d;
      std::memcpy(&d, bytes.data() + data_start + i * 8, 8);
      out->values[i] = static_cast<float>(d);
    }
  }
  return true;
}

bool write_npy(const std::string& path, const NpyArray& array, std::string* error) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < array.shape.size(); ++i) header += std::to_string(array.shape[i]) + (array.shape.size() == 1 ? "," : (i + 1 < array.shape.size() ? ", " : ""));
  header += "), }";
  // Pad with spaces so the data starts on a 64-byte boundary; the header ends in a newline.
  while ((kMagicSize + 4 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::vector<uint8_t> bytes(kMagic, kMagic + kMagicSize);
  bytes.push_back(1);
  bytes.push_back(0);
  bytes.push_back(static_cast<uint8_t>(header.size() & 0xFF));
  bytes.push_back(static_cast<uint8_t>(header.size() >> 8));
  bytes.insert(bytes.end(), header.begin(), header.end());
  const size_t data_start = bytes.size();
  bytes.resize(data_start + array.values.size() * 4);
  if (!array.values.empty()) std::memcpy(bytes.data() + data_start, array.values.data(), array.values.size() * 4);
  const Status s = write_file_atomic(path, bytes.data(), bytes.size());
  if (!s.ok) *error = s.message;
  return s.ok;
}

}  // namespace lowbit
