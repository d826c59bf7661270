// `lowbit convert --emit-c`: the C source tree builds with a plain `make` (natively, and with the
// aarch64 and armv7 cross compilers, run under qemu-user) into a program whose outputs equal, bit
// for bit, what the runtime computes in-process from model.lbm. A missing `make` skips the build
// tests; a missing cross compiler or qemu fails them when CI is set and skips them otherwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_run.h"
#include "conversion_check.h"
#include "lmnet_model.h"
#include "lowbit/lowbit.hpp"

namespace lowbit::converter::test {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool have(const std::string& program) {
  return std::system(("command -v " + program + " > /dev/null 2>&1").c_str()) == 0;
}

// Runs `command`, returns its stdout (exit status in *status).
std::string capture(const std::string& command, int* status) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  *status = ::pclose(p);
  return out;
}

std::vector<float> parse_floats(const std::string& text) {
  std::vector<float> v;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) v.push_back(std::strtof(line.c_str(), nullptr));
  return v;
}

// One converted LmnetV1-shaped model with its C tree, an input, and the runtime's outputs.
class EmitC : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Per process: ctest runs each test case in its own process, possibly in parallel.
    const std::string pid = std::to_string(::getpid());
    onnx_ = temp_path("emit_c_lmnet_" + pid + ".onnx");
    dir_ = temp_path("emit_c_lmnet_" + pid);
    LmnetV1Onnx onnx(11);
    onnx.make().save(onnx_);
    fs::remove_all(dir_);
    convert_ = run_cli("convert " + onnx_ + " --out " + dir_ + " --emit-c");
    if (convert_.status != 0) return;
    input_ = onnx.image();
    input_path_ = temp_path("emit_c_input_" + pid + ".bin");
    std::ofstream(input_path_, std::ios::binary)
        .write(reinterpret_cast<const char*>(input_.data()), static_cast<std::streamsize>(input_.size() * sizeof(float)));
    std::string error;
    lowbit::Model model = lowbit::Model::load(dir_ + "/model.lbm", &error);
    if (model && model.set_input(0, input_) && model.run()) expected_ = model.output(0);
  }

  // Builds a copy of the tree with `make_args` and runs its model-run through `runner`.
  void build_and_run(const std::string& name, const std::string& make_args, const std::string& runner) {
    ASSERT_EQ(convert_.status, 0) << convert_.err;
    ASSERT_FALSE(expected_.empty());
    const fs::path tree = temp_path("emit_c_build_" + name);
    fs::remove_all(tree);
    fs::copy(fs::path(dir_) / "c", tree, fs::copy_options::recursive);
    int status = 0;
    const std::string log = capture("cd " + tree.string() + " && nice make -j2 " + make_args + " 2>&1", &status);
    ASSERT_EQ(status, 0) << log;
    ASSERT_TRUE(fs::is_regular_file(tree / "model-run"));
    ASSERT_TRUE(fs::is_regular_file(tree / "libmodel.a"));
    const std::string program = runner + (tree / "model-run").string();
    for (const std::string& args : {" " + input_path_, " - < " + input_path_}) {
      SCOPED_TRACE(args);
      const std::string out = capture(program + args, &status);
      ASSERT_EQ(status, 0) << out;
      const std::vector<float> got = parse_floats(out);
      ASSERT_EQ(got.size(), expected_.size()) << out;
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(std::memcmp(&got[i], &expected_[i], sizeof(float)), 0) << i << ": " << got[i] << " vs " << expected_[i];
    }
    // A short input is the example program's error, not the library's.
    const std::string short_input = temp_path("emit_c_short.bin");
    std::ofstream(short_input, std::ios::binary).write("abcd", 4);
    capture(program + " " + short_input + " 2>&1", &status);
    EXPECT_NE(status, 0);
  }

  void cross(const std::string& name, const std::string& cc, const std::string& cxx, const std::string& qemu,
             const std::string& sysroot) {
    for (const std::string& tool : {cc, cxx, qemu}) {
      if (have(tool)) continue;
      if (std::getenv("CI")) FAIL() << tool << " is missing";
      GTEST_SKIP() << tool << " is missing";
    }
    if (!have("make")) GTEST_SKIP() << "make is missing";
    build_and_run(name, "CC=" + cc + " CXX=" + cxx, qemu + " -L " + sysroot + " ");
  }

  static std::string onnx_, dir_, input_path_;
  static CliRun convert_;
  static std::vector<float> input_, expected_;
};

