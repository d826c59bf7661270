// End to end: a builder-made W1A2 LmnetV1-shaped model with random weights, run by the real
// lowbit-run binary, must equal the independent reference evaluation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>

#include "lowbit/model_builder.h"
#include "npy.h"
#include "reference_eval.h"

namespace {

using lowbit::ModelBuilder;
using Id = ModelBuilder::Id;

struct CommandResult {
  int exit_code;
  std::string output;
};

CommandResult run_command(const std::string& command) {
  CommandResult r{-1, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "/" + name; }

constexpr float kActMax = 2.0f;                       // Blueoil's activation clip
const lowbit::CodeSpec kA2{{2, lowbit::QuantKind::kUnsigned}, kActMax / 3.0f};
const lowbit::QuantType kW1{1, lowbit::QuantKind::kBinary};

// Random LmnetV1Quantize (REFERENCE.md §2) at 32x32x3 with 10 classes, W1A2.
class LmnetV1Maker {
 public:
  explicit LmnetV1Maker(uint32_t seed) : rng_(seed) {}

  ModelBuilder make() {
    ModelBuilder b;
    const Id image = b.input("image", {1, 32, 32, 3});
    // conv1 sees the float image: binary weights times a power-of-two alpha, BN as a dyadic affine,
    // so float32 arithmetic is exact and the quantizer's input is the same on every platform.
    Id x = b.conv2d("conv1", image, float_binary_weights(b, "conv1.w", 32, 3, 3, 3), lowbit::kNoTensor,
                    lowbit::ConvParams::same(3));
    x = b.affine("conv1.bn", x, dyadic(b, "conv1.bn.scale", 32, 1, 64), dyadic(b, "conv1.bn.bias", 32, -64, 64));
    x = b.quantize("conv1.act", x, kA2);
    x = qconv(b, "conv2", x, 64, 3);
    x = b.space_to_depth("s2d1", x, 2);
    x = qconv(b, "conv3", x, 128, 3);
    x = qconv(b, "conv4", x, 64, 3);
    x = b.space_to_depth("s2d2", x, 2);
    x = qconv(b, "conv5", x, 128, 3);
    x = b.space_to_depth("s2d3", x, 2);
    const Id conv6 = qconv(b, "conv6", x, 64, 1);
    // conv7: the float classifier (1x1, bias) on dequantized codes, then global average pooling.
    x = b.dequantize("conv6.float", conv6);
    x = b.conv2d("conv7", x, normal(b, "conv7.w", {10, 1, 1, 64}, 0.2f), normal(b, "conv7.b", {10}, 0.1f),
                 lowbit::ConvParams::same(1));
    x = b.global_avg_pool("pool", x);
    const Id logits = b.reshape("logits", x, {1, 10});
    b.output(logits);
    b.output(conv6);
    return b;
  }

  std::vector<float> image() {
    std::uniform_int_distribution<int> pixel(0, 255);
    std::vector<float> v(32 * 32 * 3);
    for (float& p : v) p = static_cast<float>(pixel(rng_)) / 256.0f;
    return v;
  }

 private:
  Id float_binary_weights(ModelBuilder& b, const std::string& name, int o, int kh, int kw, int c) {
    std::bernoulli_distribution sign;
    std::vector<float> w(static_cast<size_t>(o * kh * kw * c));
    for (float& v : w) v = sign(rng_) ? 0.125f : -0.125f;
    return b.constant_f32(name, {o, kh, kw, c}, w);
  }

  Id dyadic(ModelBuilder& b, const std::string& name, int n, int lo, int hi) {
    std::uniform_int_distribution<int> k(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = static_cast<float>(k(rng_)) / 32.0f;
    return b.constant_f32(name, {n}, v);
  }

  Id normal(ModelBuilder& b, const std::string& name, const std::vector<int32_t>& dims, float stddev) {
    std::normal_distribution<float> d(0.0f, stddev);
    size_t n = 1;
    for (int32_t v : dims) n *= static_cast<size_t>(v);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng_);
    return b.constant_f32(name, dims, v);
  }

  // Binary-weight conv whose thresholds spread the accumulator range over the 2-bit codes; a few
  // channels are decreasing (negative BN scale) and one is constant, as real folded layers are.
  Id qconv(ModelBuilder& b, const std::string& name, Id x, int o, int k) {
    const int c = b.tensor(x).last_dim();
    std::bernoulli_distribution sign;
    std::vector<int32_t> w(static_cast<size_t>(o * k * k * c));
    for (int32_t& v : w) v = sign(rng_) ? 1 : -1;
    const Id weights = b.constant_weights(name + ".w", {o, k, k, c}, kW1, w);
    const int spread = static_cast<int>(std::sqrt(static_cast<double>(k * k * c)) * 1.5);
    std::uniform_int_distribution<int> start(-spread, spread / 2), step(1, spread);
    std::uniform_int_distribution<int> kind(0, 9);
    std::vector<int32_t> table;
    for (int ch = 0; ch < o; ++ch) {
      const int roll = ch == 0 ? -1 : kind(rng_);
      int t = start(rng_);
      if (roll == -1) {
        table.insert(table.end(), {lowbit::kThresholdConstant, 2, 0, 0});
      } else if (roll == 0) {  // decreasing: thresholds descend
        table.push_back(lowbit::kThresholdDecreasing);
        for (int i = 0; i < 3; ++i, t -= step(rng_)) table.push_back(t);
      } else {
        table.push_back(lowbit::kThresholdIncreasing);
        for (int i = 0; i < 3; ++i, t += step(rng_)) table.push_back(t);
      }
    }
    const Id thresholds = b.constant_i32(name + ".thresholds", {o, 4}, table);
    return b.qconv2d_codes(name, x, weights, thresholds, lowbit::ConvParams::same(k), kA2);
  }

  std::mt19937 rng_;
};

TEST(LowbitRun, LmnetV1W1A2MatchesReferenceEvaluation) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    LmnetV1Maker maker(seed);
    ModelBuilder b = maker.make();
    ASSERT_TRUE(b.error().empty()) << b.error();
    const std::string model = temp_path("lmnet_v1.lbm"), input = temp_path("image.npy");
    const std::string logits_path = temp_path("logits.npy"), codes_path = temp_path("conv6.npy");
    const lowbit::Status written = b.write_file(model);
    ASSERT_TRUE(written.ok) << written.message;
    const std::vector<float> image = maker.image();
    std::string error;
    ASSERT_TRUE(lowbit::write_npy(input, {{1, 32, 32, 3}, image}, &error)) << error;

    const CommandResult r = run_command(std::string(LOWBIT_RUN_PATH) + " " + model + " --input " + input +
                                        " --output " + logits_path + " --output " + codes_path + " --threads 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;

    const std::vector<lowbit_test::RefTensor> ref =
        lowbit_test::reference_evaluate(b.graph(), {lowbit_test::RefTensor::floats({1, 32, 32, 3}, image)});
    lowbit::NpyArray logits, codes;
    ASSERT_TRUE(lowbit::read_npy(logits_path, &logits, &error)) << error;
    ASSERT_TRUE(lowbit::read_npy(codes_path, &codes, &error)) << error;

    // The last quantized layer's codes are identical (lowbit-run writes them dequantized).
    ASSERT_EQ(codes.shape, (std::vector<int64_t>{1, 4, 4, 64}));
    ASSERT_TRUE(ref[1].is_codes);
    int distinct[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < codes.values.size(); ++i) {
      const double code = codes.values[i] / static_cast<double>(kA2.scale);
      ASSERT_EQ(std::lround(code), static_cast<long>(ref[1].values[i])) << "conv6 element " << i;
      ++distinct[static_cast<int>(ref[1].values[i])];
    }
    // The random model must exercise the code range, or the comparison proves little.
    for (int c = 0; c < 4; ++c) EXPECT_GT(distinct[c], 0) << "code " << c << " never produced";

    // The float classifier agrees to float32 rounding.
    ASSERT_EQ(logits.shape, (std::vector<int64_t>{1, 10}));
    for (size_t i = 0; i < logits.values.size(); ++i)
      EXPECT_NEAR(logits.values[i], ref[0].values[i], 1e-4 * (1.0 + std::fabs(ref[0].values[i]))) << "logit " << i;
  }
}

TEST(LowbitRun, TakesAnImageResizedToTheModelInput) {
  ModelBuilder b;
  const Id x = b.input("image", {1, 8, 8, 3});
  b.output(b.global_avg_pool("mean", x));
  const std::string model = temp_path("mean.lbm"), png = temp_path("gray.png"), out = temp_path("mean.npy");
  ASSERT_TRUE(b.write_file(model).ok);
  std::vector<unsigned char> pixels(20 * 12 * 3, 51);  // 51/255 = 0.2 everywhere, any resize keeps it
  ASSERT_NE(stbi_write_png(png.c_str(), 20, 12, 3, pixels.data(), 20 * 3), 0);
  const CommandResult r = run_command(std::string(LOWBIT_RUN_PATH) + " " + model + " --input " + png + " --output " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  lowbit::NpyArray mean;
  std::string error;
  ASSERT_TRUE(lowbit::read_npy(out, &mean, &error)) << error;
  for (float v : mean.values) EXPECT_NEAR(v, 0.2f, 1e-5f);

  // A file that only looks like a PNG fails with a message naming it.
  const std::string garbage = temp_path("garbage.png");
  ASSERT_TRUE(lowbit::write_file_atomic(garbage, reinterpret_cast<const uint8_t*>("\x89PNG not really"), 16).ok);
  const CommandResult bad = run_command(std::string(LOWBIT_RUN_PATH) + " " + model + " --input " + garbage);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("garbage.png: cannot decode image"), std::string::npos) << bad.output;
}

TEST(LowbitRun, ProfilesAndRepeats) {
  ModelBuilder b;
  const Id x = b.input("x", {1, 4});
  b.output(b.softmax("p", b.relu("r", x)));
  const std::string model = temp_path("small.lbm"), input = temp_path("x.npy");
  ASSERT_TRUE(b.write_file(model).ok);
  std::string error;
  ASSERT_TRUE(lowbit::write_npy(input, {{1, 4}, {1, -2, 3, 0}}, &error));
  const CommandResult r =
      run_command(std::string(LOWBIT_RUN_PATH) + " " + model + " --input " + input + " --repeat 5 --profile");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ran 5 time(s)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Relu"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Softmax"), std::string::npos) << r.output;
}

