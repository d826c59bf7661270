// Helpers for tests that push images through a BatchLoader.
#pragma once

#include <vector>

#include "data_test_support.h"

namespace lowbit::trainer::test {

// `count` copies of one image; labels 0 .. count-1.
inline ImageSet repeated_image(const std::vector<uint8_t>& pixels, int height, int width, int channels, int count) {
  ImageSet set;
  set.height = height;
  set.width = width;
  set.channels = channels;
  for (int i = 0; i < count; ++i) {
    set.pixels.insert(set.pixels.end(), pixels.begin(), pixels.end());
    set.labels.push_back(i);
    set.class_names.push_back(std::to_string(i));
  }
  return set;
}

// A preprocess that leaves pixel values as they are (scale 1, mean 0, std 1) for a height x width
// input without padding.
inline Preprocess identity_preprocess(int channels, int height, int width) {
  Preprocess p;
  p.channels = channels;
  p.height = height;
  p.width = width;
  p.scale = 1.0f;
  p.mean.assign(channels, 0.0f);
  p.std.assign(channels, 1.0f);
  return p;
}

// The whole set as one unshuffled batch of epoch 0, decoded on the calling thread.
inline Batch single_batch(const ImageSet& set, const Preprocess& preprocess,
                          const std::vector<Augmentation>& augmentations = {}, uint64_t seed = 0) {
  BatchLoader loader(set, preprocess, augmentations, static_cast<int>(set.size()), false, false, seed, 0);
  Batch batch;
  EXPECT_TRUE(loader.next(batch));
  return batch;
}

inline void expect_floats_near(const std::vector<float>& actual, const std::vector<float>& expected, float tolerance) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], tolerance) << "at " << i;
}

}  // namespace lowbit::trainer::test
