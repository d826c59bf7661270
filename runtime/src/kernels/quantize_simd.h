// Quantize + pack shared by the SIMD kernel tables: kLanes channels at a time, the code computed in
// float lanes exactly as quantize_value does it, then one mask per bit plane. Each ISA's
// translation unit supplies its float policy `F` (float_simd.h) with, in addition:
//
//   static Vec load(const float* p);  static Vec load_partial(const float* p, size_t n);   rest 0
//   static Vec div(Vec a, Vec b);  sub(Vec a, Vec b);  min(Vec a, Vec b);  max(Vec a, Vec b)
//   static Vec floor(Vec a);  static Vec round_half_even(Vec a);
//   static Vec ge01(Vec a, Vec b);                  1.0f where a >= b, else 0.0f
//   static Vec nan_to_zero(Vec a);
//   using Codes;  static Codes to_codes(Vec integral);   int32 lanes
//   static uint32_t plane_bits(Codes c, int p);    bit i = bit p of lane i (two's complement)
#pragma once

#include <algorithm>

#include "kernels/quantize_pack.h"

namespace lowbit {
namespace simd {

template <class F>
void quantize_pack(const QuantizeArgs& a, const float* x, size_t pixels, size_t channels, uint32_t* out) {
  using Vec = typename F::Vec;
  constexpr size_t L = F::kLanes;
  static_assert(kWordBits % L == 0, "a word holds whole vectors of channels");
  const bool binary = a.q.kind == QuantKind::kBinary, half_even = a.rounding == Rounding::kHalfEven;
  const Vec scale = F::set1(a.scale), half = F::set1(0.5f), zero = F::zero();
  const Vec lo = F::set1(static_cast<float>(a.q.min_code())), hi = F::set1(static_cast<float>(a.q.max_code()));
  const size_t words = words_for(channels);
  const int bits = a.q.bits;
  for (size_t m = 0; m < pixels; ++m, x += channels, out += words * static_cast<size_t>(bits))
    for (size_t w = 0; w < words; ++w) {
      uint32_t plane[kMaxBits] = {};
      const size_t first = w * static_cast<size_t>(kWordBits), count = std::min<size_t>(kWordBits, channels - first);
      for (size_t j = 0; j < count; j += L) {
        const size_t n = std::min(L, count - j);
        const Vec v = F::nan_to_zero(n == L ? F::load(x + first + j) : F::load_partial(x + first + j, n));
        Vec code;  // for binary: the stored bit (code +1 -> 1), else the code, an integral float
        if (binary) {
          code = F::ge01(v, zero);
        } else {
          const Vec t = F::min(F::max(F::div(v, scale), lo), hi);
          if (half_even) {
            code = F::round_half_even(t);
          } else {
            const Vec fl = F::floor(t);
            code = F::add(fl, F::ge01(F::sub(t, fl), half));
          }
        }
        const typename F::Codes c = F::to_codes(code);
        for (int p = 0; p < bits; ++p) plane[p] |= F::plane_bits(c, p) << j;
      }
      const uint32_t valid = count == kWordBits ? ~0u : (1u << count) - 1u;  // zero-filled lanes past the end
      for (int p = 0; p < bits; ++p) out[static_cast<size_t>(p) * words + w] = plane[p] & valid;
    }
}

}  // namespace simd
}  // namespace lowbit
