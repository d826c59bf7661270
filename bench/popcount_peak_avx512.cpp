// AVX-512 peak sequence: VPANDQ + VPOPCNTQ + VPADDQ on 512-bit vectors (AVX512_VPOPCNTDQ).
#include <immintrin.h>

#include "popcount_peak_kernel.h"

namespace bench {
namespace {
struct Avx512 {
  using Vec = __m512i;
  using Acc = __m512i;  // 8 x uint64
  using Wide = __m512i;
  static constexpr size_t kChunk = ~size_t{0};
  static Vec load(const Vec* p) { return _mm512_load_si512(p); }
  static Vec and_(Vec a, Vec b) { return _mm512_and_si512(a, b); }
  static Acc zero() { return _mm512_setzero_si512(); }
  static Acc add_popcount(Acc acc, Vec x) { return _mm512_add_epi64(acc, _mm512_popcnt_epi64(x)); }
  static Wide zero_wide() { return _mm512_setzero_si512(); }
  static Wide widen(Wide wide, Acc acc) { return _mm512_add_epi64(wide, acc); }
  static uint64_t reduce(Wide wide) {
    alignas(64) uint64_t lanes[8];
    _mm512_store_si512(lanes, wide);
    uint64_t sum = 0;
    for (uint64_t v : lanes) sum += v;
    return sum;
  }
};
}  // namespace

extern const PeakIsa kPeakAvx512{"avx512-vpopcntdq", sizeof(__m512i), run_peak_variant<Avx512>};

}  // namespace bench
