// The channel-vectorized bit-serial GEMM shared by every SIMD kernel table. Each ISA's translation
// unit includes this with its own compiler flags and supplies a policy `P`:
//
//   using Vec;  static constexpr size_t kLanes;        a vector of kLanes 32-bit words
//   static constexpr int kWeightHalves;                1, or 2 for weights packed as nibble halves
//                                                      (pack_weights), which then also needs
//   static Vec high_nibbles(Vec x);                    x >> 4 per byte (the bits above are masked
//                                                      by the weights' zero high nibbles)
//   static Count add_popcount_halves(Count c, Vec lo, Vec hi);   c + popcounts of two nibble vectors
//   static Vec load(const uint32_t* p);                kLanes words (one packed weight word of kLanes channels)
//   static Vec broadcast(const uint32_t* p);           *p in every lane (one activation word)
//   static Vec and_(Vec a, Vec b);
//   using Count;  static Count zero_count();  static Count add_popcount(Count c, Vec x);
//   static constexpr size_t kCountSteps;               add_popcount steps a Count holds before it must
//                                                      be widened; 0 = Count is already the int32 Sum
//   using Sum;  static Sum zero_sum();                 int32 per lane (mod 2^32)
//   static Sum widen_scaled(Sum s, Count c, int32_t scale);   s + scale * c (|scale| <= 64)
//   static void store(int32_t* dst, Sum x, int32_t add, size_t n);   first n lanes of x + add
//   and, for code outputs, either (kBitSlicedCodes = false)
//   static Sum code_pattern(const ThresholdArgs& t, Sum x, int32_t add, size_t first, size_t n);
//                                                      per lane the code bit pattern of x + add for channel
//                                                      first + lane, as threshold_pack_reference computes it
//                                                      (lanes >= n: anything; code_pattern_lanes below,
//                                                      or the table's own)
//   template <int NB> static void plane_masks(const Sum (&x)[NB], int bits, uint64_t* masks);
//                                                      masks[p] bit n * kLanes + i = bit p of lane i of
//                                                      x[n], for p < bits (plane_masks_by_lanes below
//                                                      builds it from a lane_bits(Sum x, int p))
//   or (kBitSlicedCodes = true, see emit_codes_bit_sliced)
//   static Sum signed_sum(const int32_t* sign, Sum x, int32_t add, size_t n);   sign[i] * (x + add) per lane
//                                                      (lanes >= n: anything, sign not read)
//   static uint32_t ge_bits(Sum x, const int32_t* row, size_t n);   bit i = lane i of x >= row[i], for i < n
//   static constexpr int kAccumulators;                Counts that fit the register file with the rest
//
// Why vectorize over output channels: every lane of an accumulator is one output channel, so a
// block ends without horizontal reductions, the reduction dimension needs no tail handling (any
// number of 32-bit words), and the activation word of one pixel and plane is broadcast once for
// all kLanes channels. The receptive field is read in place through PatchRows, never copied.
#pragma once

#include <algorithm>

#include "kernels/bitserial.h"

// Loops over the block's compile-time extents must be unrolled completely, or the accumulators
// live in memory instead of registers (GCC's -O2 does not unroll them on its own).
#define LOWBIT_UNROLL _Pragma("GCC unroll 16")

namespace lowbit {
namespace simd {

static_assert(kMaxGemmPixels % 12 == 0, "pixel blockings 1, 2, 3, 4 and 6 must divide the operator's largest pixel block");

// The (tap, word) steps of one gemm block, visited in runs along the longer side of the tap x word
// grid: one tap's words, or one word across the taps (64 input channels: 2 words, 9 taps). Within
// a run a step only bumps pointers: per-step index arithmetic (tap * words + word) cost ~20 % of a
// step on AVX2, and starting a run per tap of layer b another ~5 %.
class StepWalk {
 public:
  // weights: the block's weights of step 0, word_weights apart from one k word to the next.
  StepWalk(const PatchRows& a, size_t pixels, size_t m0, const uint32_t* weights, size_t word_weights)
      : rows_(a.rows + m0),
        weights_(weights),
        pixels_(pixels),
        tap_words_(a.tap_words),
        word_weights_(word_weights),
        along_taps_(a.taps > a.tap_words),
        run_length_(along_taps_ ? a.taps : a.tap_words),
        steps_(a.taps * a.tap_words) {}

