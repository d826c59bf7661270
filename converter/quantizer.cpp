#include "converter/quantizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace lowbit::converter {

namespace {
struct ModeName {
  const char* name;
  RoundingMode mode;
};
constexpr ModeName kModeNames[] = {
    {"ROUND", RoundingMode::kHalfEven}, {"HALF_EVEN", RoundingMode::kHalfEven}, {"HALF_UP", RoundingMode::kHalfUp},
    {"HALF_DOWN", RoundingMode::kHalfDown}, {"CEIL", RoundingMode::kCeil},     {"FLOOR", RoundingMode::kFloor},
    {"UP", RoundingMode::kUp},                {"DOWN", RoundingMode::kDown},
};
}  // namespace

std::optional<RoundingMode> parse_rounding_mode(const std::string& name) {
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  for (const ModeName& m : kModeNames)
    if (upper == m.name) return m.mode;
  return std::nullopt;
}

const char* rounding_mode_name(RoundingMode mode) {
  for (const ModeName& m : kModeNames)
    if (m.mode == mode && std::string(m.name) != "ROUND") return m.name;
  return "?";
}

double round_with(RoundingMode mode, double t) {
  const double down = std::floor(t);
  const double frac = t - down;  // exact for the float32-sized values quantizers see
  switch (mode) {
    case RoundingMode::kCeil: return std::ceil(t);
    case RoundingMode::kFloor: return down;
    case RoundingMode::kUp: return t >= 0 ? std::ceil(t) : down;
    case RoundingMode::kDown: return std::trunc(t);
    case RoundingMode::kHalfEven:
      if (frac != 0.5) return frac < 0.5 ? down : down + 1;
      return std::fmod(down, 2.0) == 0.0 ? down : down + 1;
    case RoundingMode::kHalfUp:
      if (frac != 0.5) return frac < 0.5 ? down : down + 1;
      return t >= 0 ? down + 1 : down;  // ties away from zero
    case RoundingMode::kHalfDown:
      if (frac != 0.5) return frac < 0.5 ? down : down + 1;
      return t >= 0 ? down : down + 1;  // ties towards zero
  }
  return down;
}

IntRange quant_int_range(int64_t bits, bool is_signed, bool narrow) {
  if (is_signed) {
    const int64_t half = int64_t{1} << (bits - 1);
    return {narrow ? -half + 1 : -half, half - 1};
  }
  const int64_t top = (int64_t{1} << bits) - 1;
  return {0, narrow ? top - 1 : top};
}

float scaled_f32(double x, double scale) {
  const float t = static_cast<float>(x) / static_cast<float>(scale);
  return std::isnan(t) ? 0.0f : t;
}

double quant_level(double x, double scale, double zero_point, IntRange range, RoundingMode mode) {
  double t = static_cast<double>(scaled_f32(x, scale)) + zero_point;
  t = std::min(std::max(t, static_cast<double>(range.lo)), static_cast<double>(range.hi));
  return round_with(mode, t);
}

int32_t bipolar_code(double x) {
  const float f = static_cast<float>(x);
  return std::isnan(f) || f >= 0.0f ? 1 : -1;
}

int64_t threshold_level(double x, const double* thresholds, int64_t count) {
  int64_t level = 0;
  for (int64_t i = 0; i < count; ++i) level += x >= thresholds[i] ? 1 : 0;
  return level;
}

double trunc_level(double x, const TruncParams& p) {
  double y = round_with(RoundingMode::kHalfEven, static_cast<double>(scaled_f32(x, p.scale)) + p.zero_point);
  y /= p.trunc_scale;  // a power of two: exact
  if (p.clamp) y = std::min(std::max(y, static_cast<double>(p.clamp->lo)), static_cast<double>(p.clamp->hi));
  return round_with(p.mode, y);
}

namespace {
bool is_integer(double v) { return std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e9; }
}  // namespace

std::optional<LevelCodes> level_codes(double out_scale, double out_bias) {
  if (!(out_scale != 0.0) || !std::isfinite(out_scale)) return std::nullopt;
  const int64_t sign = out_scale > 0 ? 1 : -1;
  // A scale of |out_scale| (step +-1), or half of it (step +-2, e.g. BIPOLAR: 2*level - 1).
  for (int64_t step = 1; step <= 2; ++step) {
    const double scale = std::fabs(out_scale) / static_cast<double>(step);
    const double offset = out_bias / scale;
    if (is_integer(offset)) return LevelCodes{scale, sign * step, static_cast<int64_t>(offset)};
  }
  return std::nullopt;
}

namespace {
QuantType make_type(int bits, QuantKind kind) {
  QuantType q;
  q.bits = static_cast<uint8_t>(bits);
  q.kind = kind;
  return q;
}

// Every runtime code type, narrowest first.
std::vector<QuantType> all_code_types() {
  std::vector<QuantType> types;
  for (int bits = 1; bits <= kMaxBits; ++bits)
    for (QuantKind kind : {QuantKind::kBinary, QuantKind::kUnsigned, QuantKind::kSignedNarrow, QuantKind::kSigned}) {
      const QuantType q = make_type(bits, kind);
      if (q.valid()) types.push_back(q);
    }
  return types;
}
}  // namespace

std::optional<QuantType> exact_code_type(int64_t lo, int64_t hi) {
  for (QuantType q : all_code_types())
    if (q.kind != QuantKind::kBinary && q.min_code() == lo && q.max_code() == hi) return q;
  return std::nullopt;
}

std::optional<QuantType> covering_code_type(int64_t lo, int64_t hi) {
  for (QuantType q : all_code_types())
    if (q.kind != QuantKind::kBinary && q.min_code() <= lo && q.max_code() >= hi) return q;
  return std::nullopt;
}

std::string code_type_name(QuantType q) {
  static const char* kinds[] = {"u", "s", "sn", "bin"};
  return kinds[static_cast<int>(q.kind)] + std::to_string(q.bits);
}

}  // namespace lowbit::converter
