// BatchLoader: batch sizes, epoch order, determinism across worker counts and resume, shutdown.
#include <algorithm>
#include <memory>
#include <set>

#include "data_loader_support.h"

namespace lowbit::trainer::test {
namespace {

constexpr int kImages = 50, kSide = 6, kBatch = 8;

// kImages gray kSide x kSide images; image i has pixel 0 = i (its id) and label i mod 10.
ImageSet numbered_images() {
  ImageSet set;
  set.height = set.width = kSide;
  set.channels = 1;
  for (int i = 0; i < 10; ++i) set.class_names.push_back(std::to_string(i));
  for (int i = 0; i < kImages; ++i) {
    set.pixels.push_back(static_cast<uint8_t>(i));
    for (int k = 1; k < kSide * kSide; ++k) set.pixels.push_back(static_cast<uint8_t>((i * 37 + k * 11) & 255));
    set.labels.push_back(i % 10);
  }
  return set;
}

const std::vector<Augmentation> kAugmentations = {{"random_crop", {{"padding", 1}}},
                                                  {"horizontal_flip", {}},
                                                  {"brightness", {{"delta", 0.1}}},
                                                  {"random_erasing", {{"p", 0.5}}}};

std::unique_ptr<BatchLoader> make_loader(const ImageSet& set, int workers, bool shuffle = true,
                                         bool drop_last = false) {
  Preprocess p = identity_preprocess(1, kSide + 2, kSide + 2);
  p.pad[0] = p.pad[1] = p.pad[2] = p.pad[3] = 1;
  p.scale = 1.0f / 255.0f;
  return std::make_unique<BatchLoader>(set, p, kAugmentations, kBatch, shuffle, drop_last, 11, workers);
}

std::vector<Batch> rest_of_epoch(BatchLoader& loader) {
  std::vector<Batch> batches;
  Batch batch;
  while (loader.next(batch)) batches.push_back(batch);
  return batches;
}

std::vector<Batch> epoch(BatchLoader& loader, int64_t e) {
  loader.start_epoch(e);
  return rest_of_epoch(loader);
}

void expect_same_batches(const std::vector<Batch>& actual, const std::vector<Batch>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t b = 0; b < actual.size(); ++b) {
    EXPECT_EQ(actual[b].labels, expected[b].labels) << "batch " << b;
    EXPECT_EQ(actual[b].images, expected[b].images) << "batch " << b;  // bit-identical
  }
}

// The labels of all batches in order.
std::vector<int64_t> label_sequence(const std::vector<Batch>& batches) {
  std::vector<int64_t> labels;
  for (const Batch& batch : batches) labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
  return labels;
}

TEST(DataLoader, BatchShapesAndCounts) {
  const ImageSet set = numbered_images();
  const auto loader = make_loader(set, 0);
  EXPECT_EQ(loader->batches_per_epoch(), 7);
  const std::vector<Batch> batches = epoch(*loader, 0);
  ASSERT_EQ(batches.size(), 7u);
  EXPECT_EQ(batches[0].n, kBatch);
  EXPECT_EQ(batches[0].c, 1);
  EXPECT_EQ(batches[0].h, kSide + 2);
  EXPECT_EQ(batches[0].w, kSide + 2);
  EXPECT_EQ(batches[0].images.size(), static_cast<size_t>(kBatch * (kSide + 2) * (kSide + 2)));
  EXPECT_EQ(batches.back().n, kImages - 6 * kBatch);
  EXPECT_EQ(batches.back().labels.size(), 2u);
  Batch batch;
  EXPECT_FALSE(loader->next(batch));  // and it stays at the end
  EXPECT_EQ(make_loader(set, 0, true, true)->batches_per_epoch(), 6);
  EXPECT_EQ(epoch(*make_loader(set, 2, true, true), 0).size(), 6u);
}

TEST(DataLoader, EveryImageOncePerEpochInASeededOrder) {
  const ImageSet set = numbered_images();
  // Unaugmented, unpadded, unnormalised: pixel 0 of each output image is the image's id.
  BatchLoader loader(set, identity_preprocess(1, kSide, kSide), {}, kBatch, true, false, 11, 0);
  const auto ids_of_epoch = [&](int64_t e) {
    std::vector<int> ids;
    for (const Batch& batch : epoch(loader, e))
      for (int i = 0; i < batch.n; ++i) {
        ids.push_back(static_cast<int>(batch.images[static_cast<size_t>(i) * kSide * kSide]));
        EXPECT_EQ(batch.labels[i], ids.back() % 10);
      }
    return ids;
  };
  const std::vector<int> epoch0 = ids_of_epoch(0), epoch1 = ids_of_epoch(1);
  EXPECT_NE(epoch0, epoch1);
  EXPECT_EQ(ids_of_epoch(0), epoch0);
  std::vector<int> sorted = epoch0;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < kImages; ++i) EXPECT_EQ(sorted[i], i);

