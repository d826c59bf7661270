// Preprocess: the lowbit.preprocess JSON, and its numbers against hand-computed values.
#include "data_loader_support.h"

namespace lowbit::trainer::test {
namespace {

const char* const kInterchangeExample =
    R"({"channels": 1, "input_size": [32, 32], "resize": "none", "pad": [2, 2, 2, 2], "pad_value": 0,
        "scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530]})";

TEST(DataPreprocess, ReadsTheInterchangeExample) {
  const Preprocess p = Preprocess::from_json(kInterchangeExample);
  EXPECT_EQ(p.channels, 1);
  EXPECT_EQ(p.height, 32);
  EXPECT_EQ(p.width, 32);
  EXPECT_EQ(p.resize, "none");
  EXPECT_EQ(std::vector<int>(p.pad, p.pad + 4), (std::vector<int>{2, 2, 2, 2}));
  EXPECT_EQ(p.pad_value, 0);
  EXPECT_EQ(p.scale, 1.0f / 255.0f);
  EXPECT_EQ(p.mean, std::vector<float>{0.286f});
  EXPECT_EQ(p.std, std::vector<float>{0.353f});
}

TEST(DataPreprocess, WritesShortestNumbersAndReadsThemBack) {
  const Preprocess p = Preprocess::from_json(kInterchangeExample);
  EXPECT_EQ(p.to_json(), R"({"channels":1,"input_size":[32,32],"resize":"none","pad":[2,2,2,2],"pad_value":0,)"
                         R"("scale":0.003921569,"mean":[0.286],"std":[0.353]})");
  Preprocess rgb;
  rgb.channels = 3;
  rgb.height = 24;
  rgb.width = 40;
  rgb.resize = "bilinear";
  rgb.pad[3] = 1;
  rgb.pad_value = 128;
  rgb.mean = {0.1f, 0.2f, 0.3f};
  rgb.std = {1.0f / 3.0f, 0.5f, 7.0f};
  const Preprocess back = Preprocess::from_json(rgb.to_json());
  EXPECT_EQ(back.to_json(), rgb.to_json());
  EXPECT_EQ(back.mean, rgb.mean);
  EXPECT_EQ(back.std, rgb.std);
  EXPECT_EQ(back.height, 24);
  EXPECT_EQ(back.width, 40);
  EXPECT_EQ(back.pad[3], 1);
}

TEST(DataPreprocess, ErrorsNameTheKey) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {R"({"channels": 1, "input_size": [8, 8], "colour": 1})", {"unknown key", "colour"}},
      {R"({"input_size": [8, 8]})", {"\"channels\"", "missing"}},
      {R"({"channels": 1})", {"\"input_size\"", "missing"}},
      {R"({"channels": 2, "input_size": [8, 8]})", {"\"channels\"", "1 or 3"}},
      {R"({"channels": "1", "input_size": [8, 8]})", {"\"channels\"", "integer"}},
      {R"({"channels": 1, "input_size": [8]})", {"\"input_size\"", "2 integers"}},
      {R"({"channels": 1, "input_size": [8, 0]})", {"\"input_size\""}},
      {R"({"channels": 1, "input_size": [8, 8], "pad": [-1, 0, 0, 0]})", {"\"pad\"", "negative"}},
      {R"({"channels": 1, "input_size": [8, 8], "pad": [4, 0, 4, 0]})", {"\"pad\"", "leaves no image"}},
      {R"({"channels": 1, "input_size": [8, 8], "resize": "bicubic"})", {"\"resize\"", "bicubic"}},
      {R"({"channels": 1, "input_size": [8, 8], "resize": 1})", {"\"resize\"", "string"}},
      {R"({"channels": 1, "input_size": [8, 8], "pad_value": 256})", {"\"pad_value\"", "0..255"}},
      {R"({"channels": 1, "input_size": [8, 8], "scale": "x"})", {"\"scale\"", "number"}},
      {R"({"channels": 3, "input_size": [8, 8], "mean": [0.5]})", {"\"mean\"", "per channel (3)"}},
      {R"({"channels": 1, "input_size": [8, 8], "std": [0]})", {"\"std\"", "non-zero"}},
      {R"({"channels": 1, "input_size": [8, 8], "std": [1, "a"]})", {"\"std\"", "number"}},
      {R"({"channels": 1, "input_size": [8, 8],)", {"not valid JSON"}},
      {R"([1, 2])", {"must be a JSON object"}},
  };
  for (const auto& [json, fragments] : cases) {
    SCOPED_TRACE(json);
    expect_invalid_argument([&] { Preprocess::from_json(json); }, fragments);
  }
}

