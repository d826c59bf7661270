// The converter's subcommands of the `lowbit` tool (tools/lowbit_cli.cpp assembles them).
#pragma once

#include <CLI/CLI.hpp>

namespace lowbit::converter {

// Adds `convert`. Failing commands print one line naming the file and the problem to stderr and
// throw CLI::RuntimeError(1).
void add_cli_commands(CLI::App& app);

}  // namespace lowbit::converter
