// Randomized op tests: one-op (and a few small multi-op) models built with ModelBuilder, run through
// the C API and compared with the independent reference interpreter (reference_eval.h).
// Codes must match bit for bit (including zero padding lanes in the packed output); floats within a
// tolerance that grows with the reduction length. Every case runs under SCOPED_TRACE describing it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "quant_test_util.h"
#include "lowbit/lowbit.h"
#include "lowbit/lowbit.hpp"
#include "lowbit/model_builder.h"
#include "kernels/kernel_table.h"
#include "reference_eval.h"

namespace {

// ctest runs these tests once more per kernel table with LOWBIT_ISA=<table> (runtime/CMakeLists.txt).
// On a CPU without that table the dispatch falls back to the fastest one, which the plain entries
// already test: report the run as skipped rather than passed.
class Ops : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* forced = std::getenv("LOWBIT_ISA");
    if (forced && std::strcmp(forced, lowbit::kernels().isa) != 0)
      GTEST_SKIP() << "LOWBIT_ISA=" << forced << ": this CPU lacks that kernel table (dispatched: "
                   << lowbit::kernels().isa << ")";
  }
};

using lowbit_test::make_quant;
using lowbit_test::qname;

using lowbit::Activation;
using lowbit::CodeSpec;
using lowbit::ConvParams;
using lowbit::DepthToSpaceMode;
using lowbit::ModelBuilder;
using lowbit::PoolParams;
using lowbit::QuantKind;
using lowbit::QuantType;
using lowbit::Rounding;
using lowbit_test::RefTensor;
using Dims = std::vector<int32_t>;

// ---------------------------------------------------------------------------------------------
// Randomness

struct Rng {
  std::mt19937 gen;
  explicit Rng(uint32_t seed) : gen(seed) {}
  int uni(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); }
  float uf(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen); }
  bool chance(double p) { return std::bernoulli_distribution(p)(gen); }
  template <typename T>
  T pick(const std::vector<T>& xs) { return xs[static_cast<size_t>(uni(0, static_cast<int>(xs.size()) - 1))]; }
};

// Channel counts around the 32-lane word boundaries, and small odd ones.
int random_channels(Rng& r, int max = 100) {
  std::vector<int> cs;
  for (int c : {1, 2, 3, 5, 7, 16, 31, 32, 33, 63, 64, 65, 100})
    if (c <= max) cs.push_back(c);
  return r.pick(cs);
}

// Weights: binary, signed, signed narrow (and now and then unsigned).
QuantType random_weight_quant(Rng& r) {
  const int k = r.uni(0, 9);
  if (k < 4) return make_quant(QuantKind::kBinary, 1);
  if (k < 7) return make_quant(QuantKind::kSigned, r.uni(1, 4));
  if (k < 9) return make_quant(QuantKind::kSignedNarrow, r.uni(2, 4));
  return make_quant(QuantKind::kUnsigned, r.uni(1, 4));
}

// Activations: unsigned, signed, signed narrow.
QuantType random_act_quant(Rng& r) {
  switch (r.uni(0, 2)) {
    case 0: return make_quant(QuantKind::kUnsigned, r.uni(1, 4));
    case 1: return make_quant(QuantKind::kSigned, r.uni(1, 4));
    default: return make_quant(QuantKind::kSignedNarrow, r.uni(2, 4));
  }
}

// Any valid type (what pure data-movement ops and Quantize/Dequantize may see).
QuantType random_any_quant(Rng& r) {
  return r.chance(0.2) ? make_quant(QuantKind::kBinary, 1) : random_act_quant(r);
}

std::string dims_str(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

size_t count_of(const Dims& d) {
  size_t n = 1;
  for (int32_t v : d) n *= static_cast<size_t>(v);
  return n;
}

int32_t random_code(Rng& r, QuantType q) {
  if (q.kind == QuantKind::kBinary) return r.chance(0.5) ? 1 : -1;
  return r.uni(q.min_code(), q.max_code());
}

std::vector<int32_t> random_code_vector(Rng& r, QuantType q, size_t n) {
  std::vector<int32_t> v(n);
  for (int32_t& c : v) c = random_code(r, q);
  return v;
}

std::vector<float> random_floats(Rng& r, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(n);
  for (float& f : v) f = r.uf(lo, hi);
  return v;
}

RefTensor random_code_tensor(Rng& r, const Dims& dims, QuantType q, float scale) {
  return RefTensor::codes(dims, q, scale, random_code_vector(r, q, count_of(dims)));
}

RefTensor random_float_tensor(Rng& r, const Dims& dims, float lo = -1.0f, float hi = 1.0f) {
  return RefTensor::floats(dims, random_floats(r, count_of(dims), lo, hi));
}

float random_scale(Rng& r) { return r.chance(0.5) ? r.pick<float>({0.125f, 0.25f, 0.5f, 1.0f, 2.0f}) : r.uf(0.01f, 1.5f); }

// Input of a test model: float or codes of the given type, random values.
ModelBuilder::Id add_input(ModelBuilder& b, const std::string& name, const RefTensor& t) {
  return t.is_codes ? b.input_codes(name, t.dims, CodeSpec{t.quant, t.scale}) : b.input(name, t.dims);
}

// ---------------------------------------------------------------------------------------------
// Running a model and comparing

// Serializes the builder's model, loads it from memory, writes the inputs exactly, runs it and
// reads every output. Also checks that code outputs have zero padding lanes.
bool run_runtime(const ModelBuilder& b, const std::vector<RefTensor>& inputs, std::vector<RefTensor>* outputs,
                 int threads = 1, size_t* peak_bytes = nullptr, std::vector<std::vector<uint8_t>>* raw = nullptr) {
  if (!b.error().empty()) {
    ADD_FAILURE() << "builder error: " << b.error();
    return false;
  }
  std::vector<uint8_t> bytes;
  const lowbit::Status s = b.serialize(&bytes);
  if (!s.ok) {
    ADD_FAILURE() << "serialize: " << s.message;
    return false;
  }
  std::string err;
  lowbit::Model m = lowbit::Model::load(bytes.data(), bytes.size(), &err);
  if (!m) {
    ADD_FAILURE() << "load: " << err;
    return false;
  }
  if (threads != 1 && !m.set_threads(threads)) {
    ADD_FAILURE() << "set_threads: " << lowbit_last_error();
    return false;
  }
  if (m.num_inputs() != static_cast<int>(inputs.size())) {
    ADD_FAILURE() << "model has " << m.num_inputs() << " inputs";
    return false;
  }
  // A first run on other random inputs: nothing of it may leak into the checked run (buffers are
  // reused between runs and between tensors).
  std::mt19937 warm(12345);
  for (size_t i = 0; i < inputs.size(); ++i) {
    RefTensor other = inputs[i];
    for (double& v : other.values) {
      if (!other.is_codes) {
        v = std::uniform_real_distribution<double>(-4.0, 4.0)(warm);
      } else if (other.quant.kind == QuantKind::kBinary) {
        v = warm() % 2 ? 1 : -1;
      } else {
        v = std::uniform_int_distribution<int32_t>(other.quant.min_code(), other.quant.max_code())(warm);
      }
    }
    if (!lowbit_test::write_model_input(m.get(), static_cast<int>(i), other, &err)) {
      ADD_FAILURE() << "input " << i << ": " << err;
      return false;
    }
  }
  if (!m.run()) {
    ADD_FAILURE() << "run: " << lowbit_last_error();
    return false;
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!lowbit_test::write_model_input(m.get(), static_cast<int>(i), inputs[i], &err)) {
      ADD_FAILURE() << "input " << i << ": " << err;
      return false;
    }
  if (!m.run()) {
    ADD_FAILURE() << "run: " << lowbit_last_error();
    return false;
  }
  outputs->clear();
  if (raw) raw->clear();
  for (int i = 0; i < m.num_outputs(); ++i) {
    outputs->push_back(lowbit_test::read_model_output(m.get(), i));
    const lowbit_tensor_info info = m.output_info(i);
    const uint8_t* buf = static_cast<const uint8_t*>(lowbit_output_buffer(m.get(), i));
    if (raw) raw->emplace_back(buf, buf + info.bytes);
    const RefTensor& out = outputs->back();
    if (out.is_codes) {
      // The packed words must be exactly the packing of the codes: padding lanes zero.
      std::vector<int32_t> codes(out.values.begin(), out.values.end());
      const size_t c = static_cast<size_t>(out.dims.back());
      const std::vector<uint32_t> want = lowbit::pack_pixel_planes(codes.data(), codes.size() / c, c, out.quant);
      EXPECT_EQ(want.size() * 4, info.bytes);
      EXPECT_TRUE(want.size() * 4 == info.bytes && std::memcmp(want.data(), buf, info.bytes) == 0)
          << "output " << i << " has non-zero padding lanes";
    }
  }
  if (peak_bytes) *peak_bytes = m.peak_activation_bytes();
  return true;
}

std::string index_string(const std::vector<int32_t>& dims, size_t i) {
  std::vector<size_t> at(dims.size());
  for (size_t k = dims.size(); k-- > 0;) {
    at[k] = i % static_cast<size_t>(dims[k]);
    i /= static_cast<size_t>(dims[k]);
  }
  std::string s = "[";
  for (size_t k = 0; k < at.size(); ++k) s += (k ? "," : "") + std::to_string(at[k]);
  return s + "]";
}

// Runtime output vs reference: same shape and type; codes exactly; floats within abs + rel*|ref|.
void expect_matches(const RefTensor& got, const RefTensor& want, double abs_tol, double rel_tol) {
  ASSERT_EQ(got.dims, want.dims) << "shape " << got.shape_string() << " vs reference " << want.shape_string();
  ASSERT_EQ(got.is_codes, want.is_codes);
  if (got.is_codes) {
    EXPECT_EQ(got.quant, want.quant) << got.shape_string() << " vs " << want.shape_string();
    EXPECT_EQ(got.scale, want.scale);
  }
  size_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < want.values.size(); ++i) {
    const double g = got.values[i], w = want.values[i];
    bool ok;
    if (want.is_codes) {
      ok = g == w;
    } else {
      const double tol = abs_tol + rel_tol * std::fabs(w);
      ok = std::isnan(w) ? std::isnan(g) : (std::isinf(w) ? g == w : std::fabs(g - w) <= tol);
    }
    if (!ok) {
      if (bad < 6) first << "\n  at " << index_string(want.dims, i) << ": runtime " << g << ", reference " << w;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0u) << bad << " of " << want.values.size() << " elements differ (" << want.shape_string() << ")"
                     << first.str();
}

// Runs the model of `b` on `inputs` in the runtime and in the reference and compares all outputs.
void check_model(const ModelBuilder& b, const std::vector<RefTensor>& inputs, double abs_tol = 1e-6,
                 double rel_tol = 1e-5) {
  std::vector<RefTensor> got;
  if (!run_runtime(b, inputs, &got)) return;
  std::vector<RefTensor> want;
  try {
    want = lowbit_test::reference_evaluate(b.graph(), inputs);
  } catch (const std::exception& e) {
    FAIL() << e.what();  // keeps the SCOPED_TRACE of the case
  }
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("output " + std::to_string(i));
    expect_matches(got[i], want[i], abs_tol, rel_tol);
  }
}

