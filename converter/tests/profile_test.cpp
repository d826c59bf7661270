// `lowbit profile` on converted models: one row per runtime op, MACs from the layer geometry,
// shares, parameter bytes against the file's constants, the CLI table and JSON, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "conversion_check.h"
#include "cli_run.h"
#include "converter/cli.h"
#include "converter/profile.h"
#include "lmnet_model.h"

namespace lowbit::converter::test {
namespace {

const OpProfileRow& row(const ModelProfile& p, const std::string& name) {
  for (const OpProfileRow& r : p.ops)
    if (r.name == name) return r;
  ADD_FAILURE() << "no op writes " << name;
  static const OpProfileRow none;
  return none;
}

// One converted LmnetV1 model directory (and one profile of it) for the tests of this file.
class ProfileLmnet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string onnx = temp_path("profile_lmnet.onnx");
    dir_ = temp_path("profile_lmnet");
    LmnetV1Onnx(31).make().save(onnx);
    std::filesystem::remove_all(dir_);
    ASSERT_EQ(run_cli("convert " + onnx + " --out " + dir_).status, 0);
    profile_ = profile_model(dir_, 1, 3);
  }
  static std::string dir_;
  static ModelProfile profile_;
};
std::string ProfileLmnet::dir_;
ModelProfile ProfileLmnet::profile_;

TEST_F(ProfileLmnet, OneRowPerOpInExecutionOrder) {
  std::string error;
  const lowbit::Model model = lowbit::Model::load(dir_ + "/model.lbm", &error);
  ASSERT_TRUE(model) << error;
  ASSERT_EQ(profile_.ops.size(), static_cast<size_t>(model.num_ops()));
  ASSERT_EQ(profile_.ops.size(), 14u);
  for (int i = 0; i < model.num_ops(); ++i) {
    const char *type = nullptr, *output = nullptr;
    ASSERT_EQ(lowbit_op_profile(model.get(), i, &type, &output, nullptr), 0);
    EXPECT_EQ(profile_.ops[static_cast<size_t>(i)].op, type);
    EXPECT_EQ(profile_.ops[static_cast<size_t>(i)].name, output);
  }
  EXPECT_EQ(profile_.ops.front().name, "conv1.bn");
  EXPECT_EQ(profile_.ops.back().name, "logits");
}

TEST_F(ProfileLmnet, ShapesBitsAndOutputTypes) {
  const OpProfileRow& conv3 = row(profile_, "conv3.act");
  EXPECT_EQ(conv3.op, "QConv2D");
  EXPECT_EQ(conv3.bits, "W1A2");
  EXPECT_EQ(conv3.output_type, "u2");
  ASSERT_EQ(conv3.input_dims.size(), 1u);  // constants are not listed as inputs
  EXPECT_EQ(conv3.input_dims[0], (std::vector<int32_t>{1, 16, 16, 256}));
  EXPECT_EQ(conv3.output_dims, (std::vector<int32_t>{1, 16, 16, 128}));
  EXPECT_EQ(row(profile_, "conv1.bn").bits, "f32");
  EXPECT_EQ(row(profile_, "conv1.act").op, "Quantize");
  EXPECT_EQ(row(profile_, "conv1.act").output_type, "u2");
  EXPECT_EQ(row(profile_, "s2d1").bits, "A2");
  EXPECT_EQ(row(profile_, "conv6.bn").output_type, "f32");  // float-output QConv2D
  EXPECT_EQ(row(profile_, "logits").output_dims, (std::vector<int32_t>{1, 10}));
}

TEST_F(ProfileLmnet, ConvMacsMatchTheGeometry) {
  // N * OH * OW * O * KH * KW * Cg
  EXPECT_EQ(row(profile_, "conv1.bn").macs, 32u * 32 * 32 * 3 * 3 * 1);
  EXPECT_EQ(row(profile_, "conv3.act").macs, 16u * 16 * 128 * 3 * 3 * 256);
  EXPECT_EQ(row(profile_, "conv6.bn").macs, 4u * 4 * 64 * 1 * 1 * 512);
  EXPECT_EQ(row(profile_, "conv7").macs, 4u * 4 * 10 * 64);
  EXPECT_EQ(row(profile_, "pool").macs, 4u * 4 * 10);  // GlobalAvgPool: one per input element
  EXPECT_EQ(row(profile_, "s2d2").macs, 0u);
  uint64_t macs = 0;
  for (const OpProfileRow& r : profile_.ops) macs += r.macs;
  EXPECT_EQ(profile_.macs, macs);
}

TEST_F(ProfileLmnet, SharesSumToOne) {
  double shares = 0, ms = 0;
  for (const OpProfileRow& r : profile_.ops) {
    EXPECT_GE(r.share, 0.0);
    EXPECT_GE(r.median_ms, 0.0);
    shares += r.share;
    ms += r.median_ms;
  }
  EXPECT_NEAR(shares, 1.0, 1e-9);
  EXPECT_GT(profile_.ops_ms, 0.0);
  EXPECT_NEAR(profile_.ops_ms, ms, 1e-12);
  EXPECT_GT(profile_.run_median_ms, 0.0);
}

