#include "image_ops.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lowbit::trainer::data {

ResizeMode parse_resize_mode(const std::string& name, const std::string& key) {
  if (name == "none") return ResizeMode::kNone;
  if (name == "bilinear") return ResizeMode::kBilinear;
  if (name == "nearest") return ResizeMode::kNearest;
  throw std::invalid_argument("\"" + key + "\" must be \"none\", \"bilinear\" or \"nearest\", not \"" + name + "\"");
}

void PlanarImage::reset(int new_channels, int new_height, int new_width, float fill) {
  channels = new_channels;
  height = new_height;
  width = new_width;
  pixels.assign(static_cast<size_t>(channels) * height * width, fill);
}

void interleaved_to_planar(const uint8_t* pixels, int height, int width, int channels, PlanarImage& out, int top,
                           int left) {
  const bool source_is_colour = channels >= 3;
  for (int y = 0; y < height; ++y) {
    const uint8_t* src = pixels + static_cast<size_t>(y) * width * channels;
    if (out.channels == 1 && source_is_colour) {
      float* dst = out.row(0, top + y) + left;
      for (int x = 0; x < width; ++x, src += channels) dst[x] = 0.299f * src[0] + 0.587f * src[1] + 0.114f * src[2];
      continue;
    }
    for (int c = 0; c < out.channels; ++c) {
      const int source_channel = source_is_colour ? c : 0;
      float* dst = out.row(c, top + y) + left;
      for (int x = 0; x < width; ++x) dst[x] = src[static_cast<size_t>(x) * channels + source_channel];
    }
  }
}

namespace {

// Source sample positions of one axis for a resize from `in` to `out` pixels.
struct AxisTaps {
  std::vector<int> first, second;  // the two neighbours (equal for nearest)
  std::vector<float> second_weight;
};

AxisTaps axis_taps(int in, int out, ResizeMode mode) {
  AxisTaps taps;
  taps.first.resize(out);
  taps.second.resize(out);
  taps.second_weight.assign(out, 0.0f);
  const double ratio = static_cast<double>(in) / out;
  for (int i = 0; i < out; ++i) {
    if (mode == ResizeMode::kNearest) {
      // The source pixel whose footprint contains the output pixel's centre.
      taps.first[i] = taps.second[i] = std::min(in - 1, static_cast<int>(std::floor((i + 0.5) * ratio)));
      continue;
    }
    const double source = std::clamp((i + 0.5) * ratio - 0.5, 0.0, static_cast<double>(in - 1));
    const int first = static_cast<int>(std::floor(source));
    taps.first[i] = first;
    taps.second[i] = std::min(first + 1, in - 1);
    taps.second_weight[i] = static_cast<float>(source - first);
  }
  return taps;
}

}  // namespace

void resize_into(const PlanarImage& in, ResizeMode mode, PlanarImage& out, int top, int left, int out_height,
                 int out_width) {
  const AxisTaps rows = axis_taps(in.height, out_height, mode);
  const AxisTaps cols = axis_taps(in.width, out_width, mode);
  for (int c = 0; c < in.channels; ++c) {
    for (int y = 0; y < out_height; ++y) {
      const float* row0 = in.row(c, rows.first[y]);
      const float* row1 = in.row(c, rows.second[y]);
      const float fy = rows.second_weight[y];
      float* dst = out.row(c, top + y) + left;
      for (int x = 0; x < out_width; ++x) {
        const int x0 = cols.first[x], x1 = cols.second[x];
        const float fx = cols.second_weight[x];
        const float along_row0 = row0[x0] + fx * (row0[x1] - row0[x0]);
        const float along_row1 = row1[x0] + fx * (row1[x1] - row1[x0]);
        dst[x] = along_row0 + fy * (along_row1 - along_row0);
      }
    }
  }
}

void planar_to_interleaved(const PlanarImage& in, uint8_t* out) {
  for (int c = 0; c < in.channels; ++c)
    for (int y = 0; y < in.height; ++y) {
      const float* src = in.row(c, y);
      for (int x = 0; x < in.width; ++x) {
        const float value = std::clamp(std::floor(src[x] + 0.5f), 0.0f, 255.0f);
        out[(static_cast<size_t>(y) * in.width + x) * in.channels + c] = static_cast<uint8_t>(value);
      }
    }
}

}  // namespace lowbit::trainer::data
