// Code ranges and bit-plane packing (packing.h and the builder's pack/unpack helpers): round trips for
// every QuantType, where each bit lands, zero padding lanes, and copy_bits at unaligned offsets.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "quant_test_util.h"
#include "lowbit/graph.h"
#include "lowbit/model_builder.h"
#include "lowbit/packing.h"

namespace {

using lowbit_test::every_quant_type;
using lowbit_test::make_quant;
using lowbit_test::qname;

using lowbit::QuantKind;
using lowbit::QuantType;

// The codes of a type, smallest first (binary: -1, +1).
std::vector<int32_t> codes_of(QuantType q) {
  if (q.kind == QuantKind::kBinary) return {-1, 1};
  std::vector<int32_t> v;
  for (int32_t c = q.min_code(); c <= q.max_code(); ++c) v.push_back(c);
  return v;
}

int32_t random_code(std::mt19937& g, QuantType q) {
  const std::vector<int32_t> codes = codes_of(q);
  return codes[std::uniform_int_distribution<size_t>(0, codes.size() - 1)(g)];
}

TEST(Packing, CodeRangesOfEveryType) {
  struct Want { QuantKind kind; int bits; int32_t lo, hi; };
  const Want table[] = {
      {QuantKind::kUnsigned, 1, 0, 1},      {QuantKind::kUnsigned, 2, 0, 3},     {QuantKind::kUnsigned, 4, 0, 15},
      {QuantKind::kSigned, 1, -1, 0},       {QuantKind::kSigned, 2, -2, 1},      {QuantKind::kSigned, 4, -8, 7},
      {QuantKind::kSignedNarrow, 2, -1, 1}, {QuantKind::kSignedNarrow, 3, -3, 3}, {QuantKind::kSignedNarrow, 4, -7, 7},
      {QuantKind::kBinary, 1, -1, 1},
  };
  for (const Want& w : table) {
    const QuantType q = make_quant(w.kind, w.bits);
    SCOPED_TRACE(qname(q));
    EXPECT_TRUE(q.valid());
    EXPECT_EQ(q.min_code(), w.lo);
    EXPECT_EQ(q.max_code(), w.hi);
  }
  EXPECT_FALSE(make_quant(QuantKind::kSignedNarrow, 1).valid());
  EXPECT_FALSE(make_quant(QuantKind::kBinary, 2).valid());
  EXPECT_FALSE(make_quant(QuantKind::kUnsigned, 0).valid());
  EXPECT_FALSE(make_quant(QuantKind::kUnsigned, 5).valid());
}

TEST(Packing, LevelsAndPatternsRoundTrip) {
  for (const QuantType q : every_quant_type()) {
    SCOPED_TRACE(qname(q));
    const std::vector<int32_t> codes = codes_of(q);
    // Levels enumerate the codes in increasing order.
    ASSERT_EQ(q.threshold_count() + 1, static_cast<int32_t>(codes.size()));
    for (int32_t level = 0; level <= q.threshold_count(); ++level)
      EXPECT_EQ(q.level_to_code(level), codes[static_cast<size_t>(level)]);
    int32_t max_abs = 0;
    std::vector<bool> seen(1u << q.bits, false);
    for (const int32_t c : codes) {
      const uint32_t pattern = q.code_to_bits(c);
      EXPECT_LT(pattern, 1u << q.bits) << "code " << c;
      EXPECT_FALSE(seen[pattern]) << "two codes share pattern " << pattern;
      seen[pattern] = true;
      EXPECT_EQ(q.bits_to_code(pattern), c);
      // The pattern's planes weigh up to the code (what the bit-serial kernel relies on).
      int32_t v = q.plane_offset();
      for (int p = 0; p < q.bits; ++p) v += q.plane_weight(p) * static_cast<int32_t>((pattern >> p) & 1u);
      EXPECT_EQ(v, c) << "plane weights of code " << c;
      max_abs = std::max(max_abs, c < 0 ? -c : c);
    }
    EXPECT_EQ(q.max_abs_code(), max_abs);
    // Two's complement for signed kinds, plain binary for unsigned, sign bit for binary.
    if (q.kind == QuantKind::kSigned || q.kind == QuantKind::kSignedNarrow) {
      EXPECT_EQ(q.code_to_bits(-1), (1u << q.bits) - 1u);
    }
    if (q.kind == QuantKind::kBinary) {
      EXPECT_EQ(q.code_to_bits(1), 1u);
      EXPECT_EQ(q.code_to_bits(-1), 0u);
    }
  }
}

TEST(Packing, PixelPlanesRoundTripAndBitPlacement) {
  std::mt19937 g(77);
  for (const QuantType q : every_quant_type())
    for (const size_t channels : {1u, 5u, 31u, 32u, 33u, 63u, 64u, 65u, 100u}) {
      const size_t pixels = std::uniform_int_distribution<size_t>(1, 5)(g);
      SCOPED_TRACE(qname(q) + " pixels " + std::to_string(pixels) + " channels " + std::to_string(channels));
      std::vector<int32_t> codes(pixels * channels);
      for (int32_t& c : codes) c = random_code(g, q);
      const std::vector<uint32_t> words = lowbit::pack_pixel_planes(codes.data(), pixels, channels, q);
      const size_t wpl = (channels + 31) / 32;  // words per plane, computed here independently
      ASSERT_EQ(words.size(), pixels * static_cast<size_t>(q.bits) * wpl);
      const lowbit::PixelPlanes layout{channels, q.bits};
      EXPECT_EQ(layout.words_per_plane(), wpl);
      EXPECT_EQ(layout.words_per_pixel(), wpl * q.bits);
      for (size_t px = 0; px < pixels; ++px)
        for (int p = 0; p < q.bits; ++p) {
          const uint32_t* plane = words.data() + (px * q.bits + static_cast<size_t>(p)) * wpl;
          EXPECT_EQ(layout.plane_offset(px, p), (px * q.bits + static_cast<size_t>(p)) * wpl);
          for (size_t c = 0; c < wpl * 32; ++c) {
            const uint32_t bit = (plane[c / 32] >> (c % 32)) & 1u;
            if (c < channels) {
              // Channel c of plane p: word c/32, bit c%32.
              ASSERT_EQ(bit, (q.code_to_bits(codes[px * channels + c]) >> p) & 1u)
                  << "pixel " << px << " plane " << p << " channel " << c;
            } else {
              ASSERT_EQ(bit, 0u) << "padding lane " << c << " of pixel " << px << " plane " << p;
            }
          }
        }
      std::vector<int32_t> back(codes.size(), 99);
      lowbit::unpack_pixel_planes(words.data(), pixels, channels, q, back.data());
      EXPECT_EQ(back, codes);
      // The TensorDesc of such a tensor agrees on the byte size.
      lowbit::TensorDesc t;
      t.dtype = lowbit::DType::kCodes;
      t.layout = lowbit::Layout::kPixelPlanes;
      t.quant = q;
      t.rank = 2;
      t.dims[0] = static_cast<int32_t>(pixels);
      t.dims[1] = static_cast<int32_t>(channels);
      EXPECT_EQ(t.byte_size(), words.size() * 4);
    }
}

TEST(Packing, KernelPlanesLayout) {
  // [o][plane][kh][kw][word(Cg)]: each tap starts on a word boundary, padding lanes zero.
  std::mt19937 g(78);
  for (const QuantType q : every_quant_type())
    for (const int cg : {1, 3, 32, 33, 70}) {
      const int o = 3, kh = 2, kw = 3;
      SCOPED_TRACE(qname(q) + " cg " + std::to_string(cg));
      std::vector<int32_t> codes(static_cast<size_t>(o * kh * kw * cg));
      for (int32_t& c : codes) c = random_code(g, q);
      const std::vector<uint32_t> words = lowbit::pack_kernel_planes(codes, o, kh, kw, cg, q);
      const size_t wpt = (static_cast<size_t>(cg) + 31) / 32;
      ASSERT_EQ(words.size(), static_cast<size_t>(o) * q.bits * kh * kw * wpt);
      const lowbit::KernelPlanes layout{static_cast<size_t>(kh), static_cast<size_t>(kw), static_cast<size_t>(cg), q.bits};
      EXPECT_EQ(layout.words_per_output() * o, words.size());
      for (int oc = 0; oc < o; ++oc)
        for (int p = 0; p < q.bits; ++p) {
          EXPECT_EQ(layout.plane_offset(static_cast<size_t>(oc), p), (static_cast<size_t>(oc) * q.bits + p) * kh * kw * wpt);
          for (int tap = 0; tap < kh * kw; ++tap)
            for (size_t c = 0; c < wpt * 32; ++c) {
              const uint32_t word = words[((static_cast<size_t>(oc) * q.bits + p) * kh * kw + tap) * wpt + c / 32];
              const uint32_t bit = (word >> (c % 32)) & 1u;
              const uint32_t want =
                  c < static_cast<size_t>(cg)
                      ? (q.code_to_bits(codes[(static_cast<size_t>(oc) * kh * kw + tap) * cg + c]) >> p) & 1u
                      : 0u;
              ASSERT_EQ(bit, want) << "o " << oc << " plane " << p << " tap " << tap << " lane " << c;
            }
        }
    }
}

TEST(Packing, ReadWriteCodeRoundTrip) {
  std::mt19937 g(79);
  for (const QuantType q : every_quant_type()) {
    SCOPED_TRACE(qname(q));
    const size_t stride = 3;  // words per plane
    std::vector<uint32_t> buf(stride * q.bits);
    for (uint32_t& w : buf) w = g();  // write_code must overwrite whatever was there
    std::vector<int32_t> codes(stride * 32);
    for (size_t i = 0; i < codes.size(); ++i) {
      codes[i] = random_code(g, q);
      lowbit::write_code(buf.data(), stride, i, q, codes[i]);
    }
    for (size_t i = 0; i < codes.size(); ++i) ASSERT_EQ(lowbit::read_code(buf.data(), stride, i, q), codes[i]) << i;
  }
}

TEST(Packing, GetSetBitAndWordsFor) {
  EXPECT_EQ(lowbit::words_for(0), 0u);
  EXPECT_EQ(lowbit::words_for(1), 1u);
  EXPECT_EQ(lowbit::words_for(32), 1u);
  EXPECT_EQ(lowbit::words_for(33), 2u);
  uint32_t w[2] = {0, 0};
  lowbit::set_bit(w, 0, 1);
  lowbit::set_bit(w, 31, 1);
  lowbit::set_bit(w, 32, 1);
  lowbit::set_bit(w, 45, 1);
  EXPECT_EQ(w[0], 0x80000001u);
  EXPECT_EQ(w[1], (1u << 13) | 1u);
  lowbit::set_bit(w, 31, 0);
  EXPECT_EQ(w[0], 1u);
  EXPECT_EQ(lowbit::get_bit(w, 45), 1u);
  EXPECT_EQ(lowbit::get_bit(w, 44), 0u);
}

TEST(Packing, CopyBitsMatchesPerBitLoop) {
  std::mt19937 g(80);
  int aligned_cases = 0;
  for (int it = 0; it < 3000; ++it) {
    const size_t src_words = 6, dst_words = 6;
    std::vector<uint32_t> src(src_words), dst(dst_words);
    for (uint32_t& w : src) w = g();
    for (uint32_t& w : dst) w = g();
    // Mix of unaligned positions, word-aligned ones, and counts below, at and above a word.
    const bool aligned = it % 4 == 0;
    size_t src_pos = std::uniform_int_distribution<size_t>(0, 80)(g);
    size_t dst_pos = std::uniform_int_distribution<size_t>(0, 80)(g);
    if (aligned) {
      src_pos = src_pos / 32 * 32;
      dst_pos = dst_pos / 32 * 32;
      ++aligned_cases;
    }
    const size_t limit = std::min(src_words * 32 - src_pos, dst_words * 32 - dst_pos);
    const size_t count = std::uniform_int_distribution<size_t>(0, std::min<size_t>(limit, 100))(g);
    SCOPED_TRACE("src_pos " + std::to_string(src_pos) + " dst_pos " + std::to_string(dst_pos) + " count " +
                 std::to_string(count));
    std::vector<uint32_t> want = dst;
    for (size_t i = 0; i < count; ++i) {
      const uint32_t bit = (src[(src_pos + i) / 32] >> ((src_pos + i) % 32)) & 1u;
      uint32_t& w = want[(dst_pos + i) / 32];
      w = (w & ~(1u << ((dst_pos + i) % 32))) | (bit << ((dst_pos + i) % 32));
    }
    const std::vector<uint32_t> src_before = src;
    lowbit::copy_bits(src.data(), src_pos, dst.data(), dst_pos, count);
    ASSERT_EQ(dst, want);  // copied bits right, every other bit untouched
    ASSERT_EQ(src, src_before);
  }
  EXPECT_GT(aligned_cases, 500);
}

}  // namespace
