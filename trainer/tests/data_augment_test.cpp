// Augmentations: each one's effect on known pixels, and their parameter checks.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "data_loader_support.h"

namespace lowbit::trainer::test {
namespace {

constexpr int kHeight = 4, kWidth = 5, kCopies = 32;

// Gray kHeight x kWidth image, pixel (y, x) = 100 + 10 y + x: distinct values away from 0 and 255.
std::vector<uint8_t> ramp() {
  std::vector<uint8_t> pixels;
  for (int y = 0; y < kHeight; ++y)
    for (int x = 0; x < kWidth; ++x) pixels.push_back(static_cast<uint8_t>(100 + 10 * y + x));
  return pixels;
}

float ramp_at(int y, int x) { return static_cast<float>(100 + 10 * y + x); }

// kCopies augmented copies of the ramp (each sample draws its own randomness), raw pixel values.
std::vector<std::vector<float>> augmented(const std::vector<Augmentation>& augmentations, int pad_value = 0) {
  Preprocess p = identity_preprocess(1, kHeight, kWidth);
  p.pad_value = pad_value;
  const Batch batch = single_batch(repeated_image(ramp(), kHeight, kWidth, 1, kCopies), p, augmentations, 5);
  std::vector<std::vector<float>> images;
  for (int i = 0; i < kCopies; ++i)
    images.emplace_back(batch.images.begin() + i * kHeight * kWidth, batch.images.begin() + (i + 1) * kHeight * kWidth);
  return images;
}

std::vector<float> original() {
  const std::vector<uint8_t> pixels = ramp();
  return std::vector<float>(pixels.begin(), pixels.end());
}

// The image shifted so that output (y, x) shows (y + dy, x + dx), `fill` outside.
std::vector<float> shifted(int dy, int dx, float fill) {
  std::vector<float> image;
  for (int y = 0; y < kHeight; ++y)
    for (int x = 0; x < kWidth; ++x) {
      const int sy = y + dy, sx = x + dx;
      image.push_back(sy >= 0 && sy < kHeight && sx >= 0 && sx < kWidth ? ramp_at(sy, sx) : fill);
    }
  return image;
}

TEST(DataAugment, HorizontalFlipWithCertaintyMirrorsExactly) {
  for (const std::vector<float>& image : augmented({{"horizontal_flip", {{"p", 1.0}}}}))
    for (int y = 0; y < kHeight; ++y)
      for (int x = 0; x < kWidth; ++x) ASSERT_EQ(image[y * kWidth + x], ramp_at(y, kWidth - 1 - x));
}

TEST(DataAugment, VerticalFlipWithCertaintyMirrorsExactly) {
  for (const std::vector<float>& image : augmented({{"vertical_flip", {{"p", 1.0}}}}))
    for (int y = 0; y < kHeight; ++y)
      for (int x = 0; x < kWidth; ++x) ASSERT_EQ(image[y * kWidth + x], ramp_at(kHeight - 1 - y, x));
}

TEST(DataAugment, FlipsHappenAtTheirProbability) {
  for (const std::vector<float>& image :
       augmented({{"horizontal_flip", {{"p", 0.0}}}, {"vertical_flip", {{"p", 0.0}}}}))
    ASSERT_EQ(image, original());
  int flipped = 0;
  for (const std::vector<float>& image : augmented({{"horizontal_flip", {}}})) flipped += image != original();
  EXPECT_GT(flipped, 4);  // p = 0.5 by default: 32 draws all landing on one side is a 2^-31 chance
  EXPECT_LT(flipped, kCopies - 4);
}

TEST(DataAugment, RandomCropShiftsContentAndFillsWithPadValue) {
  int moved = 0;
  for (const std::vector<float>& image : augmented({{"random_crop", {{"padding", 2}}}}, 7)) {
    bool explained = false;
    for (int dy = -2; dy <= 2 && !explained; ++dy)
      for (int dx = -2; dx <= 2 && !explained; ++dx)
        if (image == shifted(dy, dx, 7.0f)) {
          explained = true;
          moved += dy != 0 || dx != 0;
        }
    ASSERT_TRUE(explained) << "not a shift of at most 2 pixels";
  }
  EXPECT_GT(moved, kCopies / 2);  // 24 of the 25 offsets move the image
  for (const std::vector<float>& image : augmented({{"random_crop", {{"padding", 0}}}})) ASSERT_EQ(image, original());
}

TEST(DataAugment, BrightnessAddsOneOffsetWithinDelta) {
  std::vector<float> offsets;
  for (const std::vector<float>& image : augmented({{"brightness", {{"delta", 0.1}}}})) {
    const float offset = image[0] - ramp_at(0, 0);
    for (int i = 0; i < kHeight * kWidth; ++i) ASSERT_NEAR(image[i] - original()[i], offset, 1e-4f);
    EXPECT_LE(std::abs(offset), 25.5f);
    offsets.push_back(offset);
  }
  EXPECT_GT(*std::max_element(offsets.begin(), offsets.end()) - *std::min_element(offsets.begin(), offsets.end()), 10);
  for (const std::vector<float>& image : augmented({{"brightness", {{"delta", 1.0}}}}))
    for (float value : image) ASSERT_TRUE(value >= 0.0f && value <= 255.0f) << value;  // clamped
}

TEST(DataAugment, ContrastScalesAroundTheMean) {
  const std::vector<float> source = original();
  const float mean = std::accumulate(source.begin(), source.end(), 0.0f) / source.size();
  for (const std::vector<float>& image : augmented({{"contrast", {{"delta", 0.3}}}})) {
    const float factor = (image[0] - mean) / (source[0] - mean);
    EXPECT_GE(factor, 0.7f - 1e-4f);
    EXPECT_LE(factor, 1.3f + 1e-4f);
    for (size_t i = 0; i < source.size(); ++i) ASSERT_NEAR(image[i], (source[i] - mean) * factor + mean, 1e-3f);
  }
}

TEST(DataAugment, RandomErasingFillsOneBoxWithPadValue) {
  // 20 pixels * area 0.2 with ratio 1: a 2x2 box.
  const std::vector<Augmentation> erase = {
      {"random_erasing", {{"p", 1.0}, {"area_min", 0.2}, {"area_max", 0.2}, {"ratio_min", 1.0}, {"ratio_max", 1.0}}}};
  for (const std::vector<float>& image : augmented(erase, 3)) {
    int top = kHeight, left = kWidth, bottom = -1, right = -1, erased = 0;
    for (int y = 0; y < kHeight; ++y)
      for (int x = 0; x < kWidth; ++x) {
        if (image[y * kWidth + x] != 3.0f) {
          ASSERT_EQ(image[y * kWidth + x], ramp_at(y, x));
          continue;
        }
        ++erased;
        top = std::min(top, y), left = std::min(left, x), bottom = std::max(bottom, y), right = std::max(right, x);
      }
    ASSERT_EQ(erased, 4);
    EXPECT_EQ(bottom - top, 1);
    EXPECT_EQ(right - left, 1);
  }
  for (const std::vector<float>& image : augmented({{"random_erasing", {{"p", 0.0}}}})) ASSERT_EQ(image, original());
}

TEST(DataAugment, BadAugmentationsAreNamed) {
  const ImageSet set = repeated_image(ramp(), kHeight, kWidth, 1, 1);
  const auto expect_rejected = [&](const Augmentation& augmentation, const std::vector<std::string>& fragments) {
    expect_invalid_argument(
        [&] { BatchLoader(set, identity_preprocess(1, kHeight, kWidth), {augmentation}, 1, false, false, 0, 0); },
        fragments);
  };
  expect_rejected({"mixup", {}}, {"unknown augmentation \"mixup\"", "random_crop"});
  expect_rejected({"random_crop", {{"pad", 2}}}, {"random_crop", "unknown parameter \"pad\"", "padding"});
  expect_rejected({"random_crop", {{"padding", 1.5}}}, {"\"padding\" must be an integer"});
  expect_rejected({"horizontal_flip", {{"p", 1.5}}}, {"horizontal_flip", "\"p\" must be in [0, 1], got 1.5"});
  expect_rejected({"contrast", {{"delta", std::nan("")}}}, {"contrast", "\"delta\""});
  expect_rejected({"random_erasing", {{"area_min", 0.5}, {"area_max", 0.1}}},
                  {"random_erasing", "\"area_min\" must not exceed \"area_max\""});
}

}  // namespace
}  // namespace lowbit::trainer::test
