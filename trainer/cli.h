// The trainer's subcommands of the `lowbit` tool: init, train, eval (docs/training.md).
#pragma once

namespace CLI {
class App;
}

namespace lowbit::trainer {

void add_cli_commands(CLI::App& app);

}  // namespace lowbit::trainer
