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
//   using Sum;  static Sum zero_sum();  static Sum widen(Sum s, Count c);      int32 per lane (mod 2^32)
//   static Sum scale_add(Sum acc, Sum x, int32_t c);   acc + c * x
//   static void store(int32_t* dst, Sum x, int32_t add, size_t n);   first n lanes of x + add
//   static void emit_codes(const ThresholdArgs& t, Sum x, int32_t add, size_t first, size_t n,
//                          uint32_t* codes, size_t plane_words);
//                                                      threshold_pack_reference of the first n lanes of x + add
//                                                      (emit_codes_lanes below, or the table's own)
//   static constexpr int kAccumulators;                Counts that fit the register file with the rest
//
// Why vectorize over output channels: every lane of an accumulator is one output channel, so a
// block ends without horizontal reductions, the reduction dimension needs no tail handling (any
// number of 32-bit words), and the activation word of one pixel and plane is broadcast once for
// all kLanes channels. The receptive field is read in place through PatchRows, never copied.
#pragma once

#include <algorithm>
#include <initializer_list>

#include "kernels/bitserial.h"

// Loops over the block's compile-time extents must be unrolled completely, or the accumulators
// live in memory instead of registers (GCC's -O2 does not unroll them on its own).
#define LOWBIT_UNROLL _Pragma("GCC unroll 16")

