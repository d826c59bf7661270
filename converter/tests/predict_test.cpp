// `lowbit predict` on a converted LmnetV1-shaped model: generated PNGs give the top-1 of the runtime
// run directly on the pre-processed tensor; class names, JSON, bad images and a missing directory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>
#include <stb/stb_image_write.h>

#include "conversion_check.h"
#include "cli_run.h"
#include "converter/cli.h"
#include "converter/predict.h"
#include "lmnet_model.h"

namespace lowbit::converter::test {
namespace {

const std::vector<std::string> kClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// A gray w x h image with a bright blob whose position depends on the seed (so images differ).
std::vector<uint8_t> gray_pixels(int w, int h, uint32_t seed) {
  TestRng rng(seed);
  std::uniform_int_distribution<int> noise(0, 60), pos(4, 23);
  const int cx = pos(rng.engine()), cy = pos(rng.engine());
  std::vector<uint8_t> p(static_cast<size_t>(w) * h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int blob = (x - cx) * (x - cx) + (y - cy) * (y - cy) < 40 ? 180 : 0;
      p[static_cast<size_t>(y) * w + x] = static_cast<uint8_t>(std::min(255, blob + noise(rng.engine())));
    }
  return p;
}

std::string write_png(const std::string& name, int w, int h, int channels, const std::vector<uint8_t>& pixels) {
  const std::string path = temp_path(name);
  EXPECT_NE(stbi_write_png(path.c_str(), w, h, channels, pixels.data(), w * channels), 0) << path;
  return path;
}

// The model input for a 28x28 gray image, computed here from meta.yaml's documented numbers:
// padded by 2 with pixel 0, then (pixel / 255 - 0.2860) / 0.3530.
std::vector<float> input_of(const std::vector<uint8_t>& pixels) {
  const auto norm = [](float pixel) { return (pixel * 0.00392156862745098f - 0.2860f) / 0.3530f; };
  std::vector<float> x(32 * 32, norm(0));
  for (int y = 0; y < 28; ++y)
    for (int c = 0; c < 28; ++c) x[static_cast<size_t>((y + 2) * 32 + c + 2)] = norm(pixels[static_cast<size_t>(y * 28 + c)]);
  return x;
}

class PredictLmnet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string onnx = temp_path("predict_lmnet.onnx");
    dir_ = temp_path("predict_lmnet");
    LmnetV1Onnx(41).make().save(onnx);
    std::filesystem::remove_all(dir_);
    ASSERT_EQ(run_cli("convert " + onnx + " --out " + dir_).status, 0);
  }
  static std::string dir_;
};
std::string PredictLmnet::dir_;

TEST_F(PredictLmnet, Top1EqualsTheRuntimeOnThePreprocessedTensor) {
  std::string error;
  lowbit::Model model = lowbit::Model::load(dir_ + "/model.lbm", &error);
  ASSERT_TRUE(model) << error;
  std::vector<std::string> images;
  std::vector<std::vector<double>> want;
  std::set<size_t> top1s;
  for (uint32_t seed = 0; seed < 8; ++seed) {
    const std::vector<uint8_t> pixels = gray_pixels(28, 28, seed);
    images.push_back(write_png("predict_" + std::to_string(seed) + ".png", 28, 28, 1, pixels));
    ASSERT_TRUE(model.set_input(0, input_of(pixels)));
    ASSERT_TRUE(model.run());
    want.push_back(softmax(model.output(0)));
  }
  const std::vector<Prediction> got = predict_images(dir_, images, 10);
  ASSERT_EQ(got.size(), images.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(got[i].error.empty()) << got[i].error;
    ASSERT_EQ(got[i].top.size(), 10u);
    const size_t top1 = static_cast<size_t>(std::max_element(want[i].begin(), want[i].end()) - want[i].begin());
    EXPECT_EQ(got[i].top[0].index, top1) << images[i];
    EXPECT_EQ(got[i].top[0].name, kClasses[top1]);
    top1s.insert(top1);
    double sum = 0;
    for (size_t k = 0; k < got[i].top.size(); ++k) {
      const ClassScore& s = got[i].top[k];
      EXPECT_NEAR(s.probability, want[i][s.index], 1e-6);
      if (k) {
        EXPECT_LE(s.probability, got[i].top[k - 1].probability);
      }
      sum += s.probability;
    }
    EXPECT_NEAR(sum, 1.0, 1e-9);
  }
  EXPECT_GE(top1s.size(), 1u);
}

