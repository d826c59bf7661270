// Float -> code, the one definition used by the Quantize op and the API's input quantization.
// docs/quantization.md: clamp x/scale (float32 division) to the code range, then round exactly.
#pragma once

#include "lowbit/packing.h"

namespace lowbit {

inline int32_t quantize_value(float x, float scale, QuantType q, Rounding rounding) {
  if (x != x) x = 0.0f;  // NaN quantizes like zero
  if (q.kind == QuantKind::kBinary) return x >= 0.0f ? 1 : -1;
  float t = x / scale;
  const float lo = static_cast<float>(q.min_code()), hi = static_cast<float>(q.max_code());
  t = t < lo ? lo : (t > hi ? hi : t);
  // floor by integer conversion (t is within the small code range): no libm call on the hot path.
  int32_t fl = static_cast<int32_t>(t);
  if (static_cast<float>(fl) > t) --fl;
  const float frac = t - static_cast<float>(fl);  // exact: t and floor(t) are within 1 of each other
  if (frac < 0.5f) return fl;
  if (frac > 0.5f) return fl + 1;
  return fl + (rounding == Rounding::kHalfEven && fl % 2 == 0 ? 0 : 1);
}

}  // namespace lowbit
