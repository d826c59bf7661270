#include "converter/cli.h"

#include <iostream>
#include <memory>

#include "converter/convert.h"

namespace lowbit::converter {
namespace {

struct ConvertArgs {
  std::string model;
  std::string out;
  std::vector<std::string> targets;
  bool emit_c = false;
};

void run_convert(const ConvertArgs& args) {
  ConvertResult result;
  try {
    result = convert_onnx(args.model, args.out);
  } catch (const ConvertError& e) {
    std::cerr << "lowbit convert: " << e.what() << "\n";
    throw CLI::RuntimeError(1);
  }
  std::cout << format_summary(result) << "wrote " << result.model_path << " and " << result.meta_path << "\n";
  // Per-target packages and the C source tree come with the second part of the converter issue.
  if (!args.targets.empty())
    std::cerr << "lowbit convert: --targets is not yet supported; no per-target packages were written\n";
  if (args.emit_c) std::cerr << "lowbit convert: --emit-c is not yet supported; no C source tree was written\n";
}

}  // namespace

void add_cli_commands(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* convert = app.add_subcommand("convert", "Convert an ONNX/QONNX model into a lowbit model directory");
  convert->add_option("MODEL", args->model, "ONNX model file")->required();
  convert->add_option("--out", args->out, "Output directory (model.lbm, meta.yaml)")->required();
  convert->add_option("--targets", args->targets, "Device packages to build: x86_64,aarch64,armv7 (not yet supported)")
      ->delimiter(',')
      ->check(CLI::IsMember({"x86_64", "aarch64", "armv7"}));
  convert->add_flag("--emit-c", args->emit_c, "Also write a self-contained C source tree (not yet supported)");
  convert->callback([args] { run_convert(*args); });
}

}  // namespace lowbit::converter
