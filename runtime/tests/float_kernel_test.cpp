// The float GEMM microkernel: every table bit-identical to the reference twin (same order of
// float32 multiply + add, no fusion), and the reference within rounding of a double-precision sum,
// over random taps, channel counts, pixel blocks, output counts, padding taps, bias and activations.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"

namespace {

struct FloatCase {
  size_t taps, channels, pixels, outputs;
  std::vector<std::vector<float>> taps_of_pixels;  // [t * pixels + m] -> channels floats
  std::vector<bool> padding;                       // per tap: rows point at zeros
  std::vector<float> weights, bias;                // [outputs][taps * channels], [outputs]
  lowbit::Activation activation;
  bool has_bias;
};

FloatCase make_case(std::mt19937& g) {
  FloatCase c;
  c.taps = std::uniform_int_distribution<size_t>(1, 12)(g);
  c.channels = std::uniform_int_distribution<size_t>(1, 40)(g);
  c.pixels = std::uniform_int_distribution<size_t>(1, lowbit::kMaxGemmPixels)(g);
  c.outputs = std::uniform_int_distribution<size_t>(1, 70)(g);
  c.activation = static_cast<lowbit::Activation>(g() % 3);
  c.has_bias = g() % 4 != 0;
  std::normal_distribution<float> value(0.0f, 1.0f);
  c.padding.resize(c.taps);
  for (size_t t = 0; t < c.taps; ++t) c.padding[t] = c.taps > 1 && g() % 5 == 0;
  c.taps_of_pixels.resize(c.taps * c.pixels);
  for (auto& row : c.taps_of_pixels) {
    row.resize(c.channels);
    for (float& v : row) v = value(g);
  }
  c.weights.resize(c.outputs * c.taps * c.channels);
  for (float& w : c.weights) w = value(g);
  c.bias.resize(c.outputs);
  for (float& b : c.bias) b = value(g);
  return c;
}

std::vector<float> run(const lowbit::KernelTable& table, const FloatCase& c, size_t out_stride) {
  const size_t k = c.taps * c.channels;
  std::vector<float> packed(lowbit::packed_float_weight_count(c.outputs, k, table.float_lanes));
  lowbit::pack_float_weights(c.weights.data(), c.outputs, k, table.float_lanes, packed.data());
  const std::vector<float> zeros(c.channels, 0.0f);
  std::vector<const float*> rows(c.taps * c.pixels);
  for (size_t t = 0; t < c.taps; ++t)
    for (size_t m = 0; m < c.pixels; ++m)
      rows[t * c.pixels + m] = c.padding[t] ? zeros.data() : c.taps_of_pixels[t * c.pixels + m].data();
  std::vector<float> out(c.pixels * out_stride, 12345.0f);  // untouched lanes must keep this
  const lowbit::FloatEpilogue e{c.has_bias ? c.bias.data() : nullptr, c.activation, 0.125f};
  table.float_gemm(lowbit::FloatRows{rows.data(), c.taps, c.channels}, c.pixels, packed.data(), c.outputs, e,
                   out.data(), out_stride);
  return out;
}

TEST(FloatKernel, ReferenceMatchesDoubleSum) {
  std::mt19937 g(11);
  for (int it = 0; it < 200; ++it) {
    const FloatCase c = make_case(g);
    const std::vector<float> got = run(lowbit::reference_kernels(), c, c.outputs);
    for (size_t m = 0; m < c.pixels; ++m)
      for (size_t o = 0; o < c.outputs; ++o) {
        double sum = c.has_bias ? c.bias[o] : 0.0, magnitude = std::fabs(sum);
        for (size_t t = 0; t < c.taps; ++t)
          for (size_t ch = 0; ch < c.channels && !c.padding[t]; ++ch) {
            const double p = static_cast<double>(c.taps_of_pixels[t * c.pixels + m][ch]) * c.weights[(o * c.taps + t) * c.channels + ch];
            sum += p;
            magnitude += std::fabs(p);
          }
        if (c.activation == lowbit::Activation::kRelu) sum = sum > 0 ? sum : 0;
        if (c.activation == lowbit::Activation::kLeakyRelu) sum = sum > 0 ? sum : 0.125 * sum;
        ASSERT_NEAR(got[m * c.outputs + o], sum, 1e-5 * (magnitude + 1)) << "pixel " << m << " output " << o;
      }
  }
}

TEST(FloatKernel, EveryTableIsBitIdenticalToReference) {
  std::mt19937 g(12);
  for (const lowbit::KernelTable* table : lowbit::available_kernels())
    for (int it = 0; it < 300; ++it) {
      const FloatCase c = make_case(g);
      const size_t out_stride = c.outputs + g() % 3;  // the gemm writes a slice of a wider pixel
      const std::vector<float> want = run(lowbit::reference_kernels(), c, out_stride);
      const std::vector<float> got = run(*table, c, out_stride);
      SCOPED_TRACE(std::string(table->isa) + ": " + std::to_string(c.pixels) + " pixels x " + std::to_string(c.outputs) +
                   " outputs, " + std::to_string(c.taps) + " taps x " + std::to_string(c.channels) + " channels");
      ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));
    }
}

}  // namespace
