// `lowbit convert --emit-c`: a self-contained C/C++ source tree of a converted model.
//
//   DIR/c/Makefile          `make` -> model-run and libmodel.a (CC/CXX/AR overridable: cross builds)
//   DIR/c/model.h           int model_run(const float* input, float* output); sizes as macros
//   DIR/c/model.c           the C glue: lowbit_model_load_static on the linked bytes, run, copy out
//   DIR/c/model_data.c      alignas(64) const unsigned char lowbit_model_data[] (the .lbm bytes) and
//                           the static workspace, sized by lowbit_model_workspace_bytes
//   DIR/c/main.c            example program: raw float32 input from a file or stdin, prints outputs
//   DIR/c/lowbit/           the runtime's sources (include/, src/ with the kernels of every ISA)
//   DIR/c/README.md
//
// The library part uses no file system and no heap at run time (docs/converter.md, "--emit-c").
// The runtime sources come from the source tree this `lowbit` was built from, or from
// LOWBIT_RUNTIME_SOURCE_DIR (a directory holding include/ and src/ of runtime/).
#pragma once

#include <cstdint>
#include <string>

namespace lowbit::converter {

struct EmitCResult {
  std::string dir;                 // DIR/c
  uint64_t workspace_bytes = 0;    // baked into model_data.c
  uint64_t model_bytes = 0;
  size_t files = 0;
};

// The runtime source directory the tree is made from.
std::string runtime_source_dir();

// Writes out_dir/c from out_dir/model.lbm (each file atomically). Throws ConvertError.
EmitCResult emit_c_tree(const std::string& out_dir);

}  // namespace lowbit::converter
