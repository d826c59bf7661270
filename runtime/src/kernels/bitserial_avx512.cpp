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

bool supported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
}

}  // namespace

const KernelTable kAvx512Kernels{"avx512", supported, simd::gemm<Avx512>};

}  // namespace lowbit
