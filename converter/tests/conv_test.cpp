// Convolutional QONNX graphs (Conv + BatchNormalization + Quant blocks) convert, and the runtime
// reproduces the interpreter's codes exactly and its logits closely.
#include <gtest/gtest.h>

#include <cmath>

#include "conversion_check.h"

namespace lowbit::converter::test {
namespace {

struct ConvNetSpec {
  std::string name;
  int64_t in_channels = 3, size = 8;
  std::vector<int64_t> channels = {5, 7};  // quantized 3x3 blocks
  bool float_first = false;   // a float first conv (dyadic values, BatchNorm, Quant) before the blocks
  bool per_channel = false;   // per-output-channel weight scales
  bool signed_acts = false;   // signed 3-bit activations instead of unsigned 2-bit
  bool space_to_depth = false;  // SpaceToDepth(2) after the first block
  bool flatten_gemm = false;  // classifier Flatten + Gemm on [C, H, W] instead of conv 1x1 + GlobalAveragePool
};

void PrintTo(const ConvNetSpec& spec, std::ostream* os) { *os << spec.name; }

class ConvNetMaker {
 public:
  ConvNetMaker(const ConvNetSpec& spec, uint32_t seed) : spec_(spec), rng_(seed) {}

  OnnxMaker make() {
    m_.input("x", {1, spec_.in_channels, spec_.size, spec_.size});
    int64_t c = spec_.in_channels, size = spec_.size;
    std::string a;
    double scale;
    if (spec_.float_first) {
      c = 6;
      a = float_first_block("x", spec_.in_channels, c, &scale);
    } else {
      scale = 0.25;
      a = act_quant("x", "a0", scale);
    }
    for (size_t i = 0; i < spec_.channels.size(); ++i) {
      a = quant_block(a, "b" + std::to_string(i), c, spec_.channels[i], i % 2 == 1, &scale);
      c = spec_.channels[i];
      if (i == 0 && spec_.space_to_depth) {
        a = m_.node("SpaceToDepth", {a}, "s2d", {Attr::i("blocksize", 2)});
        c *= 4;
        size /= 2;
      }
    }
    const int64_t classes = 4;
    if (spec_.flatten_gemm) {
      m_.node("Flatten", {a}, "flat", {Attr::i("axis", 1)});
      const int64_t k = c * size * size;
      m_.node("Gemm",
              {"flat", m_.constant("fc.w", {classes, k}, rng_.normal(static_cast<size_t>(classes * k), 0.3f)),
               m_.constant("fc.b", {classes}, rng_.normal(classes, 0.1f))},
              "logits", {Attr::i("transB", 1)});
    } else {
      m_.conv(a, m_.constant("cls.w", {classes, c, 1, 1}, rng_.normal(static_cast<size_t>(classes * c), 0.3f)),
              m_.constant("cls.b", {classes}, rng_.normal(classes, 0.1f)), "cls", 1, 0);
      m_.node("GlobalAveragePool", {"cls"}, "pool");
      m_.node("Flatten", {"pool"}, "logits", {Attr::i("axis", 1)});
    }
    m_.output("logits");
    return m_;
  }

  std::vector<float> input() {
    const size_t n = static_cast<size_t>(spec_.in_channels * spec_.size * spec_.size);
    // Dyadic inputs keep the float first conv exact in float32 and float64 alike.
    return spec_.float_first ? rng_.dyadic(n, -32, 32, 4) : rng_.normal(n, 0.5f, 0.2f);
  }

 private:
  std::string act_quant(const std::string& x, const std::string& out, double scale) {
    return spec_.signed_acts ? m_.quant(x, out, static_cast<float>(scale), 3, true)
                             : m_.quant(x, out, static_cast<float>(scale), 2, false);
  }

