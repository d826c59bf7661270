// Graphs mixing the layout, pooling and element-wise ops with quantized layers, and the QONNX
// ops beyond Quant/BipolarQuant (MultiThreshold, Trunc, zero points): converted models reproduce
// the interpreter.
#include <gtest/gtest.h>

#include "conversion_check.h"

namespace lowbit::converter::test {
namespace {

constexpr float kA2 = 2.0f / 3.0f;  // Blueoil's 2-bit activation step

// Conv → BatchNorm → Quant u2 with binary weights and statistics on the accumulator's scale.
std::string block(OnnxMaker& m, TestRng& rng, const std::string& x, const std::string& name, int64_t cin, int64_t cout,
                  int64_t kernel, int64_t pad, int64_t stride, float in_scale) {
  const std::string wq = m.bipolar(m.constant(name + ".w", {cout, cin, kernel, kernel},
                                              rng.normal(static_cast<size_t>(cout * cin * kernel * kernel), 1.0f)),
                                   name + ".wq", {cout, 1, 1, 1}, rng.uniform(static_cast<size_t>(cout), 0.5f, 1.0f));
  m.conv(x, wq, "", name + ".conv", kernel, pad, stride);
  const float spread = in_scale * 0.75f * std::sqrt(static_cast<float>(cin * kernel * kernel));
  m.batch_norm(name + ".conv", name + ".bn", rng.uniform(static_cast<size_t>(cout), -1.5f, 1.5f),
               rng.normal(static_cast<size_t>(cout), 0.4f, 0.7f), rng.normal(static_cast<size_t>(cout), spread * 0.3f),
               rng.uniform(static_cast<size_t>(cout), spread * spread * 0.5f, spread * spread * 1.5f));
  return m.quant(name + ".bn", name + ".act", kA2, 2, false);
}

TEST(LayoutAndPoolingOps, ConvertedGraphMatchesTheInterpreter) {
  TestRng rng(5);
  OnnxMaker m;
  m.input("x", {1, 4, 6, 6});
  m.quant("x", "a0", 0.25f, 2, false);
  block(m, rng, "a0", "c1", 4, 8, 3, 1, 1, 0.25f);  // [1, 8, 6, 6]
  m.node("MaxPool", {"c1.act"}, "mp", {Attr::ints("kernel_shape", {2, 2}), Attr::ints("strides", {2, 2})});
  m.node("Pad", {"mp", m.constant_i64("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1})}, "pd");
  block(m, rng, "pd", "c2", 8, 8, 3, 0, 1, kA2);  // [1, 8, 3, 3]
  m.node("Concat", {"mp", "c2.act"}, "cat", {Attr::i("axis", 1)});
  m.node("DepthToSpace", {"cat"}, "d2s", {Attr::i("blocksize", 2), Attr::s("mode", "DCR")});  // [1, 4, 6, 6]
  m.node("Resize", {"d2s", "", m.constant("up.scales", {4}, {1, 1, 2, 2})}, "up", {Attr::s("mode", "nearest")});
  block(m, rng, "up", "c3", 4, 6, 3, 1, 2, kA2);  // stride 2: [1, 6, 6, 6]
  // A quantized layer with a float output (BatchNorm and Relu after it, no quantizer).
  m.conv("c3.act", m.bipolar(m.constant("c4.w", {5, 6, 1, 1}, rng.normal(30, 1.0f)), "c4.wq", {}, {0.5f}), "", "c4", 1, 0);
  m.batch_norm("c4", "c4.bn", rng.uniform(5, 0.5f, 1.5f), rng.normal(5, 0.3f), rng.normal(5, 0.5f), rng.uniform(5, 0.5f, 2.0f));
  m.node("Relu", {"c4.bn"}, "c4.relu");
  m.node("AveragePool", {"c4.relu"}, "avg",
         {Attr::ints("kernel_shape", {3, 3}), Attr::ints("strides", {2, 2}),
          Attr::i("ceil_mode", 1)});
  m.node("Add", {"avg", m.constant("shift", {5, 1, 1}, rng.normal(5, 0.5f))}, "shifted");
  m.node("Mul", {"shifted", m.constant("gain", {}, {1.5f})}, "scaled");
  m.node("LeakyRelu", {"scaled"}, "leaky", {Attr::f("alpha", 0.2f)});
  m.node("Sigmoid", {"leaky"}, "sig");
  m.node("GlobalAveragePool", {"sig"}, "gap");
  m.node("Flatten", {"gap"}, "flat");
  m.node("Gemm", {"flat", m.constant("fc.w", {5, 3}, rng.normal(15, 2.0f)), m.constant("fc.b", {3}, rng.normal(3, 0.5f))},
         "fc");
  m.node("Softmax", {"fc"}, "probs", {Attr::i("axis", 1)});
  m.output("probs");

  ConversionCheck check(m, "layout_ops");
  for (int trial = 0; trial < 8; ++trial) {
    const CheckReport r = check.run({rng.normal(4 * 36, 0.5f, 0.3f)});
    EXPECT_EQ(r.quantized_tensors, 4u);
    EXPECT_GE(r.fewest_distinct_codes, 3u);
    EXPECT_EQ(r.codes_differing, 0u) << r.first_difference;
    EXPECT_LE(r.max_output_error, 1e-5);
  }
}

// MultiThreshold after quantized MatMuls (UINT2 and BIPOLAR outputs), Trunc (version 1) and an
// input quantizer with a zero point that shifts its codes into the signed range.
TEST(QonnxCustomOps, MultiThresholdTruncAndZeroPointConvert) {
  TestRng rng(9);
  OnnxMaker m;
  m.input("x", {1, 16});
  m.quant("x", "a0", 0.25f, 2, false, false, "ROUND", 2.0f);  // codes q - 2 in [-2, 1]: signed 2-bit
  m.bipolar(m.constant("w1", {16, 24}, rng.normal(16 * 24, 1.0f)), "w1q", {}, {1.0f});
  m.node("MatMul", {"a0", "w1q"}, "mm1");
  m.node("Mul", {"mm1", m.constant("g1", {24}, rng.uniform(24, -2.0f, 2.0f))}, "mm1.scaled");
  std::vector<float> t1;  // three increasing thresholds per channel
  for (float base : rng.normal(24, 1.5f)) t1.insert(t1.end(), {base - 2.0f, base, base + 1.5f});
  m.node("MultiThreshold", {"mm1.scaled", m.constant("t1", {24, 3}, t1)}, "a1", {Attr::s("out_dtype", "UINT2")}, kQonnx);
  m.quant_scaled(m.constant("w2", {24, 10}, rng.normal(240, 1.5f)), "w2q", {}, {0.5f}, 3, true, false, "ROUND");
  m.node("MatMul", {"a1", "w2q"}, "mm2");
  m.node("MultiThreshold", {"mm2", m.constant("t2", {1, 1}, {0.25f})}, "a2",
         {Attr::s("out_dtype", "BIPOLAR"), Attr::f("out_scale", 2.0f), Attr::f("out_bias", -1.0f)}, kQonnx);
  m.bipolar(m.constant("w3", {10, 12}, rng.normal(120, 1.0f)), "w3q", {}, {1.0f});
  m.node("MatMul", {"a2", "w3q"}, "mm3");
  m.node("Trunc",
         {"mm3", m.constant("tr.scale", {}, {1.0f}), m.constant("tr.zp", {}, {0.0f}), m.constant("tr.in", {}, {8.0f}),
          m.constant("tr.out", {}, {6.0f})},
         "a3", {Attr::s("rounding_mode", "FLOOR")}, kQonnx);
  m.node("MatMul", {"a3", m.bipolar(m.constant("w4", {12, 3}, rng.normal(36, 1.0f)), "w4q", {}, {0.5f})}, "logits");
  m.output("logits");

  ConversionCheck check(m, "qonnx_ops");
  for (int trial = 0; trial < 16; ++trial) {
    const CheckReport r = check.run({rng.normal(16, 0.6f)});
    EXPECT_EQ(r.quantized_tensors, 4u);
    EXPECT_GE(r.fewest_distinct_codes, 2u);
    EXPECT_EQ(r.codes_differing, 0u) << r.first_difference;
    EXPECT_LE(r.max_output_error, 1e-5 * (1 + r.max_output_value));
  }
}

}  // namespace
}  // namespace lowbit::converter::test