// Float32 accumulation of `terms` products of magnitude <= `mag`: an absolute allowance on top of
// the relative tolerance (errors of sums of random-sign terms grow about linearly in practice).
double accumulation_tol(int64_t terms, double mag) { return 1e-6 + 3e-7 * static_cast<double>(terms) * mag; }

// ---------------------------------------------------------------------------------------------
// Convolution geometry

struct ConvCase {
  int n, h, w, c, o, kh, kw;
  ConvParams p;
  int oh() const { return (h + p.pad_top + p.pad_bottom - p.dilation_h * (kh - 1) - 1) / p.stride_h + 1; }
  int ow() const { return (w + p.pad_left + p.pad_right - p.dilation_w * (kw - 1) - 1) / p.stride_w + 1; }
  int cg() const { return c / p.groups; }
  int64_t macs() const { return int64_t{n} * oh() * ow() * o * kh * kw * cg(); }
  std::string str() const {
    std::ostringstream s;
    s << "x[" << n << "," << h << "," << w << "," << c << "] k" << kh << "x" << kw << " o" << o << " s" << p.stride_h
      << "x" << p.stride_w << " d" << p.dilation_h << "x" << p.dilation_w << " pad(t" << p.pad_top << ",l" << p.pad_left
      << ",b" << p.pad_bottom << ",r" << p.pad_right << ") g" << p.groups << " -> [" << oh() << "," << ow() << "]";
    return s.str();
  }
};

ConvCase random_conv(Rng& r, int64_t max_macs) {
  for (;;) {
    ConvCase k{};
    k.n = r.chance(0.2) ? 2 : 1;
    k.kh = r.uni(1, 5);
    k.kw = r.uni(1, 5);
    k.p.stride_h = r.uni(1, 3);
    k.p.stride_w = r.uni(1, 3);
    k.p.dilation_h = r.chance(0.3) ? 2 : 1;
    k.p.dilation_w = r.chance(0.3) ? 2 : 1;
    const int eh = k.p.dilation_h * (k.kh - 1) + 1, ew = k.p.dilation_w * (k.kw - 1) + 1;  // dilated extent
    k.p.pad_top = r.uni(0, std::min(eh - 1, 3));
    k.p.pad_bottom = r.uni(0, std::min(eh - 1, 3));
    k.p.pad_left = r.uni(0, std::min(ew - 1, 3));
    k.p.pad_right = r.uni(0, std::min(ew - 1, 3));
    k.h = std::max(r.uni(1, 9), eh - k.p.pad_top - k.p.pad_bottom);
    k.w = std::max(r.uni(1, 9), ew - k.p.pad_left - k.p.pad_right);
    switch (r.uni(0, 3)) {
      case 0:
      case 1:  // ordinary
        k.p.groups = 1;
        k.c = random_channels(r);
        k.o = random_channels(r);
        break;
      case 2:  // depthwise (with a channel multiplier now and then)
        k.c = random_channels(r);
        k.p.groups = k.c;
        k.o = k.c * (r.chance(0.3) ? 2 : 1);
        break;
      default: {  // grouped
        k.p.groups = r.uni(2, 5);
        k.c = k.p.groups * r.pick<int>({1, 3, 7, 31, 32, 33});
        k.o = k.p.groups * r.pick<int>({1, 2, 5, 17, 33});
        break;
      }
    }
    if (k.macs() <= max_macs) return k;
  }
}

// Mean and mean square of a code drawn uniformly from q's codes.
void code_moments(QuantType q, double* mean, double* mean_sq) {
  double s = 0, s2 = 0;
  int count = 0;
  for (int32_t c = q.min_code(); c <= q.max_code(); ++c) {
    if (q.kind == QuantKind::kBinary && c == 0) continue;
    s += c;
    s2 += double(c) * c;
    ++count;
  }
  *mean = s / count;
  *mean_sq = s2 / count;
}

