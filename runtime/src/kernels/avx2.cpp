// AVX2 kernels. Bit-serial layers whose activations have one plane, or two planes weighted 1:2,
// and weights of up to two planes run the nibble-table gemm below; the others the shared
// channel-vectorized gemm (bitserial_simd.h), 8 output channels per vector, counting bytes by
// nibble lookup (VPSHUFB) on weights packed as nibble halves. Float: multiply + add (no FMA:
// results must equal the reference bit for bit).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

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
  static constexpr int kAccumulators = kAvx2Weights.accumulators;
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
  static constexpr bool kBitSlicedCodes = false;  // no mask registers: code patterns per lane
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
  // VPSIGND (one cycle) rather than VPMULLD: the sign is never 0.
  static Sum apply_sign(Sum sign, Sum x) { return _mm256_sign_epi32(x, sign); }
  static Sum and_sum(Sum a, Sum b) { return _mm256_and_si256(a, b); }
  static Sum add_gt(Sum acc, Sum a, Sum b) { return _mm256_add_epi32(acc, _mm256_cmpgt_epi32(a, b)); }
  static uint32_t lane_bits(Sum x, int p) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_sll_epi32(x, _mm_cvtsi32_si128(31 - p)))));
  }
  // Four patterns (32 channels) at a time packed to bytes, whose bit p one VPMOVMSKB gathers: a
  // MOVMSKPS per plane and 8 channels, each shifted into place, cost 10-15 % on small-K layers.
  template <int NB>
  static void plane_masks(const Sum (&x)[NB], int bits, uint64_t* masks) {
    if constexpr (NB % 4 != 0) {
      simd::plane_masks_by_lanes<Avx2, NB>(x, bits, masks);
    } else {
      // packs interleave 128-bit lanes: the bytes come as channels 0-3, 8-11, 16-19, 24-27, 4-7, ...
      const __m256i channel_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
      __m256i bytes[NB / 4];
      LOWBIT_UNROLL
      for (int q = 0; q < NB / 4; ++q)
        bytes[q] = _mm256_permutevar8x32_epi32(
            _mm256_packs_epi16(_mm256_packs_epi32(x[4 * q], x[4 * q + 1]), _mm256_packs_epi32(x[4 * q + 2], x[4 * q + 3])),
            channel_order);
      byte_plane_masks<NB / 4>(bytes, bits, masks);
    }
  }
  // masks[p] bit 32 * q + i = bit p of byte i of bytes[q].
  template <int Q>
  static __attribute__((always_inline)) void byte_plane_masks(const __m256i (&bytes)[Q], int bits, uint64_t* masks) {
    for (int p = 0; p < bits; ++p) {
      // Bit p of every byte to its top bit (16-bit shifts: the bits that cross bytes land below).
      const __m128i shift = _mm_cvtsi32_si128(7 - p);
      masks[p] = 0;
      LOWBIT_UNROLL
      for (int q = 0; q < Q; ++q)
        masks[p] |= uint64_t{static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_sll_epi16(bytes[q], shift)))} << (32 * q);
    }
  }
};

// The nibble-table gemm (layers with nibble_tables_apply, weights in the nibble-table layout of
// pack_weights). Per step (one 32-bit word of the reduction) and pixel, each of the 8 activation
// nibbles (both planes' nibbles at once for 2-bit codes) picks a 16-byte table of weighted
// popcounts "x AND i" for every weight nibble i; one VPSHUFB of that table by a vector of 32
// channels' weight nibbles then yields 32 channels x 4 bits x both planes, and one VPADDB counts
// them: 2 vector instructions per 256 bit pairs, where AND + lookup on the weights takes 6. The
// cost moves to the table loads (one per nibble, shared by the group's channel vectors) and the
// scalar work that picks them.
struct NibbleTables {
  // Row a | b << 4, entry i (twice: both 128-bit lanes look up their own copy):
  // popcount(a & i) + 2 * popcount(b & i). Rows 0-15 (b = 0) serve a single plane.
  alignas(64) uint8_t row[256][32];
};
constexpr NibbleTables make_nibble_tables() {
  NibbleTables t{};
  for (int r = 0; r < 256; ++r)
    for (int i = 0; i < 32; ++i)
      t.row[r][i] = static_cast<uint8_t>(__builtin_popcount(r & i & 15) + 2 * __builtin_popcount((r >> 4) & i & 15));
  return t;
}
constexpr NibbleTables kNibbleTables = make_nibble_tables();

