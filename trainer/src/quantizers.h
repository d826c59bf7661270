// The quantizers of docs/quantization.md as LibTorch autograd functions, and their codes.
//
// Forward passes compute exactly what the runtime computes: `t = x / scale` as one float32
// division, clamp to the code range, round exactly (half up for activations, half to even for
// signed weight codes, QONNX "ROUND"). Backward passes are straight-through estimators: clipped
// (`dx = dy` where 0 < x < M) for activations, identity for weights.
//
// The `*_codes` functions give the integer codes and scales the exporter writes; the
// differentiable `quantize_*` functions return `scale * code` and are what the networks call.
#pragma once

#include <torch/types.h>

#include "config.h"

namespace lowbit::trainer {

enum class Rounding { kHalfUp, kHalfEven };

// Codes of a weight tensor [O, ...]: value = scale * codes. `scale` is a scalar tensor
// (per-tensor) or has shape [O, 1, ..., 1] (per-channel), broadcastable against the weight.
struct QuantizedWeight {
  torch::Tensor codes;  // float32 holding integers: {-1, +1} binary, {-1, 0, +1} ternary, ...
  torch::Tensor scale;
};
QuantizedWeight weight_codes(const torch::Tensor& weight, const WeightQuantizerConfig& quantizer);

// Differentiable: scale * codes forward, identity backward. kNone returns the weight itself.
torch::Tensor quantize_weight(const torch::Tensor& weight, const WeightQuantizerConfig& quantizer);

// The activation quantizer's scale, float32(M / (2^k - 1)): the one value the runtime sees.
float activation_scale(const ActivationConfig& activation);

// Activation codes 0 .. 2^k - 1 (float32 holding integers). NaN quantizes like 0.
torch::Tensor activation_codes(const torch::Tensor& x, const ActivationConfig& activation);

// Differentiable: scale * code forward, clipped straight-through backward. kRelu is a ReLU.
torch::Tensor apply_activation(const torch::Tensor& x, const ActivationConfig& activation);

// The uniform rule of quantization.md §2 on float32 x: codes of clamp(x / scale[row]) rounded,
// where row = the index along dim 0 when `scale` has one value per row, else the one scale.
torch::Tensor uniform_codes(const torch::Tensor& x, const torch::Tensor& scale, float min_code, float max_code,
                            Rounding rounding);

}  // namespace lowbit::trainer
