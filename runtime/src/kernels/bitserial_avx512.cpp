// AVX-512 kernels: 512-bit AND + VPOPCNTQ (AVX512_VPOPCNTDQ), masked loads for the last words.
#include <immintrin.h>

#include "kernels/bitserial_simd.h"
#include "kernels/optimized.h"

namespace lowbit {
namespace {

struct Avx512 {
  using Vec = __m512i;
  using Acc = __m512i;  // 8 x 64-bit popcount sums
  static constexpr size_t kWords = 16;
  static Vec load(const uint32_t* p) { return _mm512_loadu_si512(p); }
  static Vec load_partial(const uint32_t* p, size_t n) {
    return _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << n) - 1u), p);
  }
  static Vec and_(Vec a, Vec b) { return _mm512_and_si512(a, b); }
  static Acc zero() { return _mm512_setzero_si512(); }
  static Acc add_popcount(Acc acc, Vec x) { return _mm512_add_epi64(acc, _mm512_popcnt_epi64(x)); }
  // Weight the plane pairs in vector lanes (counts < 2^31, coefficients small), then reduce once.
  static int64_t combine(const Acc* acc, const int64_t* coef, int n) {
    __m512i total = _mm512_setzero_si512();
    for (int k = 0; k < n; ++k) total = _mm512_add_epi64(total, _mm512_mul_epi32(acc[k], _mm512_set1_epi64(coef[k])));
    return _mm512_reduce_add_epi64(total);
  }
};

// 16 channels per step: compare against every threshold row, then one mask per code bit plane.
void threshold_pack_avx512(const ThresholdArgs& t, const int32_t* acc, size_t first, size_t count, uint32_t* out,
                           size_t plane_words) {
  const __m512i offset = _mm512_set1_epi32(t.pattern_offset);
  const __m512i code_mask = _mm512_set1_epi32((1 << t.bits) - 1);
  const __m512i one = _mm512_set1_epi32(1);
  for (size_t i = 0; i < count; i += 16) {
    const size_t n = count - i < 16 ? count - i : 16;
    const __mmask16 lanes = static_cast<__mmask16>(n == 16 ? 0xFFFFu : (1u << n) - 1u);
    const size_t c = first + i;
    const __m512i x = _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(lanes, t.sign + c), _mm512_maskz_loadu_epi32(lanes, acc + i));
    __m512i level = _mm512_setzero_si512();
    for (int k = 0; k < t.levels; ++k) {
      const __m512i th = _mm512_maskz_loadu_epi32(lanes, t.thresholds + static_cast<size_t>(k) * t.channels + c);
      level = _mm512_mask_add_epi32(level, _mm512_cmpge_epi32_mask(x, th), level, one);
    }
    const __m512i pattern = _mm512_and_si512(_mm512_add_epi32(level, offset), code_mask);
    for (int p = 0; p < t.bits; ++p) {
      const uint64_t bits = static_cast<uint64_t>(_mm512_mask_test_epi32_mask(lanes, pattern, _mm512_set1_epi32(1 << p)))
                            << (c % kWordBits);
      uint32_t* word = out + static_cast<size_t>(p) * plane_words + c / kWordBits;
      word[0] |= static_cast<uint32_t>(bits);
      if (bits >> kWordBits) word[1] |= static_cast<uint32_t>(bits >> kWordBits);
    }
  }
}

bool supported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
}

}  // namespace

const KernelTable kAvx512Kernels{"avx512", supported, simd::gemm<Avx512>, threshold_pack_avx512};

}  // namespace lowbit
