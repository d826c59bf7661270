// `lowbit convert --targets`: every target's package holds its libraries, lowbit-run, the headers
// and a README, and each packaged lowbit-run (the ARM ones under qemu-user) computes exactly what
// the runtime computes in-process. The ARM device trees come from `make targets` (which `make
// test` runs first); outside CI a missing one skips that target.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_run.h"
#include "conversion_check.h"
#include "converter/package.h"
#include "lmnet_model.h"
#include "lowbit/lowbit.hpp"
#include "npy.h"

namespace lowbit::converter::test {
namespace {

namespace fs = std::filesystem;

struct Target {
  const char* name;
  const char* runner;  // prefix that runs the target's programs here
};
constexpr Target kTargets[] = {
#if defined(__x86_64__)
    {"x86_64", ""},
#endif
    {"aarch64", "qemu-aarch64 -L /usr/aarch64-linux-gnu "},
    {"armv7", "qemu-arm -L /usr/arm-linux-gnueabihf "},
};

bool device_build_present(const std::string& target) {
  return fs::is_regular_file(fs::path(device_build_dir(target)) / "bin" / "lowbit-run");
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Package, EveryTargetsLowbitRunComputesWhatTheRuntimeComputes) {
  std::string targets;
  std::vector<Target> packaged;
  for (const Target& t : kTargets) {
    if (!device_build_present(t.name)) {
      if (std::getenv("CI")) ADD_FAILURE() << "no " << t.name << " device build in " << device_build_dir(t.name);
      else std::cout << "[ note ] no " << t.name << " device build (make targets); not packaged\n";
      continue;
    }
    targets += (targets.empty() ? "" : ",") + std::string(t.name);
    packaged.push_back(t);
  }
  if (packaged.empty()) GTEST_SKIP() << "no device builds";

  const std::string onnx = temp_path("package_lmnet.onnx"), dir = temp_path("package_lmnet");
  LmnetV1Onnx(7).make().save(onnx);
  fs::remove_all(dir);
  const CliRun convert = run_cli("convert " + onnx + " --out " + dir + " --targets " + targets);
  ASSERT_EQ(convert.status, 0) << convert.err;
  EXPECT_TRUE(fs::is_regular_file(fs::path(dir) / "include" / "lowbit" / "lowbit.h"));
  EXPECT_TRUE(fs::is_regular_file(fs::path(dir) / "include" / "lowbit" / "lowbit.hpp"));
  const std::string readme = read_text(fs::path(dir) / "README.md");
  EXPECT_NE(readme.find("lowbit-run model.lbm"), std::string::npos);

  // One input through the runtime in-process: the expected logits.
  std::string error;
  lowbit::Model model = lowbit::Model::load(dir + "/model.lbm", &error);
  ASSERT_TRUE(model) << error;
  const lowbit_tensor_info in = model.input_info(0);
  NpyArray input;
  for (int d = 0; d < in.rank; ++d) input.shape.push_back(in.dims[d]);
  TestRng rng(3);
  input.values = rng.normal(lowbit::Model::element_count(in), 1.0f);
  ASSERT_TRUE(model.set_input(0, input.values) && model.run()) << lowbit_last_error();
  const std::vector<float> expected = model.output(0);
  const std::string input_path = temp_path("package_input.npy");
  ASSERT_TRUE(write_npy(input_path, input, &error)) << error;

  for (const Target& t : packaged) {
    SCOPED_TRACE(t.name);
    const fs::path lib = fs::path(dir) / "lib" / t.name;
    for (const char* file : {"liblowbit.so", "liblowbit.a", "lowbit-run"})
      EXPECT_TRUE(fs::is_regular_file(lib / file)) << (lib / file);
    struct stat st {};
    ASSERT_EQ(::stat((lib / "lowbit-run").c_str(), &st), 0);
    EXPECT_TRUE(st.st_mode & S_IXUSR);
    EXPECT_NE(readme.find("lib/" + std::string(t.name) + "/"), std::string::npos);

    const std::string output_path = temp_path(std::string("package_output_") + t.name + ".npy");
    fs::remove(output_path);
    const std::string command = std::string(t.runner) + (lib / "lowbit-run").string() + " " + dir +
                                "/model.lbm --threads 2 --input " + input_path + " --output " + output_path +
                                " > /dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    NpyArray output;
    ASSERT_TRUE(read_npy(output_path, &output, &error)) << error;
    // Every kernel table computes bit for bit what the reference kernels compute.
    EXPECT_EQ(output.values, expected);
  }
}

TEST(Package, AMissingDeviceBuildIsOneClearErrorAndNothingIsWritten) {
  const std::string onnx = temp_path("package_missing.onnx"), dir = temp_path("package_missing");
  LmnetV1Onnx(8).make().save(onnx);
  fs::remove_all(dir);
  ASSERT_EQ(::setenv("LOWBIT_DEVICE_BUILD_ARMV7", "/nonexistent/armv7-build", 1), 0);
  const CliRun r = run_cli("convert " + onnx + " --out " + dir + " --targets armv7");
  ::unsetenv("LOWBIT_DEVICE_BUILD_ARMV7");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/nonexistent/armv7-build/lib/liblowbit.so: missing"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("make targets"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace lowbit::converter::test
