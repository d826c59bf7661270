// AVX-512 kernels: 16 output channels per vector, AND + VPOPCNTD (AVX512_VPOPCNTDQ), masked stores.
#include <immintrin.h>

#include "kernels/bitserial_simd.h"
#include "kernels/optimized.h"

namespace lowbit {
namespace {

struct Avx512 {
  using Vec = __m512i;  // 16 output channels' words
  static constexpr size_t kLanes = 16;
  static Vec load(const uint32_t* p) { return _mm512_loadu_si512(p); }
  static Vec broadcast(const uint32_t* p) { return _mm512_set1_epi32(static_cast<int>(*p)); }
  static Vec and_(Vec a, Vec b) { return _mm512_and_si512(a, b); }
  // VPOPCNTD counts straight into int32 lanes: nothing to widen.
  using Count = __m512i;
  using Sum = __m512i;
  static constexpr size_t kCountSteps = 0;
  static constexpr int kAccumulators = 20;  // of 32 registers; the rest hold weights and a broadcast
  static Count zero_count() { return _mm512_setzero_si512(); }
  static Count add_popcount(Count c, Vec x) { return _mm512_add_epi32(c, _mm512_popcnt_epi32(x)); }
  static Sum zero_sum() { return _mm512_setzero_si512(); }
  static Sum widen(Sum s, Count c) { return _mm512_add_epi32(s, c); }
  static Sum scale_add(Sum acc, Sum x, int32_t c) { return _mm512_add_epi32(acc, _mm512_mullo_epi32(x, _mm512_set1_epi32(c))); }
  static void store(int32_t* dst, Sum x, int32_t add, size_t n) {
    _mm512_mask_storeu_epi32(dst, static_cast<__mmask16>((1u << n) - 1u), _mm512_add_epi32(x, _mm512_set1_epi32(add)));
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

const KernelTable kAvx512Kernels{"avx512", supported, Avx512::kLanes, simd::gemm<Avx512>, threshold_pack_avx512};

}  // namespace lowbit