  size_t steps() const { return steps_; }
  size_t remaining() const { return steps_ - done_; }

  // The same walk for pixel m0 + m (its own copy of the position).
  StepWalk pixel(size_t m) const {
    StepWalk w = *this;
    w.rows_ += m;
    return w;
  }
  void advance(size_t count) {
    next(count, [](const uint32_t* const*, size_t, const uint32_t*) {});
  }

  // step(rows, word, weights) for each of the next `count` (<= remaining()) steps: rows[m] is the
  // step's tap row of pixel m0 + m, `word` the word within it, `weights` the step's weights.
  template <class F>
  __attribute__((always_inline)) void next(size_t count, F&& step) {
    const size_t row_step = along_taps_ ? pixels_ : 0, word_step = along_taps_ ? 0 : 1;
    const size_t weight_step = (along_taps_ ? tap_words_ : 1) * word_weights_;
    while (count != 0) {
      const size_t run_steps = std::min(count, run_length_ - in_run_);
      const size_t t = along_taps_ ? in_run_ : run_, i = along_taps_ ? run_ : in_run_;
      const uint32_t* const* rows = rows_ + t * pixels_;
      const uint32_t* weights = weights_ + (t * tap_words_ + i) * word_weights_;
      size_t word = i;
      for (size_t r = 0; r < run_steps; ++r, rows += row_step, word += word_step, weights += weight_step)
        step(rows, word, weights);
      count -= run_steps;
      done_ += run_steps;
      in_run_ += run_steps;
      if (in_run_ == run_length_) {
        in_run_ = 0;
        ++run_;
      }
    }
  }