namespace lowbit {
namespace simd {

struct Blocking {
  int pixels, blocks;  // M output pixels x N channel blocks
};

// The block shape that fits the accumulator budget with the fewest loads per popcount: each step
// loads N * w_bits weight vectors and broadcasts M * a_bits activation words for M*N*a*w popcounts.
constexpr Blocking choose_blocking(int a_bits, int w_bits, int budget) {
  Blocking best{1, 1};
  double best_loads = 1e9;
  for (int m : {1, 2, 3, 4, 6})  // each divides kMaxGemmPixels
    for (int n = 1; n <= 4; ++n) {
      const int pairs = m * n * a_bits * w_bits;
      if (pairs > budget) continue;
      const double loads = static_cast<double>(n * w_bits + m * a_bits) / pairs;
      if (loads < best_loads) {
        best = Blocking{m, n};
        best_loads = loads;
      }
    }
  return best;
}
static_assert(kMaxGemmPixels % 12 == 0, "pixel blockings 1, 2, 3, 4 and 6 must divide the operator's pixel block");

// M pixels (from m0) x N channel blocks (from block b0), all plane pairs advancing together.
template <class P, int AB, int WB, int M, int N>
void gemm_block(const BitserialShape& s, const PatchRows& a, size_t pixels, size_t m0, const uint32_t* weights,
                size_t b0, size_t outputs, const GemmOutput& out) {
  using Vec = typename P::Vec;
  using Count = typename P::Count;
  using Sum = typename P::Sum;
  constexpr size_t L = P::kLanes;
  constexpr int H = P::kWeightHalves;
  const size_t block_words = s.words * WB * H * L;  // one channel block's packed weights
  const uint32_t* block = weights + b0 * block_words;

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
  Sum sum[M][AB][N][WB];
  for_each_pair([&](int m, int p, int n, int j) { sum[m][p][n][j] = P::zero_sum(); });

  // Binary weights (the only kind with an offset, always one plane) need each pixel's activation
  // popcount per plane: counted here on the scalar units, beside the vector work, from the words
  // the block broadcasts anyway.
  constexpr bool kCountActivations = WB == 1;
  int32_t activation_count[M][AB] = {};
  // The (tap, word) steps run in chunks of at most kCountSteps, after which the narrow counters
  // are widened into the int32 sums. The sums change only between chunks, so the inner loop
  // carries just the counters (a widen inside it made GCC shuffle spilled sums every step).
  constexpr size_t kChunk = P::kCountSteps != 0 ? P::kCountSteps : ~size_t{0};
  const uint32_t* row[M];
  size_t t = 0, i = 0;
  auto load_rows = [&] {
    LOWBIT_UNROLL
    for (int m = 0; m < M; ++m) row[m] = a.rows[t * pixels + m0 + static_cast<size_t>(m)];
  };
  if (a.taps != 0) load_rows();
  while (t < a.taps) {
    Count count[M][AB][N][WB];
    for_each_pair([&](int m, int p, int n, int j) { count[m][p][n][j] = P::zero_count(); });
    for (size_t step = 0; step < kChunk && t < a.taps; ++step) {
      const uint32_t* step_weights = block + (t * a.tap_words + i) * WB * H * L;
      Vec w[N][WB][H];
      LOWBIT_UNROLL
      for (int n = 0; n < N; ++n)
        LOWBIT_UNROLL
        for (int j = 0; j < WB; ++j)
          LOWBIT_UNROLL
          for (int h = 0; h < H; ++h) w[n][j][h] = P::load(step_weights + n * block_words + (j * H + h) * L);
      LOWBIT_UNROLL
      for (int m = 0; m < M; ++m)
        LOWBIT_UNROLL
        for (int p = 0; p < AB; ++p) {
          const uint32_t* word = row[m] + p * a.plane_stride + i;
          if constexpr (kCountActivations) activation_count[m][p] += __builtin_popcount(*word);
          const Vec x = P::broadcast(word);
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
      if (++i == a.tap_words) {
        i = 0;
        if (++t < a.taps) load_rows();
      }
    }
    for_each_pair([&](int m, int p, int n, int j) { sum[m][p][n][j] = P::widen(sum[m][p][n][j], count[m][p][n][j]); });
  }

  LOWBIT_UNROLL
  for (int m = 0; m < M; ++m) {
    int32_t offset = 0;
    if constexpr (kCountActivations) {
      LOWBIT_UNROLL
      for (int p = 0; p < AB; ++p) offset += s.a_weight[p] * activation_count[m][p];
      offset *= s.w_offset;
    }
    LOWBIT_UNROLL
    for (int n = 0; n < N; ++n) {
      Sum total = P::zero_sum();
      LOWBIT_UNROLL
      for (int p = 0; p < AB; ++p)
        LOWBIT_UNROLL
        for (int j = 0; j < WB; ++j) {
          total = P::scale_add(total, sum[m][p][n][j], s.a_weight[p] * s.w_weight[j]);
        }
      const size_t o = (b0 + static_cast<size_t>(n)) * L;
      const size_t pixel = m0 + static_cast<size_t>(m);
      const size_t valid = std::min(L, outputs - o);
      // Codes are emitted from registers: the accumulators never travel through memory.
      if (out.thresholds)
        P::emit_codes(*out.thresholds, total, offset, out.first + o, valid, out.codes + pixel * out.pixel_words,
                      out.plane_words);
      else
        P::store(out.acc + pixel * outputs + o, total, offset, valid);
    }
  }
}

// The channel blocks from `n` on for M pixels: N blocks at a time, the rest in one narrower block
// (64 channels on AVX2 with N = 3: 3 + 3 + 2 blocks, not 3 + 3 + 1 + 1).
template <class P, int AB, int WB, int M, int N>
void gemm_pixel_block(const BitserialShape& s, const PatchRows& a, size_t pixels, size_t m0, const uint32_t* weights,
                      size_t outputs, const GemmOutput& out, size_t n = 0) {
  const size_t blocks = (outputs + P::kLanes - 1) / P::kLanes;
  for (; n + N <= blocks; n += N) gemm_block<P, AB, WB, M, N>(s, a, pixels, m0, weights, n, outputs, out);
  if constexpr (N > 1) {
    if (n < blocks) gemm_pixel_block<P, AB, WB, M, N - 1>(s, a, pixels, m0, weights, outputs, out, n);
  }
}

// All outputs for `pixels` pixels: blocks of M x N, remainders with one pixel and/or one block.
template <class P, int AB, int WB>
void gemm_planes(const BitserialShape& s, const PatchRows& a, size_t pixels, const uint32_t* weights, size_t outputs,
                 const GemmOutput& out) {
  constexpr Blocking b = choose_blocking(AB, WB, P::kAccumulators);
  size_t m = 0;
  for (; m + b.pixels <= pixels; m += b.pixels)
    gemm_pixel_block<P, AB, WB, b.pixels, b.blocks>(s, a, pixels, m, weights, outputs, out);
  for (; m < pixels; ++m) gemm_pixel_block<P, AB, WB, 1, b.blocks>(s, a, pixels, m, weights, outputs, out);
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

// emit_codes for tables without mask registers (AVX2, NEON), the vector twin of
// threshold_pack_reference: the policy supplies, on Sum vectors of int32 lanes,
//   static Sum load_sum(const int32_t* p, size_t n);   first n lanes from p, the rest 0
//   static Sum set1_sum(int32_t v);  add_sum(a, b);  mul_sum(a, b);  and_sum(a, b);
//   static Sum count_ge(Sum level, Sum x, Sum th);      level + (x >= th) per lane
//   static uint32_t lane_bits(Sum x, int p);            bit i = bit p of lane i
// Every lane compares against every threshold row; the code bit planes leave as lane masks.
// Inlined into every block epilogue: a call per 8 channels cost a few % on small-K layers.
template <class P>
__attribute__((always_inline)) inline void emit_codes_lanes(const ThresholdArgs& t, typename P::Sum acc, int32_t add,
                                                            size_t c, size_t n, uint32_t* codes, size_t plane_words) {
  using Sum = typename P::Sum;
  const Sum x = P::mul_sum(P::load_sum(t.sign + c, n), P::add_sum(acc, P::set1_sum(add)));
  Sum level = P::set1_sum(0);
  for (int k = 0; k < t.levels; ++k)
    level = P::count_ge(level, x, P::load_sum(t.thresholds + static_cast<size_t>(k) * t.channels + c, n));
  const Sum pattern = P::and_sum(P::add_sum(level, P::set1_sum(t.pattern_offset)), P::set1_sum((1 << t.bits) - 1));
  const uint64_t valid = (uint64_t{1} << n) - 1;
  for (int p = 0; p < t.bits; ++p) {
    const uint64_t bits = (P::lane_bits(pattern, p) & valid) << (c % kWordBits);
    uint32_t* word = codes + static_cast<size_t>(p) * plane_words + c / kWordBits;
    word[0] |= static_cast<uint32_t>(bits);
    if (bits >> kWordBits) word[1] |= static_cast<uint32_t>(bits >> kWordBits);
  }
}

}  // namespace simd
}  // namespace lowbit
