// Quantizer forward and backward against hand-computed values (docs/quantization.md).
#include <gtest/gtest.h>
#include <torch/types.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "quantizers.h"

namespace lowbit::trainer {
namespace {

torch::Tensor tensor(const std::vector<float>& values) { return torch::tensor(values, torch::kFloat32); }

std::vector<float> values_of(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().contiguous().to(torch::kFloat32).flatten();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

ActivationConfig activation(int bits, double max) {
  ActivationConfig a;
  a.kind = ActivationKind::kLinearMidTreadHalf;
  a.bits = bits;
  a.max = max;
  return a;
}

WeightQuantizerConfig weights(WeightQuantizerKind kind, bool per_channel, int bits = 1) {
  WeightQuantizerConfig w;
  w.kind = kind;
  w.per_channel = per_channel;
  w.bits = bits;
  return w;
}

// Forward value and input gradient for the upstream gradient `upstream`.
std::pair<std::vector<float>, std::vector<float>> forward_backward(const torch::Tensor& input,
                                                                   const torch::Tensor& upstream,
                                                                   const std::function<torch::Tensor(torch::Tensor)>& f) {
  torch::Tensor x = input.clone().requires_grad_(true);
  const torch::Tensor y = f(x);
  y.backward(upstream);
  return {values_of(y), values_of(x.grad())};
}

TEST(ActivationQuantizer, TwoBitsMaxTwoMatchesBlueoil) {
  const ActivationConfig a = activation(2, 2.0);
  const float scale = 2.0f / 3.0f;  // float32(M / (2^k - 1))
  EXPECT_EQ(activation_scale(a), scale);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Blueoil: code = floor(clip(x, 0, 2) / 2 * 3 + 0.5); NaN counts as 0.
  const std::vector<float> x = {-0.5f, 0.0f, 0.3f, 0.34f, 0.9f, 1.2f, 1.7f, 1.9f, 2.5f, nan};
  const std::vector<float> codes = {0, 0, 0, 1, 1, 2, 3, 3, 3, 0};
  EXPECT_EQ(values_of(activation_codes(tensor(x), a)), codes);
  std::vector<float> expected;
  for (float c : codes) expected.push_back(c * scale);
  EXPECT_EQ(values_of(apply_activation(tensor(x), a)), expected);
}

TEST(ActivationQuantizer, TiesRoundHalfUpExactly) {
  // M = 1.5, k = 2: scale 0.5 exactly, so x / scale = i + 0.5 exactly at x = 0.25, 0.75, 1.25.
  const ActivationConfig a = activation(2, 1.5);
  ASSERT_EQ(activation_scale(a), 0.5f);
  const float below_quarter = std::nextafter(0.25f, 0.0f);  // x / scale = 0.49999997: not a tie
  EXPECT_EQ(values_of(activation_codes(tensor({0.25f, 0.75f, 1.25f, below_quarter}), a)),
            (std::vector<float>{1, 2, 3, 0}));
  // k = 1, M = 1: scale 1, the one threshold at 0.5.
  EXPECT_EQ(values_of(activation_codes(tensor({0.5f, std::nextafter(0.5f, 0.0f), 0.75f}), activation(1, 1.0))),
            (std::vector<float>{1, 0, 1}));
  // k = 4, M = 2: codes 0..15, clipped at the top.
  EXPECT_EQ(values_of(activation_codes(tensor({0.5f, 2.0f, 7.0f}), activation(4, 2.0))),
            (std::vector<float>{4, 15, 15}));
}

TEST(ActivationQuantizer, BackwardIsClippedStraightThrough) {
  const ActivationConfig a = activation(2, 2.0);
  const auto [y, dx] = forward_backward(tensor({-1.0f, 0.0f, 0.5f, 1.99f, 2.0f, 3.0f}),
                                        tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}),
                                        [&](torch::Tensor x) { return apply_activation(x, a); });
  EXPECT_EQ(dx, (std::vector<float>{0, 0, 3, 4, 0, 0}));  // dx = dy where 0 < x < M
}

// The activation quantizer's fused training kernel and the general rule (uniform_codes, also
// used for export) agree on random values, values near every tie, and NaN / infinities.
TEST(ActivationQuantizer, FusedKernelAgreesWithTheGeneralRule) {
  torch::manual_seed(3);
  for (int bits = 1; bits <= 4; ++bits) {
    for (double max : {0.5, 1.0, 2.0, 3.7}) {
      const ActivationConfig a = activation(bits, max);
      const float scale = activation_scale(a);
      std::vector<float> special = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                                    -std::numeric_limits<float>::infinity(), -0.0f};
      for (int i = 0; i < (1 << bits); ++i) {
        const float tie = (static_cast<float>(i) + 0.5f) * scale;
        special.insert(special.end(), {tie, std::nextafter(tie, 0.0f), std::nextafter(tie, 100.0f)});
      }
      const torch::Tensor x = torch::cat({torch::randn({100000}) * static_cast<float>(max), tensor(special)});
      SCOPED_TRACE("bits " + std::to_string(bits) + " max " + std::to_string(max));
      EXPECT_TRUE(apply_activation(x, a).equal(activation_codes(x, a) * scale));
    }
  }
}

TEST(UniformCodes, RoundingModesOnNegativeTies) {
  const torch::Tensor x = tensor({-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f, -9.0f, 9.0f});
  const torch::Tensor one = torch::ones({});
  EXPECT_EQ(values_of(uniform_codes(x, one, -3, 3, Rounding::kHalfUp)),
            (std::vector<float>{-2, -1, 0, 1, 2, 3, -3, 3}));
  EXPECT_EQ(values_of(uniform_codes(x, one, -3, 3, Rounding::kHalfEven)),
            (std::vector<float>{-2, -2, 0, 0, 2, 2, -3, 3}));
}