// A random threshold table [O, 1 + levels] for accumulators of `terms` products of a x w codes:
// increasing, decreasing and constant channels, thresholds spread over the likely accumulator range
// (with repeats and now and then the int32 extremes).
std::vector<int32_t> random_thresholds(Rng& r, int o, QuantType out, int64_t terms, QuantType a, QuantType w,
                                       std::string* summary) {
  const int levels = out.threshold_count();
  double ma, ma2, mw, mw2;
  code_moments(a, &ma, &ma2);
  code_moments(w, &mw, &mw2);
  const double mean = static_cast<double>(terms) * ma * mw;
  const double sd = std::sqrt(static_cast<double>(terms) * std::max(ma2 * mw2 - ma * ma * mw * mw, 0.25)) + 1.0;
  std::vector<int32_t> table;
  int inc = 0, dec = 0, con = 0;
  for (int ch = 0; ch < o; ++ch) {
    const int kind = r.uni(0, 19);
    std::vector<int32_t> t(static_cast<size_t>(levels));
    for (int32_t& v : t) v = static_cast<int32_t>(std::lround(mean + sd * r.uf(-2.0f, 2.0f)));
    if (r.chance(0.15) && levels > 1) t[1] = t[0];  // a repeated threshold
    if (r.chance(0.05)) t[0] = std::numeric_limits<int32_t>::min();
    if (r.chance(0.05)) t[levels - 1] = std::numeric_limits<int32_t>::max();
    if (kind < 9) {  // increasing
      std::sort(t.begin(), t.end());
      table.push_back(1);
      ++inc;
    } else if (kind < 16) {  // decreasing
      std::sort(t.begin(), t.end(), std::greater<int32_t>());
      table.push_back(-1);
      ++dec;
    } else {  // constant: column 1 is the level, the rest is ignored
      t[0] = r.uni(0, levels);
      table.push_back(0);
      ++con;
    }
    table.insert(table.end(), t.begin(), t.end());
  }
  *summary = "thresholds inc/dec/const " + std::to_string(inc) + "/" + std::to_string(dec) + "/" +
             std::to_string(con) + " around " + std::to_string(mean) + " +- " + std::to_string(sd);
  return table;
}

// ---------------------------------------------------------------------------------------------
// Conv2D / QConv2D

TEST_F(Ops, Conv2DFloat) {
  Rng r(101);
  for (int it = 0; it < 40; ++it) {
    const ConvCase k = random_conv(r, 1500000);
    const Activation act = r.pick<Activation>({Activation::kNone, Activation::kRelu, Activation::kLeakyRelu});
    const bool bias = r.chance(0.7);
    const float alpha = r.uf(0.01f, 0.5f);
    SCOPED_TRACE("case " + std::to_string(it) + ": " + k.str() + " act " + std::to_string(static_cast<int>(act)) +
                 (bias ? " bias" : ""));
    ModelBuilder b;
    const RefTensor x = random_float_tensor(r, {k.n, k.h, k.w, k.c});
    const auto xi = add_input(b, "x", x);
    const auto w = b.constant_f32("w", {k.o, k.kh, k.kw, k.cg()}, random_floats(r, count_of({k.o, k.kh, k.kw, k.cg()})));
    const auto bi = bias ? b.constant_f32("b", {k.o}, random_floats(r, static_cast<size_t>(k.o))) : lowbit::kNoTensor;
    b.output(b.conv2d("y", xi, w, bi, k.p, act, alpha));
    check_model(b, {x}, accumulation_tol(int64_t{k.kh} * k.kw * k.cg() + 1, 1.0), 1e-5);
  }
}

// One QConv2D with code output against the reference evaluator.
void check_qconv_codes(Rng& r, const ConvCase& k, QuantType aq, QuantType wq, QuantType oq, int it) {
  ModelBuilder b;
  const RefTensor x = random_code_tensor(r, {k.n, k.h, k.w, k.c}, aq, random_scale(r));
  const auto xi = add_input(b, "x", x);
  const Dims wd = {k.o, k.kh, k.kw, k.cg()};
  const auto w = b.constant_weights("w", wd, wq, random_code_vector(r, wq, count_of(wd)));
  std::string tsum;
  const std::vector<int32_t> table =
      random_thresholds(r, k.o, oq, int64_t{k.kh} * k.kw * k.cg(), aq, wq, &tsum);
  SCOPED_TRACE("case " + std::to_string(it) + ": " + k.str() + " a " + qname(aq) + " w " + qname(wq) + " out " +
               qname(oq) + " " + tsum);
  const auto t = b.constant_i32("t", {k.o, oq.threshold_count() + 1}, table);
  b.output(b.qconv2d_codes("y", xi, w, t, k.p, CodeSpec{oq, random_scale(r)}));
  check_model(b, {x});
}

TEST_F(Ops, QConv2DCodes) {
  Rng r(202);
  for (int it = 0; it < 60; ++it) {
    const ConvCase k = random_conv(r, 1500000);
    const QuantType aq = random_act_quant(r), wq = random_weight_quant(r);
    const QuantType oq = r.chance(0.1) ? make_quant(QuantKind::kBinary, 1) : random_act_quant(r);
    check_qconv_codes(r, k, aq, wq, oq, it);
  }
}

// Rows wider than one gemm call (kMaxGemmPixels), each group's
// channels read in place at 32-channel boundaries: every pixel block of every group must land on
// its own outputs (the random cases above have at most 9 columns).
TEST_F(Ops, QConv2DCodesWideRows) {
  Rng r(203);
  for (int groups : {1, 2, 3}) {
    ConvCase k{};
    k.n = 1;
    k.h = 3;
    k.w = 150;
    k.kh = k.kw = 3;
    k.p.stride_h = k.p.stride_w = k.p.dilation_h = k.p.dilation_w = 1;
    k.p.pad_top = k.p.pad_bottom = k.p.pad_left = k.p.pad_right = 1;
    k.p.groups = groups;
    k.c = 32 * groups;
    k.o = 17 * groups;
    const QuantType a2 = make_quant(QuantKind::kUnsigned, 2);
    check_qconv_codes(r, k, a2, make_quant(QuantKind::kBinary, 1), a2, groups);
  }
}

TEST_F(Ops, QConv2DFloatOutput) {
  Rng r(303);
  for (int it = 0; it < 30; ++it) {
    const ConvCase k = random_conv(r, 1500000);
    const QuantType aq = random_act_quant(r), wq = random_weight_quant(r);
    const bool bias = r.chance(0.6);
    SCOPED_TRACE("case " + std::to_string(it) + ": " + k.str() + " a " + qname(aq) + " w " + qname(wq) +
                 (bias ? " bias" : ""));
    ModelBuilder b;
    const RefTensor x = random_code_tensor(r, {k.n, k.h, k.w, k.c}, aq, random_scale(r));
    const auto xi = add_input(b, "x", x);
    const Dims wd = {k.o, k.kh, k.kw, k.cg()};
    const auto w = b.constant_weights("w", wd, wq, random_code_vector(r, wq, count_of(wd)));
    const auto s = b.constant_f32("s", {k.o}, random_floats(r, static_cast<size_t>(k.o), -0.1f, 0.1f));
    const auto bi = bias ? b.constant_f32("b", {k.o}, random_floats(r, static_cast<size_t>(k.o))) : lowbit::kNoTensor;
    b.output(b.qconv2d_float("y", xi, w, s, bi, k.p));
    check_model(b, {x}, 1e-6, 1e-6);
  }
}

// ---------------------------------------------------------------------------------------------
// Dense / QDense

// Input dims of rank 2..4 with `features` split over the trailing dims.
Dims random_dense_input(Rng& r) {
  const int n = r.uni(1, 3);
  switch (r.uni(0, 2)) {
    case 0: return {n, random_channels(r) * r.pick<int>({1, 3})};
    case 1: return {n, r.uni(1, 5), random_channels(r, 65)};
    default: return {n, r.uni(1, 4), r.uni(1, 4), random_channels(r, 65)};
  }
}

