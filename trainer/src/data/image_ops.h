// Pixel operations shared by the pre-processing, the augmentations and the image-folder reader.
// Images are planar (CHW) float in raw 0..255 units; geometry follows the half-pixel-centre
// convention (OpenCV INTER_LINEAR / PyTorch align_corners=false), without anti-aliasing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::trainer::data {

enum class ResizeMode { kNone, kBilinear, kNearest };

// "none" | "bilinear" | "nearest"; anything else throws std::invalid_argument naming `key`.
ResizeMode parse_resize_mode(const std::string& name, const std::string& key);

struct PlanarImage {
  int channels = 0, height = 0, width = 0;
  std::vector<float> pixels;  // channels * height * width

  void reset(int channels, int height, int width, float fill);
  size_t plane_size() const { return static_cast<size_t>(height) * width; }
  float* row(int c, int y) { return pixels.data() + c * plane_size() + static_cast<size_t>(y) * width; }
  const float* row(int c, int y) const { return pixels.data() + c * plane_size() + static_cast<size_t>(y) * width; }
};

// An interleaved 8-bit image -> the window of `out` at (top, left) (out's channel count decides the
// conversion): gray is replicated to RGB, colour becomes gray by ITU-R 601 luma
// (0.299 R + 0.587 G + 0.114 B, unrounded); a 2nd or 4th (alpha) source channel is ignored.
void interleaved_to_planar(const uint8_t* pixels, int height, int width, int channels, PlanarImage& out, int top,
                           int left);

// Resizes `in` into the out_height x out_width window of `out` at (top, left), same channel count.
void resize_into(const PlanarImage& in, ResizeMode mode, PlanarImage& out, int top, int left, int out_height,
                 int out_width);

// Back to interleaved 8-bit, rounding half up and clamping to 0..255.
void planar_to_interleaved(const PlanarImage& in, uint8_t* out);

}  // namespace lowbit::trainer::data
