// `lowbit verify` (and the model-directory commands) on the LmnetV1-shaped model through the CLI.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "conversion_check.h"
#include "cli_run.h"
#include "converter/cli.h"
#include "converter/model_input.h"
#include "lmnet_model.h"

namespace lowbit::converter::test {
namespace {

// Parses `command` as the lowbit tool would; returns the exit status and the captured stdout/stderr.
// Fashion-MNIST-like 28x28 images in a gzip IDX3 file.
void write_idx_gz(const std::string& path, uint32_t count, uint32_t seed) {
  gzFile f = gzopen(path.c_str(), "wb");
  const uint32_t header[4] = {0x803, count, 28, 28};
  for (uint32_t v : header) {
    const uint8_t be[4] = {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
                           static_cast<uint8_t>(v)};
    gzwrite(f, be, 4);
  }
  TestRng rng(seed);
  for (uint32_t i = 0; i < count * 28 * 28; ++i) {
    const uint8_t pixel = static_cast<uint8_t>(std::clamp(rng.normal(1, 90.0f)[0] + 100.0f, 0.0f, 255.0f));
    gzwrite(f, &pixel, 1);
  }
  gzclose(f);
}

// One converted LmnetV1 model directory for all tests of this file.
class DeployCommands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    onnx_ = temp_path("deploy_lmnet.onnx");
    dir_ = temp_path("deploy_lmnet");
    LmnetV1Onnx(7).make().save(onnx_);
    std::filesystem::remove_all(dir_);
    ASSERT_EQ(run_cli("convert " + onnx_ + " --out " + dir_).status, 0);
  }
  static std::string onnx_, dir_;
};
std::string DeployCommands::onnx_, DeployCommands::dir_;

TEST_F(DeployCommands, PreprocessPadsScalesAndNormalizes) {
  const Preprocess p = read_preprocess(dir_);
  EXPECT_EQ(p.height, 32);
  EXPECT_EQ(p.pad, (std::array<int, 4>{2, 2, 2, 2}));
  Pixels image{28, 28, 3, std::vector<uint8_t>(28 * 28 * 3, 0)};
  image.data[0] = 255;  // pixel (0, 0): pure red → luma 0.299 * 255
  const std::vector<float> x = preprocess_pixels(p, image, "test");
  ASSERT_EQ(x.size(), 32u * 32u);
  EXPECT_FLOAT_EQ(x[0], (0.0f - 0.2860f) / 0.3530f);  // padding
  EXPECT_FLOAT_EQ(x[2 * 32 + 2], (0.299f * 255 * (1.0f / 255) - 0.2860f) / 0.3530f);
  EXPECT_THROW(preprocess_pixels(p, Pixels{30, 28, 1, std::vector<uint8_t>(30 * 28)}, "wide.png"), ConvertError);
}

TEST_F(DeployCommands, VerifyAgreesOnIdxImagesAndWritesJson) {
  const std::string idx = temp_path("deploy_images.idx.gz"), json = temp_path("deploy_verify.json");
  write_idx_gz(idx, 12, 3);
  const CliRun r = run_cli("verify " + onnx_ + " " + dir_ + " --images 10 --data " + idx + " --json " + json);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("conv5.act"), std::string::npos) << r.out;
  const nlohmann::json report = nlohmann::json::parse(std::ifstream(json));
  EXPECT_EQ(report["inputs"], 10);
  EXPECT_EQ(report["layers"].size(), 5u);  // conv1..conv5 activation quantizers
  EXPECT_EQ(report["codes"], 10 * (32 * 32 * 32 + 64 * 32 * 32 + 128 * 16 * 16 + 64 * 16 * 16 + 128 * 8 * 8));
  EXPECT_GE(report["identical_codes"].get<double>(), 0.999);
  EXPECT_GE(report["identical_top1"].get<double>(), 0.999);
}

TEST_F(DeployCommands, VerifyRandomInputsByDefault) {
  const CliRun r = run_cli("verify " + onnx_ + " " + dir_ + " --images 3");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("3 of 3 inputs"), std::string::npos) << r.out;
}

TEST_F(DeployCommands, VerifyRejectsAModelConvertedFromAnotherOnnx) {
  const std::string other = temp_path("deploy_other.onnx");
  LmnetV1Onnx(8).make().save(other);
  const CliRun r = run_cli("verify " + other + " " + dir_ + " --images 2");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("differs from a fresh conversion"), std::string::npos) << r.err;
}

TEST_F(DeployCommands, VerifyNamesAMissingDataFile) {
  const CliRun r = run_cli("verify " + onnx_ + " " + dir_ + " --data /nonexistent/images");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "lowbit verify: /nonexistent/images: cannot open\n");
}

TEST_F(DeployCommands, BenchReportsMeanMedianP95) {
  const CliRun r = run_cli("bench " + dir_ + " --runs 5 --threads 2");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("5 runs, 2 thread(s): mean "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" ms, p95 "), std::string::npos) << r.out;
  EXPECT_EQ(run_cli("bench /nonexistent").status, 1);
}

}  // namespace
}  // namespace lowbit::converter::test
