// The augmentation list of data.h, validated once and applied per sample.
#pragma once

#include <vector>

#include "data.h"
#include "image_ops.h"
#include "random.h"

namespace lowbit::trainer::data {

enum class AugmentationKind { kRandomCrop, kHorizontalFlip, kVerticalFlip, kBrightness, kContrast, kRandomErasing };

class Augmenter {
 public:
  // Throws std::invalid_argument naming an unknown augmentation or parameter, or a bad value.
  Augmenter(const std::vector<Augmentation>& augmentations, float fill_value);

  // `scratch` is working memory reused across calls by one thread.
  void apply(PlanarImage& image, Rng& rng, PlanarImage& scratch) const;

 private:
  struct Step {
    AugmentationKind kind;
    std::vector<double> values;  // in the order of the kind's parameter table
  };
  std::vector<Step> steps_;
  float fill_value_;
};

}  // namespace lowbit::trainer::data