TEST(UniformCodes, PerRowScales) {
  const torch::Tensor x = tensor({1.0f, 2.0f, 1.0f, 2.0f}).reshape({2, 2});
  EXPECT_EQ(values_of(uniform_codes(x, tensor({1.0f, 0.25f}), 0, 15, Rounding::kHalfUp)),
            (std::vector<float>{1, 2, 4, 8}));
}

TEST(BinaryWeights, PerTensorMeanScaling) {
  // mean |w| = (0.5 + 1 + 0 + 0.5) / 4 = 0.5; sign(0) = +1.
  const torch::Tensor w = tensor({0.5f, -1.0f, 0.0f, -0.5f}).reshape({2, 2, 1, 1});
  const QuantizedWeight q = weight_codes(w, weights(WeightQuantizerKind::kBinaryMeanScaling, false));
  EXPECT_EQ(values_of(q.codes), (std::vector<float>{1, -1, 1, -1}));
  EXPECT_EQ(q.scale.dim(), 0);
  EXPECT_EQ(values_of(q.scale), (std::vector<float>{0.5f}));
  const auto [y, dw] = forward_backward(w, tensor({1, 2, 3, 4}).reshape({2, 2, 1, 1}), [](torch::Tensor x) {
    return quantize_weight(x, weights(WeightQuantizerKind::kBinaryMeanScaling, false));
  });
  EXPECT_EQ(y, (std::vector<float>{0.5f, -0.5f, 0.5f, -0.5f}));
  EXPECT_EQ(dw, (std::vector<float>{1, 2, 3, 4}));  // identity
}

TEST(BinaryWeights, PerChannelMeanScaling) {
  // Channel 0: mean(0.5, 1) = 0.75; channel 1: mean(0, 0.5) = 0.25.
  const torch::Tensor w = tensor({0.5f, -1.0f, 0.0f, -0.5f}).reshape({2, 2, 1, 1});
  const QuantizedWeight q = weight_codes(w, weights(WeightQuantizerKind::kBinaryMeanScaling, true));
  EXPECT_EQ(q.scale.sizes(), (std::vector<int64_t>{2, 1, 1, 1}));
  EXPECT_EQ(values_of(q.scale), (std::vector<float>{0.75f, 0.25f}));
  EXPECT_EQ(values_of(quantize_weight(w, weights(WeightQuantizerKind::kBinaryMeanScaling, true))),
            (std::vector<float>{0.75f, -0.75f, 0.25f, -0.25f}));
}

TEST(TernaryWeights, TwnThresholdAndScale) {
  // mean |w| = 2.0 / 5 = 0.4, delta = 0.28: 1.0, 0.3 and -0.6 survive; alpha = mean(1, 0.3, 0.6).
  const torch::Tensor w = tensor({1.0f, -0.1f, 0.3f, -0.6f, 0.0f}).reshape({1, 5, 1, 1});
  const QuantizedWeight q = weight_codes(w, weights(WeightQuantizerKind::kTernary, false));
  EXPECT_EQ(values_of(q.codes), (std::vector<float>{1, 0, 1, -1, 0}));
  EXPECT_NEAR(values_of(q.scale)[0], (1.0f + 0.3f + 0.6f) / 3.0f, 1e-6f);
  const auto [y, dw] = forward_backward(w, torch::ones({1, 5, 1, 1}), [](torch::Tensor x) {
    return quantize_weight(x, weights(WeightQuantizerKind::kTernary, true));
  });
  EXPECT_EQ(dw, (std::vector<float>{1, 1, 1, 1, 1}));
  EXPECT_FLOAT_EQ(y[0], -y[3]);
  EXPECT_EQ(y[1], 0.0f);
}

TEST(SignedNarrowWeights, ScaleFromMaxAndHalfEvenTies) {
  // 3 bits narrow: codes -3..3, scale = max|w| / 3 = 1 exactly, ties to even.
  const torch::Tensor w = tensor({3.0f, -1.0f, 1.5f, 0.5f, -2.5f, 2.5f}).reshape({1, 6, 1, 1});
  const QuantizedWeight q = weight_codes(w, weights(WeightQuantizerKind::kSignedNarrow, false, 3));
  EXPECT_EQ(values_of(q.scale), (std::vector<float>{1.0f}));
  EXPECT_EQ(values_of(q.codes), (std::vector<float>{3, -1, 2, 0, -2, 2}));
  // Per channel: channel 1 has max 0.75 (scale 0.25); an all-zero channel keeps codes 0.
  const torch::Tensor rows = tensor({3.0f, 1.5f, 0.75f, -0.25f, 0.0f, 0.0f}).reshape({3, 2, 1, 1});
  const QuantizedWeight pc = weight_codes(rows, weights(WeightQuantizerKind::kSignedNarrow, true, 3));
  EXPECT_EQ(values_of(pc.codes), (std::vector<float>{3, 2, 3, -1, 0, 0}));
}

TEST(FloatWeights, PassThrough) {
  const torch::Tensor w = tensor({0.3f, -0.2f});
  EXPECT_TRUE(quantize_weight(w, weights(WeightQuantizerKind::kNone, false)).equal(w));
}

}  // namespace
}  // namespace lowbit::trainer
