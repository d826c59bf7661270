// Image-folder reader on small generated PNG and JPEG files.
#include <filesystem>

#include "data_dataset_writers.h"

namespace lowbit::trainer::test {
namespace {

TEST(DataImageFolder, ReadsSortedClassesAndFiles) {
  TempDir dir("folder");
  write_small_folder(dir);
  const Splits splits = load_dataset(dataset_config("image_folder", dir));
  EXPECT_EQ(splits.train.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(splits.train.size(), 3u);
  EXPECT_EQ(splits.train.labels, (std::vector<int32_t>{0, 0, 1}));
  EXPECT_EQ(splits.train.height, 3);
  EXPECT_EQ(splits.train.width, 4);
  EXPECT_EQ(splits.train.channels, 3);  // a colour image makes the set RGB
  const size_t image_size = 4 * 3 * 3;
  const std::vector<uint8_t> a = pattern(4, 3, 3, 10), gray = pattern(4, 3, 1, 50);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), splits.train.pixels.begin()));  // a.png before b.png
  for (size_t i = 0; i < gray.size(); ++i)                                   // gray replicated to RGB
    for (size_t c = 0; c < 3; ++c) ASSERT_EQ(splits.train.pixels[2 * image_size + i * 3 + c], gray[i]);
  ASSERT_EQ(splits.val.size(), 1u);
  EXPECT_EQ(splits.val.labels, (std::vector<int32_t>{1}));
}

TEST(DataImageFolder, GraySetsStayGrayAndJpegLoads) {
  TempDir dir("folder");
  write_png(dir / "train/a/1.png", 5, 2, 1, 0);
  write_png(dir / "train/b/1.png", 5, 2, 2, 0);  // gray + alpha: alpha dropped
  write_jpeg(dir / "val/a/1.jpg", 5, 2);
  const Splits splits = load_dataset(dataset_config("image_folder", dir));
  EXPECT_EQ(splits.train.channels, 1);
  EXPECT_EQ(splits.train.size(), 2u);
  EXPECT_EQ(splits.val.channels, 3);
  EXPECT_EQ(splits.val.height, 2);
  EXPECT_EQ(splits.val.width, 5);
}

TEST(DataImageFolder, ConfiguredClassNamesFixTheOrder) {
  TempDir dir("folder");
  write_small_folder(dir);
  DatasetConfig config = dataset_config("image_folder", dir);
  config.class_names = {"dog", "cat"};
  const Splits splits = load_dataset(config);
  EXPECT_EQ(splits.train.labels, (std::vector<int32_t>{1, 1, 0}));
  EXPECT_EQ(splits.val.labels, (std::vector<int32_t>{0}));
  config.class_names = {"cat", "dog", "bird"};
  expect_data_error([&] { load_dataset(config); }, "train/bird", "class folder missing");
  config.class_names = {"cat"};
  expect_data_error([&] { load_dataset(config); }, "train/dog", "not one of the 1 classes (cat)");
}

TEST(DataImageFolder, MixedSizesNeedAResize) {
  TempDir dir("folder");
  write_png(dir / "train/a/1.png", 4, 4, 1, 0);
  write_png(dir / "train/a/2.png", 6, 2, 1, 0);
  DatasetConfig config = dataset_config("image_folder", dir);
  config.validation = "split";
  config.val_fraction = 0.5;
  expect_data_error([&] { load_dataset(config); }, "train/a/2.png", "is 6x2 but");
  config.resize = "nearest";
  config.resize_height = config.resize_width = 2;
  const Splits splits = load_dataset(config);
  EXPECT_EQ(splits.train.height, 2);
  EXPECT_EQ(splits.train.width, 2);
  // Nearest from 4x4 picks source pixels (1,1), (1,3), (3,1), (3,3), whichever image it was.
  const std::vector<uint8_t> square = pattern(4, 4, 1, 0);
  const std::vector<uint8_t> expected = {square[5], square[7], square[13], square[15]};
  const ImageSet& set = splits.train.pixels[0] == expected[0] ? splits.train : splits.val;
  EXPECT_EQ(std::vector<uint8_t>(set.pixels.begin(), set.pixels.begin() + 4), expected);
}

TEST(DataImageFolder, DamagedFilesGiveAnErrorNamingTheFile) {
  struct Damage {
    const char* what;
    const char* file;
    std::vector<uint8_t> (*damage)(std::vector<uint8_t>);
    const char* fragment;
  };
  const std::vector<Damage> cases = {
      {"png cut", "train/cat/b.png",
       [](std::vector<uint8_t> b) {
         b.resize(b.size() - 20);
         return b;
       },
       "truncated PNG"},
      {"png cut in the header", "train/cat/b.png",
       [](std::vector<uint8_t> b) {
         b.resize(12);
         return b;
       },
       "not a readable PNG or JPEG"},
      {"not an image", "test/dog/y.png", [](std::vector<uint8_t>) { return std::vector<uint8_t>(100, 'x'); },
       "not a readable PNG or JPEG"},
      {"empty", "train/dog/x.PNG", [](std::vector<uint8_t>) { return std::vector<uint8_t>(); },
       "not a readable PNG or JPEG"},
      {"corrupt pixel data", "train/cat/a.png",
       [](std::vector<uint8_t> b) {
         for (size_t i = 41; i < b.size() - 16; ++i) b[i] = 0xff;
         return b;
       },
       "cannot decode"},
  };
  for (const Damage& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir dir("folder");
    write_small_folder(dir);
    write_bytes(dir / c.file, c.damage(read_bytes(dir / c.file)));
    expect_data_error([&] { load_dataset(dataset_config("image_folder", dir)); }, c.file, c.fragment);
  }
}

TEST(DataImageFolder, TruncatedJpegIsAnError) {
  TempDir dir("folder");
  write_jpeg(dir / "train/a/1.jpg", 64, 64);
  const std::vector<uint8_t> jpeg = read_bytes(dir / "train/a/1.jpg");
  write_bytes(dir / "train/a/1.jpg", std::vector<uint8_t>(jpeg.begin(), jpeg.begin() + jpeg.size() * 2 / 3));
  DatasetConfig config = dataset_config("image_folder", dir);
  config.validation = "split";
  expect_data_error([&] { load_dataset(config); }, "train/a/1.jpg", "truncated JPEG");
}

TEST(DataImageFolder, LayoutErrors) {
  TempDir dir("folder");
  write_small_folder(dir);
  write_png(dir / "test/horse/1.png", 4, 3, 3, 0);
  expect_data_error([&] { load_dataset(dataset_config("image_folder", dir)); }, "test/horse",
                    "not one of the 2 classes");
  std::filesystem::remove_all(dir / "test");
  expect_data_error([&] { load_dataset(dataset_config("image_folder", dir)); }, "test", "nor is there val/");
  // A file-system failure (here a symbolic link to itself) is a DataError too.
  std::filesystem::create_symlink(dir / "train/loop", dir / "train/loop");
  expect_data_error([&] { load_dataset(dataset_config("image_folder", dir)); }, "train/loop", "symbolic links");
  std::filesystem::remove(dir / "train/loop");
  std::filesystem::remove_all(dir / "train");
  expect_data_error([&] { load_dataset(dataset_config("image_folder", dir)); }, "train", "missing");
  std::filesystem::create_directories(dir / "train/empty");
  expect_data_error([&] { load_dataset(dataset_config("image_folder", dir)); }, "train", "holds no PNG or JPEG images");
}

}  // namespace
}  // namespace lowbit::trainer::test
