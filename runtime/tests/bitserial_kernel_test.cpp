// The bit-serial microkernel against a naive sum of w_code * a_code, for every activation width and
// kind, every weight kind and word counts 1..9. Patch lanes beyond the valid ones (and whole padding
// taps) hold zero activation bits, as gather_patch leaves them.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "quant_test_util.h"
#include "kernels/bitserial.h"
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
  size_t words, outputs;
  std::vector<uint32_t> patch, weights;
  std::vector<int64_t> expected;
};

// A random case: each lane is valid with some probability (invalid lanes keep all-zero activation
// bits, like zero padding and the unused lanes of a partial word). Weight lanes that are invalid
// get random bits when `dirty_weight_padding`: they must not matter since the activation is zero.
KernelCase make_case(std::mt19937& g, QuantType a, QuantType w, size_t words, bool dirty_weight_padding) {
  KernelCase k;
  k.a = a;
  k.w = w;
  k.words = words;
  k.outputs = std::uniform_int_distribution<size_t>(1, 5)(g);
  const size_t lanes = words * 32;
  const double valid_fraction = std::uniform_real_distribution<double>(0.3, 1.0)(g);
  std::vector<int32_t> acodes(lanes, 0);
  std::vector<bool> valid(lanes);
  for (size_t i = 0; i < lanes; ++i) valid[i] = std::bernoulli_distribution(valid_fraction)(g);
  k.patch.assign(words * static_cast<size_t>(a.bits), 0);
  for (size_t i = 0; i < lanes; ++i)
    if (valid[i]) {
      acodes[i] = random_code(g, a);
      put(k.patch, 0, words, i, a, acodes[i]);
    }
  k.weights.assign(k.outputs * static_cast<size_t>(w.bits) * words, 0);
  k.expected.assign(k.outputs, 0);
  for (size_t o = 0; o < k.outputs; ++o) {
    const size_t base = o * static_cast<size_t>(w.bits) * words;
    for (size_t i = 0; i < lanes; ++i) {
      if (valid[i] || dirty_weight_padding) {
        const int32_t wc = random_code(g, w);
        put(k.weights, base, words, i, w, wc);
        if (valid[i]) k.expected[o] += static_cast<int64_t>(wc) * acodes[i];
      }  // else all-zero weight bits (code -1 for binary weights) against zero activation bits
    }
  }
  return k;
}

void check_kernel(lowbit::BitserialGemvFn fn, const char* which) {
  std::mt19937 g(4242);
  int cases = 0;
  for (const QuantType a : activation_types())
    for (const QuantType w : weight_types())
      for (size_t words = 1; words <= 9; ++words) {
        SCOPED_TRACE(std::string(which) + ": a " + qname(a) + " w " + qname(w) + " words " + std::to_string(words));
        for (const bool dirty : {false, true}) {
          const KernelCase k = make_case(g, a, w, words, dirty);
          const BitserialShape s = BitserialShape::make(words, a, w);
          std::vector<int32_t> acc(k.outputs + 1, 0x5a5a5a5a);  // one guard entry past the end
          fn(s, k.patch.data(), k.weights.data(), k.outputs, acc.data());
          for (size_t o = 0; o < k.outputs; ++o)
            ASSERT_EQ(acc[o], k.expected[o]) << "output " << o << (dirty ? " (dirty weight padding)" : "");
          EXPECT_EQ(acc[k.outputs], 0x5a5a5a5a) << "wrote past the last output";
          ++cases;
        }
      }
  EXPECT_GT(cases, 1000);
}

TEST(BitserialKernel, ReferenceMatchesNaiveDotProduct) { check_kernel(lowbit::reference_kernels().bitserial_gemv, "reference"); }

TEST(BitserialKernel, DispatchedMatchesNaiveDotProduct) {
  ASSERT_NE(lowbit::kernels().isa, nullptr);
  ASSERT_NE(lowbit::kernels().bitserial_gemv, nullptr);
  check_kernel(lowbit::kernels().bitserial_gemv, lowbit::kernels().isa);
}

TEST(BitserialKernel, DispatchedEqualsReferenceOnExtremes) {
  // All lanes at the extreme codes: the largest magnitudes the planes can produce.
  for (const QuantType a : activation_types())
    for (const QuantType w : weight_types())
      for (const int32_t ac : {a.min_code(), a.max_code()})
        for (const int32_t wc : {w.min_code(), w.max_code()}) {
          if (w.kind == QuantKind::kBinary && wc == 0) continue;
          SCOPED_TRACE("a " + qname(a) + "=" + std::to_string(ac) + " w " + qname(w) + "=" + std::to_string(wc));
          const size_t words = 9, lanes = words * 32;
          std::vector<uint32_t> patch(words * static_cast<size_t>(a.bits), 0), weights(words * static_cast<size_t>(w.bits), 0);
          for (size_t i = 0; i < lanes; ++i) {
            put(patch, 0, words, i, a, ac);
            put(weights, 0, words, i, w, wc);
          }
          const BitserialShape s = BitserialShape::make(words, a, w);
          int32_t ref = 0, disp = 0;
          lowbit::reference_kernels().bitserial_gemv(s, patch.data(), weights.data(), 1, &ref);
          lowbit::kernels().bitserial_gemv(s, patch.data(), weights.data(), 1, &disp);
          EXPECT_EQ(ref, static_cast<int32_t>(lanes) * ac * wc);
          EXPECT_EQ(disp, ref);
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
