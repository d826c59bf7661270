// QONNX quantizer semantics on single numbers: the one definition the interpreter, constant folding
// and threshold derivation all use, so the converted model reproduces the interpreter's codes.
//
// docs/quantization.md §2: t = x / scale is one float32 division of float32 operands (NaN counts as
// 0); then clamp, then round exactly in the node's mode. Rounding modes follow the QONNX table:
// ROUND = HALF_EVEN; HALF_UP and HALF_DOWN break ties away from / towards zero; UP and DOWN round
// away from / towards zero.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/format.h"
#include "lowbit/packing.h"

namespace lowbit::converter {

enum class RoundingMode { kHalfEven, kHalfUp, kHalfDown, kCeil, kFloor, kUp, kDown };

// Parses a QONNX rounding_mode (any letter case); nullopt for an unknown name.
std::optional<RoundingMode> parse_rounding_mode(const std::string& name);
const char* rounding_mode_name(RoundingMode mode);
// Rounds an exactly known t to an integer.
double round_with(RoundingMode mode, double t);

struct IntRange {
  int64_t lo, hi;
};
// QONNX min_int/max_int for `bits` (1..32) with the signed/narrow flags.
IntRange quant_int_range(int64_t bits, bool is_signed, bool narrow);

// The contract's float32 step: float(x) / float(scale) in float32, NaN as 0.
float scaled_f32(double x, double scale);

// QONNX Quant of one element, returning the integer level q (value = (q - zero_point) * scale).
double quant_level(double x, double scale, double zero_point, IntRange range, RoundingMode mode);
// BipolarQuant of one element: +1 for x >= 0 (and NaN), else -1 (value = code * scale).
int32_t bipolar_code(double x);
// MultiThreshold of one element: how many of the row's thresholds x reaches (x >= t).
int64_t threshold_level(double x, const double* thresholds, int64_t count);

// QONNX Trunc (version 1 with 5 inputs, version 2 with 7): the integer level before the output
// zero point is removed; value = (level - out_zero_point) * out_scale.
struct TruncParams {
  double scale, zero_point, out_scale, out_zero_point;
  double trunc_scale;              // 2^(input bits - output bits)
  std::optional<IntRange> clamp;   // version 2 clamps to the output range
  RoundingMode mode;
};
double trunc_level(double x, const TruncParams& p);

// How MultiThreshold's output `level * out_scale + out_bias` is written as codes: value = code *
// scale with code = level * step + offset, all integers. nullopt when no such split exists.
struct LevelCodes {
  double scale;
  int64_t step, offset;
};
std::optional<LevelCodes> level_codes(double out_scale, double out_bias);

// The runtime code type whose range is exactly [lo, hi], and the narrowest one containing it.
std::optional<QuantType> exact_code_type(int64_t lo, int64_t hi);
std::optional<QuantType> covering_code_type(int64_t lo, int64_t hi);
std::string code_type_name(QuantType q);  // "u2", "s3", "sn2", "bin1"

}  // namespace lowbit::converter