 private:
  const uint32_t* const* rows_;
  const uint32_t* weights_;
  size_t pixels_, tap_words_, word_weights_;
  bool along_taps_;
  size_t run_length_, steps_;
  size_t done_ = 0, run_ = 0, in_run_ = 0;  // steps done; the next step's run (word or tap) and place in it
};

// ORs the low `count` (<= 64) of `bits` into the bit string at `words` from bit `first` on.
inline void or_bits(uint32_t* words, size_t first, uint64_t bits, size_t count) {
  words += first / kWordBits;
  const size_t shift = first % kWordBits;
  words[0] |= static_cast<uint32_t>(bits << shift);
  uint64_t rest = shift == 0 ? bits >> kWordBits : bits >> (kWordBits - shift);  // from words[1] on
  for (size_t i = 1; i * kWordBits < shift + count; ++i, rest >>= kWordBits) words[i] |= static_cast<uint32_t>(rest);
}

// Writes a pixel's code planes: masks[p] holds plane p's bits of the `valid` (<= 64) channels from
// first_output on, in order (bits above them are ignored).
inline void emit_code_planes(const GemmOutput& out, const uint64_t* masks, size_t pixel, size_t first_output,
                             size_t valid) {
  for (int p = 0; p < out.thresholds->bits; ++p) {
    uint64_t bits = masks[p];
    if (valid < 64) bits &= (uint64_t{1} << valid) - 1;
    or_bits(out.codes + pixel * out.pixel_words + static_cast<size_t>(p) * out.plane_words, out.first + first_output,
            bits, valid);
  }
}

// plane_masks for tables that take one plane of one vector at a time:
//   static uint32_t lane_bits(Sum x, int p);           bit i = bit p of lane i
template <class P, int NB>
__attribute__((always_inline)) inline void plane_masks_by_lanes(const typename P::Sum (&x)[NB], int bits,
                                                                uint64_t* masks) {
  for (int p = 0; p < bits; ++p) {
    masks[p] = 0;
    LOWBIT_UNROLL
    for (int n = 0; n < NB; ++n) masks[p] |= uint64_t{P::lane_bits(x[n], p)} << (static_cast<size_t>(n) * P::kLanes);
  }
}

// A pixel's codes counted bit-sliced: one word per code plane holds that bit of the level of all
// NB * kLanes channels, each threshold row's passed lanes (one compare into a mask register on
// AVX-512) are added to it with a ripple carry, and the pattern offset is added the same way. No
// per-lane level arithmetic, no plane extraction, and nothing assumed about the order of a
// channel's thresholds. kFull: all NB vectors are outputs (no lane masks, no bounds). On AVX-512
// (Zen 5) layer b W1A2 went from 0.191 to 0.164 ms: the per-lane level count, plane tests and
// bit-by-bit writes had been ~22 % of its time (K = 18 words leaves little loop per pixel).
template <class P, int NB, int BITS, bool kFull>
__attribute__((always_inline)) inline void emit_codes_bit_sliced(const GemmOutput& out,
                                                                 const typename P::Sum (&total)[NB], int32_t offset,
                                                                 size_t pixel, size_t first_output, size_t outputs) {
  constexpr size_t L = P::kLanes;
  const ThresholdArgs& t = *out.thresholds;
  const size_t first = out.first + first_output;  // the first channel's index in the thresholds and the planes
  typename P::Sum x[NB];
  size_t valid[NB];
  LOWBIT_UNROLL
  for (int n = 0; n < NB; ++n) {
    const size_t o = first_output + static_cast<size_t>(n) * L;
    valid[n] = kFull ? L : o < outputs ? std::min(L, outputs - o) : 0;
    x[n] = P::signed_sum(t.sign + first + static_cast<size_t>(n) * L, total[n], offset, valid[n]);
  }
  uint64_t planes[BITS] = {};
  const int32_t* row = t.thresholds + first;
  for (int k = 0; k < t.levels; ++k, row += t.channels) {
    uint64_t carry = 0;
    LOWBIT_UNROLL
    for (int n = 0; n < NB; ++n) carry |= uint64_t{P::ge_bits(x[n], row + static_cast<size_t>(n) * L, valid[n])} << (n * L);
    LOWBIT_UNROLL
    for (int p = 0; p < BITS; ++p) {
      const uint64_t sum = planes[p] ^ carry;
      carry &= planes[p];
      planes[p] = sum;
    }
  }
  // + pattern_offset, modulo 2^BITS like the reference's mask.
  uint64_t carry = 0;
  LOWBIT_UNROLL
  for (int p = 0; p < BITS; ++p) {
    const uint64_t b = (t.pattern_offset >> p) & 1 ? ~uint64_t{0} : 0;
    const uint64_t sum = planes[p] ^ b ^ carry;
    carry = (planes[p] & b) | (carry & (planes[p] ^ b));
    planes[p] = sum;
  }
  if (kFull && NB * L == 64 && first % kWordBits == 0) {  // two whole words per plane
    uint32_t* codes = out.codes + pixel * out.pixel_words + first / kWordBits;
    LOWBIT_UNROLL
    for (int p = 0; p < BITS; ++p, codes += out.plane_words) {
      codes[0] |= static_cast<uint32_t>(planes[p]);
      codes[1] |= static_cast<uint32_t>(planes[p] >> kWordBits);
    }
    return;
  }
  emit_code_planes(out, planes, pixel, first_output, std::min(NB * L, outputs - first_output));
}

template <class P, int NB, int BITS>
__attribute__((always_inline)) inline void emit_codes_bit_sliced(const GemmOutput& out,
                                                                 const typename P::Sum (&total)[NB], int32_t offset,
                                                                 size_t pixel, size_t first_output, size_t outputs) {
  if (first_output + NB * P::kLanes <= outputs) return emit_codes_bit_sliced<P, NB, BITS, true>(out, total, offset, pixel, first_output, outputs);
  emit_codes_bit_sliced<P, NB, BITS, false>(out, total, offset, pixel, first_output, outputs);
}

// One pixel's outputs from its int32 totals, NB vectors of channels from first_output on (the
// last may be partial): x + offset stored, or its codes emitted straight from registers (the
// accumulators never travel through memory), every plane's bits of all NB vectors in one write.
template <class P, int NB>
__attribute__((always_inline)) inline void finish_pixel(const GemmOutput& out, const typename P::Sum (&total)[NB],
                                                        int32_t offset, size_t pixel, size_t first_output,
                                                        size_t outputs) {
  constexpr size_t L = P::kLanes;
  static_assert(NB * L <= 64, "one plane's code bits are gathered in 64 bits");
  if (!out.thresholds) {
    LOWBIT_UNROLL
    for (int n = 0; n < NB; ++n) {
      const size_t o = first_output + static_cast<size_t>(n) * L;
      if (o < outputs) P::store(out.acc + pixel * outputs + o, total[n], offset, std::min(L, outputs - o));
    }
    return;
  }
  if constexpr (P::kBitSlicedCodes) {
    switch (out.thresholds->bits) {
      case 1: return emit_codes_bit_sliced<P, NB, 1>(out, total, offset, pixel, first_output, outputs);
      case 2: return emit_codes_bit_sliced<P, NB, 2>(out, total, offset, pixel, first_output, outputs);
      case 3: return emit_codes_bit_sliced<P, NB, 3>(out, total, offset, pixel, first_output, outputs);
      default: return emit_codes_bit_sliced<P, NB, 4>(out, total, offset, pixel, first_output, outputs);
    }
  } else {
    typename P::Sum pattern[NB];
    LOWBIT_UNROLL
    for (int n = 0; n < NB; ++n) {
      const size_t o = first_output + static_cast<size_t>(n) * L;
      // Vectors past the last output (nibble tables: 32-channel vectors over 8-lane Sums) read none.
      pattern[n] = P::code_pattern(*out.thresholds, total[n], offset, out.first + o, o < outputs ? std::min(L, outputs - o) : 0);
    }
    uint64_t masks[kMaxBits];
    P::template plane_masks<NB>(pattern, out.thresholds->bits, masks);
    emit_code_planes(out, masks, pixel, first_output, std::min(NB * L, outputs - first_output));
  }
}

// M pixels (from m0) x N channel blocks (from block b0), all plane pairs advancing together.
template <class P, int AB, int WB, int M, int N>
void gemm_block(const BitserialShape& s, const PatchRows& a, size_t pixels, size_t m0, const uint32_t* weights,
                size_t b0, size_t outputs, const GemmOutput& out) {
  using Vec = typename P::Vec;
  using Count = typename P::Count;
  using Sum = typename P::Sum;
  constexpr size_t L = P::kLanes;
  constexpr int H = P::kWeightHalves;

  auto for_each_pair = [](auto&& f) {
    LOWBIT_UNROLL
    for (int m = 0; m < M; ++m)
      LOWBIT_UNROLL
      for (int p = 0; p < AB; ++p)
        LOWBIT_UNROLL
        for (int n = 0; n < N; ++n)
          LOWBIT_UNROLL
          for (int j = 0; j < WB; ++j) f(m, p, n, j);
  };
  // One int32 total per pixel and channel block: each plane pair's counters are widened straight
  // into it with their weight 2^p * c_j (the weighted widen costs what a plain one does on AVX2).
  Sum total[M][N];
  LOWBIT_UNROLL
  for (int m = 0; m < M; ++m)
    LOWBIT_UNROLL
    for (int n = 0; n < N; ++n) total[m][n] = P::zero_sum();

  // The (tap, word) steps run in chunks of at most kCountSteps, after which the narrow counters
  // are widened into the int32 sums. The sums change only between chunks, so the inner loop
  // carries just the counters (a widen inside it made GCC shuffle spilled sums every step).
  constexpr size_t kChunk = P::kCountSteps != 0 ? P::kCountSteps : ~size_t{0};
  constexpr size_t kStepWords = static_cast<size_t>(WB) * H * L;  // one block's weights per step
  // The N blocks from b0 are one group of the weight layout (pack_weights): after the full groups
  // before it, [k word][block in group]; N is the group's size, full or the layer's last.
  StepWalk walk(a, pixels, m0, weights + b0 * s.words * kStepWords, N * kStepWords);
  const size_t plane_stride = a.plane_stride;
  while (walk.remaining() != 0) {
    Count count[M][AB][N][WB];
    for_each_pair([&](int m, int p, int n, int j) { count[m][p][n][j] = P::zero_count(); });
    walk.next(std::min(walk.remaining(), kChunk), [&](const uint32_t* const* rows, size_t word, const uint32_t* step_weights) {
      Vec w[N][WB][H];
      LOWBIT_UNROLL
      for (int n = 0; n < N; ++n)
        LOWBIT_UNROLL
        for (int j = 0; j < WB; ++j)
          LOWBIT_UNROLL
          for (int h = 0; h < H; ++h) w[n][j][h] = P::load(step_weights + (n * WB + j) * H * L + h * L);
      LOWBIT_UNROLL
      for (int m = 0; m < M; ++m)
        LOWBIT_UNROLL
        for (int p = 0; p < AB; ++p) {
          const Vec x = P::broadcast(rows[m] + p * plane_stride + word);
          LOWBIT_UNROLL
          for (int n = 0; n < N; ++n)
            LOWBIT_UNROLL
            for (int j = 0; j < WB; ++j) {
              Count& c = count[m][p][n][j];
              if constexpr (H == 1) {
                c = P::add_popcount(c, P::and_(w[n][j][0], x));
              } else {
                c = P::add_popcount_halves(c, P::and_(w[n][j][0], x), P::and_(w[n][j][1], P::high_nibbles(x)));
              }
            }
        }
    });
    for_each_pair([&](int m, int p, int n, int j) {
      total[m][n] = P::widen_scaled(total[m][n], count[m][p][n][j], s.a_weight[p] * s.w_weight[j]);
    });
  }

  LOWBIT_UNROLL
  for (int m = 0; m < M; ++m) {
    const size_t pixel = m0 + static_cast<size_t>(m);
    const int32_t offset = s.w_offset != 0 ? s.w_offset * a.activation_sums[pixel] : 0;  // binary weights
    finish_pixel<P, N>(out, total[m], offset, pixel, b0 * L, outputs);
  }
}

// The channel blocks from `n` on, N at a time, the rest in one narrower block (64 channels on
// AVX2 with N = 3: 3 + 3 + 2 blocks, not 3 + 3 + 1 + 1). Channel blocks outside, pixels inside: a
// block's weights (up to 36 KiB on AVX2 for 512 input channels) are read once from L2 or L3 and
// then from L1 for all pixels, instead of the whole layer's weights being streamed for every pixel.
template <class P, int AB, int WB, int M, int N>
void gemm_channel_blocks(const BitserialShape& s, const PatchRows& a, size_t pixels, const uint32_t* weights,
                         size_t outputs, const GemmOutput& out, size_t n = 0) {
  const size_t blocks = (outputs + P::kLanes - 1) / P::kLanes;
  for (; n + N <= blocks; n += N) {
    size_t m = 0;
    for (; m + M <= pixels; m += M) gemm_block<P, AB, WB, M, N>(s, a, pixels, m, weights, n, outputs, out);
    for (; m < pixels; ++m) gemm_block<P, AB, WB, 1, N>(s, a, pixels, m, weights, n, outputs, out);
  }
  if constexpr (N > 1) {
    if (n < blocks) gemm_channel_blocks<P, AB, WB, M, N - 1>(s, a, pixels, weights, outputs, out, n);
  }
}

// All outputs for `pixels` pixels, in blocks of M pixels x N channel blocks.
template <class P, int AB, int WB>
void gemm_planes(const BitserialShape& s, const PatchRows& a, size_t pixels, const uint32_t* weights, size_t outputs,
                 const GemmOutput& out) {
  constexpr Blocking b = choose_blocking(AB, WB, P::kAccumulators);
  gemm_channel_blocks<P, AB, WB, b.pixels, b.blocks>(s, a, pixels, weights, outputs, out);
}

// Picks the instantiation for the layer's plane counts.
template <class P>
void gemm(const BitserialShape& s, const PatchRows& a, size_t pixels, const uint32_t* weights, size_t outputs,
          const GemmOutput& out) {
  using Fn = void (*)(const BitserialShape&, const PatchRows&, size_t, const uint32_t*, size_t, const GemmOutput&);
  static constexpr Fn kTable[kMaxBits][kMaxBits] = {
      {gemm_planes<P, 1, 1>, gemm_planes<P, 1, 2>, gemm_planes<P, 1, 3>, gemm_planes<P, 1, 4>},
      {gemm_planes<P, 2, 1>, gemm_planes<P, 2, 2>, gemm_planes<P, 2, 3>, gemm_planes<P, 2, 4>},
      {gemm_planes<P, 3, 1>, gemm_planes<P, 3, 2>, gemm_planes<P, 3, 3>, gemm_planes<P, 3, 4>},
      {gemm_planes<P, 4, 1>, gemm_planes<P, 4, 2>, gemm_planes<P, 4, 3>, gemm_planes<P, 4, 4>},
  };
  kTable[s.a_bits - 1][s.w_bits - 1](s, a, pixels, weights, outputs, out);
}

// code_pattern for tables without mask registers (AVX2, NEON), the vector twin of
// threshold_pack_reference's level and pattern: the policy supplies, on Sum vectors of int32 lanes,
//   static Sum load_sum(const int32_t* p, size_t n);   first n lanes from p, the rest 0
//   static Sum set1_sum(int32_t v);  add_sum(a, b);  and_sum(a, b);
//   static Sum apply_sign(Sum sign, Sum x);             sign * x for lanes of sign +1 or -1
//   static Sum add_gt(Sum acc, Sum a, Sum b);           acc + (a > b ? -1 : 0) per lane
// Every lane compares against every threshold row. Counting the rows a lane does *not* pass (one
// compare and one add each) and starting from `levels` gives the same level.
// Inlined into every block epilogue: a call per 8 channels cost a few % on small-K layers.
template <class P>
__attribute__((always_inline)) inline typename P::Sum code_pattern_lanes(const ThresholdArgs& t, typename P::Sum acc,
                                                                         int32_t add, size_t c, size_t n) {
  using Sum = typename P::Sum;
  const Sum x = P::apply_sign(P::load_sum(t.sign + c, n), P::add_sum(acc, P::set1_sum(add)));
  Sum pattern = P::set1_sum(t.levels + t.pattern_offset);
  const int32_t* row = t.thresholds + c;
  // The full-vector test outside the loop: GCC kept it inside, beside each threshold row's load.
  if (n == P::kLanes) {
    for (int k = 0; k < t.levels; ++k, row += t.channels) pattern = P::add_gt(pattern, P::load_sum(row, P::kLanes), x);
  } else {
    for (int k = 0; k < t.levels; ++k, row += t.channels) pattern = P::add_gt(pattern, P::load_sum(row, n), x);
  }
  return P::and_sum(pattern, P::set1_sum((1 << t.bits) - 1));
}

}  // namespace simd
}  // namespace lowbit
