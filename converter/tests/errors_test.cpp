// Bad input gives one clear error naming the file, never a crash, and nothing is written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "conversion_check.h"
#include "converter/cli.h"

namespace lowbit::converter::test {
namespace {

// A small valid model: input quantizer, a quantized conv block, a float classifier.
OnnxMaker small_model() {
  TestRng rng(3);
  OnnxMaker m;
  m.input("x", {1, 3, 6, 6});
  m.quant("x", "a0", 0.25f, 2, false);
  m.conv("a0", m.bipolar(m.constant("w", {4, 3, 3, 3}, rng.normal(108, 1.0f)), "wq", {}, {0.5f}), "", "conv", 3, 1);
  m.batch_norm("conv", "bn", rng.uniform(4, 0.5f, 1.0f), rng.normal(4, 0.5f), rng.normal(4, 0.5f), rng.uniform(4, 1.0f, 2.0f));
  m.quant("bn", "a1", 2.0f / 3.0f, 2, false);
  m.node("GlobalAveragePool", {"a1"}, "gap");
  m.node("Flatten", {"gap"}, "flat");
  m.node("Gemm", {"flat", m.constant("fc", {4, 2}, rng.normal(8, 1.0f))}, "logits");
  m.output("logits");
  return m;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

// Converts and returns the error message ("" if conversion succeeded).
std::string convert_error(const std::string& path, const std::string& out_dir) {
  try {
    convert_onnx(path, out_dir);
  } catch (const ConvertError& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::string& bytes, const std::string& name, const std::string& expected) {
  const std::string path = temp_path(name + ".onnx"), out = temp_path(name + ".out");
  std::filesystem::remove_all(out);
  write_bytes(path, bytes);
  const std::string error = convert_error(path, out);
  EXPECT_EQ(error, path + ": " + expected);
  EXPECT_FALSE(std::filesystem::exists(out)) << "nothing may be written on failure";
}

TEST(ConvertErrors, UnsupportedOpsAreListedOnceEachWithTheirNodes) {
  OnnxMaker m;
  m.input("x", {1, 4});
  m.node("Foo", {"x"}, "f1");
  m.node("Relu", {"f1"}, "r");
  m.node("Foo", {"r"}, "f2");
  m.node("Bar", {"f2"}, "y", {}, "com.example");
  m.node("Foo", {"y"}, "f3");
  m.output("f3");
  expect_error(m.bytes(), "unsupported", "unsupported ops: Foo (nodes 'f1', 'f2', 'f3'); com.example.Bar (node 'y')");
}

TEST(ConvertErrors, TruncatedFileIsNamed) {
  const std::string bytes = small_model().bytes();
  expect_error(bytes.substr(0, bytes.size() / 2), "truncated", "not a valid ONNX model (truncated or corrupt protobuf)");
}

TEST(ConvertErrors, NonOnnxAndEmptyFilesAreNamed) {
  expect_error("P6\n32 32\n255\n\xff\xfe\xfd", "image", "not a valid ONNX model (truncated or corrupt protobuf)");
  expect_error("", "empty", "the file is empty");
  const std::string missing = temp_path("does_not_exist.onnx");
  EXPECT_EQ(convert_error(missing, temp_path("missing.out")), missing + ": cannot open: No such file or directory");
}

TEST(ConvertErrors, DanglingInputNamesTheNodeAndTensor) {
  OnnxMaker m;
  m.input("x", {1, 4});
  m.node("Add", {"x", "nowhere"}, "y");
  m.output("y");
  expect_error(m.bytes(), "dangling", "Add 'y' reads 'nowhere', which no node, initializer or input provides");
}

TEST(ConvertErrors, UnrepresentableQuantizerNamesTheNode) {
  OnnxMaker m;
  m.input("x", {1, 4});
  m.quant("x", "a8", 0.1f, 8, false);
  m.output("a8");
  expect_error(m.bytes(), "eight_bit",
               "Quant 'a8': its output cannot be runtime codes: its integer range [0, 255] is no runtime code type (1..4 bits)");
}

TEST(ConvertErrors, CorruptedFilesFailCleanlyOrConvert) {
  const std::string good = small_model().bytes();
  std::mt19937 rng(1234);
  int failed = 0, converted = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = good;
    const int flips = 1 + trial % 8;
    for (int f = 0; f < flips; ++f)
      bytes[std::uniform_int_distribution<size_t>(0, bytes.size() - 1)(rng)] = static_cast<char>(rng());
    const std::string path = temp_path("corrupt.onnx");
    write_bytes(path, bytes);
    const std::string error = convert_error(path, temp_path("corrupt.out"));
    if (error.empty()) {
      ++converted;
      continue;
    }
    ++failed;
    EXPECT_EQ(error.rfind(path + ": ", 0), 0u) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << "one line: " << error;
  }
  EXPECT_GT(failed, 100);
  EXPECT_GT(converted, 0);  // flips inside weight values leave a valid model
}

TEST(ConvertCli, FailurePrintsOneLineAndExitsNonZero) {
  OnnxMaker m;
  m.input("x", {1, 4});
  m.node("Foo", {"x"}, "y");
  m.output("y");
  const std::string path = temp_path("cli_unsupported.onnx");
  m.save(path);
  CLI::App app;
  add_cli_commands(app);
  ::testing::internal::CaptureStderr();
  int exit_code = 0;
  try {
    app.parse("convert " + path + " --out " + temp_path("cli_unsupported.out"), false);
  } catch (const CLI::ParseError& e) {
    exit_code = e.get_exit_code();
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(exit_code, 1);
  EXPECT_EQ(err, "lowbit convert: " + path + ": unsupported ops: Foo (node 'y')\n");
}

}  // namespace
}  // namespace lowbit::converter::test
