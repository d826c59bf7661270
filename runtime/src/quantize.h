// Float -> code, the one definition used by the Quantize op and the API's input quantization.
// docs/quantization.md: clamp x/scale (float32 division) to the code range, then round exactly.
#pragma once

#include <cmath>

#include "lowbit/packing.h"

namespace lowbit {

inline int32_t quantize_value(float x, float scale, QuantType q, Rounding rounding) {
  if (x != x) x = 0.0f;  // NaN quantizes like zero
  if (q.kind == QuantKind::kBinary) return x >= 0.0f ? 1 : -1;
  float t = x / scale;
  const float lo = static_cast<float>(q.min_code()), hi = static_cast<float>(q.max_code());
  t = t < lo ? lo : (t > hi ? hi : t);
  const float fl = std::floor(t);
  const float frac = t - fl;  // exact: t and floor(t) are within 1 of each other
  if (frac < 0.5f) return static_cast<int32_t>(fl);
  if (frac > 0.5f) return static_cast<int32_t>(fl) + 1;
  const bool even = std::fmod(fl, 2.0f) == 0.0f;
  return static_cast<int32_t>(fl) + (rounding == Rounding::kHalfEven && even ? 0 : 1);
}

}  // namespace lowbit