TEST_F(PredictLmnet, ColourImagesGoThroughLuma) {
  // An RGB image whose three channels are equal has the same luma as its gray twin (up to float32
  // rounding of 0.299 + 0.587 + 0.114), so the predictions agree.
  const std::vector<uint8_t> gray = gray_pixels(28, 28, 77);
  std::vector<uint8_t> rgb;
  for (uint8_t v : gray) rgb.insert(rgb.end(), {v, v, v});
  const std::string a = write_png("predict_gray.png", 28, 28, 1, gray), b = write_png("predict_rgb.png", 28, 28, 3, rgb);
  const std::vector<Prediction> got = predict_images(dir_, {a, b}, 3);
  ASSERT_TRUE(got[0].error.empty() && got[1].error.empty());
  EXPECT_EQ(got[0].top[0].index, got[1].top[0].index);
  EXPECT_NEAR(got[0].top[0].probability, got[1].top[0].probability, 1e-3);
}

TEST_F(PredictLmnet, CliPrintsTopKAndWritesJson) {
  const std::string a = write_png("predict_cli_a.png", 28, 28, 1, gray_pixels(28, 28, 100));
  const std::string b = write_png("predict_cli_b.png", 28, 28, 1, gray_pixels(28, 28, 101));
  const std::string json = temp_path("predict_cli.json");
  std::filesystem::remove(json);
  const CliRun r = run_cli("predict " + dir_ + " " + a + " " + b + " --top-k 3 --json " + json);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out.rfind(a + "\n  1. ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\n" + b + "\n  1. "), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2 * 4) << r.out;
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(json));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["image"], a);
  ASSERT_EQ(j[0]["top"].size(), 3u);
  for (const auto& entry : j)
    for (const auto& t : entry["top"]) {
      const size_t index = t["index"].get<size_t>();
      ASSERT_LT(index, kClasses.size());
      EXPECT_EQ(t["class"], kClasses[index]);
      EXPECT_GT(t["probability"].get<double>(), 0.0);
      EXPECT_NE(r.out.find(kClasses[index]), std::string::npos);
    }
}

TEST_F(PredictLmnet, BadImagesAreNamedAndTheOthersStillRun) {
  const std::string good = write_png("predict_good.png", 28, 28, 1, gray_pixels(28, 28, 5));
  const std::string corrupt = temp_path("predict_corrupt.png");
  {
    std::ofstream f(corrupt, std::ios::binary);
    f << "\x89PNG\r\n\x1a\n this is not really a PNG";
  }
  const std::string wrong_size = write_png("predict_30x30.png", 30, 30, 1, std::vector<uint8_t>(30 * 30, 9));
  const std::string missing = temp_path("predict_missing.png");
  std::filesystem::remove(missing);
  const std::string json = temp_path("predict_bad.json");
  const CliRun r =
      run_cli("predict " + dir_ + " " + corrupt + " " + good + " " + wrong_size + " " + missing + " --json " + json);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out.rfind(good + "\n", 0), 0u) << r.out;  // the good image is still classified
  EXPECT_EQ(r.out.find(corrupt), std::string::npos) << r.out;
  // One stderr line per bad image, in order, each naming its file.
  std::vector<std::string> lines;
  for (size_t at = 0, end; (end = r.err.find('\n', at)) != std::string::npos; at = end + 1)
    lines.push_back(r.err.substr(at, end - at));
  ASSERT_EQ(lines.size(), 3u) << r.err;
  EXPECT_EQ(lines[0].rfind("lowbit predict: " + corrupt + ": cannot decode the image", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1], "lowbit predict: " + wrong_size +
                          ": the image is 30x30, the model takes 28x28 (preprocess resize: none)");
  EXPECT_EQ(lines[2].rfind("lowbit predict: " + missing + ": ", 0), 0u) << lines[2];
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(json));
  ASSERT_EQ(j.size(), 4u);
  EXPECT_TRUE(j[0].contains("error"));
  EXPECT_FALSE(j[0].contains("top"));
  EXPECT_EQ(j[1]["top"].size(), 5u);  // default --top-k
}

TEST(Predict, MissingModelDirectoryIsOneClearError) {
  const CliRun r = run_cli("predict /nonexistent/model-dir some.png");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "lowbit predict: /nonexistent/model-dir: no such model directory\n");
  EXPECT_EQ(r.out, "");
}

TEST(Predict, SoftmaxAndTopK) {
  const std::vector<double> p = softmax({1.0f, 3.0f, 3.0f, -1000.0f});
  EXPECT_NEAR(p[1], 1.0 / (2.0 + std::exp(-2.0)), 1e-12);  // logits minus the largest: -2, 0, 0, -1003
  EXPECT_NEAR(p[0] + p[1] + p[2] + p[3], 1.0, 1e-12);
  const std::vector<ClassScore> top = top_k(p, {"a", "b", "c", "d"}, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].name, "b");  // ties: lower index first
  EXPECT_EQ(top[1].name, "c");
  EXPECT_EQ(top[2].name, "a");
  EXPECT_EQ(top_k(p, {}, 9).size(), 4u);  // k clamped; names default to the index
  EXPECT_EQ(top_k(p, {}, 1)[0].name, "1");
}

}  // namespace
}  // namespace lowbit::converter::test
