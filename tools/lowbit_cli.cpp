// `lowbit`: the host-side command line. Each module registers its own subcommands
// (trainer: init/train/eval/export; converter: convert/verify/profile/predict/bench), so this
// file only assembles them; a build without one of the modules simply lacks its commands.
#include <CLI/CLI.hpp>

#ifdef LOWBIT_WITH_TRAINER
#include "trainer/cli.h"
#endif
#ifdef LOWBIT_WITH_CONVERTER
#include "converter/cli.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"lowbit: train, convert and run ultra-low-bit neural networks"};
  app.require_subcommand(1);
#ifdef LOWBIT_WITH_TRAINER
  lowbit::trainer::add_cli_commands(app);
#endif
#ifdef LOWBIT_WITH_CONVERTER
  lowbit::converter::add_cli_commands(app);
#endif
  CLI11_PARSE(app, argc, argv);
  return 0;
}
