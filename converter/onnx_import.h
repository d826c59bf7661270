// ONNX file → IR. Reads the onnx-ml protobuf, checks that every op is supported (one error listing
// all unsupported op types with their node names), converts initializers and Constant nodes to IR
// constants, fixes the symbolic batch dim, orders the nodes and infers every shape.
#pragma once

#include <string>

#include "converter/ir.h"

namespace lowbit::converter {

struct ImportOptions {
  int64_t batch = 1;  // the size given to a symbolic leading input dim
};

// Throws ConvertError with a message that does not repeat the path (callers prefix it).
Graph import_onnx_file(const std::string& path, const ImportOptions& options = {});
Graph import_onnx_bytes(const std::string& bytes, const std::string& source, const ImportOptions& options = {});

}  // namespace lowbit::converter