TEST(DataPreprocess, PadsThenNormalisesPerChannel) {
  // 2x2 gray image into a 3x3 input padded at the top and the right with value 10.
  const ImageSet set = repeated_image({0, 51, 102, 255}, 2, 2, 1, 1);
  Preprocess p = identity_preprocess(1, 3, 3);
  p.pad[0] = 1;
  p.pad[3] = 1;
  p.pad_value = 10;
  p.scale = 1.0f / 255.0f;
  p.mean = {0.5f};
  p.std = {0.25f};
  // (pixel / 255 - 0.5) / 0.25: 0 -> -2, 51 -> -1.2, 102 -> -0.4, 255 -> 2, 10 -> -1.8431373.
  const float pad = -1.8431373f;
  expect_floats_near(single_batch(set, p).images, {pad, pad, pad, -2.0f, -1.2f, pad, -0.4f, 2.0f, pad}, 1e-6f);
}

TEST(DataPreprocess, NormalisationIsFloat32InTheSpecifiedOrder) {
  std::vector<uint8_t> every_value(256);
  for (int v = 0; v < 256; ++v) every_value[v] = static_cast<uint8_t>(v);
  Preprocess p = identity_preprocess(1, 16, 16);
  p.scale = 1.0f / 255.0f;
  p.mean = {0.2860f};
  p.std = {0.3530f};
  const Batch batch = single_batch(repeated_image(every_value, 16, 16, 1, 1), p);
  for (int v = 0; v < 256; ++v) {
    const float scaled = static_cast<float>(v) * p.scale;
    const float centred = scaled - p.mean[0];
    EXPECT_EQ(batch.images[v], centred / p.std[0]) << "pixel " << v;  // bit-exact, as the runtime must be
  }
}

TEST(DataPreprocess, RgbToGrayIsItuR601Luma) {
  const ImageSet set = repeated_image({255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30}, 2, 2, 3, 1);
  // 0.299 * 255, 0.587 * 255, 0.114 * 255, 0.299 * 10 + 0.587 * 20 + 0.114 * 30.
  expect_floats_near(single_batch(set, identity_preprocess(1, 2, 2)).images, {76.245f, 149.685f, 29.07f, 18.15f},
                     1e-4f);
}

TEST(DataPreprocess, GrayToRgbReplicatesBeforePerChannelNormalisation) {
  const ImageSet set = repeated_image({100, 200}, 1, 2, 1, 1);
  Preprocess p = identity_preprocess(3, 1, 2);
  p.mean = {0.0f, 1.0f, 2.0f};
  p.std = {1.0f, 2.0f, 4.0f};
  expect_floats_near(single_batch(set, p).images, {100, 200, 49.5f, 99.5f, 24.5f, 49.5f}, 0.0f);
}

TEST(DataPreprocess, BilinearResizeUsesPixelCentres) {
  const ImageSet set = repeated_image({0, 100, 200, 255}, 2, 2, 1, 1);
  Preprocess p = identity_preprocess(1, 4, 4);
  p.resize = "bilinear";
  // Output pixel x samples source x' = (x + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (to 1).
  // Rows: source row 0 -> 0 25 75 100; source row 1 -> 200 213.75 241.25 255; the middle output
  // rows mix them 3:1 and 1:3.
  expect_floats_near(single_batch(set, p).images,
                     {0, 25, 75, 100,                      //
                      50, 72.1875f, 116.5625f, 138.75f,    //
                      150, 166.5625f, 199.6875f, 216.25f,  //
                      200, 213.75f, 241.25f, 255},
                     1e-4f);
}

TEST(DataPreprocess, NearestResizeUpAndDown) {
  Preprocess up = identity_preprocess(1, 4, 4);
  up.resize = "nearest";
  expect_floats_near(single_batch(repeated_image({1, 2, 3, 4}, 2, 2, 1, 1), up).images,
                     {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 0.0f);
  std::vector<uint8_t> square(16);
  for (int i = 0; i < 16; ++i) square[i] = static_cast<uint8_t>(i);
  Preprocess down = identity_preprocess(1, 3, 2);
  down.resize = "nearest";
  down.pad[0] = 1;  // the resize targets input_size minus the padding: 2x2
  down.pad_value = 99;
  expect_floats_near(single_batch(repeated_image(square, 4, 4, 1, 1), down).images, {99, 99, 5, 7, 13, 15}, 0.0f);
}

TEST(DataPreprocess, LoaderRejectsASizeMismatchWithoutResize) {
  const ImageSet set = repeated_image({1, 2, 3, 4}, 2, 2, 1, 1);
  expect_invalid_argument([&] { BatchLoader(set, identity_preprocess(1, 3, 3), {}, 1, false, false, 0, 0); },
                          {"\"resize\" is \"none\"", "2x2", "3x3"});
  Preprocess bad = identity_preprocess(1, 2, 2);
  bad.std = {0.0f};
  expect_invalid_argument([&] { BatchLoader(set, bad, {}, 1, false, false, 0, 0); }, {"\"std\""});
}

}  // namespace
}  // namespace lowbit::trainer::test