TEST_F(Ops, DenseFloat) {
  Rng r(404);
  for (int it = 0; it < 25; ++it) {
    const Dims xd = random_dense_input(r);
    const int features = static_cast<int>(count_of(xd) / static_cast<size_t>(xd[0]));
    const int o = random_channels(r);
    const Activation act = r.pick<Activation>({Activation::kNone, Activation::kRelu, Activation::kLeakyRelu});
    const bool bias = r.chance(0.7);
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd) + " o " + std::to_string(o) + " act " +
                 std::to_string(static_cast<int>(act)) + (bias ? " bias" : ""));
    ModelBuilder b;
    const RefTensor x = random_float_tensor(r, xd);
    const auto xi = add_input(b, "x", x);
    const auto w = b.constant_f32("w", {o, features}, random_floats(r, static_cast<size_t>(o) * features));
    const auto bi = bias ? b.constant_f32("b", {o}, random_floats(r, static_cast<size_t>(o))) : lowbit::kNoTensor;
    b.output(b.dense("y", xi, w, bi, act, r.uf(0.01f, 0.5f)));
    check_model(b, {x}, accumulation_tol(features + 1, 1.0), 1e-5);
  }
}

TEST_F(Ops, QDense) {
  Rng r(505);
  for (int it = 0; it < 40; ++it) {
    const Dims xd = random_dense_input(r);
    const int rank = static_cast<int>(xd.size());
    const int kh = rank == 4 ? xd[1] : 1, kw = rank >= 3 ? xd[rank - 2] : 1, c = xd.back();
    const int o = random_channels(r);
    const QuantType aq = random_act_quant(r), wq = random_weight_quant(r);
    const bool codes_out = r.chance(0.6);
    const QuantType oq = random_act_quant(r);
    ModelBuilder b;
    const RefTensor x = random_code_tensor(r, xd, aq, random_scale(r));
    const auto xi = add_input(b, "x", x);
    const Dims wd = {o, kh, kw, c};
    const auto w = b.constant_weights("w", wd, wq, random_code_vector(r, wq, count_of(wd)));
    std::string what = "x " + dims_str(xd) + " w " + dims_str(wd) + " a " + qname(aq) + " w " + qname(wq);
    if (codes_out) {
      std::string tsum;
      const auto table = random_thresholds(r, o, oq, int64_t{kh} * kw * c, aq, wq, &tsum);
      what += " out " + qname(oq) + " " + tsum;
      const auto t = b.constant_i32("t", {o, oq.threshold_count() + 1}, table);
      b.output(b.qdense_codes("y", xi, w, t, CodeSpec{oq, 0.5f}));
    } else {
      what += " float out";
      const auto s = b.constant_f32("s", {o}, random_floats(r, static_cast<size_t>(o), -0.1f, 0.1f));
      const auto bi = r.chance(0.5) ? b.constant_f32("b", {o}, random_floats(r, static_cast<size_t>(o))) : lowbit::kNoTensor;
      b.output(b.qdense_float("y", xi, w, s, bi));
    }
    SCOPED_TRACE("case " + std::to_string(it) + ": " + what);
    check_model(b, {x}, 1e-6, 1e-6);
  }
}

// ---------------------------------------------------------------------------------------------
// Element-wise float ops

Dims random_shape(Rng& r, int min_rank = 1, int max_rank = 4) {
  const int rank = r.uni(min_rank, max_rank);
  Dims d;
  for (int i = 0; i + 1 < rank; ++i) d.push_back(r.uni(1, i == 0 ? 2 : 5));
  d.push_back(random_channels(r, 65));
  return d;
}

TEST_F(Ops, Affine) {
  Rng r(606);
  for (int it = 0; it < 10; ++it) {
    const Dims xd = random_shape(r);
    const int c = xd.back();
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd));
    ModelBuilder b;
    const RefTensor x = random_float_tensor(r, xd, -3.0f, 3.0f);
    const auto xi = add_input(b, "x", x);
    const auto s = b.constant_f32("s", {c}, random_floats(r, static_cast<size_t>(c), -2.0f, 2.0f));
    const auto bi = b.constant_f32("b", {c}, random_floats(r, static_cast<size_t>(c), -2.0f, 2.0f));
    b.output(b.affine("y", xi, s, bi));
    check_model(b, {x}, 1e-6, 1e-6);
  }
}

template <typename Make>
void unary_cases(uint32_t seed, int cases, float lo, float hi, Make make, double abs_tol, double rel_tol) {
  Rng r(seed);
  for (int it = 0; it < cases; ++it) {
    const Dims xd = random_shape(r);
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd));
    ModelBuilder b;
    RefTensor x = random_float_tensor(r, xd, lo, hi);
    x.values[0] = 0.0;  // the kink of relu-like functions
    const auto xi = add_input(b, "x", x);
    b.output(make(b, xi, r));
    check_model(b, {x}, abs_tol, rel_tol);
  }
}

TEST_F(Ops, Relu) {
  unary_cases(707, 8, -2.0f, 2.0f, [](ModelBuilder& b, ModelBuilder::Id x, Rng&) { return b.relu("y", x); }, 0.0, 0.0);
}

TEST_F(Ops, LeakyRelu) {
  unary_cases(708, 8, -2.0f, 2.0f,
              [](ModelBuilder& b, ModelBuilder::Id x, Rng& r) { return b.leaky_relu("y", x, r.uf(0.0f, 0.9f)); },
              1e-7, 1e-6);
}

TEST_F(Ops, Sigmoid) {
  unary_cases(709, 8, -30.0f, 30.0f, [](ModelBuilder& b, ModelBuilder::Id x, Rng&) { return b.sigmoid("y", x); },
              1e-7, 2e-6);
}

TEST_F(Ops, Softmax) {
  // Large logits check the max subtraction; a single channel gives exactly 1.
  unary_cases(710, 10, -40.0f, 40.0f, [](ModelBuilder& b, ModelBuilder::Id x, Rng&) { return b.softmax("y", x); },
              1e-7, 1e-5);
}

// ---------------------------------------------------------------------------------------------
// Pooling

PoolParams random_pool(Rng& r, int* h, int* w) {
  PoolParams p;
  p.kh = r.uni(1, 4);
  p.kw = r.uni(1, 4);
  p.stride_h = r.uni(1, 3);
  p.stride_w = r.uni(1, 3);
  p.pad_top = r.uni(0, p.kh - 1);
  p.pad_bottom = r.uni(0, p.kh - 1);
  p.pad_left = r.uni(0, p.kw - 1);
  p.pad_right = r.uni(0, p.kw - 1);
  p.count_include_pad = r.chance(0.5);
  *h = std::max(r.uni(1, 9), p.kh - p.pad_top - p.pad_bottom);
  *w = std::max(r.uni(1, 9), p.kw - p.pad_left - p.pad_right);
  return p;
}

std::string pool_str(const PoolParams& p) {
  std::ostringstream s;
  s << "k" << p.kh << "x" << p.kw << " s" << p.stride_h << "x" << p.stride_w << " pad(t" << p.pad_top << ",l"
    << p.pad_left << ",b" << p.pad_bottom << ",r" << p.pad_right << ")" << (p.count_include_pad ? " count_pad" : "");
  return s.str();
}

void pool_cases(uint32_t seed, bool is_max) {
  Rng r(seed);
  for (int it = 0; it < 120; ++it) {
    int h, w;
    const PoolParams p = random_pool(r, &h, &w);
    const Dims xd = {r.uni(1, 2), h, w, random_channels(r)};
    const bool codes = r.chance(0.6);
    const QuantType q = is_max ? random_any_quant(r) : random_act_quant(r);  // binary codes have a max, no mean
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd) + " " + pool_str(p) +
                 (codes ? " codes " + qname(q) : " float"));
    ModelBuilder b;
    const RefTensor x = codes ? random_code_tensor(r, xd, q, random_scale(r)) : random_float_tensor(r, xd, -2.0f, 2.0f);
    const auto xi = add_input(b, "x", x);
    b.output(is_max ? b.max_pool("y", xi, p) : b.avg_pool("y", xi, p));
    check_model(b, {x}, 1e-6, 1e-5);
  }
}

TEST_F(Ops, MaxPool) { pool_cases(801, true); }
TEST_F(Ops, AvgPool) { pool_cases(802, false); }

