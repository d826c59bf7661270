// AVX2 peak sequence: popcount by nibble lookup (VPSHUFB, VPADDB) into byte counters that are
// widened with VPSADBW before they can overflow.
#include <immintrin.h>

#include "popcount_peak_kernel.h"

namespace bench {
namespace {
// The runtime's sequence (kernels/avx2.cpp) on weights stored as nibble halves: two VPAND, two VPSHUFB,
// two VPADDB per pair (and one shift per activation vector); the weights' zero high nibbles mask the
// bits the shift brings in. Before 2026-12-03 this masked both nibbles itself: 8 instructions a pair.
struct Avx2 {
  using Vec = __m256i;
  using Acc = __m256i;   // 32 byte counters
  using Wide = __m256i;  // 4 x uint64
  // A step adds at most 8 to a byte counter: 31 steps stay below 256.
  static constexpr size_t kChunk = 31;
  static constexpr int kWeightHalves = 2;
  static Vec load(const Vec* p) { return _mm256_load_si256(p); }
  static Vec and_(Vec a, Vec b) { return _mm256_and_si256(a, b); }
  static void split(Vec w, Vec* halves) {
    const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
    halves[0] = _mm256_and_si256(w, low_nibbles);
    halves[1] = _mm256_and_si256(_mm256_srli_epi16(w, 4), low_nibbles);
  }
  static Vec high_nibbles(Vec a) { return _mm256_srli_epi16(a, 4); }
  static Acc zero() { return _mm256_setzero_si256(); }
  static Acc add_popcount_halves(Acc acc, Vec lo, Vec hi) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    return _mm256_add_epi8(acc, _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi)));
  }
  static Wide zero_wide() { return _mm256_setzero_si256(); }
  static Wide widen(Wide wide, Acc acc) { return _mm256_add_epi64(wide, _mm256_sad_epu8(acc, _mm256_setzero_si256())); }
  static uint64_t reduce(Wide wide) {
    return static_cast<uint64_t>(_mm256_extract_epi64(wide, 0)) + static_cast<uint64_t>(_mm256_extract_epi64(wide, 1)) +
           static_cast<uint64_t>(_mm256_extract_epi64(wide, 2)) + static_cast<uint64_t>(_mm256_extract_epi64(wide, 3));
  }
};
}  // namespace

extern const PeakIsa kPeakAvx2{"avx2-lut-halves", sizeof(__m256i), run_peak_variant<Avx2>};

}  // namespace bench
