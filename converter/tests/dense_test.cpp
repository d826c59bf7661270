// Dense QONNX graphs (Quant + BipolarQuant/Quant weights + MatMul/Gemm, MultiThreshold) convert
// and the runtime reproduces the interpreter's codes exactly and its logits closely.
#include <gtest/gtest.h>

#include <cmath>

#include "conversion_check.h"

namespace lowbit::converter::test {
namespace {

// x[1, 20] → Quant u2 → MatMul(BipolarQuant per-tensor) → BN → Quant s3 → Gemm(Quant sn2 weights,
// per-channel scale, transB=1) → Quant u3 → Gemm float classifier with bias.
OnnxMaker dense_model(TestRng& rng) {
  OnnxMaker m;
  m.input("x", {1, 20});
  m.quant("x", "a0", 0.25f, 2, false);
  m.bipolar(m.constant("w1", {20, 33}, rng.normal(20 * 33, 1.0f)), "w1q", {}, {0.37f});
  m.node("MatMul", {"a0", "w1q"}, "mm1");
  m.batch_norm("mm1", "bn1", rng.uniform(33, -1.5f, 1.5f), rng.normal(33, 0.5f), rng.normal(33, 0.3f),
               rng.uniform(33, 0.5f, 2.0f));
  m.quant("bn1", "a1", 0.5f, 3, true);
  m.quant_scaled(m.constant("w2", {17, 33}, rng.normal(17 * 33, 0.6f)), "w2q", {17, 1}, rng.uniform(17, 0.2f, 0.5f), 2,
                 true, true, "ROUND");
  m.node("Gemm", {"a1", "w2q", m.constant("b2", {17}, rng.normal(17, 0.5f))}, "fc2", {Attr::i("transB", 1)});
  m.quant("fc2", "a2", 0.3f, 3, false);
  m.node("Gemm", {"a2", m.constant("w3", {17, 5}, rng.normal(17 * 5, 0.5f)), m.constant("b3", {5}, rng.normal(5, 0.1f))},
         "logits");
  m.output("logits");
  return m;
}

TEST(DenseGraphs, QuantBipolarMatMulAndGemmMatchTheInterpreter) {
  TestRng rng(11);
  ConversionCheck check(dense_model(rng), "dense");
  for (int trial = 0; trial < 20; ++trial) {
    const CheckReport r = check.run({rng.normal(20, 0.6f, 0.3f)});
    EXPECT_EQ(r.quantized_tensors, 3u);
    EXPECT_EQ(r.codes_differing, 0u) << r.first_difference;
    EXPECT_LE(r.max_output_error, 1e-5 * (1 + r.max_output_value));
  }
}

}  // namespace
}  // namespace lowbit::converter::test
