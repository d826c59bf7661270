// Runs one `lowbit` converter subcommand in-process and captures its exit status and output.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "converter/cli.h"

namespace lowbit::converter::test {

struct CliRun {
  int status = 0;
  std::string out, err;
};

inline CliRun run_cli(const std::string& command) {
  CLI::App app;
  add_cli_commands(app);
  CliRun r;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  try {
    app.parse(command, false);
  } catch (const CLI::Error& e) {
    r.status = e.get_exit_code();
  }
  r.out = ::testing::internal::GetCapturedStdout();
  r.err = ::testing::internal::GetCapturedStderr();
  return r;
}

}  // namespace lowbit::converter::test