  BatchLoader in_order(set, identity_preprocess(1, kSide, kSide), {}, kBatch, false, false, 11, 0);
  EXPECT_EQ(label_sequence(epoch(in_order, 3)), std::vector<int64_t>(set.labels.begin(), set.labels.end()));
}

TEST(DataLoader, SameBatchesWithAnyNumberOfWorkers) {
  const ImageSet set = numbered_images();
  const auto reference = make_loader(set, 0);
  const std::vector<Batch> epoch0 = epoch(*reference, 0), epoch1 = epoch(*reference, 1);
  EXPECT_NE(epoch0[0].images, epoch1[0].images);
  for (int workers : {1, 3}) {
    SCOPED_TRACE(workers);
    const auto loader = make_loader(set, workers);
    expect_same_batches(epoch(*loader, 0), epoch0);
    expect_same_batches(epoch(*loader, 1), epoch1);
  }
}

TEST(DataLoader, ResumeWithStartEpochAndSkip) {
  const ImageSet set = numbered_images();
  const std::vector<Batch> uninterrupted = epoch(*make_loader(set, 0), 2);
  for (int workers : {0, 3}) {
    SCOPED_TRACE(workers);
    const auto resumed = make_loader(set, workers);
    resumed->start_epoch(2);
    resumed->skip(3);
    expect_same_batches(rest_of_epoch(*resumed), {uninterrupted.begin() + 3, uninterrupted.end()});

    // Skipping in the middle of an epoch, with batches already prefetched.
    const auto mid = make_loader(set, workers);
    mid->start_epoch(2);
    Batch first;
    ASSERT_TRUE(mid->next(first));
    mid->skip(2);
    expect_same_batches(rest_of_epoch(*mid), {uninterrupted.begin() + 3, uninterrupted.end()});

    const auto past_end = make_loader(set, workers);
    past_end->start_epoch(2);
    past_end->skip(100);
    EXPECT_TRUE(rest_of_epoch(*past_end).empty());
  }
}

TEST(DataLoader, NextBeforeStartEpochIsEpochZero) {
  const ImageSet set = numbered_images();
  const auto implicit = make_loader(set, 1);
  expect_same_batches(rest_of_epoch(*implicit), epoch(*make_loader(set, 1), 0));
}

TEST(DataLoader, DestroyedMidEpochStopsItsWorkers) {
  const ImageSet set = numbered_images();
  for (int i = 0; i < 20; ++i) {
    const auto loader = make_loader(set, 3);
    loader->start_epoch(i);
    Batch batch;
    ASSERT_TRUE(loader->next(batch));
    EXPECT_EQ(batch.n, kBatch);
  }                     // each destructor joins workers that are mid-batch or waiting for room
  make_loader(set, 3);  // never started: workers idle from the start
}

TEST(DataLoader, RejectsBadArguments) {
  const ImageSet set = numbered_images();
  const Preprocess p = identity_preprocess(1, kSide, kSide);
  expect_invalid_argument([&] { BatchLoader(set, p, {}, 0, true, false, 0, 0); }, {"batch size"});
  expect_invalid_argument([&] { BatchLoader(set, p, {}, 4, true, false, 0, -1); }, {"worker count"});
  ImageSet broken = set;
  broken.pixels.pop_back();
  expect_invalid_argument([&] { BatchLoader(broken, p, {}, 4, true, false, 0, 0); }, {"pixel bytes"});
  const auto loader = make_loader(set, 0);
  expect_invalid_argument([&] { loader->skip(-1); }, {"negative"});
}

}  // namespace
}  // namespace lowbit::trainer::test
