// The introspection API (lowbit_model_op_info, lowbit_model_constant_bytes and their C++ wrapper):
// one small model with every op type, MACs / parameters / activation bytes against hand-computed
// values.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/lowbit.h"
#include "lowbit/lowbit.hpp"
#include "lowbit/model_builder.h"

namespace lowbit {
namespace {

// x f32 [1,6,6,3] → Conv2D 3x3 (4) → Affine → Relu → LeakyRelu → Sigmoid → Mul(sigmoid, leaky)
// → Add(mul, sigmoid) → MaxPool 2x2 | AvgPool 2x2 → Concat [1,3,3,8] → Quantize u2 → Pad to 4x4
// → SpaceToDepth 2 → DepthToSpace 2 → ResizeNearest x2 [1,8,8,8] → QConv2D 3x3 s2 bin1 (4, u2)
// [1,4,4,4] → GlobalAvgPool → Reshape [1,4] → Dense (5) → Softmax "probs";
// QConv2D → QDense bin1 (3, u2) → Dequantize "dq".
const CodeSpec kU2{{2, QuantKind::kUnsigned}, 0.5f};
const QuantType kBin{1, QuantKind::kBinary};

std::vector<float> ramp(size_t n, float step) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = step * static_cast<float>(static_cast<int>(i % 7) - 3);
  return v;
}
std::vector<int32_t> signs(size_t n) {
  std::vector<int32_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (i * 7 + i / 5) % 3 == 0 ? -1 : 1;
  return v;
}
std::vector<int32_t> thresholds(int32_t outputs) {  // u2: 3 increasing thresholds per channel
  std::vector<int32_t> t;
  for (int32_t o = 0; o < outputs; ++o) t.insert(t.end(), {kThresholdIncreasing, -2 + o, o, 3 + o});
  return t;
}

std::vector<uint8_t> every_op_model() {
  ModelBuilder b;
  const auto x = b.input("x", {1, 6, 6, 3});
  const auto cw = b.constant_f32("conv.w", {4, 3, 3, 3}, ramp(108, 0.05f));
  const auto cb = b.constant_f32("conv.b", {4}, ramp(4, 0.1f));
  const auto conv = b.conv2d("conv", x, cw, cb, ConvParams::same(3));
  const auto aff = b.affine("affine", conv, b.constant_f32("affine.s", {4}, {1, 2, 3, 4}),
                            b.constant_f32("affine.b", {4}, {0, 0.5f, -0.5f, 1}));
  const auto relu = b.relu("relu", aff);
  const auto leaky = b.leaky_relu("leaky", relu, 0.2f);
  const auto sig = b.sigmoid("sigmoid", leaky);
  const auto mul = b.mul("mul", sig, leaky);
  const auto add = b.add("add", mul, sig);
  const auto maxp = b.max_pool("maxpool", add, PoolParams{});
  const auto avgp = b.avg_pool("avgpool", add, PoolParams{});
  const auto cat = b.concat("concat", {maxp, avgp});
  const auto q = b.quantize("quantize", cat, kU2);
  const auto pad = b.pad("pad", q, {0, 0, 0, 1, 0, 1, 0, 0});
  const auto s2d = b.space_to_depth("s2d", pad, 2);
  const auto d2s = b.depth_to_space("d2s", s2d, 2);
  const auto up = b.resize_nearest("resize", d2s, 2, 2);
  const auto qw = b.constant_weights("qconv.w", {4, 3, 3, 8}, kBin, signs(4 * 9 * 8));
  const auto qconv = b.qconv2d_codes("qconv", up, qw, b.constant_i32("qconv.th", {4, 4}, thresholds(4)),
                                     ConvParams::same(3, 2), kU2);
  const auto gap = b.global_avg_pool("gap", qconv);
  const auto flat = b.reshape("flat", gap, {1, 4});
  const auto dense = b.dense("dense", flat, b.constant_f32("dense.w", {5, 4}, ramp(20, 0.1f)),
                             b.constant_f32("dense.b", {5}, ramp(5, 0.01f)));
  b.output(b.softmax("probs", dense));
  const auto dw = b.constant_weights("qdense.w", {3, 4, 4, 4}, kBin, signs(3 * 64));
  const auto qdense = b.qdense_codes("qdense", qconv, dw, b.constant_i32("qdense.th", {3, 4}, thresholds(3)), kU2);
  b.output(b.dequantize("dq", qdense));
  std::vector<uint8_t> bytes;
  const Status s = b.serialize(&bytes);
  EXPECT_TRUE(s.ok) << s.message << " " << b.error();
  return bytes;
}

const std::vector<uint8_t>& model_bytes() {
  static const std::vector<uint8_t> bytes = every_op_model();
  return bytes;
}

Model load() {
  std::string error;
  Model m = Model::load(model_bytes().data(), model_bytes().size(), &error);
  EXPECT_TRUE(m) << error;
  return m;
}

// Every op's info, keyed by its output tensor's name.
std::map<std::string, lowbit_op_info> infos(const Model& m) {
  std::map<std::string, lowbit_op_info> by_name;
  for (int i = 0; i < m.num_ops(); ++i) {
    lowbit_op_info info{};
    EXPECT_EQ(lowbit_model_op_info(m.get(), i, &info), 0) << lowbit_last_error();
    by_name[info.output.name] = info;
  }
  return by_name;
}

TEST(Introspection, OneEntryPerOpWithTypeAndShapes) {
  const Model m = load();
  ASSERT_TRUE(m);
  ASSERT_EQ(m.num_ops(), 22);
  const auto ops = infos(m);
  ASSERT_EQ(ops.size(), 22u);
  const std::map<std::string, std::string> types = {
      {"conv", "Conv2D"}, {"affine", "Affine"}, {"relu", "Relu"}, {"leaky", "LeakyRelu"}, {"sigmoid", "Sigmoid"},
      {"mul", "Mul"}, {"add", "Add"}, {"maxpool", "MaxPool"}, {"avgpool", "AvgPool"}, {"concat", "Concat"},
      {"quantize", "Quantize"}, {"pad", "Pad"}, {"s2d", "SpaceToDepth"}, {"d2s", "DepthToSpace"},
      {"resize", "ResizeNearest"}, {"qconv", "QConv2D"}, {"gap", "GlobalAvgPool"}, {"flat", "Reshape"},
      {"dense", "Dense"}, {"probs", "Softmax"}, {"qdense", "QDense"}, {"dq", "Dequantize"}};
  for (const auto& [name, type] : types) {
    ASSERT_TRUE(ops.count(name)) << name;
    EXPECT_STREQ(ops.at(name).type, type.c_str()) << name;
  }
  // The order is the execution order of lowbit_op_profile.
  for (int i = 0; i < m.num_ops(); ++i) {
    const char* output = nullptr;
    ASSERT_EQ(lowbit_op_profile(m.get(), i, nullptr, &output, nullptr), 0);
    EXPECT_STREQ(m.op_info(i).output.name, output);
  }

  const lowbit_op_info& conv = ops.at("conv");
  ASSERT_EQ(conv.num_inputs, 3);
  EXPECT_STREQ(conv.inputs[0].name, "x");
  EXPECT_EQ(conv.input_is_constant[0], 0);
  EXPECT_EQ(conv.input_is_constant[1], 1);
  EXPECT_EQ(conv.input_is_constant[2], 1);
  EXPECT_EQ(conv.inputs[1].rank, 4);
  EXPECT_EQ(conv.inputs[1].dims[3], 3);
  EXPECT_EQ(conv.output.dtype, LOWBIT_F32);
  EXPECT_EQ(conv.output.dims[1], 6);
  EXPECT_EQ(conv.output.dims[3], 4);

  const lowbit_op_info& qconv = ops.at("qconv");
  EXPECT_EQ(qconv.inputs[0].dtype, LOWBIT_CODES);
  EXPECT_EQ(qconv.inputs[0].bits, 2);
  EXPECT_EQ(qconv.inputs[1].bits, 1);
  EXPECT_EQ(qconv.inputs[1].kind, LOWBIT_BINARY);
  EXPECT_EQ(qconv.inputs[2].dtype, LOWBIT_I32);
  EXPECT_EQ(qconv.output.dtype, LOWBIT_CODES);
  EXPECT_EQ(qconv.output.bits, 2);
  EXPECT_EQ(qconv.output.dims[1], 4);  // stride 2 over 8x8
  EXPECT_EQ(ops.at("concat").num_inputs, 2);
  EXPECT_STREQ(ops.at("concat").inputs[1].name, "avgpool");
}

TEST(Introspection, MacsFromGeometry) {
  const auto ops = infos(load());
  EXPECT_EQ(ops.at("conv").macs, 1u * 6 * 6 * 4 * 3 * 3 * 3);    // N*OH*OW*O*KH*KW*Cg
  EXPECT_EQ(ops.at("qconv").macs, 1u * 4 * 4 * 4 * 3 * 3 * 8);    // stride 2: 4x4 outputs
  EXPECT_EQ(ops.at("dense").macs, 5u * 4);                        // O*K
  EXPECT_EQ(ops.at("qdense").macs, 3u * 4 * 4 * 4);               // O * H*W*C
  EXPECT_EQ(ops.at("affine").macs, 6u * 6 * 4);
  EXPECT_EQ(ops.at("mul").macs, 6u * 6 * 4);
  EXPECT_EQ(ops.at("avgpool").macs, 3u * 3 * 4 * 2 * 2);
  EXPECT_EQ(ops.at("gap").macs, 4u * 4 * 4);
  for (const char* zero : {"relu", "leaky", "sigmoid", "add", "maxpool", "concat", "quantize", "pad", "s2d", "d2s",
                           "resize", "flat", "probs", "dq"})
    EXPECT_EQ(ops.at(zero).macs, 0u) << zero;
}

TEST(Introspection, ParametersAndActivationBytes) {
  const Model m = load();
  const auto ops = infos(m);
  EXPECT_EQ(ops.at("conv").param_count, 108u + 4);
  EXPECT_EQ(ops.at("conv").param_bytes, (108u + 4) * 4);
  EXPECT_EQ(ops.at("affine").param_bytes, 8u * 4);
  // Binary weights [4,3,3,8]: one plane, 9 taps of one word per output channel; thresholds [4,4] i32.
  EXPECT_EQ(ops.at("qconv").param_count, 4u * 9 * 8 + 16);
  EXPECT_EQ(ops.at("qconv").param_bytes, 4u * 9 * 4 + 16 * 4);
  EXPECT_EQ(ops.at("qdense").param_bytes, 3u * 16 * 4 + 12 * 4);
  EXPECT_EQ(ops.at("dense").param_bytes, (20u + 5) * 4);
  EXPECT_EQ(ops.at("relu").param_count, 0u);

  // Activations: f32 4 bytes per element; u2 codes: 2 planes of one word per pixel.
  EXPECT_EQ(ops.at("conv").activation_bytes_read, 6u * 6 * 3 * 4);
  EXPECT_EQ(ops.at("conv").activation_bytes_written, 6u * 6 * 4 * 4);
  EXPECT_EQ(ops.at("quantize").activation_bytes_written, 3u * 3 * 2 * 4);
  EXPECT_EQ(ops.at("add").activation_bytes_read, 2u * 6 * 6 * 4 * 4);
  EXPECT_EQ(ops.at("qconv").activation_bytes_read, 8u * 8 * 2 * 4);

  uint64_t param_bytes = 0;
  for (const auto& entry : ops) param_bytes += entry.second.param_bytes;
  EXPECT_EQ(param_bytes, 4u * (108 + 4 + 8 + 16 + 36 + 48 + 12 + 25));
  EXPECT_EQ(m.constant_bytes(), param_bytes);
  EXPECT_EQ(lowbit_model_constant_bytes(m.get()), param_bytes);
  uint64_t data_section = 0;  // header field at offset 48: every constant plus alignment padding
  std::memcpy(&data_section, model_bytes().data() + 48, sizeof data_section);
  EXPECT_GE(data_section, param_bytes);
  EXPECT_LT(data_section, param_bytes + 64 * 12);
}

TEST(Introspection, WrapperProfilesEveryOp) {
  Model m = load();
  ASSERT_TRUE(m.set_profiling(true));
  ASSERT_TRUE(m.set_input(0, std::vector<float>(6 * 6 * 3, 0.25f)));
  ASSERT_TRUE(m.run());
  double total = 0;
  for (int i = 0; i < m.num_ops(); ++i) {
    EXPECT_GE(m.op_milliseconds(i), 0.0);
    total += m.op_milliseconds(i);
    lowbit_op_info c{};
    ASSERT_EQ(lowbit_model_op_info(m.get(), i, &c), 0);
    EXPECT_EQ(m.op_info(i).macs, c.macs);
    EXPECT_STREQ(m.op_info(i).type, c.type);
  }
  EXPECT_GT(total, 0.0);
}

TEST(Introspection, BadArgumentsFailWithAMessage) {
  const Model m = load();
  lowbit_op_info info{};
  EXPECT_EQ(lowbit_model_op_info(nullptr, 0, &info), -1);
  EXPECT_STREQ(lowbit_last_error(), "model is NULL");
  EXPECT_EQ(lowbit_model_op_info(m.get(), -1, &info), -1);
  EXPECT_STREQ(lowbit_last_error(), "op index out of range");
  EXPECT_EQ(lowbit_model_op_info(m.get(), m.num_ops(), &info), -1);
  EXPECT_EQ(lowbit_model_op_info(m.get(), 0, nullptr), -1);
  EXPECT_STREQ(lowbit_last_error(), "info is NULL");
  EXPECT_EQ(lowbit_model_constant_bytes(nullptr), 0u);
  EXPECT_STREQ(lowbit_last_error(), "model is NULL");
}

}  // namespace
}  // namespace lowbit
