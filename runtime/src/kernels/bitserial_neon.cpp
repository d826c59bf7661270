// NEON kernels (AArch64 and ARMv7): VCNT per byte, widened by pairwise adds into 64-bit lanes.
#include <arm_neon.h>

#include "kernels/bitserial_simd.h"
#include "kernels/optimized.h"

namespace lowbit {
namespace {

struct Neon {
  using Vec = uint32x4_t;
  using Acc = uint64x2_t;
  static constexpr size_t kWords = 4;
  static Vec load(const uint32_t* p) { return vld1q_u32(p); }
  static Vec load_partial(const uint32_t* p, size_t n) {
    uint32_t buf[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; ++i) buf[i] = p[i];
    return vld1q_u32(buf);
  }
  static Vec and_(Vec a, Vec b) { return vandq_u32(a, b); }
  static Acc zero() { return vdupq_n_u64(0); }
  static Acc add_popcount(Acc acc, Vec x) {
    return vpadalq_u32(acc, vpaddlq_u16(vpaddlq_u8(vcntq_u8(vreinterpretq_u8_u32(x)))));
  }
  static int64_t total(Acc acc) {
    return static_cast<int64_t>(vgetq_lane_u64(acc, 0) + vgetq_lane_u64(acc, 1));
  }
  static int64_t combine(const Acc* acc, const int64_t* coef, int n) { return simd::combine_by_reducing<Neon>(acc, coef, n); }
};

bool supported() { return true; }  // NEON is part of every target this file is built for

}  // namespace

const KernelTable kNeonKernels{"neon", supported, simd::gemm<Neon>, threshold_pack_reference};

}  // namespace lowbit