// The activations of one gemm call as table-row byte offsets, in k-word order (the weights'):
// offsets[(k * pixels + m) * 8 + e] = 32 * (table row of nibble kNibbleOrder[e] of both planes of
// pixel m's word k). Computed once per call for all channel groups: the inner loop then takes a
// table with one 16-bit load and one table load, where extracting the row from the activation
// words there took ~5 scalar instructions per table and made the loop dispatch-bound.
struct TapTables {
  uint16_t* offsets;
  int32_t* counts;  // [tap][pixel] weighted activation counts (count0 + 2 * count1)
  int32_t* most;    // [tap] the largest weighted count of one word
};

// How many of this call's first taps are the previous call's last ones (a.carry; the call is one
// block of `count` pixels): their rows match pointer for pointer. Moves their tables into place.
size_t carried_taps(const PatchRows& a, size_t count, const TapTables& tables) {
  const GemmCarry* c = a.carry;
  if (!c || c->count != count || c->taps != a.taps || c->tap_words != a.tap_words || c->plane_stride != a.plane_stride)
    return 0;
  const auto same_rows = [&](size_t t, size_t old_t) {
    return std::equal(a.rows + t * count, a.rows + (t + 1) * count, c->rows + old_t * count);
  };
  for (size_t shift = 1; shift < a.taps; ++shift) {
    size_t t = 0;
    while (t + shift < a.taps && same_rows(t, t + shift)) ++t;
    if (t + shift < a.taps) continue;
    const size_t kept = a.taps - shift, tap_step = a.tap_words * count * 8;
    std::memmove(tables.offsets, tables.offsets + shift * tap_step, kept * tap_step * sizeof(uint16_t));
    std::memmove(tables.counts, tables.counts + shift * count, kept * count * sizeof(int32_t));
    std::memmove(tables.most, tables.most + shift, kept * sizeof(int32_t));
    return kept;
  }
  return 0;
}

