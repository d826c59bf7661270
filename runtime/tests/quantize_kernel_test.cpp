// The quantize + pack microkernel: the reference twin against quantize_value one element at a time,
// and every table bit-identical to the reference, for every activation type, both roundings, channel
// counts across and beyond word and vector widths, and the values where rounding is decided: exact
// ties, just below and above them, the clamp edges, zeros of both signs, denormals, infinities, NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "quant_test_util.h"
#include "quantize.h"

namespace {

using lowbit::QuantKind;
using lowbit::QuantType;
using lowbit_test::every_quant_type;
using lowbit_test::qname;

// Values around every decision point of the code grid of q at `scale`, plus special values.
float tricky_value(std::mt19937& g, QuantType q, float scale) {
  const float k = static_cast<float>(std::uniform_int_distribution<int>(q.min_code() - 2, q.max_code() + 2)(g));
  switch (g() % 10) {
    case 0: return (k + 0.5f) * scale;  // a tie when scale is a power of two
    case 1: return std::nextafter((k + 0.5f) * scale, -INFINITY);
    case 2: return std::nextafter((k + 0.5f) * scale, INFINITY);
    case 3: return k * scale;
    case 4: {
      const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::denorm_min(), -1e-40f, INFINITY, -INFINITY,
                                std::numeric_limits<float>::quiet_NaN(), 3e38f, -3e38f};
      return specials[g() % (sizeof(specials) / sizeof(specials[0]))];
    }
    default: return std::normal_distribution<float>(0.0f, 1.5f * scale * static_cast<float>(q.max_abs_code()))(g);
  }
}

std::vector<uint32_t> run(const lowbit::KernelTable& table, const lowbit::QuantizeArgs& a, const std::vector<float>& x,
                          size_t pixels, size_t channels) {
  // Garbage first: the kernel must write every word, with zero bits past the last channel.
  std::vector<uint32_t> out(pixels * lowbit::words_for(channels) * a.q.bits, 0xA5A5A5A5u);
  table.quantize_pack(a, x.data(), pixels, channels, out.data());
  return out;
}

TEST(QuantizeKernel, ReferenceTwinPacksQuantizeValue) {
  std::mt19937 g(5);
  for (QuantType q : every_quant_type())
    for (lowbit::Rounding rounding : {lowbit::Rounding::kHalfUp, lowbit::Rounding::kHalfEven}) {
      const size_t pixels = 3, channels = 1 + g() % 80;
      const lowbit::QuantizeArgs a{0.25f, q, rounding};
      std::vector<float> x(pixels * channels);
      for (float& v : x) v = tricky_value(g, q, a.scale);
      const std::vector<uint32_t> out = run(lowbit::reference_kernels(), a, x, pixels, channels);
      const lowbit::PixelPlanes planes{channels, q.bits};
      for (size_t m = 0; m < pixels; ++m)
        for (size_t i = 0; i < lowbit::words_for(channels) * lowbit::kWordBits; ++i) {
          const uint32_t* pixel = out.data() + m * planes.words_per_pixel();
          SCOPED_TRACE(qname(q) + " pixel " + std::to_string(m) + " channel " + std::to_string(i));
          if (i < channels)
            ASSERT_EQ(lowbit::quantize_value(x[m * channels + i], a.scale, q, rounding),
                      lowbit::read_code(pixel, planes.words_per_plane(), i, q));
          else
            for (int p = 0; p < q.bits; ++p) ASSERT_EQ(0u, lowbit::get_bit(pixel + p * planes.words_per_plane(), i));
        }
    }
}

TEST(QuantizeKernel, EveryTableIsBitIdenticalToReference) {
  std::mt19937 g(6);
  for (const lowbit::KernelTable* table : lowbit::available_kernels())
    for (QuantType q : every_quant_type())
      for (int it = 0; it < 40; ++it) {
        const size_t pixels = 1 + g() % 4;
        const size_t channels = it < 3 ? 32 * (1 + g() % 3) : 1 + g() % 150;
        // Powers of two make exact ties reachable; the others test the division.
        const float scale = g() % 2 ? std::ldexp(1.0f, static_cast<int>(g() % 9) - 5)
                                    : std::uniform_real_distribution<float>(0.01f, 3.0f)(g);
        const lowbit::Rounding rounding = g() % 2 ? lowbit::Rounding::kHalfUp : lowbit::Rounding::kHalfEven;
        const lowbit::QuantizeArgs a{scale, q, rounding};
        std::vector<float> x(pixels * channels);
        for (float& v : x) v = tricky_value(g, q, scale);
        const std::vector<uint32_t> want = run(lowbit::reference_kernels(), a, x, pixels, channels);
        const std::vector<uint32_t> got = run(*table, a, x, pixels, channels);
        SCOPED_TRACE(std::string(table->isa) + ": " + qname(q) + ", " + std::to_string(pixels) + " x " +
                     std::to_string(channels) + ", scale " + std::to_string(scale) +
                     (rounding == lowbit::Rounding::kHalfEven ? ", half-even" : ", half-up"));
        ASSERT_EQ(want, got);
      }
}

}  // namespace
