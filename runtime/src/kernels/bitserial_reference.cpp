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

const KernelTable& reference_kernels() {
  static const KernelTable table{"reference", always, bitserial_gemm_reference};
  return table;
}

}  // namespace lowbit