// Fills `tables` for pixels m0 .. m0 + count - 1 (the taps a.carry holds from the previous call
// are moved, not recomputed), sums each pixel's counts and returns the largest count of one word
// (what one step can add to a byte counter).
template <int AB>
int32_t table_offsets(const PatchRows& a, size_t pixels, size_t m0, size_t count, const TapTables& tables,
                      int32_t* activation_counts) {
  // Locals, not a's fields: the vector stores below may alias anything, so GCC would reload them.
  const size_t taps = a.taps, tap_words = a.tap_words, plane_stride = a.plane_stride;
  const size_t step = count * 8;                 // from one k word to the next
  const size_t tap_step = tap_words * step;      // from one tap to the next
  const size_t carried = carried_taps(a, count, tables);
  for (size_t t = carried; t < taps; ++t) {
    const uint32_t* const* rows = a.rows + t * pixels + m0;
    const uint32_t* const* previous_rows = rows - pixels;  // tap t - 1's (read only when t > 0)
    int32_t* counts = tables.counts + t * count;
    const int32_t* previous_counts = counts - count;
    int32_t most = 0;
    uint16_t* tap_offsets = tables.offsets + t * tap_step;
    for (size_t m = 0; m < count;) {
      // A stride-1 conv's tap t of pixel m is tap t - 1 of pixel m + 1 (already done): a run of
      // such pixels is copied per word in one piece (a copy per pixel and word: ~3 % on layer b).
      size_t seen_end = m;
      if (t > 0)
        while (seen_end + 1 < count && previous_rows[seen_end + 1] == rows[seen_end]) ++seen_end;
      if (seen_end > m) {
        for (size_t i = 0; i < tap_words; ++i) {
          uint16_t* dst = tap_offsets + i * step + m * 8;
          std::memcpy(dst, dst - tap_step + 8, (seen_end - m) * 8 * sizeof(uint16_t));
        }
        for (; m < seen_end; ++m) counts[m] = previous_counts[m + 1];
        most = std::max(most, tables.most[t - 1]);  // a bound: the copied words are some of tap t - 1's
        continue;
      }
      const uint32_t* x = rows[m];
      uint16_t* dst = tap_offsets + m * 8;
      int32_t weighted_count = 0;
      for (size_t i = 0; i < tap_words; ++i) {
        const uint32_t x0 = x[i], x1 = AB == 2 ? x[i + plane_stride] : 0u;
        const int32_t word_count = __builtin_popcount(x0) + 2 * __builtin_popcount(x1);
        weighted_count += word_count;
        most = std::max(most, word_count);
        // Byte e: row of nibble kNibbleOrder[e], plane 0 in its low half, plane 1 in its high half.
        const uint64_t row = ((x0 & 0x0F0F0F0Fu) | ((x1 & 0x0F0F0F0Fu) << 4)) |
                             uint64_t{((x0 >> 4) & 0x0F0F0F0Fu) | (x1 & 0xF0F0F0F0u)} << 32;
        _mm_store_si128(reinterpret_cast<__m128i*>(dst + i * step),
                        _mm_slli_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(row))), 5));
      }
      counts[m] = weighted_count;
      ++m;
    }
    tables.most[t] = most;
  }
  std::fill(activation_counts, activation_counts + count, 0);
  int32_t most_word_count = 0;
  for (size_t t = 0; t < taps; ++t) {
    most_word_count = std::max(most_word_count, tables.most[t]);
    for (size_t m = 0; m < count; ++m) activation_counts[m] += tables.counts[t * count + m];
  }
  if (GemmCarry* c = a.carry) {  // this call's rows for the next one (a.carry: m0 = 0, count = pixels)
    std::copy(a.rows, a.rows + taps * count, c->rows);
    c->count = count;
    c->taps = taps;
    c->tap_words = tap_words;
    c->plane_stride = plane_stride;
  }
  return most_word_count;
}

// What one gemm call's channel groups share about its activations.
struct CallActivations {
  const uint16_t* offsets;           // table_offsets
  const int32_t* counts;             // [pixel] weighted activation counts (count0 + 2 * count1)
  int32_t most_count;                // the largest of them
  size_t byte_steps;                 // steps a byte counter takes before it must be widened
};

// One group of N channel vectors (N * 32 channels from vector v0) for `pixels` pixels whose
// table_offsets are given.
//
// Byte counters take as many steps as the call's activations allow (nibble_gemm: at least 2 of 8
// lookups <= 12 for two planes, 7 of lookups <= 4 for one) before they are widened into 16-bit
// counts, which live in memory (L1): in registers they pushed the counters out. The steps run in
// chunks whose weights (18 KiB) stay in L1 while all pixels go through them (re-reading a whole
// layer's weights per pixel from L2 halved the speed); after a chunk each pixel's 16-bit counts go
// to its totals (16- or 32-bit), and after the last one the totals to the output.
template <int AB, int WB, int N>
class NibbleGroup {
 public:
  static constexpr size_t kVectorWords = kNibbleChannels / 4;
  static constexpr size_t kVectorStepWords = WB * 8 * kVectorWords;  // one vector's weights per step
  static constexpr size_t kStepWords = N * kVectorStepWords;          // the group's weights per step
  static constexpr size_t kChunkSteps = AB == 2 ? 36 : 35;
  // Pixels per pass through a chunk: 4 table loads share each weight vector load (2 pixels kept the
  // 256-bit loads at one per lookup, as many as the lookups); 3, 5 and 6 measured 3-20 % slower.
  static constexpr int kPixels = 4;
  static_assert(kChunkSteps * 8 * 12 < 65536, "16-bit counts hold a chunk");

  NibbleGroup(const BitserialShape& s, const CallActivations& a, size_t pixels, size_t m0, const uint32_t* weights,
              size_t v0, size_t outputs, const GemmOutput& out)
      : s_(s),
        out_(out),
        offsets_(a.offsets),
        activation_counts_(a.counts),
        byte_steps_(a.byte_steps),
        weights_(weights + v0 * s.words * kVectorStepWords),
        pixels_(pixels),
        m0_(m0),
        v0_(v0),
        outputs_(outputs) {
    if (out.thresholds) prepare_narrow_codes(a.most_count);
  }

