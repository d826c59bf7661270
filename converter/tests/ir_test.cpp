// The IR: interpreter semantics spot-checked against hand-computed ONNX results, and the graph passes.
#include <gtest/gtest.h>

#include <algorithm>

#include "conversion_check.h"
#include "converter/onnx_import.h"
#include "converter/passes.h"

namespace lowbit::converter::test {
namespace {

Graph import(const OnnxMaker& m) { return import_onnx_bytes(m.bytes(), "test.onnx"); }

std::vector<double> run_one(const OnnxMaker& m, const std::vector<double>& input) {
  const Graph g = import(m);
  const Evaluation e = evaluate(g, {Array(g.value(g.inputs[0]).dims, input)});
  return e.values[static_cast<size_t>(g.outputs[0])]->values;
}

TEST(Interpreter, SpaceToDepthAndDepthToSpaceUseOnnxChannelOrder) {
  OnnxMaker s2d;
  s2d.input("x", {1, 2, 2, 2});  // channels c, pixels (y, x)
  s2d.node("SpaceToDepth", {"x"}, "y", {Attr::i("blocksize", 2)});
  s2d.output("y");
  // out channel (by * 2 + bx) * C + c = in (c, by, bx)
  EXPECT_EQ(run_one(s2d, {0, 1, 2, 3, 10, 11, 12, 13}), (std::vector<double>{0, 10, 1, 11, 2, 12, 3, 13}));

  for (const char* mode : {"DCR", "CRD"}) {
    OnnxMaker d2s;
    d2s.input("x", {1, 8, 1, 1});
    d2s.node("DepthToSpace", {"x"}, "y", {Attr::i("blocksize", 2), Attr::s("mode", mode)});
    d2s.output("y");
    const std::vector<double> y = run_one(d2s, {0, 1, 2, 3, 4, 5, 6, 7});
    // DCR: in channel (by * 2 + bx) * C' + c; CRD: c * 4 + by * 2 + bx.
    const std::vector<double> want = std::string(mode) == "DCR" ? std::vector<double>{0, 2, 4, 6, 1, 3, 5, 7}
                                                                : std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7};
    EXPECT_EQ(y, want) << mode;
  }
}

TEST(Interpreter, GemmAppliesTransposeAlphaAndBeta) {
  OnnxMaker m;
  m.input("x", {1, 2});
  m.node("Gemm", {"x", m.constant("w", {3, 2}, {1, 2, 3, 4, 5, 6}), m.constant("c", {3}, {1, 1, 1})}, "y",
         {Attr::i("transB", 1), Attr::f("alpha", 2.0f), Attr::f("beta", 0.5f)});
  m.output("y");
  EXPECT_EQ(run_one(m, {1, -1}), (std::vector<double>{-1.5, -1.5, -1.5}));
}

TEST(Interpreter, PoolingHonoursPaddingAndCeilMode) {
  OnnxMaker m;
  m.input("x", {1, 1, 3, 3});
  m.node("AveragePool", {"x"}, "y", {Attr::ints("kernel_shape", {2, 2}), Attr::ints("strides", {2, 2}), Attr::i("ceil_mode", 1)});
  m.output("y");
  // Windows at the right and bottom edge average only the elements inside.
  EXPECT_EQ(run_one(m, {1, 2, 3, 4, 5, 6, 7, 8, 9}), (std::vector<double>{3, 4.5, 7.5, 9}));
}

TEST(Interpreter, QuantizersExposeTheirCodes) {
  OnnxMaker m;
  m.input("x", {1, 4});
  m.quant("x", "q", 0.5f, 2, true, false, "HALF_UP");
  m.output("q");
  const Graph g = import(m);
  const Evaluation e = evaluate(g, {Array({1, 4}, {-0.25, 0.25, 0.6, -9})});
  // t = -0.5, 0.5, 1.2, -18: half away from zero, clamped to [-2, 1].
  EXPECT_EQ(e.quantized(g, "q").codes, (std::vector<int32_t>{-1, 1, 1, -2}));
  EXPECT_EQ(e.value(g, "q").values, (std::vector<double>{-0.5, 0.5, 0.5, -1.0}));
}

TEST(GraphPasses, WeightQuantizersFoldIntoConstantsWithCodes) {
  OnnxMaker m;
  m.input("x", {1, 3});
  m.bipolar(m.constant("w", {3, 2}, {0.5f, -1, 0, 2, -3, 1}), "wq", {1, 2}, {0.25f, 0.5f});
  m.node("MatMul", {"x", "wq"}, "y");
  m.node("Relu", {"x"}, "unused");  // dead
  m.output("y");
  Graph g = import(m);
  run_graph_passes(g);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "MatMul");
  const Value& wq = g.value(g.find_value("wq"));
  ASSERT_TRUE(wq.quantized);
  EXPECT_EQ(wq.quantized->codes, (std::vector<int32_t>{1, -1, 1, 1, -1, 1}));
  EXPECT_EQ(wq.constant->values, (std::vector<double>{0.25, -0.5, 0.25, 0.5, -0.25, 0.5}));
}

TEST(GraphPasses, IdentityAndDropoutGoAndOutputsKeepTheirNames) {
  OnnxMaker m;
  m.input("x", {1, 3});
  m.node("Relu", {"x"}, "r");
  m.node("Dropout", {"r"}, "d");
  m.node("Identity", {"d"}, "y");
  m.output("y");
  Graph g = import(m);
  run_graph_passes(g);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.value(g.nodes[0].outputs[0]).name, "y");

  ConversionCheck check(m, "identities");
  EXPECT_STREQ(check.model().output_info(0).name, "y");
  const CheckReport r = check.run({{-1.0f, 0.5f, 2.0f}});
  EXPECT_EQ(r.max_output_error, 0.0);
}

}  // namespace
}  // namespace lowbit::converter::test
