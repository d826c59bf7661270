// AVX2 peak sequences: popcount by nibble lookup (VPSHUFB, VPADDB) into byte counters that are
// widened with VPSADBW before they can overflow, on weights split into nibble halves, and the
// runtime's nibble tables picked by the activations.
#include <immintrin.h>

#include <memory>

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

// The runtime's nibble-table sequence (kernels/avx2.cpp, nibble_group): an activation byte (one
// nibble position of two planes) picks a 32-byte table row, and one VPSHUFB of that row by a
// vector of 32 weight nibbles plus one VPADDB count 32 x 4 x 2 = 256 bit pairs. The rows here
// weigh both planes 1:1 (the runtime's 1:2 costs the same) so that a pass totals plain popcounts.
// Activation row m gives byte 0 of its vector i; weight row n its vector i, cut to nibbles once
// per call outside the passes (the runtime stores them so at load).
struct NibbleTableRows {
  alignas(64) uint8_t row[256][32];  // row a | b << 4, entry i: popcount(a & i) + popcount(b & i)
};
constexpr NibbleTableRows make_nibble_table_rows() {
  NibbleTableRows t{};
  for (int r = 0; r < 256; ++r)
    for (int i = 0; i < 32; ++i)
      t.row[r][i] = static_cast<uint8_t>(__builtin_popcount(r & i & 15) + __builtin_popcount((r >> 4) & i & 15));
  return t;
}
constexpr NibbleTableRows kNibbleTableRows = make_nibble_table_rows();

struct NibbleTables {
  template <int M, int N>
  static uint64_t run(const void* a_bytes, const void* w_bytes, size_t len, size_t passes) {
    const uint8_t* a = static_cast<const uint8_t*>(a_bytes);
    const __m256i* w_in = static_cast<const __m256i*>(w_bytes);
    struct Nibbles {
      __m256i v;
    };
    std::unique_ptr<Nibbles[]> w(new Nibbles[static_cast<size_t>(N) * len]);
    for (size_t k = 0; k < static_cast<size_t>(N) * len; ++k) w[k].v = _mm256_and_si256(_mm256_load_si256(w_in + k), _mm256_set1_epi8(0x0f));
    __m256i wide[M * N];
#pragma GCC unroll 16
    for (int k = 0; k < M * N; ++k) wide[k] = _mm256_setzero_si256();
    constexpr size_t kChunk = 31;  // a lookup adds at most 8 to a byte counter
    for (size_t pass = 0; pass < passes; ++pass) {
      asm volatile("" ::: "memory");  // every pass reloads and recomputes
      for (size_t i0 = 0; i0 < len; i0 += kChunk) {
        const size_t end = len - i0 < kChunk ? len : i0 + kChunk;
        __m256i acc[M * N];
#pragma GCC unroll 16
        for (int k = 0; k < M * N; ++k) acc[k] = _mm256_setzero_si256();
        for (size_t i = i0; i < end; ++i) {
          __m256i wv[N];
#pragma GCC unroll 16
          for (int n = 0; n < N; ++n) wv[n] = _mm256_load_si256(&w[static_cast<size_t>(n) * len + i].v);
#pragma GCC unroll 16
          for (int m = 0; m < M; ++m) {
            const __m256i table = _mm256_load_si256(
                reinterpret_cast<const __m256i*>(kNibbleTableRows.row[a[(static_cast<size_t>(m) * len + i) * 32]]));
#pragma GCC unroll 16
            for (int n = 0; n < N; ++n) acc[m * N + n] = _mm256_add_epi8(acc[m * N + n], _mm256_shuffle_epi8(table, wv[n]));
          }
        }
        widen_all<Avx2>(wide, acc);
      }
    }
    return reduce_all<Avx2>(wide);
  }

  static uint64_t expected(int variant, const void* a_bytes, const void* w_bytes, size_t len) {
    const uint8_t* a = static_cast<const uint8_t*>(a_bytes);
    const uint8_t* w = static_cast<const uint8_t*>(w_bytes);
    const size_t m_rows = static_cast<size_t>(kPeakShapes[variant][0]), n_rows = static_cast<size_t>(kPeakShapes[variant][1]);
    uint64_t total = 0;
    for (size_t m = 0; m < m_rows; ++m)
      for (size_t n = 0; n < n_rows; ++n)
        for (size_t i = 0; i < len; ++i) {
          const unsigned x = a[(m * len + i) * 32];
          for (size_t c = 0; c < 32; ++c) {
            const unsigned nibble = w[(n * len + i) * 32 + c] & 15u;
            total += static_cast<uint64_t>(__builtin_popcount(x & nibble) + __builtin_popcount((x >> 4) & nibble));
          }
        }
    return total;
  }
};

}  // namespace

extern const PeakIsa kPeakAvx2{"avx2-lut-halves", sizeof(__m256i), run_peak_variant<Avx2>};
extern const PeakIsa kPeakAvx2NibbleTables{"avx2-nibble-tables", sizeof(__m256i), run_peak_shape<NibbleTables>,
                                           NibbleTables::expected};

}  // namespace bench