  void run() {
    for (size_t k0 = 0; k0 < s_.words; k0 += kChunkSteps) {
      const size_t chunk = std::min(s_.words - k0, kChunkSteps);
      first_ = k0 == 0;
      last_ = k0 + chunk == s_.words;
      size_t m = 0;
      for (; m + kPixels <= pixels_; m += kPixels) run_pixels<kPixels>(m, k0, chunk);
      if constexpr (kPixels > 2) {
        if (m + 2 <= pixels_) {
          run_pixels<2>(m, k0, chunk);
          m += 2;
        }
      }
      for (; m < pixels_; ++m) run_pixels<1>(m, k0, chunk);
    }
  }

 private:
  // Pixels m0 .. m0 + M - 1 through the chunk of steps from k0.
  template <int M>
  __attribute__((always_inline)) void run_pixels(size_t m0, size_t k0, size_t chunk) {
    __m256i count[M][N][WB];    // byte counters
    auto& wide = *reinterpret_cast<__m256i(*)[M][N][WB][2]>(wide_);
    LOWBIT_UNROLL
    for (int m = 0; m < M; ++m)
      LOWBIT_UNROLL
      for (int n = 0; n < N; ++n)
        LOWBIT_UNROLL
        for (int j = 0; j < WB; ++j) wide[m][n][j][0] = wide[m][n][j][1] = count[m][n][j] = _mm256_setzero_si256();
    const uint8_t* tables = &kNibbleTables.row[0][0];
    const size_t offset_step = pixels_ * 8;
    const uint16_t* offsets = offsets_ + (k0 * pixels_ + m0) * 8;
    const uint32_t* step_weights = weights_ + k0 * kStepWords;
    size_t byte_steps = 0;  // since the last widening
    for (size_t step = 0; step < chunk; ++step, offsets += offset_step, step_weights += kStepWords) {
      LOWBIT_UNROLL
      for (int e = 0; e < 8; ++e) {
        __m256i table[M];
        LOWBIT_UNROLL
        for (int m = 0; m < M; ++m)
          table[m] = _mm256_load_si256(reinterpret_cast<const __m256i*>(tables + offsets[m * 8 + e]));
        LOWBIT_UNROLL
        for (int n = 0; n < N; ++n)
          LOWBIT_UNROLL
          for (int j = 0; j < WB; ++j) {
            __m256i nibbles = _mm256_loadu_si256(
                reinterpret_cast<const __m256i*>(step_weights + (static_cast<size_t>(n * WB + j) * 8 + static_cast<size_t>(e)) * kVectorWords));
            // One load for the M lookups: GCC otherwise folds it into each VPSHUFB, and the loads
            // (2 per cycle) become the bottleneck instead of the lookups.
            if constexpr (M > 1) asm("" : "+x"(nibbles));
            LOWBIT_UNROLL
            for (int m = 0; m < M; ++m) {
              __m256i c = _mm256_add_epi8(count[m][n][j], _mm256_shuffle_epi8(table[m], nibbles));
              // Keeps the adds in order: GCC otherwise re-associates the 8 lookups into a tree
              // whose partial sums spill (measured 1.3x slower). On a local, not the array
              // element: an asm operand makes its array live in memory.
              asm("" : "+x"(c));
              count[m][n][j] = c;
            }
          }
      }
      if (++byte_steps == byte_steps_) {
        widen_counts<M>(count, wide);
        byte_steps = 0;
      }
    }
    widen_counts<M>(count, wide);
    LOWBIT_UNROLL
    for (int m = 0; m < M; ++m) finish_chunk(m0 + static_cast<size_t>(m), wide[m]);
  }

