#include "file_bytes.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "data.h"

namespace lowbit::trainer::data {
namespace {

// Datasets are far smaller; the cap turns a decompression bomb into an error instead of an OOM kill.
constexpr uint64_t kMaxInflatedBytes = uint64_t{4} << 30;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

struct InflateStream {
  z_stream zs{};
  bool initialised = false;
  ~InflateStream() {
    if (initialised) inflateEnd(&zs);
  }
};

bool has_gzip_magic(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

std::vector<uint8_t> inflate_gzip(const std::vector<uint8_t>& compressed, const std::string& path) {
  InflateStream stream;
  if (inflateInit2(&stream.zs, 16 + MAX_WBITS) != Z_OK) throw DataError(path, "cannot initialise zlib");
  stream.initialised = true;
  z_stream& zs = stream.zs;

  std::vector<uint8_t> out(std::max<size_t>(compressed.size() * 4, 1 << 16));
  size_t in_pos = 0, out_pos = 0;
  for (;;) {
    if (zs.avail_in == 0 && in_pos < compressed.size()) {
      // avail_in is 32-bit: feed inputs above 4 GiB in pieces.
      const size_t chunk = std::min<size_t>(compressed.size() - in_pos, UINT_MAX);
      zs.next_in = const_cast<Bytef*>(compressed.data() + in_pos);
      zs.avail_in = static_cast<uInt>(chunk);
      in_pos += chunk;
    }
    if (out_pos == out.size()) {
      if (out.size() >= kMaxInflatedBytes) throw DataError(path, "inflates to more than 4 GiB");
      out.resize(std::min<uint64_t>(out.size() * 2, kMaxInflatedBytes));
    }
    const size_t room = std::min<size_t>(out.size() - out_pos, UINT_MAX);
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(room);
    const int status = inflate(&zs, Z_NO_FLUSH);
    out_pos += room - zs.avail_out;
    if (status == Z_STREAM_END) {
      if (zs.avail_in == 0 && in_pos == compressed.size()) break;
      inflateReset(&zs);  // another gzip member follows (as `cat a.gz b.gz` makes)
      continue;
    }
    if (status == Z_BUF_ERROR && zs.avail_in == 0 && in_pos == compressed.size())
      throw DataError(path, "truncated gzip data (the stream ends early)");
    if (status != Z_OK && status != Z_BUF_ERROR)
      throw DataError(path, std::string("corrupt gzip data: ") + (zs.msg ? zs.msg : zError(status)));
  }
  out.resize(out_pos);
  return out;
}

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw DataError(path, "file not found");
  if (!std::filesystem::is_regular_file(path, ec)) throw DataError(path, "not a regular file");
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw DataError(path, "cannot get the size: " + ec.message());
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw DataError(path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<uint8_t> bytes(size);
  if (std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size())
    throw DataError(path, std::string("read error: ") + std::strerror(errno));
  return bytes;
}

std::vector<uint8_t> read_possibly_gzipped(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return has_gzip_magic(bytes) ? inflate_gzip(bytes, path) : bytes;
}

}  // namespace lowbit::trainer::data