TEST(LowbitRun, BadInputsFailWithAMessageNamingTheFile) {
  ModelBuilder b;
  const Id x = b.input("x", {1, 4});
  b.output(b.relu("r", x));
  const std::string model = temp_path("relu.lbm"), wrong = temp_path("wrong.npy"), corrupt = temp_path("corrupt.lbm");

  ASSERT_TRUE(b.write_file(model).ok);
  std::string error;
  ASSERT_TRUE(lowbit::write_npy(wrong, {{1, 5}, {0, 0, 0, 0, 0}}, &error));
  {
    std::vector<uint8_t> bytes;
    ASSERT_TRUE(b.serialize(&bytes).ok);
    bytes.resize(bytes.size() - 7);
    ASSERT_TRUE(lowbit::write_file_atomic(corrupt, bytes.data(), bytes.size()).ok);
  }
  const std::string run = LOWBIT_RUN_PATH;
  const struct {
    std::string args, expect;
  } cases[] = {
      {temp_path("missing.lbm") + " --input " + wrong, "missing.lbm"},
      {corrupt + " --input " + wrong, "truncated"},
      {model + " --input " + wrong, "wrong.npy"},
      {model, "1 input(s), 0 given"},
      {model + " --input " + temp_path("nothing.npy"), "nothing.npy: cannot open"},
      {model + " --input " + model, "bad magic"},
      {model + " --input " + temp_path("nothing.png"), "nothing.png"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    const CommandResult r = run_command(run + " " + c.args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << r.output;
  }
}

}  // namespace
