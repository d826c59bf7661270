#include "sample_pipeline.h"

#include <stdexcept>
#include <string>

namespace lowbit::trainer::data {
namespace {

const Preprocess& validated(const Preprocess& preprocess) {
  validate_preprocess(preprocess);
  return preprocess;
}

}  // namespace

SamplePipeline::SamplePipeline(const ImageSet& set, const Preprocess& preprocess,
                               const std::vector<Augmentation>& augmentations)
    : preprocess_(validated(preprocess)),
      resize_mode_(parse_resize_mode(preprocess.resize, "resize")),
      source_channels_(set.channels),
      source_height_(set.height),
      source_width_(set.width),
      inner_height_(preprocess.height - preprocess.pad[0] - preprocess.pad[2]),
      inner_width_(preprocess.width - preprocess.pad[1] - preprocess.pad[3]),
      augmenter_(augmentations, static_cast<float>(preprocess.pad_value)) {
  if (set.channels < 1 || set.channels > 4 || set.height < 1 || set.width < 1)
    throw std::invalid_argument("image set of " + std::to_string(set.height) + "x" + std::to_string(set.width) + "x" +
                                std::to_string(set.channels) + " (HxWxC) has no usable images");
  if (resize_mode_ == ResizeMode::kNone && (set.height != inner_height_ || set.width != inner_width_))
    throw std::invalid_argument("preprocess: \"resize\" is \"none\" but the images are " + std::to_string(set.height) +
                                "x" + std::to_string(set.width) + ", not input_size minus pad = " +
                                std::to_string(inner_height_) + "x" + std::to_string(inner_width_));
}

void SamplePipeline::run(const uint8_t* pixels, Rng& rng, Scratch& scratch, float* out) const {
  const Preprocess& p = preprocess_;
  PlanarImage& canvas = scratch.canvas;
  canvas.reset(p.channels, p.height, p.width, static_cast<float>(p.pad_value));
  if (resize_mode_ == ResizeMode::kNone) {
    interleaved_to_planar(pixels, source_height_, source_width_, source_channels_, canvas, p.pad[0], p.pad[1]);
  } else {
    scratch.staging.reset(p.channels, source_height_, source_width_, 0.0f);
    interleaved_to_planar(pixels, source_height_, source_width_, source_channels_, scratch.staging, 0, 0);
    resize_into(scratch.staging, resize_mode_, canvas, p.pad[0], p.pad[1], inner_height_, inner_width_);
  }
  augmenter_.apply(canvas, rng, scratch.staging);
  const size_t plane = canvas.plane_size();
  for (int c = 0; c < p.channels; ++c) {
    const float* src = canvas.pixels.data() + c * plane;
    float* dst = out + c * plane;
    const float mean = p.mean[c], std = p.std[c];
    for (size_t i = 0; i < plane; ++i) dst[i] = (src[i] * p.scale - mean) / std;
  }
}

}  // namespace lowbit::trainer::data
