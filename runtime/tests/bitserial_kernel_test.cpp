// The bit-serial microkernel against a naive sum of w_code * a_code, for every activation width and
// kind, every weight kind and word counts 1..9 and beyond every vector width. Activations reach the
// kernel as the operators hand them over: through an indirection of taps, each tap in its own
// buffer with a plane stride wider than the tap (the slack holds garbage that must not be read),
// padding taps pointing at a shared zero buffer. Lanes beyond the valid ones hold zero activation
// bits, as the packed layout guarantees.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <set>

#include <random>
#include <string>
#include <vector>

#include "quant_test_util.h"
#include "kernels/kernel_table.h"
#include "lowbit/packing.h"

namespace {

using lowbit_test::make_quant;
using lowbit_test::qname;

using lowbit::BitserialShape;
using lowbit::QuantKind;
using lowbit::QuantType;

std::vector<QuantType> activation_types() {
  std::vector<QuantType> v;
  for (int bits = 1; bits <= 4; ++bits) {
    v.push_back(make_quant(QuantKind::kUnsigned, bits));
    v.push_back(make_quant(QuantKind::kSigned, bits));
    if (bits >= 2) v.push_back(make_quant(QuantKind::kSignedNarrow, bits));
  }
  return v;
}

std::vector<QuantType> weight_types() {
  std::vector<QuantType> v = {make_quant(QuantKind::kBinary, 1)};
  for (int bits = 1; bits <= 4; ++bits) {
    v.push_back(make_quant(QuantKind::kSigned, bits));
    if (bits >= 2) v.push_back(make_quant(QuantKind::kSignedNarrow, bits));
    v.push_back(make_quant(QuantKind::kUnsigned, bits));
  }
  return v;
}

int32_t random_code(std::mt19937& g, QuantType q) {
  if (q.kind == QuantKind::kBinary) return std::uniform_int_distribution<int>(0, 1)(g) ? 1 : -1;
  return std::uniform_int_distribution<int32_t>(q.min_code(), q.max_code())(g);
}

// Stores `code` at lane `lane` of `planes` consecutive planes of `words` words (plain bit loop).
void put(std::vector<uint32_t>& buf, size_t base, size_t words, size_t lane, QuantType q, int32_t code) {
  const uint32_t pattern = q.code_to_bits(code);
  for (int p = 0; p < q.bits; ++p) {
    uint32_t& w = buf[base + static_cast<size_t>(p) * words + lane / 32];
    if ((pattern >> p) & 1u) w |= 1u << (lane % 32);
  }
}

struct KernelCase {
  QuantType a, w;
  size_t words, pixels, outputs, taps;
  std::vector<bool> padding_tap;
  bool shifted_taps = false;  // like a stride-1 conv: pixel m's tap t is pixel m + 1's tap t - 1 (same row)
  std::vector<uint32_t> patches, weights;  // [pixel][plane][words]; kernel planes [output][plane][words]
  std::vector<int64_t> expected;           // [pixels][outputs]
};

// A random case: each lane is valid with some probability (invalid lanes keep all-zero activation
// bits, like zero padding and the unused lanes of a partial word). Weight lanes that are invalid
// get random bits when `dirty_weight_padding`: they must not matter since the activation is zero.
// With `extreme_codes`, valid activations take their largest code and each output's weights all
// their largest (even outputs) or smallest (odd outputs) one: accumulators as far from 0 as K allows.
// 1 .. max_outputs output channels.
KernelCase make_case(std::mt19937& g, QuantType a, QuantType w, size_t words, size_t pixels, bool dirty_weight_padding,
                     bool extreme_codes = false, size_t max_outputs = 40) {
  KernelCase k;
  k.a = a;
  k.w = w;
  k.words = words;
  k.pixels = pixels;
  k.outputs = std::uniform_int_distribution<size_t>(1, max_outputs)(g);
  std::vector<size_t> divisors;
  for (size_t t = 1; t <= words; ++t)
    if (words % t == 0) divisors.push_back(t);
  k.taps = divisors[std::uniform_int_distribution<size_t>(0, divisors.size() - 1)(g)];
  k.padding_tap.assign(k.taps, false);
  for (size_t t = 0; t < k.taps; ++t) k.padding_tap[t] = k.taps > 1 && std::bernoulli_distribution(0.2)(g);
  k.shifted_taps = k.taps > 1 && std::bernoulli_distribution(0.5)(g);
  const size_t lanes = words * 32, tap_lanes = lanes / k.taps;
  const double valid_fraction = std::uniform_real_distribution<double>(0.3, 1.0)(g);
  std::vector<bool> valid(lanes);
  for (size_t i = 0; i < lanes; ++i)  // shifted taps: the same channels valid in every tap
    valid[i] = !k.padding_tap[i / tap_lanes] &&
               (k.shifted_taps && i >= tap_lanes ? valid[i % tap_lanes] : std::bernoulli_distribution(valid_fraction)(g));
  if (k.shifted_taps && k.padding_tap[0])
    for (size_t i = tap_lanes; i < lanes; ++i) valid[i] = !k.padding_tap[i / tap_lanes];
  const size_t patch_words = words * static_cast<size_t>(a.bits);
  std::vector<int32_t> acodes(pixels * lanes, 0);
  for (size_t m = 0; m < pixels; ++m)
    for (size_t i = 0; i < lanes; ++i)
      if (valid[i]) acodes[m * lanes + i] = extreme_codes ? a.max_code() : random_code(g, a);
  if (k.shifted_taps)
    for (size_t t = 1; t < k.taps; ++t)
      for (size_t m = 0; m + 1 < pixels; ++m)
        if (!k.padding_tap[t] && !k.padding_tap[t - 1])
          std::copy_n(acodes.begin() + static_cast<std::ptrdiff_t>((m + 1) * lanes + (t - 1) * tap_lanes), tap_lanes,
                      acodes.begin() + static_cast<std::ptrdiff_t>(m * lanes + t * tap_lanes));
  k.patches.assign(pixels * patch_words, 0);
  for (size_t m = 0; m < pixels; ++m)
    for (size_t i = 0; i < lanes; ++i)
      if (valid[i]) put(k.patches, m * patch_words, words, i, a, acodes[m * lanes + i]);
  k.weights.assign(k.outputs * static_cast<size_t>(w.bits) * words, 0);
  k.expected.assign(pixels * k.outputs, 0);
  for (size_t o = 0; o < k.outputs; ++o) {
    const size_t base = o * static_cast<size_t>(w.bits) * words;
    for (size_t i = 0; i < lanes; ++i) {
      if (valid[i] || dirty_weight_padding) {
        const int32_t wc = !extreme_codes ? random_code(g, w) : o % 2 ? w.min_code() : w.max_code();
        put(k.weights, base, words, i, w, wc);
        if (valid[i])
          for (size_t m = 0; m < pixels; ++m) k.expected[m * k.outputs + o] += static_cast<int64_t>(wc) * acodes[m * lanes + i];
      }  // else all-zero weight bits (code -1 for binary weights) against zero activation bits
    }
  }
  return k;
}

// Word counts around every vector width (4, 8 and 16 words) plus real layer sizes.
std::vector<size_t> word_counts() {
  std::vector<size_t> v;
  for (size_t w = 1; w <= 9; ++w) v.push_back(w);
  for (size_t w : {15, 16, 17, 31, 32, 33, 72}) v.push_back(w);
  return v;
}

// `a` with the activation sums the gemm needs for binary weights (PatchRows::activation_sums),
// counted naively into `sums` through the indirection.
lowbit::PatchRows with_sums(const BitserialShape& s, lowbit::PatchRows a, size_t pixels, std::vector<int32_t>* sums) {
  sums->assign(pixels, 0);
  for (size_t m = 0; m < pixels; ++m)
    for (size_t t = 0; t < a.taps; ++t)
      for (int p = 0; p < s.a_bits; ++p)
        for (size_t i = 0; i < a.tap_words; ++i)
          (*sums)[m] += s.a_weight[p] * __builtin_popcount(a.rows[t * pixels + m][static_cast<size_t>(p) * a.plane_stride + i]);
  a.activation_sums = sums->data();
  return a;
}

// Runs a table's gemm the way an operator does: weights packed for its lanes, activations through
// scattered tap buffers (see the file comment).
// With `thresholds`, the gemm emits codes into `codes` ([pixel][plane][plane_words]) instead.
std::vector<int32_t> run_gemm(const lowbit::KernelTable& table, const KernelCase& k, std::mt19937& g,
                              const lowbit::ThresholdArgs* thresholds = nullptr, size_t first = 0,
                              std::vector<uint32_t>* codes = nullptr, size_t plane_words = 0) {
  const BitserialShape s = BitserialShape::make(k.words, k.a, k.w);
  std::vector<uint32_t> packed(lowbit::packed_weight_words(table.weights, s, k.outputs));
  lowbit::pack_weights(table.weights, s, k.weights.data(), k.outputs, packed.data());
  const size_t tap_words = k.words / k.taps;
  const size_t plane_stride = tap_words + std::uniform_int_distribution<size_t>(0, 2)(g);
  const size_t planes = static_cast<size_t>(k.a.bits);
  const std::vector<uint32_t> zeros(planes * plane_stride, 0);
  std::vector<std::vector<uint32_t>> buffers;
  std::vector<const uint32_t*> rows(k.taps * k.pixels);
  for (size_t t = 0; t < k.taps; ++t)
    for (size_t m = 0; m < k.pixels; ++m) {
      if (k.padding_tap[t]) {
        rows[t * k.pixels + m] = zeros.data();
        continue;
      }
      if (k.shifted_taps && t > 0 && !k.padding_tap[t - 1] && m + 1 < k.pixels) {  // one buffer, as a conv's rows
        rows[t * k.pixels + m] = rows[(t - 1) * k.pixels + m + 1];
        continue;
      }
      std::vector<uint32_t> buffer(planes * plane_stride);
      for (uint32_t& word : buffer) word = static_cast<uint32_t>(g());  // slack garbage
      for (size_t p = 0; p < planes; ++p)
        for (size_t i = 0; i < tap_words; ++i)
          buffer[p * plane_stride + i] = k.patches[(m * planes + p) * k.words + t * tap_words + i];
      buffers.push_back(std::move(buffer));
      rows[t * k.pixels + m] = buffers.back().data();
    }
  std::vector<int32_t> acc(k.pixels * k.outputs + 1, 0x5a5a5a5a);  // one guard entry past the end
  const lowbit::GemmOutput out{acc.data(), thresholds, first, codes ? codes->data() : nullptr,
                               thresholds ? static_cast<size_t>(thresholds->bits) * plane_words : 0, plane_words};
  std::vector<int32_t> sums;
  table.bitserial_gemm(s, with_sums(s, lowbit::PatchRows{rows.data(), k.taps, tap_words, plane_stride}, k.pixels, &sums),
                       k.pixels, packed.data(), k.outputs, out);
  EXPECT_EQ(acc.back(), 0x5a5a5a5a) << "wrote past the last output";
  acc.pop_back();
  return acc;
}

void check_kernel(const lowbit::KernelTable& table) {
  std::mt19937 g(4242);
  int cases = 0;
  for (const QuantType a : activation_types())
    for (const QuantType w : weight_types())
      for (size_t words : word_counts()) {
        SCOPED_TRACE(std::string(table.isa) + ": a " + qname(a) + " w " + qname(w) + " words " + std::to_string(words));
        for (const bool dirty : {false, true}) {
          const size_t pixels = std::uniform_int_distribution<size_t>(1, lowbit::kMaxGemmPixels)(g);
          const KernelCase k = make_case(g, a, w, words, pixels, dirty);
          const std::vector<int32_t> acc = run_gemm(table, k, g);
          for (size_t i = 0; i < pixels * k.outputs; ++i)
            ASSERT_EQ(acc[i], k.expected[i]) << "pixel " << i / k.outputs << " output " << i % k.outputs << " of "
                                             << pixels << "x" << k.outputs << ", " << k.taps << " taps"
                                             << (dirty ? " (dirty weight padding)" : "");
          ++cases;
        }
      }
  EXPECT_GT(cases, 1000);
}

TEST(BitserialKernel, ReferenceMatchesNaiveDotProduct) { check_kernel(lowbit::reference_kernels()); }

// Every optimized table this CPU can run (on x86: avx2, avx512; on ARM: neon) against the same cases.
TEST(BitserialKernel, EveryAvailableTableMatchesNaiveDotProduct) {
  const std::vector<const lowbit::KernelTable*> tables = lowbit::available_kernels();
  ASSERT_EQ(tables.front(), &lowbit::reference_kernels());
  std::string names;
  for (const lowbit::KernelTable* t : tables) {
    names += std::string(" ") + t->isa;
    check_kernel(*t);
  }
  std::printf("kernel tables checked:%s; dispatched: %s\n", names.c_str(), lowbit::kernels().isa);
#if defined(__x86_64__) || defined(__aarch64__) || defined(__ARM_NEON)
  EXPECT_GT(tables.size(), 1u) << "no optimized kernel table runs on this CPU";
#endif
}

TEST(BitserialKernel, RowsCallingWithACarryEqualTheReference) {
  // The conv operator's calls: one per output row of a 3x3 convolution (stride 1 and 2, padding 1)
  // over an image, all with one GemmCarry, so a row reuses the taps it shares with the previous
  // one; now and then a call for half a row in between (a different pixel count: nothing may be
  // reused across it). Every call must give the reference table's accumulators. The last two
  // images have rows of 72 pixels x 27 words, close to the carry's bound (kGemmCarryWords), as
  // layers b-d's rows are.
  std::mt19937 g(1234);
  const lowbit::KernelTable& reference = lowbit::reference_kernels();
  auto carry = std::make_unique<lowbit::GemmCarry>();
  for (const lowbit::KernelTable* table : lowbit::available_kernels())
    for (const QuantType a : {make_quant(QuantKind::kUnsigned, 2), make_quant(QuantKind::kUnsigned, 1)})
      for (const QuantType w : {make_quant(QuantKind::kBinary, 1), make_quant(QuantKind::kSigned, 2)})
        for (int it = 0; it < 8; ++it) {
          const auto uniform = [&g](size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(g); };
          const bool wide = it >= 6;
          const size_t stride = wide ? static_cast<size_t>(it - 5) : uniform(1, 2);
          const size_t height = wide ? 12 : uniform(3, 6), width = wide ? 72 * stride - (stride - 1) : uniform(2, 11);
          const size_t tap_words = wide ? 3 : uniform(1, 3);
          const size_t plane_stride = tap_words + uniform(0, 1), outputs = uniform(1, 70);
          const size_t planes = static_cast<size_t>(a.bits), pixel_words = planes * plane_stride;
          std::vector<uint32_t> image(height * width * pixel_words), zeros(pixel_words, 0);
          for (uint32_t& word : image) word = static_cast<uint32_t>(g());
          const BitserialShape s = BitserialShape::make(9 * tap_words, a, w);
          std::vector<uint32_t> weights(outputs * static_cast<size_t>(w.bits) * s.words);
          for (uint32_t& word : weights) word = static_cast<uint32_t>(g());
          std::vector<uint32_t> packed(lowbit::packed_weight_words(table->weights, s, outputs));
          std::vector<uint32_t> reference_packed(lowbit::packed_weight_words(reference.weights, s, outputs));
          lowbit::pack_weights(table->weights, s, weights.data(), outputs, packed.data());
          lowbit::pack_weights(reference.weights, s, weights.data(), outputs, reference_packed.data());
          const size_t out_height = (height - 1) / stride + 1, out_width = (width - 1) / stride + 1;
          carry->count = 0;
          for (size_t oy = 0; oy < out_height; ++oy) {
            const size_t pixels = g() % 4 == 0 ? (out_width + 1) / 2 : out_width;
            std::vector<const uint32_t*> rows(9 * pixels);
            for (size_t t = 0; t < 9; ++t)
              for (size_t m = 0; m < pixels; ++m) {
                const long y = static_cast<long>(oy * stride + t / 3) - 1, x = static_cast<long>(m * stride + t % 3) - 1;
                const bool inside = y >= 0 && y < static_cast<long>(height) && x >= 0 && x < static_cast<long>(width);
                rows[t * pixels + m] = inside ? image.data() + (static_cast<size_t>(y) * width + static_cast<size_t>(x)) * pixel_words
                                              : zeros.data();
              }
            std::vector<int32_t> got(pixels * outputs), want(pixels * outputs);
            std::vector<int32_t> sums;
            table->bitserial_gemm(s, with_sums(s, lowbit::PatchRows{rows.data(), 9, tap_words, plane_stride, carry.get()}, pixels, &sums),
                                  pixels, packed.data(), outputs, lowbit::GemmOutput{got.data(), nullptr, 0, nullptr, 0, 0});
            reference.bitserial_gemm(s, lowbit::PatchRows{rows.data(), 9, tap_words, plane_stride}, pixels,
                                     reference_packed.data(), outputs, lowbit::GemmOutput{want.data(), nullptr, 0, nullptr, 0, 0});
            ASSERT_EQ(got, want) << table->isa << " a " << qname(a) << " w " << qname(w) << " row " << oy << " of "
                                 << out_height << ", " << pixels << " pixels, stride " << stride << ", tap words "
                                 << tap_words;
          }
        }
}

TEST(BitserialKernel, EveryTableEqualsReferenceOnExtremes) {
  // All lanes at the extreme codes: the largest magnitudes the planes can produce.
  for (const lowbit::KernelTable* table : lowbit::available_kernels())
    for (const QuantType a : activation_types())
      for (const QuantType w : weight_types())
        for (const int32_t ac : {a.min_code(), a.max_code()})
          for (const int32_t wc : {w.min_code(), w.max_code()}) {
            if (w.kind == QuantKind::kBinary && wc == 0) continue;
            SCOPED_TRACE(std::string(table->isa) + " a " + qname(a) + "=" + std::to_string(ac) + " w " + qname(w) + "=" +
                         std::to_string(wc));
            const size_t words = 33, lanes = words * 32;
            std::vector<uint32_t> patch(words * static_cast<size_t>(a.bits), 0), weights(words * static_cast<size_t>(w.bits), 0);
            for (size_t i = 0; i < lanes; ++i) {
              put(patch, 0, words, i, a, ac);
              put(weights, 0, words, i, w, wc);
            }
            const BitserialShape s = BitserialShape::make(words, a, w);
            std::vector<uint32_t> packed(lowbit::packed_weight_words(table->weights, s, 1));
            lowbit::pack_weights(table->weights, s, weights.data(), 1, packed.data());
            const uint32_t* row = patch.data();
            int32_t acc = 0;
            std::vector<int32_t> sums;
            table->bitserial_gemm(s, with_sums(s, lowbit::PatchRows{&row, 1, words, words}, 1, &sums), 1, packed.data(), 1,
                                  lowbit::GemmOutput{&acc, nullptr, 0, nullptr, 0, 0});
            EXPECT_EQ(acc, static_cast<int32_t>(lanes) * ac * wc);
          }
}

TEST(BitserialKernel, EveryTableEmitsTheReferenceCodes) {
  // The fused code output against threshold_pack_reference of the naive accumulators: random signs
  // and thresholds near the accumulators (including the INT32_MIN / INT32_MAX "always" / "never"
  // entries of constant channels, and values just inside and outside int16), channel offsets that
  // are word-aligned or not, up to 150 outputs (whole 64-channel groups, whose codes AVX-512 writes
  // as whole words when aligned), and every output code type. Most cases fit one K chunk of the
  // nibble-table gemm (AVX2); one spans several, and one has so many words and extreme codes that
  // its accumulators leave the 16-bit range (that gemm's two epilogues).
  std::mt19937 g(77);
  const std::vector<QuantType> code_types = {make_quant(QuantKind::kUnsigned, 1), make_quant(QuantKind::kUnsigned, 2),
                                             make_quant(QuantKind::kUnsigned, 4), make_quant(QuantKind::kSigned, 3),
                                             make_quant(QuantKind::kSignedNarrow, 2), make_quant(QuantKind::kBinary, 1)};
  const std::vector<QuantType> weights = {make_quant(QuantKind::kBinary, 1), make_quant(QuantKind::kSigned, 2)};
  for (const lowbit::KernelTable* table : lowbit::available_kernels())
    for (const QuantType q : code_types)
      for (const QuantType w : weights)
        for (int it = 0; it < 14; ++it) {
          const auto uniform = [&g](size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(g); };
          const size_t words = it < 12 ? uniform(1, 20) : it == 12 ? uniform(37, 90) : uniform(1100, 1300);
          const size_t pixels = uniform(1, it < 13 ? lowbit::kMaxGemmPixels : 6);
          const KernelCase k = make_case(g, make_quant(QuantKind::kUnsigned, 2), w, words, pixels, true, it == 13,
                                         it % 3 == 0 ? 150 : 40);
          const size_t first = it % 2 ? 32 * uniform(0, 2) : uniform(0, 40);
          const size_t channels = first + k.outputs + std::uniform_int_distribution<size_t>(0, 5)(g);
          const int levels = q.threshold_count();
          std::vector<int32_t> sign(channels), thresholds(static_cast<size_t>(levels) * channels);
          std::uniform_int_distribution<int32_t> near(-80 * static_cast<int32_t>(words), 80 * static_cast<int32_t>(words));
          for (int32_t& s : sign) s = g() & 1 ? 1 : -1;
          for (int32_t& t : thresholds) {
            const int roll = static_cast<int>(g() % 20);
            const int32_t int16_edge = 32760 + static_cast<int32_t>(g() % 16);  // 32760 .. 32775
            t = roll == 0 ? INT32_MIN : roll == 1 ? INT32_MAX : roll == 2 ? int16_edge : roll == 3 ? -int16_edge : near(g);
          }
          const int32_t offset = q.kind == QuantKind::kSigned || q.kind == QuantKind::kSignedNarrow ? q.min_code() : 0;
          const lowbit::ThresholdArgs args{sign.data(), thresholds.data(), channels, levels, offset, q.bits};
          const size_t plane_words = lowbit::words_for(channels) + 1;  // a spare word catches overruns
          const size_t pixel_words = plane_words * static_cast<size_t>(q.bits);
          std::vector<uint32_t> want(pixels * pixel_words, 0), got(pixels * pixel_words, 0);
          for (size_t m = 0; m < pixels; ++m) {
            std::vector<int32_t> acc(k.outputs);
            for (size_t o = 0; o < k.outputs; ++o) acc[o] = static_cast<int32_t>(k.expected[m * k.outputs + o]);
            lowbit::threshold_pack_reference(args, acc.data(), first, k.outputs, want.data() + m * pixel_words, plane_words);
          }
          run_gemm(*table, k, g, &args, first, &got, plane_words);
          SCOPED_TRACE(std::string(table->isa) + " codes " + qname(q) + " weights " + qname(w) + " first " +
                       std::to_string(first) + " outputs " + std::to_string(k.outputs) + " pixels " + std::to_string(pixels));
          ASSERT_EQ(got, want);
        }
}

TEST(BitserialKernel, ForcedIsaNameIsHonouredOnlyIfSupported) {
  // kernels() is fixed at first use; here we only check the names are distinct and non-empty.
  std::set<std::string> names;
  for (const lowbit::KernelTable* t : lowbit::available_kernels()) {
    ASSERT_NE(t->isa, nullptr);
    EXPECT_TRUE(names.insert(t->isa).second) << "duplicate table name " << t->isa;
    EXPECT_TRUE(t->supported());
  }
}

// pixel_code_sums of every table (one template, each built with its table's flags) against a
// naive count: strided pixels and planes, slack words that must not count, sums added to.
TEST(BitserialKernel, EveryTableAddsPixelCodeSums) {
  std::mt19937 g(77);
  const auto uniform = [&g](size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(g); };
  for (const lowbit::KernelTable* table : lowbit::available_kernels())
    for (const QuantType a : activation_types())
      for (int it = 0; it < 27; ++it) {
        const BitserialShape s = BitserialShape::make(1, a, make_quant(QuantKind::kBinary, 1));
        // Every word count 1..9 three times: 1, 2, 4 and 8 have unrolled loops of their own.
        const size_t pixels = uniform(1, 40), words = 1 + static_cast<size_t>(it) % 9, plane_stride = words + uniform(0, 2);
        const size_t pixel_stride = static_cast<size_t>(a.bits) * plane_stride + uniform(0, 3);
        std::vector<uint32_t> x(pixels * pixel_stride);
        for (uint32_t& word : x) word = static_cast<uint32_t>(g());
        std::vector<int32_t> sums(pixels + 1), want(pixels + 1);
        for (size_t i = 0; i <= pixels; ++i) sums[i] = want[i] = static_cast<int32_t>(g() % 1000);
        for (size_t i = 0; i < pixels; ++i)
          for (int p = 0; p < a.bits; ++p)
            for (size_t w = 0; w < words; ++w)
              want[i] += s.a_weight[p] * __builtin_popcount(x[i * pixel_stride + static_cast<size_t>(p) * plane_stride + w]);
        table->pixel_code_sums(s, x.data(), pixels, pixel_stride, plane_stride, words, sums.data());
        ASSERT_EQ(sums, want) << table->isa << " a " << qname(a) << ", " << pixels << " pixels, " << words << " words";
      }
}

TEST(BitserialKernel, ShapeDescribesPlaneWeights) {
  const BitserialShape s = BitserialShape::make(3, make_quant(QuantKind::kSigned, 3), make_quant(QuantKind::kBinary, 1));
  EXPECT_EQ(s.words, 3u);
  EXPECT_EQ(s.a_bits, 3);
  EXPECT_EQ(s.a_weight[0], 1);
  EXPECT_EQ(s.a_weight[1], 2);
  EXPECT_EQ(s.a_weight[2], -4);
  EXPECT_EQ(s.w_bits, 1);
  EXPECT_EQ(s.w_weight[0], 2);
  EXPECT_EQ(s.w_offset, -1);
}

}  // namespace