TEST_F(Ops, AvgPoolCodesRoundHalfUp) {
  // Hand-made: a 1x2 window over codes {-3, 0} has mean -1.5 -> -1 (half up); {1, 2} -> 2; {-1, -2} -> -1.
  const QuantType q = make_quant(QuantKind::kSigned, 3);
  ModelBuilder b;
  const RefTensor x = RefTensor::codes({1, 1, 6, 1}, q, 1.0f, {-3, 0, 1, 2, -1, -2});
  PoolParams p;
  p.kh = 1;
  p.kw = 2;
  p.stride_h = 1;
  p.stride_w = 2;
  b.output(b.avg_pool("y", add_input(b, "x", x), p));
  std::vector<RefTensor> got;
  ASSERT_TRUE(run_runtime(b, {x}, &got));
  const std::vector<RefTensor> want = lowbit_test::reference_evaluate(b.graph(), {x});
  EXPECT_EQ(want[0].values, (std::vector<double>{-1, 2, -1}));
  EXPECT_EQ(got[0].values, (std::vector<double>{-1, 2, -1}));
}

TEST_F(Ops, GlobalAvgPool) {
  Rng r(803);
  for (int it = 0; it < 12; ++it) {
    const Dims xd = {r.uni(1, 2), r.uni(1, 10), r.uni(1, 10), random_channels(r)};
    const bool codes = r.chance(0.5);
    const QuantType q = random_act_quant(r);
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd) + (codes ? " codes " + qname(q) : " float"));
    ModelBuilder b;
    const RefTensor x = codes ? random_code_tensor(r, xd, q, random_scale(r)) : random_float_tensor(r, xd, -2.0f, 2.0f);
    b.output(b.global_avg_pool("y", add_input(b, "x", x)));
    check_model(b, {x}, accumulation_tol(xd[1] * xd[2], 2.0), 1e-5);
  }
}

// ---------------------------------------------------------------------------------------------
// Data movement (floats and codes of every kind, including binary)

RefTensor random_tensor_like_kind(Rng& r, const Dims& d, bool codes, QuantType q, float scale) {
  return codes ? random_code_tensor(r, d, q, scale) : random_float_tensor(r, d);
}

TEST_F(Ops, Concat) {
  Rng r(901);
  for (int it = 0; it < 24; ++it) {
    Dims lead = random_shape(r);
    lead.pop_back();
    const int count = r.uni(2, 8);
    const bool codes = r.chance(0.7);
    const QuantType q = random_any_quant(r);
    const float scale = random_scale(r);
    ModelBuilder b;
    std::vector<RefTensor> xs;
    std::vector<ModelBuilder::Id> ids;
    std::string what = "lead " + dims_str(lead) + (codes ? " codes " + qname(q) : " float") + " channels";
    for (int k = 0; k < count; ++k) {
      Dims d = lead;
      d.push_back(random_channels(r, 65));
      what += " " + std::to_string(d.back());
      xs.push_back(random_tensor_like_kind(r, d, codes, q, scale));
      ids.push_back(add_input(b, "x" + std::to_string(k), xs.back()));
    }
    SCOPED_TRACE("case " + std::to_string(it) + ": " + what);
    b.output(b.concat("y", ids));
    check_model(b, xs, 0.0, 0.0);
  }
}

TEST_F(Ops, SpaceToDepth) {
  Rng r(902);
  for (int it = 0; it < 16; ++it) {
    const int block = r.uni(1, 3);
    const Dims xd = {r.uni(1, 2), block * r.uni(1, 4), block * r.uni(1, 4), random_channels(r, 65)};
    const bool codes = r.chance(0.7);
    const QuantType q = random_any_quant(r);
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd) + " block " + std::to_string(block) +
                 (codes ? " codes " + qname(q) : " float"));
    ModelBuilder b;
    const RefTensor x = random_tensor_like_kind(r, xd, codes, q, random_scale(r));
    b.output(b.space_to_depth("y", add_input(b, "x", x), block));
    check_model(b, {x}, 0.0, 0.0);
  }
}

TEST_F(Ops, DepthToSpace) {
  Rng r(903);
  for (int it = 0; it < 24; ++it) {
    const int block = r.uni(1, 3);
    const Dims xd = {r.uni(1, 2), r.uni(1, 4), r.uni(1, 4), block * block * random_channels(r, 33)};
    const DepthToSpaceMode mode = it % 2 ? DepthToSpaceMode::kCRD : DepthToSpaceMode::kDCR;
    const bool codes = r.chance(0.7);
    const QuantType q = random_any_quant(r);
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd) + " block " + std::to_string(block) +
                 (mode == DepthToSpaceMode::kCRD ? " CRD" : " DCR") + (codes ? " codes " + qname(q) : " float"));
    ModelBuilder b;
    const RefTensor x = random_tensor_like_kind(r, xd, codes, q, random_scale(r));
    b.output(b.depth_to_space("y", add_input(b, "x", x), block, mode));
    check_model(b, {x}, 0.0, 0.0);
  }
}

TEST_F(Ops, DepthToSpaceKnownOrder) {
  // One pixel of 8 channels 0..7, block 2: DCR keeps the order, CRD interleaves (ONNX examples).
  for (const DepthToSpaceMode mode : {DepthToSpaceMode::kDCR, DepthToSpaceMode::kCRD}) {
    ModelBuilder b;
    const RefTensor x = RefTensor::floats({1, 1, 1, 8}, {0, 1, 2, 3, 4, 5, 6, 7});
    b.output(b.depth_to_space("y", add_input(b, "x", x), 2, mode));
    std::vector<RefTensor> got;
    ASSERT_TRUE(run_runtime(b, {x}, &got));
    const std::vector<double> want = mode == DepthToSpaceMode::kDCR ? std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7}
                                                                    : std::vector<double>{0, 4, 1, 5, 2, 6, 3, 7};
    EXPECT_EQ(got[0].dims, (Dims{1, 2, 2, 2}));
    EXPECT_EQ(got[0].values, want);
    EXPECT_EQ(lowbit_test::reference_evaluate(b.graph(), {x})[0].values, want);
  }
}

TEST_F(Ops, SpaceToDepthThenDepthToSpaceDCRIsIdentity) {
  Rng r(904);
  for (int it = 0; it < 6; ++it) {
    const int block = r.uni(2, 3);
    const QuantType q = random_any_quant(r);
    const Dims xd = {1, block * r.uni(1, 3), block * r.uni(1, 3), random_channels(r, 33)};
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd) + " " + qname(q));
    ModelBuilder b;
    const RefTensor x = random_code_tensor(r, xd, q, 0.5f);
    b.output(b.depth_to_space("y", b.space_to_depth("s2d", add_input(b, "x", x), block), block));
    std::vector<RefTensor> got;
    ASSERT_TRUE(run_runtime(b, {x}, &got));
    EXPECT_EQ(got[0].values, x.values);
  }
}

TEST_F(Ops, ResizeNearest) {
  Rng r(905);
  for (int it = 0; it < 12; ++it) {
    const int fh = r.uni(1, 3), fw = r.uni(1, 3);
    const Dims xd = {r.uni(1, 2), r.uni(1, 5), r.uni(1, 5), random_channels(r, 65)};
    const bool codes = r.chance(0.6);
    const QuantType q = random_any_quant(r);
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd) + " x" + std::to_string(fh) + "," +
                 std::to_string(fw) + (codes ? " codes " + qname(q) : " float"));
    ModelBuilder b;
    const RefTensor x = random_tensor_like_kind(r, xd, codes, q, random_scale(r));
    b.output(b.resize_nearest("y", add_input(b, "x", x), fh, fw));
    check_model(b, {x}, 0.0, 0.0);
  }
}

