// `lowbit convert --targets`: per-target device packages next to the converted model.
//
//   DIR/lib/<target>/liblowbit.so, liblowbit.a, lowbit-run   (target: x86_64, aarch64, armv7)
//   DIR/include/lowbit/lowbit.h, lowbit.hpp                  (the C API and its C++ wrapper)
//   DIR/README.md                                            (how to run and link on the device)
//
// The files come from a build tree of the runtime for each target: the native tree this `lowbit`
// was built in, and the cross trees `make targets` (and `make test`) build beside it
// (<build>/aarch64, <build>/armv7). LOWBIT_DEVICE_BUILD_<TARGET> (e.g. LOWBIT_DEVICE_BUILD_AARCH64)
// names another tree.
#pragma once

#include <string>
#include <vector>

namespace lowbit::converter {

// The build tree that provides `target`'s files.
std::string device_build_dir(const std::string& target);

// Throws ConvertError naming the first missing file, before anything is written.
void check_device_builds(const std::vector<std::string>& targets);

// Copies every target's files into out_dir (each file atomically) and writes the headers and
// README.md, which quotes the input and classes of out_dir/meta.yaml.
void write_device_packages(const std::string& out_dir, const std::vector<std::string>& targets);

}  // namespace lowbit::converter