TEST_F(ProfileLmnet, ParameterBytesAreTheFileConstants) {
  const std::string path = dir_ + "/model.lbm";
  std::string error;
  const lowbit::Model model = lowbit::Model::load(path, &error);
  ASSERT_TRUE(model) << error;
  uint64_t param_bytes = 0, params = 0;
  for (const OpProfileRow& r : profile_.ops) {
    param_bytes += r.param_bytes;
    params += r.params;
  }
  EXPECT_EQ(param_bytes, profile_.param_bytes);
  EXPECT_EQ(param_bytes, model.constant_bytes());
  // The data section (header field at offset 48) holds every constant plus alignment padding.
  std::ifstream file(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 64u);
  uint64_t data_section = 0;
  std::memcpy(&data_section, bytes.data() + 48, sizeof data_section);
  EXPECT_GE(data_section, param_bytes);
  EXPECT_LT(data_section, param_bytes + 64 * 16);
  EXPECT_EQ(profile_.model_bytes, bytes.size());
  EXPECT_EQ(profile_.float32_bytes(), 4 * params);
  // conv3: binary weights [128, 3, 3, 256] (one plane, 8 words per tap) and u2 thresholds [128, 4].
  EXPECT_EQ(row(profile_, "conv3.act").params, 128u * 9 * 256 + 128 * 4);
  EXPECT_EQ(row(profile_, "conv3.act").param_bytes, 128u * 9 * 8 * 4 + 128 * 4 * 4);
  // conv7: float weights [10, 1, 1, 64] and bias.
  EXPECT_EQ(row(profile_, "conv7").param_bytes, (640u + 10) * 4);
}

TEST_F(ProfileLmnet, CliPrintsTheTableAndWritesJson) {
  const std::string json = temp_path("profile_lmnet.json");
  std::filesystem::remove(json);
  const CliRun r = run_cli("profile " + dir_ + " --runs 2 --threads 2 --json " + json);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("14 ops, median of 2 run(s), 2 thread(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("conv3.act"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("W1A2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    total "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes as float32 parameters"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(json));
  ASSERT_EQ(j["ops"].size(), 14u);
  EXPECT_EQ(j["runs"], 2);
  EXPECT_EQ(j["threads"], 2);
  double shares = 0;
  uint64_t macs = 0;
  for (const auto& op : j["ops"]) {
    shares += op["share"].get<double>();
    macs += op["macs"].get<uint64_t>();
  }
  EXPECT_NEAR(shares, 1.0, 1e-9);
  EXPECT_EQ(j["total"]["macs"].get<uint64_t>(), macs);
  EXPECT_EQ(j["total"]["macs"].get<uint64_t>(), profile_.macs);
  EXPECT_EQ(j["model_bytes"].get<uint64_t>(), std::filesystem::file_size(dir_ + "/model.lbm"));
  EXPECT_EQ(j["ops"][2]["op"], "QConv2D");
}

TEST(Profile, DenseMacsMatchTheGeometry) {
  // x[1, 20] → Quant u2 → MatMul (binary weights [20, 33]) → Quant u2 → Gemm float [33, 5] + bias.
  TestRng rng(5);
  OnnxMaker m;
  m.input("x", {1, 20});
  m.quant("x", "a0", 0.25f, 2, false);
  m.bipolar(m.constant("w1", {20, 33}, rng.normal(20 * 33, 1.0f)), "w1q", {}, {0.37f});
  m.node("MatMul", {"a0", "w1q"}, "mm1");
  m.quant("mm1", "a1", 0.5f, 2, false);
  m.node("Gemm", {"a1", m.constant("w2", {33, 5}, rng.normal(33 * 5, 0.5f)), m.constant("b2", {5}, rng.normal(5, 0.1f))},
         "logits");
  m.output("logits");
  const std::string onnx = temp_path("profile_dense.onnx"), dir = temp_path("profile_dense");
  m.save(onnx);
  std::filesystem::remove_all(dir);
  convert_onnx(onnx, dir);
  const ModelProfile p = profile_model(dir, 1, 2);
  const OpProfileRow& qdense = row(p, "a1");
  EXPECT_EQ(qdense.op, "QDense");
  EXPECT_EQ(qdense.bits, "W1A2");
  EXPECT_EQ(qdense.macs, 33u * 20);  // N * O * K
  const OpProfileRow& dense = row(p, "logits");
  EXPECT_EQ(dense.op, "Dense");
  EXPECT_EQ(dense.macs, 5u * 33);
  EXPECT_EQ(dense.params, 33u * 5 + 5);
}

TEST(Profile, MissingDirectoryOrModelIsOneClearError) {
  CliRun r = run_cli("profile /nonexistent/model-dir");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "lowbit profile: /nonexistent/model-dir: no such model directory\n");
  EXPECT_EQ(r.out, "");

  const std::string empty = temp_path("profile_empty_dir");
  std::filesystem::create_directories(empty);
  std::filesystem::remove(empty + "/model.lbm");
  r = run_cli("profile " + empty);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("lowbit profile: " + empty + "/model.lbm: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  const std::string corrupt = temp_path("profile_corrupt_dir");
  std::filesystem::create_directories(corrupt);
  std::ofstream(corrupt + "/model.lbm") << "not a model";
  r = run_cli("profile " + corrupt);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("lowbit profile: " + corrupt + "/model.lbm: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace lowbit::converter::test
