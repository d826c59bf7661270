// `lowbit verify`: the converted model against the reference interpreter of its ONNX file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "converter/model_input.h"

namespace lowbit::converter {

struct LayerAgreement {
  std::string name;  // the quantizer's output tensor
  uint64_t codes = 0, identical = 0;
};

struct VerifyReport {
  size_t inputs = 0;
  std::string input_source;  // "random" or the --data path
  std::vector<LayerAgreement> layers;
  uint64_t codes = 0, identical_codes = 0;
  size_t identical_top1 = 0;
  double identical_codes_fraction() const { return codes ? static_cast<double>(identical_codes) / codes : 1.0; }
  double identical_top1_fraction() const { return inputs ? static_cast<double>(identical_top1) / inputs : 1.0; }
};

// Runs every image (pre-processed as model_dir/meta.yaml says) through the interpreter of
// onnx_path and through model_dir/model.lbm. Per-layer codes come from a twin of the model
// converted with every quantizer output exposed; the twin's outputs must equal model.lbm's
// bit for bit, which proves the codes compared are model.lbm's. Throws ConvertError.
VerifyReport verify_model(const std::string& onnx_path, const std::string& model_dir, const std::vector<Pixels>& images);

std::string format_verify_report(const VerifyReport& report);
std::string verify_report_json(const VerifyReport& report);

}  // namespace lowbit::converter
