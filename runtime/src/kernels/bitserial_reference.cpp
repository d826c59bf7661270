#include "kernels/bitserial.h"

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

namespace {

int32_t popcount_and(const uint32_t* a, const uint32_t* b, size_t n) {
  int32_t c = 0;
  for (size_t i = 0; i < n; ++i) c += __builtin_popcount(a[i] & b[i]);
  return c;
}

int32_t popcount(const uint32_t* a, size_t n) {
  int32_t c = 0;
  for (size_t i = 0; i < n; ++i) c += __builtin_popcount(a[i]);
  return c;
}

void bitserial_gemm_reference(const BitserialShape& s, const uint32_t* patches, size_t pixels, const uint32_t* weights,
                              size_t outputs, int32_t* acc) {
  for (size_t m = 0; m < pixels; ++m) {
    const uint32_t* patch = patches + m * s.a_bits * s.words;
    int32_t plane_popcount[kMaxBits];
    for (int p = 0; p < s.a_bits; ++p) plane_popcount[p] = popcount(patch + p * s.words, s.words);
    for (size_t o = 0; o < outputs; ++o) {
      const uint32_t* w = weights + o * s.w_bits * s.words;
      int32_t sum = 0;
      for (int p = 0; p < s.a_bits; ++p) {
        int32_t plane = s.w_offset * plane_popcount[p];
        for (int j = 0; j < s.w_bits; ++j)
          plane += s.w_weight[j] * popcount_and(w + j * s.words, patch + p * s.words, s.words);
        sum += s.a_weight[p] * plane;
      }
      acc[m * outputs + o] = sum;
    }
  }
}

bool always() { return true; }

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

const KernelTable& reference_kernels() {
  static const KernelTable table{"reference", always, bitserial_gemm_reference, threshold_pack_reference};
  return table;
}

}  // namespace lowbit