  // Adds the byte counters into the 16-bit counts and clears them: even bytes (channels 2i) into
  // wide[0], odd ones into wide[1], by AND and shift, which leave the shuffle ports to the lookups
  // (VPUNPCK*BW would compete with VPSHUFB there). (A function, not a lambda: GCC kept the counters
  // in memory when a lambda captured them for another lambda.)
  template <int M>
  static __attribute__((always_inline)) void widen_counts(__m256i (&count)[M][N][WB], __m256i (&wide)[M][N][WB][2]) {
    const __m256i low_bytes = _mm256_set1_epi16(0x00FF);
    LOWBIT_UNROLL
    for (int m = 0; m < M; ++m)
      LOWBIT_UNROLL
      for (int n = 0; n < N; ++n)
        LOWBIT_UNROLL
        for (int j = 0; j < WB; ++j) {
          wide[m][n][j][0] = _mm256_add_epi16(wide[m][n][j][0], _mm256_and_si256(count[m][n][j], low_bytes));
          wide[m][n][j][1] = _mm256_add_epi16(wide[m][n][j][1], _mm256_srli_epi16(count[m][n][j], 8));
          count[m][n][j] = _mm256_setzero_si256();
          asm volatile("" ::: "memory");
        }
  }

  // Codes from 16-bit totals when no pixel of the call can leave that range: |acc| is at most the
  // pixel's weighted activation count times the sum of |scale| (and |offset| per count). Then 16
  // channels go through each compare instead of 8, and nothing is widened to int32 (layer b: the
  // epilogue ~25 % -> ~15 % of the time). The call's thresholds and signs are set out once as
  // int16 (saturated: with |x| <= 32766, a saturated threshold compares as the int32 one) in the
  // counts' order: vector h (0 even, 1 odd channels), element lane * 8 + i = channel
  // lane * 16 + 2 * i + h of the 32.
  void prepare_narrow_codes(int32_t most_count) {
    int64_t per_count = WB == 1 ? std::abs(int64_t{s_.w_offset} * s_.a_weight[0]) : 0;
    for (int j = 0; j < WB; ++j) per_count += std::abs(int64_t{s_.a_weight[0]} * s_.w_weight[j]);
    narrow_ = per_count * most_count <= 32766 && out_.thresholds->levels <= kMaxLevels;
    if (!narrow_) return;
    const ThresholdArgs& t = *out_.thresholds;
    for (int n = 0; n < N; ++n) {
      const size_t o = (v0_ + static_cast<size_t>(n)) * kNibbleChannels;
      const size_t valid = o < outputs_ ? std::min(kNibbleChannels, outputs_ - o) : 0;
      even_odd_int16(t.sign + out_.first + o, valid, sign16_[n]);
      for (int k = 0; k < t.levels; ++k)
        even_odd_int16(t.thresholds + static_cast<size_t>(k) * t.channels + out_.first + o, valid, threshold16_[k][n]);
    }
  }