std::string EmitC::onnx_, EmitC::dir_, EmitC::input_path_;
CliRun EmitC::convert_;
std::vector<float> EmitC::input_, EmitC::expected_;

TEST_F(EmitC, WritesTheTreeWithTheWeightsAndAWorkspaceForEveryTarget) {
  ASSERT_EQ(convert_.status, 0) << convert_.err;
  EXPECT_NE(convert_.out.find("/c/ ("), std::string::npos) << convert_.out;
  const fs::path c = fs::path(dir_) / "c";
  for (const char* f : {"Makefile", "model.h", "model.c", "model_data.c", "main.c", "README.md",
                        "lowbit/include/lowbit/lowbit.h", "lowbit/src/executor.cpp", "lowbit/src/kernels/neon.cpp",
                        "lowbit/src/kernels/avx2.cpp", "lowbit/src/kernels/avx512.cpp", "lowbit/src/ops/conv.cpp"})
    EXPECT_TRUE(fs::is_regular_file(c / f)) << f;

  // The weights: model.lbm byte for byte, 64-byte aligned.
  std::ifstream lbm(dir_ + "/model.lbm", std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(lbm)), std::istreambuf_iterator<char>());
  const std::string data = read_text(c / "model_data.c");
  EXPECT_NE(data.find("_Alignas(64) const unsigned char lowbit_model_data[" + std::to_string(bytes.size()) + "] = {"),
            std::string::npos);
  const size_t open = data.find("= {") + 3;
  std::vector<uint8_t> parsed;
  for (size_t at = data.find("0x", open); at != std::string::npos && at < data.find("};", open);
       at = data.find("0x", at + 2))
    parsed.push_back(static_cast<uint8_t>(std::stoul(data.substr(at, 4), nullptr, 16)));
  EXPECT_EQ(parsed, bytes);

  // The workspace: the runtime's bound over all kernel layouts, and enough for this CPU.
  const size_t workspace = lowbit_model_workspace_bytes(parsed.data(), parsed.size());
  ASSERT_GT(workspace, 0u) << lowbit_last_error();
  const std::string header = read_text(c / "model.h");
  EXPECT_NE(header.find("#define MODEL_WORKSPACE_BYTES " + std::to_string(workspace) + "u"), std::string::npos) << header;
  EXPECT_NE(header.find("#define MODEL_INPUT0_SIZE 1024"), std::string::npos) << header;
  EXPECT_NE(header.find("#define MODEL_OUTPUT0_SIZE 10"), std::string::npos) << header;
  EXPECT_NE(header.find("int model_run(const float* input, float* output);"), std::string::npos);
  EXPECT_NE(read_text(c / "Makefile").find("-DLOWBIT_THREADS=0"), std::string::npos);
}

TEST_F(EmitC, NativeMakeBuildsAProgramThatComputesWhatTheRuntimeComputes) {
  if (!have("make")) GTEST_SKIP() << "make is missing";
  build_and_run("native", "", "");
}

TEST_F(EmitC, Aarch64CrossBuildUnderQemuComputesWhatTheRuntimeComputes) {
  cross("aarch64", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++", "qemu-aarch64", "/usr/aarch64-linux-gnu");
}

TEST_F(EmitC, Armv7CrossBuildUnderQemuComputesWhatTheRuntimeComputes) {
  cross("armv7", "arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-g++", "qemu-arm", "/usr/arm-linux-gnueabihf");
}

TEST_F(EmitC, AMissingRuntimeSourceTreeIsAClearError) {
  const std::string dir = temp_path("emit_c_nosrc");
  fs::remove_all(dir);
  ASSERT_EQ(::setenv("LOWBIT_RUNTIME_SOURCE_DIR", "/nonexistent/runtime", 1), 0);
  const CliRun r = run_cli("convert " + onnx_ + " --out " + dir + " --emit-c");
  ::unsetenv("LOWBIT_RUNTIME_SOURCE_DIR");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/nonexistent/runtime/include: missing"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(fs::path(dir) / "c"));
}

}  // namespace
}  // namespace lowbit::converter::test