TEST_F(Ops, Pad) {
  Rng r(906);
  for (int it = 0; it < 18; ++it) {
    const Dims xd = random_shape(r);
    const int rank = static_cast<int>(xd.size());
    std::vector<int32_t> pads(8, 0);
    for (int i = 4 - rank; i < 4; ++i) {
      pads[2 * i] = r.uni(0, 3);
      pads[2 * i + 1] = r.uni(0, 3);
    }
    // Codes pad with code 0, which binary codes cannot hold: activation kinds only.
    const bool codes = r.chance(0.5);
    const QuantType q = random_act_quant(r);
    const float value = codes ? 0.0f : r.uf(-2.0f, 2.0f);
    SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd) + " pads " + dims_str(pads) +
                 (codes ? " codes " + qname(q) : " float value " + std::to_string(value)));
    ModelBuilder b;
    const RefTensor x = random_tensor_like_kind(r, xd, codes, q, random_scale(r));
    b.output(b.pad("y", add_input(b, "x", x), pads, value));
    check_model(b, {x}, 0.0, 0.0);
  }
}

// A random shape with `total` elements and rank 1..4.
Dims random_factorization(Rng& r, int total) {
  const int rank = r.uni(1, 4);
  Dims d;
  int rest = total;
  for (int i = 0; i + 1 < rank; ++i) {
    std::vector<int> divisors;
    for (int k = 1; k <= rest; ++k)
      if (rest % k == 0) divisors.push_back(k);
    const int f = r.pick(divisors);
    d.push_back(f);
    rest /= f;
  }
  d.push_back(rest);
  return d;
}

TEST_F(Ops, Reshape) {
  Rng r(907);
  for (int it = 0; it < 20; ++it) {
    const Dims xd = random_shape(r);
    Dims yd;
    do yd = random_factorization(r, static_cast<int>(count_of(xd)));
    while (yd.back() == xd.back() && r.chance(0.8));  // mostly change the (packed) last dim
    const bool codes = r.chance(0.7);
    const QuantType q = random_any_quant(r);
    SCOPED_TRACE("case " + std::to_string(it) + ": " + dims_str(xd) + " -> " + dims_str(yd) +
                 (codes ? " codes " + qname(q) : " float"));
    ModelBuilder b;
    const RefTensor x = random_tensor_like_kind(r, xd, codes, q, random_scale(r));
    b.output(b.reshape("y", add_input(b, "x", x), yd));
    check_model(b, {x}, 0.0, 0.0);
  }
}

TEST_F(Ops, ReshapeCodesAcrossWords) {
  // [2, 3, 33] codes -> [1, 198] -> [6, 11, 3]: runs cross word boundaries at odd offsets.
  Rng r(908);
  const QuantType q = make_quant(QuantKind::kSigned, 3);
  ModelBuilder b;
  const RefTensor x = random_code_tensor(r, {2, 3, 33}, q, 0.25f);
  const auto flat = b.reshape("flat", add_input(b, "x", x), {1, 198});
  b.output(flat);
  b.output(b.reshape("y", flat, {6, 11, 3}));
  check_model(b, {x}, 0.0, 0.0);
}

TEST_F(Ops, BinaryCodesPadAndAvgPool) {
  // Binary codes have no code 0: zero padding (Pad: "codes pad with zero only") and a mean of
  // {-1, +1} (AvgPool) cannot be represented. Either the builder rejects such ops (as QConv2D
  // rejects binary activations) or the result must be the documented value; silently storing -1
  // is wrong. See /tmp/runtime_bugs.md (binary codes in Pad / AvgPool).
  const QuantType q = make_quant(QuantKind::kBinary, 1);
  {
    SCOPED_TRACE("Pad");
    ModelBuilder b;
    const RefTensor x = RefTensor::codes({1, 2}, q, 1.0f, {1, 1});
    b.output(b.pad("y", add_input(b, "x", x), {0, 0, 0, 0, 0, 0, 1, 1}));
    if (b.error().empty()) check_model(b, {x}, 0.0, 0.0);
  }
  {
    SCOPED_TRACE("AvgPool");
    ModelBuilder b;
    const RefTensor x = RefTensor::codes({1, 1, 2, 1}, q, 1.0f, {-1, 1});
    PoolParams p;
    p.kh = 1;
    p.kw = 2;
    p.stride_h = 1;
    p.stride_w = 2;
    b.output(b.avg_pool("y", add_input(b, "x", x), p));
    if (b.error().empty()) check_model(b, {x}, 0.0, 0.0);
  }
}

// ---------------------------------------------------------------------------------------------
// Broadcasting Add / Mul

void broadcast_cases(uint32_t seed, bool is_add) {
  Rng r(seed);
  for (int it = 0; it < 16; ++it) {
    const int rank = r.uni(1, 4);
    Dims full;
    for (int i = 0; i < rank; ++i) full.push_back(i + 1 == rank ? random_channels(r, 33) : r.uni(1, 4));
    auto operand = [&](Dims* d) {
      const int drop = r.uni(0, rank - 1);  // leading dims left out (numpy right-alignment)
      for (int i = drop; i < rank; ++i) d->push_back(r.chance(0.35) ? 1 : full[static_cast<size_t>(i)]);
    };
    Dims ad, bd;
    operand(&ad);
    operand(&bd);
    SCOPED_TRACE("case " + std::to_string(it) + ": " + dims_str(ad) + (is_add ? " + " : " * ") + dims_str(bd));
    ModelBuilder b;
    const RefTensor a = random_float_tensor(r, ad, -3.0f, 3.0f), c = random_float_tensor(r, bd, -3.0f, 3.0f);
    const auto ai = add_input(b, "a", a), ci = add_input(b, "b", c);
    b.output(is_add ? b.add("y", ai, ci) : b.mul("y", ai, ci));
    check_model(b, {a, c}, 1e-7, 1e-6);
  }
}

TEST_F(Ops, AddBroadcast) { broadcast_cases(1001, true); }
TEST_F(Ops, MulBroadcast) { broadcast_cases(1002, false); }

// ---------------------------------------------------------------------------------------------
// Quantize / Dequantize

// Values that probe the contract: random in and beyond the range, exact halves (in units of the
// scale, computed in float so x/scale may land just off the half), integers, zeros and extremes.
std::vector<float> quantize_probe_values(Rng& r, QuantType q, float scale, size_t n) {
  std::vector<float> v(n);
  const int lo = q.min_code(), hi = q.max_code();
  for (float& x : v) {
    switch (r.uni(0, 5)) {
      case 0:
      case 1: x = r.uf(lo - 2.5f, hi + 2.5f) * scale; break;
      case 2: x = (static_cast<float>(r.uni(lo - 2, hi + 1)) + 0.5f) * scale; break;
      case 3: x = static_cast<float>(r.uni(lo - 1, hi + 1)) * scale; break;
      case 4: x = r.pick<float>({0.0f, -0.0f, 0.5f, -0.5f, 1e30f, -1e30f, 1e-30f, -1e-30f}); break;
      default:
        x = r.pick<float>({std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::nextafter(0.5f, 0.0f) * scale, std::nextafter(0.5f, 1.0f) * scale,
                           std::nextafter(-0.5f, 0.0f) * scale, 1.5f * scale, -1.5f * scale, 2.5f * scale,
                           -2.5f * scale});
    }
  }
  return v;
}

TEST_F(Ops, Quantize) {
  Rng r(1101);
  std::vector<QuantType> all;
  for (int bits = 1; bits <= 4; ++bits) {
    all.push_back(make_quant(QuantKind::kUnsigned, bits));
    all.push_back(make_quant(QuantKind::kSigned, bits));
    if (bits >= 2) all.push_back(make_quant(QuantKind::kSignedNarrow, bits));
  }
  all.push_back(make_quant(QuantKind::kBinary, 1));
  int it = 0;
  for (const QuantType q : all)
    for (const Rounding rounding : {Rounding::kHalfUp, Rounding::kHalfEven})
      for (int rep = 0; rep < 2; ++rep, ++it) {
        const Dims xd = random_shape(r);
        const float scale = rep == 0 ? r.pick<float>({0.25f, 0.5f, 1.0f, 2.0f}) : r.uf(0.01f, 1.5f);
        SCOPED_TRACE("case " + std::to_string(it) + ": x " + dims_str(xd) + " -> " + qname(q) + " scale " +
                     std::to_string(scale) + (rounding == Rounding::kHalfEven ? " half-even" : " half-up"));
        ModelBuilder b;
        const RefTensor x = RefTensor::floats(xd, quantize_probe_values(r, q, scale, count_of(xd)));
        b.output(b.quantize("y", add_input(b, "x", x), CodeSpec{q, scale}, rounding));
        check_model(b, {x}, 0.0, 0.0);
      }
}

