// AVX-512 kernels: 16 output channels per vector; bit-serial AND + VPOPCNTD (AVX512_VPOPCNTDQ),
// float multiply + add; masked loads and stores for the last channels.
#include <immintrin.h>

#include "kernels/bitserial_simd.h"
#include "kernels/float_simd.h"
#include "kernels/quantize_simd.h"
#include "kernels/kernel_table.h"

namespace lowbit {
namespace {

struct Avx512 {
  using Vec = __m512i;  // 16 output channels' words
  static constexpr size_t kLanes = 16;
  static constexpr int kWeightHalves = 1;
  static Vec load(const uint32_t* p) { return _mm512_loadu_si512(p); }
  static Vec broadcast(const uint32_t* p) { return _mm512_set1_epi32(static_cast<int>(*p)); }
  static Vec and_(Vec a, Vec b) { return _mm512_and_si512(a, b); }
  // VPOPCNTD counts straight into int32 lanes: nothing to widen.
  using Count = __m512i;
  using Sum = __m512i;
  static constexpr size_t kCountSteps = 0;
  static constexpr int kAccumulators = kAvx512Weights.accumulators;  // of 32 registers; the rest hold weights and a broadcast
  static Count zero_count() { return _mm512_setzero_si512(); }
  static Count add_popcount(Count c, Vec x) { return _mm512_add_epi32(c, _mm512_popcnt_epi32(x)); }
  static Sum zero_sum() { return _mm512_setzero_si512(); }
  static Sum widen_scaled(Sum s, Count c, int32_t scale) { return _mm512_add_epi32(s, _mm512_mullo_epi32(c, _mm512_set1_epi32(scale))); }
  static void store(int32_t* dst, Sum x, int32_t add, size_t n) {
    _mm512_mask_storeu_epi32(dst, lanes(n), _mm512_add_epi32(x, _mm512_set1_epi32(add)));
  }
  // Codes bit-sliced from compare masks (emit_codes_bit_sliced): a threshold row's 16 compares
  // land in a mask register, one move from the 16 bits the count needs.
  static constexpr bool kBitSlicedCodes = true;
  static Sum signed_sum(const int32_t* sign, Sum acc, int32_t add, size_t n) {
    const __m512i x = _mm512_add_epi32(acc, _mm512_set1_epi32(add));
    const __mmask16 negative = _mm512_cmplt_epi32_mask(_mm512_maskz_loadu_epi32(lanes(n), sign), _mm512_setzero_si512());
    return _mm512_mask_sub_epi32(x, negative, _mm512_setzero_si512(), x);  // sign is +1 or -1
  }
  static uint32_t ge_bits(Sum x, const int32_t* row, size_t n) {
    const __mmask16 valid = lanes(n);
    return _mm512_mask_cmpge_epi32_mask(valid, x, _mm512_maskz_loadu_epi32(valid, row));
  }
  static __mmask16 lanes(size_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u); }
};

struct Avx512Float {
  using Vec = __m512;
  static constexpr size_t kLanes = 16;
  static constexpr int kAccumulators = 24;
  static __mmask16 lanes(size_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_partial(const float* p, size_t n) { return _mm512_maskz_loadu_ps(lanes(n), p); }
  static Vec broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec set1(float v) { return _mm512_set1_ps(v); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec positive_or(Vec y, Vec other) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, zero(), _CMP_GT_OQ), other, y); }
  static void store(float* p, Vec v, size_t n) { _mm512_mask_storeu_ps(p, lanes(n), v); }
  // quantize_pack (quantize_simd.h)
  static Vec div(Vec a, Vec b) { return _mm512_div_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  static Vec floor(Vec a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static Vec round_half_even(Vec a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static Vec ge01(Vec a, Vec b) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, b, _CMP_GE_OQ), set1(1.0f)); }
  static Vec nan_to_zero(Vec a) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, a, _CMP_ORD_Q), a); }
  using Codes = __m512i;
  static Codes to_codes(Vec a) { return _mm512_cvttps_epi32(a); }
  static uint32_t plane_bits(Codes c, int p) { return _mm512_test_epi32_mask(c, _mm512_set1_epi32(1 << p)); }
};

bool supported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
}

}  // namespace

static_assert(Avx512::kLanes == kAvx512Weights.lanes && Avx512::kWeightHalves == kAvx512Weights.halves &&
                  Avx512Float::kLanes == kAvx512FloatLanes,
              "kernel_table.h lists these lanes");
const KernelTable kAvx512Kernels{"avx512", supported, kAvx512Weights, simd::gemm<Avx512>, Avx512Float::kLanes,
                                 simd::float_gemm<Avx512Float>, simd::quantize_pack<Avx512Float>, pixel_code_sums<Avx512>};

}  // namespace lowbit
