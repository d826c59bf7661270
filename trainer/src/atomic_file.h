// Outputs are replaced atomically (DEVELOPERS.md): a reader or a crash sees the old file or the
// new one, never a torn write.
#pragma once

#include <string>

namespace lowbit::trainer {

// Writes `bytes` to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs
// the directory. Throws std::runtime_error("<path>: <reason>").
void write_file_atomically(const std::string& path, const std::string& bytes);

// The whole file, or std::runtime_error("<path>: <reason>").
std::string read_file(const std::string& path);

}  // namespace lowbit::trainer