TEST_F(Ops, QuantizeKnownRounding) {
  // Scale 1, signed 4 bits: both modes on the halves, and clamping.
  const QuantType q = make_quant(QuantKind::kSigned, 4);
  const std::vector<float> xs = {2.5f, -2.5f, 3.5f, -3.5f, 0.5f, -0.5f, 1.49f, 7.6f, -9.0f, 100.0f};
  const std::vector<double> half_up = {3, -2, 4, -3, 1, 0, 1, 7, -8, 7};
  const std::vector<double> half_even = {2, -2, 4, -4, 0, 0, 1, 7, -8, 7};
  for (const Rounding rounding : {Rounding::kHalfUp, Rounding::kHalfEven}) {
    SCOPED_TRACE(rounding == Rounding::kHalfUp ? "half up" : "half even");
    ModelBuilder b;
    const RefTensor x = RefTensor::floats({10}, xs);
    b.output(b.quantize("y", add_input(b, "x", x), CodeSpec{q, 1.0f}, rounding));
    const std::vector<double>& want = rounding == Rounding::kHalfUp ? half_up : half_even;
    std::vector<RefTensor> got;
    ASSERT_TRUE(run_runtime(b, {x}, &got));
    EXPECT_EQ(got[0].values, want);
    EXPECT_EQ(lowbit_test::reference_evaluate(b.graph(), {x})[0].values, want);
  }
}

TEST_F(Ops, QuantizeNaNLikeZero) {
  // "NaN quantizes like zero" (src/quantize.h), for every kind: zero is code 0, or +1 for binary.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const QuantType q : {make_quant(QuantKind::kUnsigned, 2), make_quant(QuantKind::kSigned, 3),
                            make_quant(QuantKind::kSignedNarrow, 2), make_quant(QuantKind::kBinary, 1)}) {
    SCOPED_TRACE(qname(q));
    ModelBuilder b;
    const RefTensor x = RefTensor::floats({1, 3}, {nan, 0.0f, nan});
    b.output(b.quantize("y", add_input(b, "x", x), CodeSpec{q, 0.5f}));
    check_model(b, {x}, 0.0, 0.0);
    const double zero = q.kind == QuantKind::kBinary ? 1 : 0;
    EXPECT_EQ(lowbit_test::reference_evaluate(b.graph(), {x})[0].values, (std::vector<double>{zero, zero, zero}));
  }
}

TEST_F(Ops, SetInputF32QuantizesLikeQuantizeHalfUp) {
  // lowbit_set_input_f32 on a codes input must agree with the Quantize op (round half up, clamp).
  Rng r(1102);
  for (int it = 0; it < 8; ++it) {
    const QuantType q = random_any_quant(r);
    const float scale = random_scale(r);
    const Dims xd = random_shape(r);
    SCOPED_TRACE("case " + std::to_string(it) + ": " + dims_str(xd) + " " + qname(q) + " scale " + std::to_string(scale));
    const std::vector<float> xs = quantize_probe_values(r, q, scale, count_of(xd));
    ModelBuilder b;
    const auto xi = b.input_codes("x", xd, CodeSpec{q, scale});
    b.output(b.dequantize("y", xi));
    ASSERT_TRUE(b.error().empty()) << b.error();
    std::vector<uint8_t> bytes;
    ASSERT_TRUE(b.serialize(&bytes).ok);
    std::string err;
    lowbit::Model m = lowbit::Model::load(bytes.data(), bytes.size(), &err);
    ASSERT_TRUE(m) << err;
    ASSERT_TRUE(m.set_input(0, xs));
    ASSERT_TRUE(m.run());
    // Reference: a float graph Quantize(half up) -> Dequantize.
    ModelBuilder ref;
    ref.output(ref.dequantize("y", ref.quantize("q", ref.input("x", xd), CodeSpec{q, scale})));
    const RefTensor want = lowbit_test::reference_evaluate(ref.graph(), {RefTensor::floats(xd, xs)})[0];
    expect_matches(lowbit_test::read_model_output(m.get(), 0), want, 0.0, 1e-7);
  }
}

TEST_F(Ops, Dequantize) {
  Rng r(1103);
  for (int it = 0; it < 12; ++it) {
    const QuantType q = random_any_quant(r);
    const Dims xd = random_shape(r);
    const float scale = random_scale(r);
    SCOPED_TRACE("case " + std::to_string(it) + ": " + dims_str(xd) + " " + qname(q) + " scale " + std::to_string(scale));
    ModelBuilder b;
    const RefTensor x = random_code_tensor(r, xd, q, scale);
    b.output(b.dequantize("y", add_input(b, "x", x)));
    check_model(b, {x}, 0.0, 1e-7);
  }
}

// ---------------------------------------------------------------------------------------------
// Small multi-op networks: the reference's dependency walk, branches, several outputs.

TEST_F(Ops, SmallQuantizedNetworks) {
  Rng r(1201);
  for (int it = 0; it < 6; ++it) {
    const QuantType aq = random_act_quant(r), wq = random_weight_quant(r);
    const float as = random_scale(r);
    const CodeSpec act{aq, as};
    const int h = 2 * r.uni(2, 5), w = 2 * r.uni(2, 5), c0 = random_channels(r, 33), c1 = random_channels(r, 65);
    SCOPED_TRACE("case " + std::to_string(it) + ": x [1," + std::to_string(h) + "," + std::to_string(w) + "," +
                 std::to_string(c0) + "] a " + qname(aq) + " w " + qname(wq) + " c1 " + std::to_string(c1));
    ModelBuilder b;
    const RefTensor x = random_code_tensor(r, {1, h, w, c0}, aq, as);
    const auto xi = add_input(b, "x", x);
    auto qconv = [&](const std::string& name, ModelBuilder::Id in, int cin, int cout, int k, int groups) {
      const Dims wd = {cout, k, k, cin / groups};
      const auto wt = b.constant_weights(name + ".w", wd, wq, random_code_vector(r, wq, count_of(wd)));
      std::string ignored;
      const auto t = b.constant_i32(name + ".t", {cout, aq.threshold_count() + 1},
                                    random_thresholds(r, cout, aq, int64_t{k} * k * (cin / groups), aq, wq, &ignored));
      ConvParams p = ConvParams::same(k);
      p.groups = groups;
      return b.qconv2d_codes(name, in, wt, t, p, act);
    };
    // Two branches from the input, concatenated, then a depthwise conv, pooling and space_to_depth.
    const auto a1 = qconv("a1", xi, c0, c1, 3, 1);
    const auto a2 = qconv("a2", xi, c0, 7, 1, 1);
    const auto cat = b.concat("cat", {a1, a2});
    const auto dw = qconv("dw", cat, c1 + 7, c1 + 7, 3, c1 + 7);
    PoolParams pp;  // 2x2 / 2
    const auto mp = b.max_pool("mp", dw, pp);
    const auto s2d = b.space_to_depth("s2d", mp, 1 + (h % 4 == 0 && w % 4 == 0));
    const int cs = (c1 + 7) * (h % 4 == 0 && w % 4 == 0 ? 4 : 1);
    const auto c3 = qconv("c3", s2d, cs, 33, 3, 1);
    b.output(c3);  // codes, exact
    // Float head: QConv2D float output -> Affine -> LeakyRelu -> GlobalAvgPool -> Reshape -> Dense -> Softmax.
    const Dims wd = {10, 1, 1, 33};
    const auto hw = b.constant_weights("head.w", wd, wq, random_code_vector(r, wq, count_of(wd)));
    const auto hs = b.constant_f32("head.s", {10}, random_floats(r, 10, 0.01f, 0.1f));
    const auto head = b.qconv2d_float("head", c3, hw, hs, lowbit::kNoTensor, ConvParams{});
    const auto aff = b.affine("bn", head, b.constant_f32("bn.s", {10}, random_floats(r, 10, 0.5f, 1.5f)),
                              b.constant_f32("bn.b", {10}, random_floats(r, 10, -0.5f, 0.5f)));
    const auto gap = b.global_avg_pool("gap", b.leaky_relu("lrelu", aff, 0.1f));
    const auto flat = b.reshape("flat", gap, {1, 10});
    const auto fc = b.dense("fc", flat, b.constant_f32("fc.w", {5, 10}, random_floats(r, 50)),
                            b.constant_f32("fc.b", {5}, random_floats(r, 5)));
    b.output(b.softmax("prob", fc));
    check_model(b, {x}, 1e-6, 1e-4);
  }
}