  // The 32 int32 from p (the first n; 0 past them), saturated to int16, in the counts' order:
  // out[0] the even channels, out[1] the odd ones.
  static void even_odd_int16(const int32_t* p, size_t n, __m256i (&out)[2]) {
    __m256i words[4];
    for (size_t i = 0; i < 4; ++i) words[i] = Avx2::load_sum(p + 8 * i, n > 8 * i ? std::min<size_t>(8, n - 8 * i) : 0);
    // Per 128-bit lane: the even elements, then the odd ones.
    const __m256i split = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                           0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    __m256i half[2];  // channels 16 * i + 0..15: the even ones in lane 0, the odd ones in lane 1
    for (int i = 0; i < 2; ++i) {
      const __m256i ordered = _mm256_permute4x64_epi64(_mm256_packs_epi32(words[2 * i], words[2 * i + 1]), 0xD8);
      half[i] = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(ordered, split), 0xD8);
    }
    out[0] = _mm256_permute2x128_si256(half[0], half[1], 0x20);
    out[1] = _mm256_permute2x128_si256(half[0], half[1], 0x31);
  }

  // finish_chunk in 16 bits (prepare_narrow_codes): the pixel's totals stay in even/odd channel
  // vectors; after the last chunk the codes of the even and odd channels are put back together as
  // bytes in channel order, whose plane bits VPMOVMSKB gathers.
  void finish_chunk_narrow(size_t m, const __m256i (&wide)[N][WB][2]) {
    __m256i x[N][2];
    LOWBIT_UNROLL
    for (int n = 0; n < N; ++n)
      LOWBIT_UNROLL
      for (int h = 0; h < 2; ++h) {
        x[n][h] = _mm256_mullo_epi16(wide[n][0][h], _mm256_set1_epi16(static_cast<int16_t>(s_.a_weight[0] * s_.w_weight[0])));
        LOWBIT_UNROLL
        for (int j = 1; j < WB; ++j)
          x[n][h] = _mm256_add_epi16(
              x[n][h], _mm256_mullo_epi16(wide[n][j][h], _mm256_set1_epi16(static_cast<int16_t>(s_.a_weight[0] * s_.w_weight[j]))));
      }
    __m256i* pixel_total = reinterpret_cast<__m256i*>(total_[m]);  // [n][h]
    if (!first_)
      LOWBIT_UNROLL
      for (int n = 0; n < N; ++n)
        LOWBIT_UNROLL
        for (int h = 0; h < 2; ++h) x[n][h] = _mm256_add_epi16(x[n][h], _mm256_load_si256(pixel_total + n * 2 + h));
    if (!last_) {
      LOWBIT_UNROLL
      for (int n = 0; n < N; ++n)
        LOWBIT_UNROLL
        for (int h = 0; h < 2; ++h) _mm256_store_si256(pixel_total + n * 2 + h, x[n][h]);
      return;
    }
    // Unrolled for the usual outputs: 2-bit (3 thresholds) and 1-bit codes.
    switch (out_.thresholds->levels) {
      case 3: return emit_narrow_codes<3>(m, x);
      case 1: return emit_narrow_codes<1>(m, x);
      default: return emit_narrow_codes<0>(m, x);
    }
  }

  // Pixel m's codes from its 16-bit totals x; kLevels thresholds (0: the layer's, at run time).
  template <int kLevels>
  __attribute__((always_inline)) void emit_narrow_codes(size_t m, const __m256i (&x)[N][2]) {
    const ThresholdArgs& t = *out_.thresholds;
    const int levels = kLevels ? kLevels : t.levels;
    const int bits = kLevels == 3 ? 2 : kLevels == 1 ? 1 : t.bits;  // 4 or 2 codes
    const int32_t offset = WB == 1 ? s_.w_offset * s_.a_weight[0] * activation_counts_[m] : 0;
    const __m256i add = _mm256_set1_epi16(static_cast<int16_t>(offset));
    const __m256i start = _mm256_set1_epi16(static_cast<int16_t>(levels + t.pattern_offset));
    const __m256i code_mask = _mm256_set1_epi16(static_cast<int16_t>((1 << bits) - 1));
    __m256i bytes[N];
    LOWBIT_UNROLL
    for (int n = 0; n < N; ++n) {
      __m256i pattern[2];
      LOWBIT_UNROLL
      for (int h = 0; h < 2; ++h) {
        // As code_pattern_lanes: start from levels and count the thresholds not passed.
        const __m256i v = _mm256_sign_epi16(_mm256_add_epi16(x[n][h], add), sign16_[n][h]);
        pattern[h] = start;
        for (int k = 0; k < levels; ++k) pattern[h] = _mm256_add_epi16(pattern[h], _mm256_cmpgt_epi16(threshold16_[k][n][h], v));
        pattern[h] = _mm256_and_si256(pattern[h], code_mask);
      }
      bytes[n] = _mm256_or_si256(pattern[0], _mm256_slli_epi16(pattern[1], 8));
    }
    uint64_t masks[kMaxBits];
    Avx2::byte_plane_masks<N>(bytes, bits, masks);
    const size_t first_output = v0_ * kNibbleChannels;
    simd::emit_code_planes(out_, masks, m0_ + m, first_output, std::min(N * kNibbleChannels, outputs_ - first_output));
  }

  // Pixel m's 16-bit counts of a chunk into its int32 totals, 8 channels per Sum in channel order;
  // after the last chunk, to the output. Interleaving the even and odd channels' counts gives
  // channels h * 8 + lane * 16 + 0..7 in the 128-bit lane `lane` of the unpack's half h.
  void finish_chunk(size_t m, const __m256i (&wide)[N][WB][2]) {
    if (narrow_) return finish_chunk_narrow(m, wide);
    Avx2::Sum sum[N * 4];
    LOWBIT_UNROLL
    for (int n = 0; n < N; ++n)
      LOWBIT_UNROLL
      for (int j = 0; j < WB; ++j) {
        const __m256i scale = _mm256_set1_epi32(s_.a_weight[0] * s_.w_weight[j]);
        const __m256i counts[2] = {_mm256_unpacklo_epi16(wide[n][j][0], wide[n][j][1]),
                                   _mm256_unpackhi_epi16(wide[n][j][0], wide[n][j][1])};
        LOWBIT_UNROLL
        for (int h = 0; h < 2; ++h)
          LOWBIT_UNROLL
          for (int lane = 0; lane < 2; ++lane) {
            const __m128i half = lane == 0 ? _mm256_castsi256_si128(counts[h]) : _mm256_extracti128_si256(counts[h], 1);
            const __m256i v = _mm256_mullo_epi32(_mm256_cvtepu16_epi32(half), scale);
            const int b = n * 4 + h + 2 * lane;
            sum[b] = j == 0 ? v : _mm256_add_epi32(sum[b], v);
          }
      }
    __m256i* pixel_total = reinterpret_cast<__m256i*>(total_[m]);
    if (!first_)
      LOWBIT_UNROLL
      for (int b = 0; b < N * 4; ++b) sum[b] = _mm256_add_epi32(sum[b], _mm256_load_si256(pixel_total + b));
    if (!last_) {
      LOWBIT_UNROLL
      for (int b = 0; b < N * 4; ++b) _mm256_store_si256(pixel_total + b, sum[b]);
      return;
    }
    // Binary weights (one plane, the only kind with an offset): w_offset * sum_p a_weight[p] * popcount(A_p).
    const int32_t offset = WB == 1 ? s_.w_offset * s_.a_weight[0] * activation_counts_[m] : 0;
    simd::finish_pixel<Avx2, N * 4>(out_, sum, offset, m0_ + m, v0_ * kNibbleChannels, outputs_);
  }

  const BitserialShape& s_;
  const GemmOutput& out_;
  const uint16_t* offsets_;
  const int32_t* activation_counts_;
  const size_t byte_steps_;
  const uint32_t* weights_;  // the group's
  const size_t pixels_, m0_, v0_, outputs_;
  bool first_ = true, last_ = true;  // the current chunk's place
  static constexpr int kMaxLevels = (1 << kMaxBits) - 1;
  bool narrow_ = false;  // codes from 16-bit totals (prepare_narrow_codes)
  alignas(32) int32_t total_[kMaxGemmPixels][N * kNibbleChannels];  // between chunks (K > kChunkSteps words)
  __m256i wide_[kPixels * N * WB * 2];  // run_pixels' 16-bit counts
  __m256i sign16_[N][2];
  __m256i threshold16_[kMaxLevels][N][2];
};