  // Conv → BatchNorm → activation quantizer on quantized input with quantized weights.
  std::string quant_block(const std::string& x, const std::string& name, int64_t cin, int64_t cout, bool ternary,
                          double* scale) {
    const size_t wn = static_cast<size_t>(cout * cin * 9);
    std::vector<float> alpha = spec_.per_channel ? rng_.uniform(static_cast<size_t>(cout), 0.2f, 1.0f)
                                                 : std::vector<float>{0.6f};
    const Shape alpha_dims = spec_.per_channel ? Shape{cout, 1, 1, 1} : Shape{};
    const std::string w = m_.constant(name + ".w", {cout, cin, 3, 3}, rng_.normal(wn, 0.8f));
    const std::string wq = ternary ? m_.quant_scaled(w, name + ".wq", alpha_dims, alpha, 2, true, true, "ROUND")
                                   : m_.bipolar(w, name + ".wq", alpha_dims, alpha);
    m_.conv(x, wq, "", name + ".conv", 3, 1);
    // Statistics on the accumulator's scale so the activations spread over all codes.
    const double unit = *scale * alpha[0];
    std::vector<float> gamma = rng_.uniform(static_cast<size_t>(cout), 0.3f, 1.5f);
    for (size_t o = 0; o < gamma.size(); ++o)
      if (o % 3 == 1) gamma[o] = -gamma[o];  // decreasing thresholds
    gamma[gamma.size() - 1] = 0.0f;         // a constant channel
    std::vector<float> var(static_cast<size_t>(cout)), mean = rng_.normal(static_cast<size_t>(cout), static_cast<float>(2 * unit));
    for (float& v : var) v = static_cast<float>(cin * 9 * 0.5 * unit * unit * std::uniform_real_distribution<double>(0.5, 1.5)(rng_.engine()));
    m_.batch_norm(name + ".conv", name + ".bn", gamma, rng_.normal(static_cast<size_t>(cout), 0.6f, 0.5f), mean, var);
    *scale = spec_.signed_acts ? 0.5 : 2.0 / 3.0;
    return act_quant(name + ".bn", name + ".act", *scale);
  }

  // The first conv sees the float image: binary weights (alpha a power of two) and BatchNorm
  // statistics whose folding is exact (var + eps a power-of-two square, dyadic gamma/beta/mean).
  std::string float_first_block(const std::string& x, int64_t cin, int64_t cout, double* scale) {
    const float eps = std::ldexp(1.0f, -16);
    const std::string wq =
        m_.bipolar(m_.constant("c0.w", {cout, cin, 3, 3}, rng_.normal(static_cast<size_t>(cout * cin * 9), 1.0f)),
                   "c0.wq", {}, {0.125f});
    m_.conv(x, wq, "", "c0.conv", 3, 1);
    std::vector<float> var(static_cast<size_t>(cout));
    for (size_t o = 0; o < var.size(); ++o) var[o] = std::ldexp(1.0f, 2 * static_cast<int>(o % 3) - 2) - eps;
    std::vector<float> gamma = rng_.dyadic(static_cast<size_t>(cout), -12, 12, 3);
    m_.batch_norm("c0.conv", "c0.bn", gamma, rng_.dyadic(static_cast<size_t>(cout), -8, 16, 4),
                  rng_.dyadic(static_cast<size_t>(cout), -8, 8, 4), var, eps);
    *scale = spec_.signed_acts ? 0.5 : 2.0 / 3.0;
    return act_quant("c0.bn", "c0.act", *scale);
  }

  ConvNetSpec spec_;
  TestRng rng_;
  OnnxMaker m_;
};

class ConvGraphs : public ::testing::TestWithParam<ConvNetSpec> {};

TEST_P(ConvGraphs, RuntimeCodesEqualTheInterpreter) {
  const ConvNetSpec& spec = GetParam();
  ConvNetMaker maker(spec, 7);
  ConversionCheck check(maker.make(), "conv_" + spec.name);
  for (int trial = 0; trial < 8; ++trial) {
    const CheckReport r = check.run({maker.input()});
    EXPECT_EQ(r.quantized_tensors, spec.channels.size() + 1);
    EXPECT_GE(r.fewest_distinct_codes, 3u);
    EXPECT_EQ(r.codes_differing, 0u) << r.first_difference;
    EXPECT_LE(r.max_output_error, 1e-5 * (1 + r.max_output_value));
  }
}

ConvNetSpec spec(const std::string& name) {
  ConvNetSpec s;
  s.name = name;
  return s;
}

ConvNetSpec with(ConvNetSpec s, bool ConvNetSpec::*flag) {
  s.*flag = true;
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Blocks, ConvGraphs,
    ::testing::Values(spec("unsigned_per_tensor"), with(spec("signed_acts"), &ConvNetSpec::signed_acts),
                      with(spec("per_channel"), &ConvNetSpec::per_channel),
                      with(with(spec("signed_per_channel"), &ConvNetSpec::signed_acts), &ConvNetSpec::per_channel),
                      with(spec("space_to_depth"), &ConvNetSpec::space_to_depth),
                      with(spec("float_first"), &ConvNetSpec::float_first),
                      with(with(spec("flatten_gemm"), &ConvNetSpec::flatten_gemm), &ConvNetSpec::space_to_depth),
                      [] {
                        ConvNetSpec s = spec("wide_odd_channels");
                        s.in_channels = 1;
                        s.channels = {37, 65, 33};
                        s.per_channel = true;
                        return s;
                      }()),
    [](const ::testing::TestParamInfo<ConvNetSpec>& info) { return info.param.name; });

}  // namespace
}  // namespace lowbit::converter::test
