// One sample from 8-bit pixels to the network input: the geometric pre-processing (channels,
// resize, pad), the augmentations, then the normalisation -- the order data.h specifies.
#pragma once

#include <cstdint>
#include <vector>

#include "augment.h"
#include "data.h"
#include "image_ops.h"
#include "random.h"

namespace lowbit::trainer::data {

// Throws std::invalid_argument naming the lowbit.preprocess key that is wrong.
void validate_preprocess(const Preprocess& preprocess);

class SamplePipeline {
 public:
  // Throws std::invalid_argument when the preprocess or an augmentation is invalid, or the set's
  // images cannot be mapped to the input (resize "none" and a different size).
  SamplePipeline(const ImageSet& set, const Preprocess& preprocess, const std::vector<Augmentation>& augmentations);

  int channels() const { return preprocess_.channels; }
  int height() const { return preprocess_.height; }
  int width() const { return preprocess_.width; }
  size_t sample_size() const { return static_cast<size_t>(channels()) * height() * width(); }

  // Working memory of one thread, reused across samples.
  struct Scratch {
    PlanarImage canvas, staging;
  };
  // `pixels`: one image of the set (HWC); `out`: sample_size() floats, CHW.
  void run(const uint8_t* pixels, Rng& rng, Scratch& scratch, float* out) const;

 private:
  Preprocess preprocess_;
  ResizeMode resize_mode_;
  int source_channels_, source_height_, source_width_;
  int inner_height_, inner_width_;  // input_size minus the padding
  Augmenter augmenter_;
};

}  // namespace lowbit::trainer::data
