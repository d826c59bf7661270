#include <algorithm>

#include "kernels/kernel_table.h"
#include "quantize.h"

namespace lowbit {

BitserialShape BitserialShape::make(size_t words, QuantType activations, QuantType weights) {
  BitserialShape s;
  s.words = words;
  s.a_bits = activations.bits;
  for (int p = 0; p < s.a_bits; ++p) s.a_weight[p] = activations.plane_weight(p);
  s.w_bits = weights.bits;
  for (int j = 0; j < s.w_bits; ++j) s.w_weight[j] = weights.plane_weight(j);
  s.w_offset = weights.plane_offset();
  return s;
}

size_t packed_weight_words(const WeightLayout& layout, const BitserialShape& s, size_t outputs) {
  const size_t per_channel = s.words * static_cast<size_t>(s.w_bits);  // 32-bit weight words
  if (nibble_layout(layout, s))  // a byte per nibble: 8 bytes = 2 words per weight word
    return (outputs + kNibbleChannels - 1) / kNibbleChannels * kNibbleChannels * per_channel * 2;
  return (outputs + layout.lanes - 1) / layout.lanes * layout.lanes * per_channel * layout.halves;
}

void pack_weights(const WeightLayout& layout, const BitserialShape& s, const uint32_t* kernel_planes, size_t outputs,
                  uint32_t* packed) {
  const size_t planes = static_cast<size_t>(s.w_bits);
  auto weight_word = [&](size_t o, size_t j, size_t k) {
    return o < outputs ? kernel_planes[(o * planes + j) * s.words + k] : 0u;
  };
  if (nibble_layout(layout, s)) {
    const size_t vectors = (outputs + kNibbleChannels - 1) / kNibbleChannels;
    const size_t group = static_cast<size_t>(nibble_table_vectors(s.w_bits));
    uint8_t* bytes = reinterpret_cast<uint8_t*>(packed);
    for (size_t g = 0; g < vectors; g += group)
      for (size_t k = 0; k < s.words; ++k)
        for (size_t v = g; v < std::min(vectors, g + group); ++v)
          for (size_t j = 0; j < planes; ++j)
            for (int e = 0; e < 8; ++e)
              for (size_t c = 0; c < kNibbleChannels; ++c)
                *bytes++ = static_cast<uint8_t>((weight_word(v * kNibbleChannels + c, j, k) >> (4 * kNibbleOrder[e])) & 0xFu);
    return;
  }
  const size_t lanes = layout.lanes;
  const size_t blocks = (outputs + lanes - 1) / lanes;
  const size_t group = static_cast<size_t>(choose_blocking(s.a_bits, s.w_bits, layout.accumulators).blocks);
  for (size_t g = 0; g < blocks; g += group)
    for (size_t k = 0; k < s.words; ++k)
      for (size_t b = g; b < std::min(blocks, g + group); ++b)
        for (size_t j = 0; j < planes; ++j)
          for (size_t h = 0; h < layout.halves; ++h)
            for (size_t lane = 0; lane < lanes; ++lane) {
              const uint32_t word = weight_word(b * lanes + lane, j, k);
              *packed++ = layout.halves == 1 ? word : (word >> (4 * h)) & 0x0F0F0F0Fu;
            }
}

size_t packed_float_weight_count(size_t outputs, size_t k, size_t lanes) {
  return (outputs + lanes - 1) / lanes * lanes * k;
}

void pack_float_weights(const float* weights, size_t outputs, size_t k, size_t lanes, float* packed) {
  const size_t blocks = (outputs + lanes - 1) / lanes;
  for (size_t b = 0; b < blocks; ++b)
    for (size_t i = 0; i < k; ++i)
      for (size_t lane = 0; lane < lanes; ++lane) {
        const size_t o = b * lanes + lane;
        *packed++ = o < outputs ? weights[o * k + i] : 0.0f;
      }
}

namespace {

// The plain twin: for each pixel and output, walk the taps through the indirection and sum
// plane-pair popcounts with their weights, exactly as docs/quantization.md §4 writes it.
void bitserial_gemm_reference(const BitserialShape& s, const PatchRows& a, size_t pixels, const uint32_t* packed_weights,
                              size_t outputs, const GemmOutput& out) {
  // Lanes of 1 in groups of 1 block: packed weights are [output][k word][weight plane].
  for (size_t m = 0; m < pixels; ++m)
    for (size_t o = 0; o < outputs; ++o) {
      const uint32_t* w = packed_weights + o * s.words * static_cast<size_t>(s.w_bits);
      int64_t sum = 0;
      for (size_t t = 0; t < a.taps; ++t) {
        const uint32_t* row = a.rows[t * pixels + m];
        for (size_t i = 0; i < a.tap_words; ++i) {
          const size_t k = t * a.tap_words + i;
          for (int p = 0; p < s.a_bits; ++p) {
            const uint32_t x = row[static_cast<size_t>(p) * a.plane_stride + i];
            int64_t plane = static_cast<int64_t>(s.w_offset) * __builtin_popcount(x);
            for (int j = 0; j < s.w_bits; ++j)
              plane += static_cast<int64_t>(s.w_weight[j]) * __builtin_popcount(x & w[k * static_cast<size_t>(s.w_bits) + static_cast<size_t>(j)]);
            sum += s.a_weight[p] * plane;
          }
        }
      }
      const int32_t value = static_cast<int32_t>(sum);
      if (out.thresholds)
        threshold_pack_reference(*out.thresholds, &value, out.first + o, 1, out.codes + m * out.pixel_words, out.plane_words);
      else
        out.acc[m * outputs + o] = value;
    }
}

// The plain float twin (lanes of 1: packed weights are [output][k]).
void float_gemm_reference(const FloatRows& a, size_t pixels, const float* packed_weights, size_t outputs,
                          const FloatEpilogue& e, float* out, size_t out_stride) {
  const size_t k = a.taps * a.channels;
  for (size_t m = 0; m < pixels; ++m)
    for (size_t o = 0; o < outputs; ++o) {
      float sum = e.bias ? e.bias[o] : 0.0f;
      for (size_t t = 0; t < a.taps; ++t) {
        const float* x = a.rows[t * pixels + m];
        const float* w = packed_weights + o * k + t * a.channels;
        for (size_t c = 0; c < a.channels; ++c) sum += x[c] * w[c];
      }
      if (e.activation == Activation::kRelu) sum = sum > 0.0f ? sum : 0.0f;
      else if (e.activation == Activation::kLeakyRelu) sum = sum > 0.0f ? sum : e.alpha * sum;
      out[m * out_stride + o] = sum;
    }
}

bool always() { return true; }

struct ReferenceUnit {};  // pixel_code_sums' copy for this translation unit

}  // namespace

void threshold_pack_reference(const ThresholdArgs& t, const int32_t* acc, size_t first, size_t count, uint32_t* out,
                              size_t plane_words) {
  const uint32_t mask = (1u << t.bits) - 1u;
  for (size_t i = 0; i < count; ++i) {
    const size_t c = first + i;
    const int32_t x = t.sign[c] * acc[i];
    int32_t level = 0;
    for (int k = 0; k < t.levels; ++k) level += x >= t.thresholds[static_cast<size_t>(k) * t.channels + c];
    const uint32_t pattern = static_cast<uint32_t>(level + t.pattern_offset) & mask;
    for (int p = 0; p < t.bits; ++p) out[p * plane_words + c / kWordBits] |= ((pattern >> p) & 1u) << (c % kWordBits);
  }
}

void quantize_pack_reference(const QuantizeArgs& a, const float* x, size_t pixels, size_t channels, uint32_t* out) {
  const size_t words = words_for(channels);
  for (size_t m = 0; m < pixels; ++m, x += channels, out += words * static_cast<size_t>(a.q.bits))
    for (size_t w = 0; w < words; ++w) {
      uint32_t plane[kMaxBits] = {};  // a word of 32 channels per plane, assembled then stored once
      const size_t first = w * kWordBits, count = std::min<size_t>(kWordBits, channels - first);
      for (size_t i = 0; i < count; ++i) {
        const uint32_t pattern = a.q.code_to_bits(quantize_value(x[first + i], a.scale, a.q, a.rounding));
        for (int p = 0; p < a.q.bits; ++p) plane[p] |= ((pattern >> p) & 1u) << i;
      }
      for (int p = 0; p < a.q.bits; ++p) out[static_cast<size_t>(p) * words + w] = plane[p];
    }
}

const KernelTable& reference_kernels() {
  static const KernelTable table{"reference", always, kReferenceWeights, bitserial_gemm_reference, 1, float_gemm_reference,
                                 quantize_pack_reference, pixel_code_sums<ReferenceUnit>};
  return table;
}

}  // namespace lowbit