// The channel vectors from v on: groups of N, then the layer's last, smaller group (the layout's
// groups, pack_weights).
template <int AB, int WB, int N>
void nibble_groups(const BitserialShape& s, const CallActivations& a, size_t pixels, size_t m0, const uint32_t* weights,
                   size_t outputs, const GemmOutput& out, size_t v) {
  const size_t vectors = (outputs + kNibbleChannels - 1) / kNibbleChannels;
  for (; v + N <= vectors; v += N) NibbleGroup<AB, WB, N>(s, a, pixels, m0, weights, v, outputs, out).run();
  if constexpr (N > 1) {
    if (v < vectors) nibble_groups<AB, WB, N - 1>(s, a, pixels, m0, weights, outputs, out, v);
  }
}

// Pixels m0 .. m0 + count - 1 of a call through all channel groups. A byte counter gains at most
// the largest weighted word count per step, so it is widened after as many steps as 255 allows: 2
// for two dense planes (8 lookups of <= 12), 3 on uniformly random 2-bit codes, more on sparse
// ones (the widening is ~13 % of the loop at 2).
template <int AB, int WB>
void nibble_block(const BitserialShape& s, const PatchRows& a, size_t pixels, size_t m0, size_t count,
                  const TapTables& tables, int32_t* activation_counts, const uint32_t* weights, size_t outputs,
                  const GemmOutput& out) {
  const int32_t most_word_count = table_offsets<AB>(a, pixels, m0, count, tables, activation_counts);
  const size_t byte_steps = most_word_count == 0 ? s.words : static_cast<size_t>(255 / most_word_count);
  const CallActivations call{tables.offsets, activation_counts,
                             *std::max_element(activation_counts, activation_counts + count), byte_steps};
  nibble_groups<AB, WB, nibble_table_vectors(WB)>(s, call, count, m0, weights, outputs, out, 0);
}

