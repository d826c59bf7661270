// An activation quantizer node (Quant, BipolarQuant, MultiThreshold, Trunc) with constant
// parameters, seen as what the runtime must reproduce: a per-channel function from the float
// input to an integer code, one output scale, and a runtime code type.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "converter/ir.h"
#include "converter/quantizer.h"
#include "lowbit/format.h"

namespace lowbit::converter {

struct ActivationQuantizer {
  const Node* node = nullptr;
  double scale = 1.0;  // value = code * scale
  // The runtime type of its codes; unset for Trunc version 1, whose range depends on its input.
  std::optional<QuantType> type;
  std::function<int64_t(double x, int64_t channel)> code;
  // Set when a runtime Quantize op on float input computes exactly `code` (else `quantize_obstacle` says why not).
  std::optional<Rounding> quantize_rounding;
  std::string quantize_obstacle;
};

// The quantizer `n` applied to an NCHW (or [N, C]) activation with `channels` channels. nullopt
// with *why_not when its codes cannot be a runtime codes tensor (per-channel scale, more than 4
// bits, a zero point outside every code range, non-constant parameters, ...).
std::optional<ActivationQuantizer> activation_quantizer(const Graph& g, const Node& n, int64_t channels,
                                                        std::string* why_not);

bool is_quantizer_op(const Node& n);

}  // namespace lowbit::converter
