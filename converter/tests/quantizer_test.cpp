// The quantizer rules on single numbers and threshold derivation, against values written out by hand
// and against brute force.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "converter/ir.h"
#include "converter/quantizer.h"
#include "converter/thresholds.h"

namespace lowbit::converter {
namespace {

// The rounding table of the QONNX IntQuant specification.
TEST(Rounding, MatchesTheQonnxTable) {
  const double inputs[] = {5.5, 2.5, 1.6, 1.1, 1.0, -1.0, -1.1, -1.6, -2.5, -5.5};
  struct Row {
    const char* mode;
    double expected[10];
  };
  const Row rows[] = {
      {"ROUND", {6, 2, 2, 1, 1, -1, -1, -2, -2, -6}},     {"HALF_EVEN", {6, 2, 2, 1, 1, -1, -1, -2, -2, -6}},
      {"CEIL", {6, 3, 2, 2, 1, -1, -1, -1, -2, -5}},      {"FLOOR", {5, 2, 1, 1, 1, -1, -2, -2, -3, -6}},
      {"UP", {6, 3, 2, 2, 1, -1, -2, -2, -3, -6}},        {"DOWN", {5, 2, 1, 1, 1, -1, -1, -1, -2, -5}},
      {"HALF_UP", {6, 3, 2, 1, 1, -1, -1, -2, -3, -6}},   {"half_down", {5, 2, 2, 1, 1, -1, -1, -2, -2, -5}},
  };
  for (const Row& row : rows) {
    const std::optional<RoundingMode> mode = parse_rounding_mode(row.mode);
    ASSERT_TRUE(mode) << row.mode;
    for (size_t i = 0; i < 10; ++i) EXPECT_EQ(round_with(*mode, inputs[i]), row.expected[i]) << row.mode << " " << inputs[i];
  }
  EXPECT_FALSE(parse_rounding_mode("STOCHASTIC"));
}

TEST(QuantRule, RangesFollowQonnx) {
  EXPECT_EQ(quant_int_range(8, true, true).lo, -127);
  EXPECT_EQ(quant_int_range(8, true, false).lo, -128);
  EXPECT_EQ(quant_int_range(8, false, false).hi, 255);
  EXPECT_EQ(quant_int_range(8, false, true).hi, 254);
  EXPECT_EQ(quant_int_range(2, true, true).hi, 1);
}

TEST(QuantRule, DividesInFloat32ThenClampsThenRounds) {
  const float scale = 2.0f / 3.0f;
  // 1 / float(2/3) is 1.49999996 in real numbers but exactly 1.5 as a float32 quotient: half up → 2.
  EXPECT_EQ(quant_level(1.0, scale, 0, {0, 3}, RoundingMode::kHalfUp), 2);
  EXPECT_EQ(quant_level(1.0, scale, 0, {0, 3}, RoundingMode::kHalfEven), 2);
  EXPECT_EQ(quant_level(100.0, scale, 0, {0, 3}, RoundingMode::kHalfUp), 3);
  EXPECT_EQ(quant_level(-0.1, scale, 0, {0, 3}, RoundingMode::kHalfUp), 0);
  EXPECT_EQ(quant_level(std::nan(""), scale, 0, {0, 3}, RoundingMode::kHalfUp), 0);  // NaN counts as 0
  // A zero point shifts the clamp range: unsigned 2-bit with zero point 2 holds -2..1 after removing it.
  EXPECT_EQ(quant_level(-1.0, 0.25, 2, {0, 3}, RoundingMode::kHalfEven) - 2, -2);
  EXPECT_EQ(bipolar_code(0.0), 1);
  EXPECT_EQ(bipolar_code(-1e-30), -1);
}

TEST(QuantRule, MultiThresholdOutputsBecomeCodes) {
  const std::optional<LevelCodes> bipolar = level_codes(2.0, -1.0);
  ASSERT_TRUE(bipolar);
  EXPECT_EQ(bipolar->scale, 1.0);
  EXPECT_EQ(bipolar->step, 2);
  EXPECT_EQ(bipolar->offset, -1);
  const std::optional<LevelCodes> shifted = level_codes(0.5, -1.0);
  ASSERT_TRUE(shifted);
  EXPECT_EQ(shifted->offset, -2);
  EXPECT_FALSE(level_codes(0.3, 0.1));
}

TEST(QuantRule, CodeTypesByRange) {
  EXPECT_EQ(code_type_name(*exact_code_type(0, 3)), "u2");
  EXPECT_EQ(code_type_name(*exact_code_type(-2, 1)), "s2");
  EXPECT_EQ(code_type_name(*exact_code_type(-7, 7)), "sn4");
  EXPECT_FALSE(exact_code_type(0, 255));
  EXPECT_EQ(code_type_name(*covering_code_type(-3, 2)), "sn3");
  EXPECT_EQ(code_type_name(*covering_code_type(0, 5)), "u3");
}

// Every accumulator value of a random monotone chain reads back the same code from the table.
TEST(Thresholds, ReproduceTheCodeFunctionForEveryAccumulator) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> u(-1, 1);
  const int64_t bound = 300;
  for (QuantType out : {*exact_code_type(0, 3), *exact_code_type(-4, 3), *exact_code_type(-1, 1), *exact_code_type(0, 15)}) {
    const int64_t channels = 40;
    std::vector<double> slope(channels), offset(channels);
    for (int64_t c = 0; c < channels; ++c) {
      slope[c] = c % 7 == 0 ? 0.0 : u(rng) * 0.05;  // some constant, some decreasing channels
      offset[c] = u(rng) * 4;
    }
    slope[1] = 1e-9;  // positive but never crosses a boundary within the bound
    const IntRange range{out.min_code(), out.max_code()};
    auto code = [&](int64_t c, int64_t acc) {
      return static_cast<int64_t>(quant_level(slope[c] * acc + offset[c], 0.5, 0, range, RoundingMode::kHalfUp));
    };
    const std::vector<int32_t> table = derive_thresholds(channels, bound, out, code);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t acc = -bound; acc <= bound; ++acc)
        ASSERT_EQ(threshold_table_code(table, c, out, acc), code(c, acc)) << code_type_name(out) << " channel " << c << " acc " << acc;
    EXPECT_EQ(table[0], kThresholdConstant);
  }
}

TEST(Thresholds, RejectCodesOutsideTheType) {
  const QuantType u2 = *exact_code_type(0, 3);
  EXPECT_THROW(derive_thresholds(1, 10, u2, [](int64_t, int64_t acc) { return acc; }), ConvertError);
}

}  // namespace
}  // namespace lowbit::converter