// With a carry, a call of at most kGemmCarryWords words x pixels is one block whose tables stay
// for the next call. Otherwise the pixels go in equal blocks of at most kGemmCarryWords words of
// offsets (32 KiB; one pixel may take up to kNibbleMaxWords): layer h's 64-pixel rows as 3 x 22
// instead of 56 + 8 pixels (64 KiB) scaled 1.93-1.99x to 2 threads instead of 1.5-1.7x, at ~1 %
// on one thread.
template <int AB, int WB>
void nibble_gemm(const BitserialShape& s, const PatchRows& rows, size_t pixels, const uint32_t* weights, size_t outputs,
                 const GemmOutput& out) {
  int32_t activation_counts[kMaxGemmPixels];
  if (rows.carry && pixels * s.words <= kGemmCarryWords) {
    GemmCarry& c = *rows.carry;
    nibble_block<AB, WB>(s, rows, pixels, 0, pixels, TapTables{c.offsets, c.tap_counts, c.tap_most}, activation_counts,
                         weights, outputs, out);
    return;
  }
  PatchRows a = rows;
  a.carry = nullptr;
  alignas(16) uint16_t offsets[kNibbleMaxWords * 8];
  int32_t tap_counts[kNibbleMaxWords], tap_most[kNibbleMaxWords];  // taps * pixels <= words * pixels
  const size_t block_pixels = std::max<size_t>(1, kGemmCarryWords / s.words);
  const size_t blocks = (pixels + block_pixels - 1) / block_pixels;
  const size_t block = (pixels + blocks - 1) / blocks;
  for (size_t m0 = 0; m0 < pixels; m0 += block)
    nibble_block<AB, WB>(s, a, pixels, m0, std::min(block, pixels - m0), TapTables{offsets, tap_counts, tap_most},
                         activation_counts, weights, outputs, out);
}

// The table's gemm: nibble tables where they apply (the layout pack_weights chose), else the
// channel-vectorized gemm.
void bitserial_gemm(const BitserialShape& s, const PatchRows& a, size_t pixels, const uint32_t* weights, size_t outputs,
                    const GemmOutput& out) {
  if (!nibble_tables_apply(s)) return simd::gemm<Avx2>(s, a, pixels, weights, outputs, out);
  using Fn = void (*)(const BitserialShape&, const PatchRows&, size_t, const uint32_t*, size_t, const GemmOutput&);
  static constexpr Fn kNibbleGemms[2][2] = {{nibble_gemm<1, 1>, nibble_gemm<1, 2>}, {nibble_gemm<2, 1>, nibble_gemm<2, 2>}};
  kNibbleGemms[s.a_bits - 1][s.w_bits - 1](s, a, pixels, weights, outputs, out);
}

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

static_assert(Avx2::kLanes == kAvx2Weights.lanes && Avx2::kWeightHalves == kAvx2Weights.halves &&
                  Avx2Float::kLanes == kAvx2FloatLanes,
              "kernel_table.h lists these lanes");
const KernelTable kAvx2Kernels{"avx2", supported, kAvx2Weights, bitserial_gemm, Avx2Float::kLanes, simd::float_gemm<Avx2Float>,
                               simd::quantize_pack<Avx2Float>, pixel_code_sums<Avx2>};

}  // namespace lowbit
