// AVX2 kernels: popcount by nibble lookup (VPSHUFB) summed per 64-bit lane with VPSADBW.
#include <immintrin.h>

#include "kernels/bitserial_simd.h"
#include "kernels/optimized.h"

namespace lowbit {
namespace {

struct Avx2 {
  using Vec = __m256i;
  using Acc = __m256i;  // 4 x 64-bit popcount sums
  static constexpr size_t kWords = 8;
  static Vec load(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static Vec load_partial(const uint32_t* p, size_t n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane);
    return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), mask);
  }
  static Vec and_(Vec a, Vec b) { return _mm256_and_si256(a, b); }
  static Acc zero() { return _mm256_setzero_si256(); }
  static Acc add_popcount(Acc acc, Vec x) {
    const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                           0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m256i bytes = _mm256_add_epi8(_mm256_shuffle_epi8(table, _mm256_and_si256(x, low)),
                                          _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), low)));
    return _mm256_add_epi64(acc, _mm256_sad_epu8(bytes, _mm256_setzero_si256()));
  }
  static int64_t combine(const Acc* acc, const int64_t* coef, int n) {
    __m256i total = _mm256_setzero_si256();
    for (int k = 0; k < n; ++k) total = _mm256_add_epi64(total, _mm256_mul_epi32(acc[k], _mm256_set1_epi64x(coef[k])));
    const __m128i half = _mm_add_epi64(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
    return _mm_cvtsi128_si64(half) + _mm_extract_epi64(half, 1);
  }
};

bool supported() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt"); }

}  // namespace

const KernelTable kAvx2Kernels{"avx2", supported, simd::gemm<Avx2>, threshold_pack_reference};

}  // namespace lowbit
