// Image-folder reader: PATH/train/<class>/*.{png,jpg,jpeg} and optional PATH/test/ (or val/) with
// the same class folders, decoded with stb_image.
#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>

#include "file_bytes.h"
#include "image_ops.h"
#include "readers.h"

namespace lowbit::trainer::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxPixels = int64_t{1} << 26;  // per image; keeps a lying header from exhausting memory

struct ImageFile {
  std::string path;
  int32_t label;
  int width = 0, height = 0, channels = 0;  // as stored
};

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

bool is_image_file(const fs::directory_entry& entry) {
  const std::string extension = lowercase(entry.path().extension().string());
  return entry.is_regular_file() && (extension == ".png" || extension == ".jpg" || extension == ".jpeg");
}

std::vector<fs::path> sorted_children(const fs::path& dir, bool want_directories) {
  std::vector<fs::path> children;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string()[0] == '.') continue;  // hidden
    if (want_directories ? entry.is_directory() : is_image_file(entry)) children.push_back(entry.path());
  }
  std::sort(children.begin(), children.end());
  return children;
}

std::string name_list(const std::vector<std::string>& names) {
  std::string list;
  for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
  return list;
}

std::string size_text(int width, int height) { return std::to_string(width) + "x" + std::to_string(height); }

// stb_image decodes some damaged files without complaint (a truncated JPEG comes out grey at the
// bottom), so a file must also end the way its format ends.
void check_complete(const std::vector<uint8_t>& bytes, const std::string& path) {
  static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const uint8_t png_end[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), png_signature, 8) == 0) {
    if (bytes.size() < 8 + 12 || std::memcmp(bytes.data() + bytes.size() - 12, png_end, 12) != 0)
      throw DataError(path, "truncated PNG (no IEND chunk at the end)");
    return;
  }
  if (bytes.size() >= 2 && bytes[0] == 0xff && bytes[1] == 0xd8) {
    // Entropy-coded data never contains FF D9 (FF is stuffed), so an end-of-image marker near the
    // end means the scan is complete; a little trailing padding is tolerated.
    const size_t tail = std::min<size_t>(bytes.size(), 1024);
    for (size_t i = bytes.size() - tail; i + 1 < bytes.size(); ++i)
      if (bytes[i] == 0xff && bytes[i + 1] == 0xd9) return;
    throw DataError(path, "truncated JPEG (no end-of-image marker)");
  }
  throw DataError(path, "not a PNG or JPEG file");
}

struct StbImage {
  unsigned char* pixels = nullptr;
  ~StbImage() { stbi_image_free(pixels); }
};

// Decodes `file` as `channels` interleaved channels into `out`, resized to width x height.
void decode_into(const ImageFile& file, int channels, ResizeMode mode, int width, int height, uint8_t* out) {
  const std::vector<uint8_t> bytes = read_file_bytes(file.path);
  check_complete(bytes, file.path);
  if (bytes.size() > INT32_MAX) throw DataError(file.path, "larger than 2 GiB");
  int w = 0, h = 0, stored_channels = 0;
  StbImage image;
  image.pixels =
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &stored_channels, channels);
  if (!image.pixels) throw DataError(file.path, std::string("cannot decode: ") + stbi_failure_reason());
  if (w != file.width || h != file.height)
    throw DataError(file.path,
                    "changed while loading (" + size_text(w, h) + ", was " + size_text(file.width, file.height) + ")");
  if (w == width && h == height) {
    std::copy_n(image.pixels, static_cast<size_t>(w) * h * channels, out);
    return;
  }
  PlanarImage source, resized;
  source.reset(channels, h, w, 0.0f);
  interleaved_to_planar(image.pixels, h, w, channels, source, 0, 0);
  resized.reset(channels, height, width, 0.0f);
  resize_into(source, mode, resized, 0, 0, height, width);
  planar_to_interleaved(resized, out);
}

