#include "image_input.h"

#include <algorithm>
#include <cctype>

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

namespace lowbit {

bool is_image_path(const std::string& path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == "png" || ext == "jpg" || ext == "jpeg" || ext == "bmp" || ext == "ppm" || ext == "pgm";
}

bool load_image(const std::string& path, int height, int width, int channels, std::vector<float>* out,
                std::string* error) {
  if (channels < 1 || channels > 4 || channels == 2) {
    *error = path + ": the model input has " + std::to_string(channels) + " channels; images give 1, 3 or 4";
    return false;
  }
  int w = 0, h = 0, file_channels = 0;
  unsigned char* pixels = stbi_load(path.c_str(), &w, &h, &file_channels, channels);
  if (!pixels) {
    *error = path + ": cannot decode image: " + stbi_failure_reason();
    return false;
  }
  std::vector<float> src(static_cast<size_t>(w) * h * channels);
  for (size_t i = 0; i < src.size(); ++i) src[i] = pixels[i] / 255.0f;
  stbi_image_free(pixels);
  out->assign(static_cast<size_t>(width) * height * channels, 0.0f);
  if (w == width && h == height) {
    *out = std::move(src);
    return true;
  }
  if (!stbir_resize_float(src.data(), w, h, 0, out->data(), width, height, 0, channels)) {
    *error = path + ": cannot resize " + std::to_string(w) + "x" + std::to_string(h) + " to " + std::to_string(width) +
             "x" + std::to_string(height);
    return false;
  }
  return true;
}

}  // namespace lowbit
