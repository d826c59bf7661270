// NEON kernels (AArch64 and ARMv7): 4 output channels per vector. Bit-serial VCNT per byte,
// accumulated in bytes and widened to 32-bit lanes by pairwise adds every 31 steps (31 * 8 < 256);
// float multiply + add (separate instructions, never VFMA/VMLA, so results match the reference).
#include <arm_neon.h>

#include "kernels/bitserial_simd.h"
#include "kernels/float_simd.h"
#include "kernels/quantize_simd.h"
#include "kernels/kernel_table.h"

namespace lowbit {
namespace {

struct Neon {
  using Vec = uint32x4_t;
  static constexpr size_t kLanes = 4;
  static constexpr int kWeightHalves = 1;
  static Vec load(const uint32_t* p) { return vld1q_u32(p); }
  static Vec broadcast(const uint32_t* p) { return vld1q_dup_u32(p); }
  static Vec and_(Vec a, Vec b) { return vandq_u32(a, b); }
  using Count = uint8x16_t;
  using Sum = uint32x4_t;  // int32 results, computed modulo 2^32
  static constexpr size_t kCountSteps = 31;
  // Byte counters and their int32 sums both stay in registers, beside the weights and a broadcast.
  static constexpr int kAccumulators = kNeonWeights.accumulators;
  static Count zero_count() { return vdupq_n_u8(0); }
  static Count add_popcount(Count c, Vec x) { return vaddq_u8(c, vcntq_u8(vreinterpretq_u8_u32(x))); }
  static Sum zero_sum() { return vdupq_n_u32(0); }
  static Sum widen_scaled(Sum s, Count c, int32_t scale) {
    return vmlaq_n_u32(s, vpaddlq_u16(vpaddlq_u8(c)), static_cast<uint32_t>(scale));
  }
  static void store(int32_t* dst, Sum x, int32_t add, size_t n) {
    const int32x4_t v = vreinterpretq_s32_u32(vaddq_u32(x, vdupq_n_u32(static_cast<uint32_t>(add))));
    if (n == kLanes) {
      vst1q_s32(dst, v);
      return;
    }
    int32_t lanes[kLanes];
    vst1q_s32(lanes, v);
    for (size_t i = 0; i < n; ++i) dst[i] = lanes[i];
  }
  static constexpr bool kBitSlicedCodes = false;  // no mask registers: code patterns per lane
  static Sum code_pattern(const ThresholdArgs& t, Sum x, int32_t add, size_t first, size_t n) {
    return simd::code_pattern_lanes<Neon>(t, x, add, first, n);
  }
  static Sum load_sum(const int32_t* p, size_t n) {
    if (n >= kLanes) return vreinterpretq_u32_s32(vld1q_s32(p));
    int32_t lanes[kLanes] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; ++i) lanes[i] = p[i];
    return vreinterpretq_u32_s32(vld1q_s32(lanes));
  }
  static Sum set1_sum(int32_t v) { return vdupq_n_u32(static_cast<uint32_t>(v)); }
  static Sum add_sum(Sum a, Sum b) { return vaddq_u32(a, b); }
  static Sum apply_sign(Sum sign, Sum x) { return vmulq_u32(sign, x); }
  static Sum and_sum(Sum a, Sum b) { return vandq_u32(a, b); }
  static Sum add_gt(Sum acc, Sum a, Sum b) {
    return vaddq_u32(acc, vcgtq_s32(vreinterpretq_s32_u32(a), vreinterpretq_s32_u32(b)));
  }
  static uint32_t lane_bits(Sum x, int p) {
    static const int32_t kLanePositions[4] = {0, 1, 2, 3};
    const uint32x4_t bit = vshlq_u32(vandq_u32(vshlq_u32(x, vdupq_n_s32(-p)), vdupq_n_u32(1)), vld1q_s32(kLanePositions));
#if defined(__aarch64__)
    return vaddvq_u32(bit);
#else
    const uint32x2_t pairs = vpadd_u32(vget_low_u32(bit), vget_high_u32(bit));
    return vget_lane_u32(vpadd_u32(pairs, pairs), 0);
#endif
  }
  template <int NB>
  static void plane_masks(const Sum (&x)[NB], int bits, uint64_t* masks) {
    simd::plane_masks_by_lanes<Neon, NB>(x, bits, masks);
  }
};

struct NeonFloat {
  using Vec = float32x4_t;
  static constexpr size_t kLanes = 4;
#if defined(__aarch64__)
  static constexpr int kAccumulators = 24;  // of 32 registers
#else
  static constexpr int kAccumulators = 8;  // of 16 registers
#endif
  static Vec load(const float* p) { return vld1q_f32(p); }
  static Vec load_partial(const float* p, size_t n) {
    float lanes[kLanes] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t i = 0; i < n && i < kLanes; ++i) lanes[i] = p[i];
    return vld1q_f32(lanes);
  }
  static Vec broadcast(const float* p) { return vld1q_dup_f32(p); }
  static Vec zero() { return vdupq_n_f32(0.0f); }
  static Vec set1(float v) { return vdupq_n_f32(v); }
  static Vec add(Vec a, Vec b) { return vaddq_f32(a, b); }
  static Vec mul(Vec a, Vec b) { return vmulq_f32(a, b); }
  static Vec positive_or(Vec y, Vec other) { return vbslq_f32(vcgtq_f32(y, zero()), y, other); }
  static void store(float* p, Vec v, size_t n) {
    if (n >= kLanes) {
      vst1q_f32(p, v);
      return;
    }
    float lanes[kLanes];
    vst1q_f32(lanes, v);
    for (size_t i = 0; i < n; ++i) p[i] = lanes[i];
  }
#if defined(__aarch64__)
  // quantize_pack (quantize_simd.h); AArch64 only: ARMv7 NEON has no vector division or rounding
  // and flushes denormals to zero, so its table keeps the scalar twin.
  static Vec div(Vec a, Vec b) { return vdivq_f32(a, b); }
  static Vec sub(Vec a, Vec b) { return vsubq_f32(a, b); }
  static Vec min(Vec a, Vec b) { return vminq_f32(a, b); }
  static Vec max(Vec a, Vec b) { return vmaxq_f32(a, b); }
  static Vec floor(Vec a) { return vrndmq_f32(a); }
  static Vec round_half_even(Vec a) { return vrndnq_f32(a); }
  static Vec ge01(Vec a, Vec b) { return vreinterpretq_f32_u32(vandq_u32(vcgeq_f32(a, b), vreinterpretq_u32_f32(set1(1.0f)))); }
  static Vec nan_to_zero(Vec a) { return vreinterpretq_f32_u32(vandq_u32(vceqq_f32(a, a), vreinterpretq_u32_f32(a))); }
  using Codes = int32x4_t;
  static Codes to_codes(Vec a) { return vcvtq_s32_f32(a); }
  static uint32_t plane_bits(Codes c, int p) { return Neon::lane_bits(vreinterpretq_u32_s32(c), p); }
#endif
};

bool supported() { return true; }  // NEON is part of every target this file is built for

}  // namespace

static_assert(Neon::kLanes == kNeonWeights.lanes && Neon::kWeightHalves == kNeonWeights.halves && NeonFloat::kLanes == kNeonFloatLanes,
              "kernel_table.h lists these lanes");
const KernelTable kNeonKernels{"neon", supported, kNeonWeights, simd::gemm<Neon>, NeonFloat::kLanes, simd::float_gemm<NeonFloat>,
#if defined(__aarch64__)
                                simd::quantize_pack<NeonFloat>,
#else
                                quantize_pack_reference,
#endif
                                pixel_code_sums<Neon>};

}  // namespace lowbit
