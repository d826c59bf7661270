#include "converter/package.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "converter/convert.h"
#include "lowbit/model_builder.h"

#ifndef LOWBIT_HOST_BUILD_DIR
#error "LOWBIT_HOST_BUILD_DIR: the build tree of this program (set by converter/CMakeLists.txt)"
#endif
#ifndef LOWBIT_SOURCE_INCLUDE_DIR
#error "LOWBIT_SOURCE_INCLUDE_DIR: runtime/include of the sources (set by converter/CMakeLists.txt)"
#endif

namespace lowbit::converter {
namespace {

namespace fs = std::filesystem;

struct DeviceFile {
  const char* built;     // path inside the target's build tree
  const char* packaged;  // name in DIR/lib/<target>/
  bool executable;
};
constexpr DeviceFile kDeviceFiles[] = {
    {"lib/liblowbit.so", "liblowbit.so", false},
    {"lib/liblowbit_runtime.a", "liblowbit.a", false},
    {"bin/lowbit-run", "lowbit-run", true},
};
constexpr const char* kHeaders[] = {"lowbit/lowbit.h", "lowbit/lowbit.hpp"};

std::string host_target() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__arm__)
  return "armv7";
#else
  return "";
#endif
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConvertError(path.string() + ": cannot read");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes, bool executable) {
  const Status s = write_file_atomic(path.string(), bytes.data(), bytes.size());
  if (!s.ok) throw ConvertError(s.message);
  if (executable && ::chmod(path.c_str(), 0755) != 0) throw ConvertError(path.string() + ": cannot make executable");
}

// The lines of meta.yaml's `input:` and `classes:` entries, for the README.
std::string meta_excerpt(const std::string& meta_yaml) {
  std::istringstream in(meta_yaml);
  std::string line, out;
  bool keep = false;
  while (std::getline(in, line)) {
    const bool top_level = !line.empty() && !std::isspace(static_cast<unsigned char>(line[0]));
    if (top_level) keep = line.rfind("input", 0) == 0 || line.rfind("classes", 0) == 0 || line.rfind("task", 0) == 0;
    if (keep) out += line + "\n";
  }
  return out;
}

std::string readme(const std::vector<std::string>& targets, const std::string& meta_yaml) {
  std::ostringstream r;
  r << "# lowbit model package\n\n"
    << "`model.lbm` is a converted lowbit model; `meta.yaml` says what it expects and returns:\n\n```yaml\n"
    << meta_excerpt(meta_yaml) << "```\n\n"
    << "Inputs are float32 tensors in NHWC order, pre-processed as `meta.yaml`'s `preprocess` says.\n\n"
    << "## Run it\n\n"
    << "Copy `model.lbm` and `lib/<target>/lowbit-run` to the device (lowbit-run links libstdc++ "
       "statically and needs only the C library):\n\n```sh\n"
    << "./lowbit-run model.lbm --input input.npy --output logits.npy --threads 2 --repeat 100 --profile\n```\n\n"
    << "`--input` takes a float32 `.npy` of the input shape (already pre-processed), or a PNG/JPEG image "
       "that lowbit-run decodes and scales to [0, 1] without `meta.yaml`'s mean/std; prefer `.npy` for exact "
       "results.\n\n"
    << "## Link it into your program\n\n"
    << "The C API is `include/lowbit/lowbit.h` (C++ wrapper: `lowbit.hpp`). Link `lib/<target>/liblowbit.a` "
       "(a C++ library: link with g++, or add `-lstdc++ -lpthread -lm`) or `liblowbit.so`:\n\n```sh\n"
    << "aarch64-linux-gnu-gcc app.c -Iinclude lib/aarch64/liblowbit.a -lstdc++ -lpthread -lm -o app\n```\n\n"
    << "## Targets in this package\n\n";
  for (const std::string& t : targets) r << "* `lib/" << t << "/`\n";
  return r.str();
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string device_build_dir(const std::string& target) {
  if (const char* dir = std::getenv(("LOWBIT_DEVICE_BUILD_" + upper(target)).c_str())) return dir;
  if (target == host_target()) return LOWBIT_HOST_BUILD_DIR;
  return (fs::path(LOWBIT_HOST_BUILD_DIR) / target).string();
}

void check_device_builds(const std::vector<std::string>& targets) {
  for (const std::string& target : targets) {
    for (const DeviceFile& f : kDeviceFiles) {
      const fs::path path = fs::path(device_build_dir(target)) / f.built;
      if (!fs::is_regular_file(path))
        throw ConvertError(path.string() + ": missing, so no " + target + " package can be made (build the " + target +
                           " runtime with `make targets`, or point LOWBIT_DEVICE_BUILD_" + upper(target) +
                           " at a build tree that has it)");
    }
  }
  for (const char* header : kHeaders)
    if (!fs::is_regular_file(fs::path(LOWBIT_SOURCE_INCLUDE_DIR) / header))
      throw ConvertError(std::string(LOWBIT_SOURCE_INCLUDE_DIR) + "/" + header + ": missing");
}

void write_device_packages(const std::string& out_dir, const std::vector<std::string>& targets) {
  check_device_builds(targets);
  const fs::path out(out_dir);
  const std::vector<uint8_t> meta = read_bytes(out / "meta.yaml");
  const std::string meta_yaml(meta.begin(), meta.end());
  std::error_code ec;
  for (const std::string& target : targets) {
    fs::create_directories(out / "lib" / target, ec);
    if (ec) throw ConvertError((out / "lib" / target).string() + ": cannot create: " + ec.message());
    for (const DeviceFile& f : kDeviceFiles)
      write_bytes(out / "lib" / target / f.packaged, read_bytes(fs::path(device_build_dir(target)) / f.built),
                  f.executable);
  }
  fs::create_directories(out / "include" / "lowbit", ec);
  if (ec) throw ConvertError((out / "include").string() + ": cannot create: " + ec.message());
  for (const char* header : kHeaders)
    write_bytes(out / "include" / header, read_bytes(fs::path(LOWBIT_SOURCE_INCLUDE_DIR) / header), false);
  const std::string text = readme(targets, meta_yaml);
  write_bytes(out / "README.md", std::vector<uint8_t>(text.begin(), text.end()), false);
}

}  // namespace lowbit::converter
