// Decodes a PNG/JPEG/BMP/PNM image into a float NHWC tensor for a model input.
#pragma once

#include <string>
#include <vector>

namespace lowbit {

bool is_image_path(const std::string& path);

// Loads `path`, converts to `channels` (1, 3 or 4), resizes to height x width and scales pixels
// to [0, 1] (value / 255), the preprocessing of lowbit's trained models.
bool load_image(const std::string& path, int height, int width, int channels, std::vector<float>* out,
                std::string* error);

}  // namespace lowbit