// The images under split_dir/<class>/, classes numbered by their index in class_names.
std::vector<ImageFile> list_images(const fs::path& split_dir, const std::vector<std::string>& class_names,
                                   bool every_class_required) {
  std::vector<ImageFile> files;
  std::vector<bool> class_seen(class_names.size(), false);
  for (const fs::path& class_dir : sorted_children(split_dir, true)) {
    const std::string name = class_dir.filename().string();
    const auto found = std::find(class_names.begin(), class_names.end(), name);
    if (found == class_names.end())
      throw DataError(class_dir.string(), "class folder is not one of the " + std::to_string(class_names.size()) +
                                              " classes (" + name_list(class_names) + ")");
    const auto label = static_cast<int32_t>(found - class_names.begin());
    class_seen[label] = true;
    for (const fs::path& image : sorted_children(class_dir, false)) files.push_back({image.string(), label});
  }
  for (size_t c = 0; c < class_names.size() && every_class_required; ++c)
    if (!class_seen[c]) throw DataError((split_dir / class_names[c]).string(), "class folder missing");
  if (files.empty()) throw DataError(split_dir.string(), "holds no PNG or JPEG images in class folders");
  return files;
}

struct LoadSize {
  ResizeMode mode;
  int height, width;  // when mode is not kNone
};

ImageSet read_folder_set(const fs::path& split_dir, const std::vector<std::string>& class_names,
                         bool every_class_required, const LoadSize& load_size) {
  std::vector<ImageFile> files = list_images(split_dir, class_names, every_class_required);
  // Header pass: sizes and channels, so the set's geometry is known before decoding.
  bool any_colour = false;
  for (ImageFile& file : files) {
    if (!stbi_info(file.path.c_str(), &file.width, &file.height, &file.channels))
      throw DataError(file.path, std::string("not a readable PNG or JPEG image: ") + stbi_failure_reason());
    if (int64_t{file.width} * file.height > kMaxPixels)
      throw DataError(file.path, size_text(file.width, file.height) + " pixels is too large");
    if (load_size.mode == ResizeMode::kNone && (file.width != files[0].width || file.height != files[0].height))
      throw DataError(file.path, "is " + size_text(file.width, file.height) + " but " + files[0].path + " is " +
                                     size_text(files[0].width, files[0].height) +
                                     "; the images of a set must have one size unless a resize is configured");
    any_colour = any_colour || file.channels >= 3;
  }
  ImageSet set;
  set.class_names = class_names;
  set.channels = any_colour ? 3 : 1;  // alpha is dropped, gray replicated when the set mixes both
  set.height = load_size.mode == ResizeMode::kNone ? files[0].height : load_size.height;
  set.width = load_size.mode == ResizeMode::kNone ? files[0].width : load_size.width;
  const size_t image_size = static_cast<size_t>(set.height) * set.width * set.channels;
  set.pixels.resize(files.size() * image_size);
  for (size_t i = 0; i < files.size(); ++i) {
    decode_into(files[i], set.channels, load_size.mode, set.width, set.height, set.pixels.data() + i * image_size);
    set.labels.push_back(files[i].label);
  }
  return set;
}

}  // namespace

StoredSplits read_image_folder_dataset(const DatasetConfig& config, bool with_test) {
  const fs::path root(config.path);
  const fs::path train_dir = root / "train";
  if (!fs::is_directory(train_dir)) throw DataError(train_dir.string(), "missing (expected one subfolder per class)");
  LoadSize load_size{parse_resize_mode(config.resize, "resize"), config.resize_height, config.resize_width};
  if (load_size.mode != ResizeMode::kNone && (load_size.height < 1 || load_size.width < 1))
    throw DataError(config.path, "resize \"" + config.resize + "\" needs resize_height and resize_width");

  std::vector<std::string> class_names = config.class_names;
  if (class_names.empty())
    for (const fs::path& class_dir : sorted_children(train_dir, true))
      class_names.push_back(class_dir.filename().string());
  StoredSplits splits;
  splits.train = read_folder_set(train_dir, class_names, true, load_size);
  if (with_test) {
    const fs::path test_dir = fs::is_directory(root / "test") ? root / "test" : root / "val";
    if (!fs::is_directory(test_dir))
      throw DataError((root / "test").string(), "missing (nor is there val/); use validation \"split\" instead");
    splits.test = read_folder_set(test_dir, class_names, false, load_size);
  }
  return splits;
}

}  // namespace lowbit::trainer::data
