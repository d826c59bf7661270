// AVX2 kernels: 8 output channels per vector. Bit-serial popcount per byte by nibble lookup
// (VPSHUFB) on weights packed as nibble halves, accumulated in bytes and widened to int32 lanes
// every 31 steps (31 * 8 < 256);
// float multiply + add (no FMA: results must equal the reference bit for bit).
#include <immintrin.h>

#include "kernels/bitserial_simd.h"
#include "kernels/float_simd.h"
#include "kernels/quantize_simd.h"
#include "kernels/kernel_table.h"

namespace lowbit {
namespace {

struct Avx2 {
  using Vec = __m256i;
  static constexpr size_t kLanes = 8;
  static Vec load(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static Vec broadcast(const uint32_t* p) { return _mm256_set1_epi32(static_cast<int>(*p)); }
  static Vec and_(Vec a, Vec b) { return _mm256_and_si256(a, b); }
  using Count = __m256i;  // 32 byte counters
  using Sum = __m256i;    // 8 x int32
  static constexpr size_t kCountSteps = 31;
  // Of 16 registers, with the weights, a broadcast and its high nibbles: GCC spills two or three
  // counters, and still 8 beat 6 by ~10 % on layers b-e (W1A2, 2026-12-03).
  static constexpr int kAccumulators = kAvx2Accumulators;
  static Count zero_count() { return _mm256_setzero_si256(); }
  // Weights are packed as nibble halves, so both lookups index the table directly: 6 vector
  // instructions per 256 bit pairs instead of 8 (AND, shift, two masks, two VPSHUFB, two adds).
  static constexpr int kWeightHalves = 2;
  static Vec high_nibbles(Vec x) { return _mm256_srli_epi16(x, 4); }
  static Count add_popcount_halves(Count c, Vec lo, Vec hi) {
    const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                           0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    return _mm256_add_epi8(c, _mm256_add_epi8(_mm256_shuffle_epi8(table, lo), _mm256_shuffle_epi8(table, hi)));
  }
  static Sum zero_sum() { return _mm256_setzero_si256(); }
  // The second widening step multiplies anyway (i16 pairs -> i32), so the scale comes free.
  static Sum widen_scaled(Sum s, Count c, int32_t scale) {
    const __m256i pairs = _mm256_maddubs_epi16(c, _mm256_set1_epi8(1));  // u8 + u8 -> i16 (< 512)
    return _mm256_add_epi32(s, _mm256_madd_epi16(pairs, _mm256_set1_epi16(static_cast<int16_t>(scale))));
  }
  static void store(int32_t* dst, Sum x, int32_t add, size_t n) {
    _mm256_maskstore_epi32(dst, lanes(n), _mm256_add_epi32(x, _mm256_set1_epi32(add)));
  }
  static Sum code_pattern(const ThresholdArgs& t, Sum x, int32_t add, size_t first, size_t n) {
    return simd::code_pattern_lanes<Avx2>(t, x, add, first, n);
  }
  static __m256i lanes(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // Full blocks (all but a layer's last) skip the mask: VPMASKMOVD loads are slow on AMD.
  static Sum load_sum(const int32_t* p, size_t n) {
    return n == kLanes ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskload_epi32(p, lanes(n));
  }
  static Sum set1_sum(int32_t v) { return _mm256_set1_epi32(v); }
  static Sum add_sum(Sum a, Sum b) { return _mm256_add_epi32(a, b); }
  static Sum mul_sum(Sum a, Sum b) { return _mm256_mullo_epi32(a, b); }
  static Sum and_sum(Sum a, Sum b) { return _mm256_and_si256(a, b); }
  static Sum add_gt(Sum acc, Sum a, Sum b) { return _mm256_add_epi32(acc, _mm256_cmpgt_epi32(a, b)); }
  static uint32_t lane_bits(Sum x, int p) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_sll_epi32(x, _mm_cvtsi32_si128(31 - p)))));
  }
};

struct Avx2Float {
  using Vec = __m256;
  static constexpr size_t kLanes = 8;
  static constexpr int kAccumulators = 8;  // of 16 registers; + weights and a broadcast
  static __m256i mask(size_t n) { return Avx2::lanes(n); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load_partial(const float* p, size_t n) { return _mm256_maskload_ps(p, mask(n)); }
  static Vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec set1(float v) { return _mm256_set1_ps(v); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec positive_or(Vec y, Vec other) { return _mm256_blendv_ps(other, y, _mm256_cmp_ps(y, zero(), _CMP_GT_OQ)); }
  static void store(float* p, Vec v, size_t n) { _mm256_maskstore_ps(p, mask(n), v); }
  // quantize_pack (quantize_simd.h)
  static Vec div(Vec a, Vec b) { return _mm256_div_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec min(Vec a, Vec b) { return _mm256_min_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static Vec floor(Vec a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static Vec round_half_even(Vec a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static Vec ge01(Vec a, Vec b) { return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_GE_OQ), set1(1.0f)); }
  static Vec nan_to_zero(Vec a) { return _mm256_and_ps(a, _mm256_cmp_ps(a, a, _CMP_ORD_Q)); }
  using Codes = __m256i;
  static Codes to_codes(Vec a) { return _mm256_cvttps_epi32(a); }
  static uint32_t plane_bits(Codes c, int p) { return Avx2::lane_bits(c, p); }
};

bool supported() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt"); }

}  // namespace

static_assert(Avx2::kLanes == kAvx2WeightLanes && Avx2::kWeightHalves == kAvx2WeightHalves && Avx2Float::kLanes == kAvx2FloatLanes, "kernel_table.h lists these lanes");
const KernelTable kAvx2Kernels{"avx2", supported, Avx2::kLanes, Avx2::kWeightHalves, Avx2::kAccumulators, simd::gemm<Avx2>, Avx2Float::kLanes, simd::float_gemm<Avx2Float>,
                               simd::quantize_pack<Avx2Float>};

}  // namespace lowbit
