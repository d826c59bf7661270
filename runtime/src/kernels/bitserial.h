// Bit-serial integer dot products: the microkernel interface behind every quantized conv and dense
// (the tables that implement it are in kernel_table.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "lowbit/packing.h"

namespace lowbit {

// Describes how planes combine into codes for one layer:
//   acc = sum_p a_weight[p] * ( sum_j w_weight[j] * popcount(W_j & A_p) + w_offset * popcount(A_p) )
// which equals sum over lanes of w_code * a_code when activation codes carry no offset (unsigned or
// two's complement) and lanes with all activation bits 0 (padding) contribute nothing.
struct BitserialShape {
  size_t words = 0;  // words per plane in both the patch and each output channel's weights
  int a_bits = 0;
  int32_t a_weight[kMaxBits] = {};
  int w_bits = 0;
  int32_t w_weight[kMaxBits] = {};
  int32_t w_offset = 0;

  static BitserialShape make(size_t words, QuantType activations, QuantType weights);
};

// How a kernel table wants a layer's weights laid out (pack_weights).
struct WeightLayout {
  size_t lanes;        // output channels per vector of 32-bit words
  size_t halves;       // 2: every word stored as its two nibble halves (AVX2)
  int accumulators;    // the gemm's register budget (choose_blocking), which sets the channel groups
  bool nibble_tables;  // layers nibble_tables_apply() accepts take the nibble-table layout instead
  // Its channel-vectorized gemm reads binary weights' offset from PatchRows::activation_sums (the
  // reference twin counts the offset itself, independently of the operator).
  bool takes_activation_sums;
};

// Weights as the GEMM reads them, packed once at load.
//
// Channel-vectorized layout: output channels in blocks of `lanes`, the blocks in groups of
// choose_blocking(...).blocks (the last group may be smaller): [group][k word][block in
// group][weight plane][half][lane]. One vector load yields one word of `lanes` output channels; a
// kernel working on a group reads one contiguous stream, its blocks at constant offsets (no address
// register per block). With halves = 2 each word is stored twice, as its low nibbles
// (w & 0x0F0F0F0F) and its high nibbles shifted down ((w >> 4) & 0x0F0F0F0F): a nibble-table
// popcount (VPSHUFB) then needs no masking of its own in the inner loop.
//
// Nibble-table layout (layout.nibble_tables and nibble_tables_apply(s)): output channels in
// vectors of kNibbleChannels bytes, in groups of nibble_table_vectors(w_bits):
// [group][k word][vector in group][weight plane][nibble e][channel byte], byte = nibble
// kNibbleOrder[e] of that channel's weight word (a table index as it stands).
//
// Lanes / bytes past the last output channel are zero.
size_t packed_weight_words(const WeightLayout& layout, const BitserialShape& s, size_t outputs);
// kernel_planes: [outputs][w_bits][words] (Layout::kKernelPlanes of one group).
void pack_weights(const WeightLayout& layout, const BitserialShape& s, const uint32_t* kernel_planes, size_t outputs,
                  uint32_t* packed);

// The nibble-table gemm (AVX2) looks up, per activation nibble position, a 16-byte table of
// "weighted popcount of this activation nibble AND any weight nibble": one table serves one plane,
// or two planes whose weights are 1:2 (unsigned 2-bit codes), and up to two weight planes.
// It holds the table offsets of at least one pixel's kNibbleMaxWords words.
constexpr size_t kNibbleMaxWords = 4096;
inline bool nibble_tables_apply(const BitserialShape& s) {
  return (s.a_bits == 1 || (s.a_bits == 2 && s.a_weight[1] == 2 * s.a_weight[0])) && s.w_bits <= 2 &&
         s.words <= kNibbleMaxWords;
}
// Whether a layer's weights are packed for (and its gemm calls run) the nibble-table gemm.
inline bool nibble_layout(const WeightLayout& layout, const BitserialShape& s) {
  return layout.nibble_tables && nibble_tables_apply(s);
}
// Whether a layer's gemm calls must be handed PatchRows::activation_sums: binary weights (the only
// kind with a plane offset), except where the gemm counts them itself (the reference; the
// nibble-table gemm, beside its table offsets, where the counts also bound its byte counters).
inline bool gemm_takes_activation_sums(const WeightLayout& layout, const BitserialShape& s) {
  return s.w_offset != 0 && layout.takes_activation_sums && !nibble_layout(layout, s);
}
constexpr size_t kNibbleChannels = 32;
// Channel vectors per group (weights: 2 vectors per plane and step): two for binary weights, one
// for two planes; more measured no faster (W1A2: 4 vectors 0-2 % either way, 3 vectors 10 % slower on d).
constexpr int nibble_table_vectors(int w_bits) { return w_bits == 1 ? 2 : 1; }
// Nibble e of a step: bytes 0-3 of the word's low nibbles, then of its high nibbles.
constexpr int kNibbleOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// A gemm's register blocking: M output pixels x N channel blocks.
struct Blocking {
  int pixels, blocks;
};

// The block shape that fits an accumulator budget with the fewest loads per popcount: each step
// loads N * w_bits weight vectors and broadcasts M * a_bits activation words for M*N*a*w popcounts.
// N is also the weight layout's group_blocks.
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

// The activations of a block of output pixels, read in place through an indirection (no copy of
// the receptive field): rows[t * pixels + m] is word 0 of activation plane 0 of kernel tap t for
// pixel m; plane p of that tap is the tap_words words at rows[...] + p * plane_stride. A tap in the
// padding points at zeros. taps * tap_words == BitserialShape::words.
struct GemmCarry;
struct PatchRows {
  const uint32_t* const* rows;
  size_t taps;
  size_t tap_words;
  size_t plane_stride;
  // Optional: what the gemm may keep from one call to the next (see GemmCarry). Only for calls of
  // one operator run on one worker, whose input does not change in between.
  GemmCarry* carry = nullptr;
  // Required where gemm_takes_activation_sums: per pixel of the call, the sum of its patch's
  // activation codes, sum_p a_weight[p] * popcount of plane p, which the weights' offset multiplies. The caller knows which patches share input pixels
  // and counts each input pixel once (pixel_code_sums); the gemm counted it per tap, pixel and
  // channel block, in its inner loop (Zen 5, W1A2: d 137 -> 119 us; b, one block, unchanged).
  const int32_t* activation_sums = nullptr;
};

// Per pixel i < pixels, adds the sum of its activation codes over `words` words of each plane:
// sums[i] += sum_p s.a_weight[p] * popcount(x[i * pixel_stride + p * plane_stride + w]), w < words.
using PixelCodeSumsFn = void (*)(const BitserialShape& s, const uint32_t* x, size_t pixels, size_t pixel_stride,
                                 size_t plane_stride, size_t words, int32_t* sums);

// The one loop behind every table's pixel_code_sums. Each table's translation unit instantiates it
// with a type of its own, so that each copy is built with that unit's popcount instruction (one
// shared inline copy could be the x86-64 baseline's, a library call: ~4 ns a word). kWords != 0:
// `words` is known to be kWords, and the loop over a pixel's words is unrolled (with `words`
// unknown, a 2-word loop cost ~14 cycles a pixel of layer b on Zen 5; with 2 known, ~5).
template <class Unit, size_t kWords>
void pixel_code_sums_of(const BitserialShape& s, const uint32_t* x, size_t pixels, size_t pixel_stride,
                        size_t plane_stride, size_t words, int32_t* sums) {
  const size_t n = kWords != 0 ? kWords : words;
  for (int p = 0; p < s.a_bits; ++p) {
    const int32_t weight = s.a_weight[p];
    const uint32_t* plane = x + static_cast<size_t>(p) * plane_stride;
    for (size_t i = 0; i < pixels; ++i, plane += pixel_stride) {
      int32_t bits = 0;
#pragma GCC unroll 8
      for (size_t w = 0; w < n; ++w) bits += __builtin_popcount(plane[w]);
      sums[i] += weight * bits;
    }
  }
}

template <class Unit>
void pixel_code_sums(const BitserialShape& s, const uint32_t* x, size_t pixels, size_t pixel_stride,
                     size_t plane_stride, size_t words, int32_t* sums) {
  switch (words) {  // 32, 64, 128 and 256 channels per group
    case 1: return pixel_code_sums_of<Unit, 1>(s, x, pixels, pixel_stride, plane_stride, words, sums);
    case 2: return pixel_code_sums_of<Unit, 2>(s, x, pixels, pixel_stride, plane_stride, words, sums);
    case 4: return pixel_code_sums_of<Unit, 4>(s, x, pixels, pixel_stride, plane_stride, words, sums);
    case 8: return pixel_code_sums_of<Unit, 8>(s, x, pixels, pixel_stride, plane_stride, words, sums);
    default: return pixel_code_sums_of<Unit, 0>(s, x, pixels, pixel_stride, plane_stride, words, sums);
  }
}

// The nibble-table gemm's (AVX2) state between the calls of one operator run on one worker: the
// previous call's table offsets, per-tap weighted activation counts and tap rows. A conv's next
// output row shares kh - 1 of its kernel rows' taps with the previous one (the same input
// pointers, so the same words): their offsets are moved, not recomputed. kGemmCarryWords bounds
// words * pixels of the calls it serves, and of the gemm's pixel blocks (32 KiB of offsets);
// `count` = 0 says nothing is carried.
constexpr size_t kGemmCarryWords = 2048;
struct GemmCarry {
  size_t count = 0;  // pixels of the previous call
  size_t taps = 0, tap_words = 0, plane_stride = 0;
  const uint32_t* rows[kGemmCarryWords];  // [tap][pixel]
  int32_t tap_counts[kGemmCarryWords];    // [tap][pixel]
  int32_t tap_most[kGemmCarryWords];      // [tap]: the largest weighted count of one word
  alignas(16) uint16_t offsets[kGemmCarryWords * 8];
};

// Thresholds in the form kernels use: every channel counts "sign * acc >= threshold" (decreasing
// channels negated, constant channels as always/never-passed thresholds), laid out [level][channel]
// so consecutive channels' thresholds are contiguous. The bit pattern of a channel's code is
// (level + pattern_offset) & ((1 << bits) - 1).
struct ThresholdArgs {
  const int32_t* sign;        // [channels], +1 or -1
  const int32_t* thresholds;  // [levels][channels]
  size_t channels;            // row stride of thresholds
  int levels;
  int32_t pattern_offset;
  int bits;
};

// For channels [first, first + count): level from acc[c - first], code bits OR-ed into
// out[p * plane_words + c / 32] at bit c % 32 (the words must start out zero for those lanes).
// The plain twin of every table's fused code output.
void threshold_pack_reference(const ThresholdArgs& t, const int32_t* acc, size_t first, size_t count, uint32_t* out,
                              size_t plane_words);

// Where a gemm puts each pixel's results: the int32 accumulators acc[m * outputs + o], or, when
// `thresholds` is set, the output codes straight into the packed output: gemm output o is channel
// first + o of pixel m's planes at codes + m * pixel_words (see threshold_pack_reference).
struct GemmOutput {
  int32_t* acc;
  const ThresholdArgs* thresholds;
  size_t first;
  uint32_t* codes;
  size_t pixel_words, plane_words;
};

// Outputs o < outputs for pixel m < pixels (<= kMaxGemmPixels), from weights packed by
// pack_weights with the table's weight_lanes.
using BitserialGemmFn = void (*)(const BitserialShape& s, const PatchRows& a, size_t pixels,
                                 const uint32_t* packed_weights, size_t outputs, const GemmOutput& out);

// Largest pixel block an operator hands to one gemm call (sizes its scratch). A multiple of every
// pixel blocking the tables use (2, 3, 4, 6). Rows up to 72 pixels go in one call: the nibble-table
// gemm reads a channel group's weights once per call and runs 4 pixels per pass (a 56-pixel row as
// 19 + 19 + 18 left 2- and 1-pixel passes: 3-4 % slower on layers b and c than 24 per call).
constexpr size_t kMaxGemmPixels = 72;

// The pixel block for rows of `width` pixels: as few blocks as kMaxGemmPixels allows, of equal
// size (a 28-pixel row as 14 + 14, not 24 + 4).
constexpr size_t gemm_pixel_block(size_t width) {
  const size_t blocks = (width + kMaxGemmPixels - 1) / kMaxGemmPixels;
  return blocks == 0 ? kMaxGemmPixels : (width + blocks - 1) / blocks;
}

}  // namespace lowbit