TEST_F(Ops, ReferenceReturnsAllTensors) {
  ModelBuilder b;
  const RefTensor x = RefTensor::floats({1, 2}, {-1.0f, 2.0f});
  const auto y = b.relu("y", add_input(b, "x", x));
  b.output(b.sigmoid("z", y));
  std::vector<RefTensor> all;
  const auto out = lowbit_test::reference_evaluate(b.graph(), {x}, &all);
  ASSERT_EQ(all.size(), b.graph().tensors.size());
  EXPECT_EQ(all[y].values, (std::vector<double>{0.0, 2.0}));
  EXPECT_NEAR(out[0].values[1], 1.0 / (1.0 + std::exp(-2.0)), 1e-15);
  EXPECT_THROW(lowbit_test::reference_evaluate(b.graph(), {}), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------
// Threads and memory planning

TEST_F(Ops, ThreadsGiveIdenticalResults) {
  Rng r(1301);
  for (int it = 0; it < 8; ++it) {
    ConvCase k = random_conv(r, 300000);
    k.h += 4;  // enough rows to split
    const bool quantized = it % 2 == 0;
    SCOPED_TRACE("case " + std::to_string(it) + ": " + (quantized ? "QConv2D " : "Conv2D ") + k.str());
    ModelBuilder b;
    const Dims wd = {k.o, k.kh, k.kw, k.cg()};
    RefTensor x;
    if (quantized) {
      const QuantType aq = random_act_quant(r), wq = random_weight_quant(r), oq = random_act_quant(r);
      x = random_code_tensor(r, {k.n, k.h, k.w, k.c}, aq, 1.0f);
      const auto w = b.constant_weights("w", wd, wq, random_code_vector(r, wq, count_of(wd)));
      std::string ignored;
      const auto t = b.constant_i32("t", {k.o, oq.threshold_count() + 1},
                                    random_thresholds(r, k.o, oq, int64_t{k.kh} * k.kw * k.cg(), aq, wq, &ignored));
      b.output(b.qconv2d_codes("y", add_input(b, "x", x), w, t, k.p, CodeSpec{oq, 1.0f}));
    } else {
      x = random_float_tensor(r, {k.n, k.h, k.w, k.c});
      const auto w = b.constant_f32("w", wd, random_floats(r, count_of(wd)));
      b.output(b.conv2d("y", add_input(b, "x", x), w, lowbit::kNoTensor, k.p, Activation::kRelu));
    }
    std::vector<RefTensor> one, three;
    std::vector<std::vector<uint8_t>> raw1, raw3;
    ASSERT_TRUE(run_runtime(b, {x}, &one, 1, nullptr, &raw1));
    ASSERT_TRUE(run_runtime(b, {x}, &three, 3, nullptr, &raw3));
    EXPECT_EQ(raw1, raw3) << "3 threads differ from 1";
  }
}

// A worker's consecutive chunks of rows continue one another (WorkerScratch::continues), and the
// AVX2 conv then keeps the table offsets of the input rows they share. 3x3 binary-weight convs
// with enough rows for several chunks per worker, stride 1 and 2, on 2 and 3 threads after a first
// run on other inputs (run_runtime) must give one thread's bytes.
TEST_F(Ops, ConvRowsCarriedAcrossChunksGiveOneThreadsResults) {
  Rng r(1401);
  for (const int stride : {1, 2})
    for (const int a_bits : {1, 2}) {
      ConvCase k{};
      k.n = 1;
      k.h = 40;
      k.w = 30;
      k.c = 64;
      k.o = 48;
      k.kh = k.kw = 3;
      k.p = ConvParams::same(3, stride);
      SCOPED_TRACE("A" + std::to_string(a_bits) + " " + k.str());
      const QuantType aq = make_quant(QuantKind::kUnsigned, a_bits), wq = make_quant(QuantKind::kBinary, 1);
      const QuantType oq = make_quant(QuantKind::kUnsigned, 2);
      ModelBuilder b;
      const Dims wd = {k.o, k.kh, k.kw, k.cg()};
      const RefTensor x = random_code_tensor(r, {k.n, k.h, k.w, k.c}, aq, 1.0f);
      const auto w = b.constant_weights("w", wd, wq, random_code_vector(r, wq, count_of(wd)));
      std::string ignored;
      const auto t = b.constant_i32("t", {k.o, oq.threshold_count() + 1},
                                    random_thresholds(r, k.o, oq, int64_t{k.kh} * k.kw * k.cg(), aq, wq, &ignored));
      b.output(b.qconv2d_codes("y", add_input(b, "x", x), w, t, k.p, CodeSpec{oq, 1.0f}));
      std::vector<RefTensor> one, many;
      std::vector<std::vector<uint8_t>> raw1, raw_many;
      ASSERT_TRUE(run_runtime(b, {x}, &one, 1, nullptr, &raw1));
      for (const int threads : {2, 3}) {
        ASSERT_TRUE(run_runtime(b, {x}, &many, threads, nullptr, &raw_many));
        EXPECT_EQ(raw1, raw_many) << threads << " threads differ from 1";
      }
    }
}

TEST_F(Ops, ActivationMemoryIsReused) {
  // x -> A -> B -> C -> D: at most two of the five activations are alive at once.
  for (const bool codes : {false, true}) {
    SCOPED_TRACE(codes ? "codes chain" : "float chain");
    ModelBuilder b;
    Rng r(1302);
    const Dims xd = {1, 16, 16, 40};
    RefTensor x;
    ModelBuilder::Id t;
    if (codes) {
      const QuantType q = make_quant(QuantKind::kUnsigned, 2);
      x = random_code_tensor(r, xd, q, 0.5f);
      t = add_input(b, "x", x);
      PoolParams p;
      p.kh = p.kw = 3;
      p.stride_h = p.stride_w = 1;
      p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
      for (const char* name : {"A", "B", "C", "D"}) t = b.max_pool(name, t, p);
    } else {
      x = random_float_tensor(r, xd);
      t = add_input(b, "x", x);
      t = b.relu("A", t);
      t = b.leaky_relu("B", t, 0.1f);
      t = b.sigmoid("C", t);
      t = b.relu("D", t);
    }
    b.output(t);
    uint64_t sum = 0;
    for (const lowbit::TensorDesc& d : b.graph().tensors) sum += d.byte_size();
    size_t peak = 0;
    std::vector<RefTensor> got;
    ASSERT_TRUE(run_runtime(b, {x}, &got, 1, &peak));
    EXPECT_GT(peak, 0u);
    EXPECT_LT(peak, sum) << "no activation memory was reused";
    EXPECT_LE(peak, 2 * b.graph().tensors[t].byte_size() + 128) << "a chain needs only two live buffers";
    const auto want = lowbit_test::reference_evaluate(b.graph(), {x});
    expect_matches(got[0], want[0], 1e-7, 1e-6);
  }
}

}  // namespace
