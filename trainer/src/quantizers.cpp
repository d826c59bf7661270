#include "quantizers.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <cmath>
#include <cstring>

namespace lowbit::trainer {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Elements per parallel task: large enough that thread hand-off stays negligible.
constexpr int64_t kGrain = 1 << 15;

// Rounds t exactly. frac = t - floor(t) has no rounding error for the clamped |t| <= 2^23
// (t and floor(t) share enough exponent bits); only t in (-1, 0) may round, and then never
// across 0.5. Adding 0.5 and flooring instead would turn 0.49999997 into 1.
inline float round_exact(float t, Rounding rounding) {
  const float fl = std::floor(t);
  const float frac = t - fl;
  if (frac < 0.5f) return fl;
  if (frac > 0.5f) return fl + 1.0f;
  const bool keep = rounding == Rounding::kHalfEven && std::fmod(fl, 2.0f) == 0.0f;
  return keep ? fl : fl + 1.0f;
}

// quantization.md §2: one float32 division, NaN as 0, clamp first, then round.
inline float code_of(float x, float scale, float min_code, float max_code, Rounding rounding) {
  float t = x / scale;
  if (t != t) t = 0.0f;
  t = t < min_code ? min_code : (t > max_code ? max_code : t);
  return round_exact(t, rounding);
}

torch::Tensor contiguous_float(const torch::Tensor& x, const char* what) {
  TORCH_CHECK(x.scalar_type() == torch::kFloat32, what, " expects float32, got ", x.scalar_type());
  return x.contiguous();
}

// Reduces over every dim but 0 and keeps the result broadcastable against `weight` ([O,1,1,1]).
torch::Tensor per_channel(const torch::Tensor& reduced_rows, const torch::Tensor& weight) {
  std::vector<int64_t> shape(static_cast<size_t>(weight.dim()), 1);
  shape[0] = weight.size(0);
  return reduced_rows.reshape(shape);
}

torch::Tensor mean_abs(const torch::Tensor& weight, bool channel_wise) {
  const torch::Tensor magnitude = weight.abs();
  return channel_wise ? per_channel(magnitude.flatten(1).mean(1), weight) : magnitude.mean();
}

QuantizedWeight binary_mean_scaling(const torch::Tensor& weight, bool channel_wise) {
  return {torch::where(weight >= 0, 1.0f, -1.0f), mean_abs(weight, channel_wise)};
}

QuantizedWeight ternary(const torch::Tensor& weight, bool channel_wise) {
  const torch::Tensor delta = 0.7f * mean_abs(weight, channel_wise);
  const torch::Tensor codes = (weight > delta).to(torch::kFloat32) - (weight < -delta).to(torch::kFloat32);
  const torch::Tensor kept = (weight.abs() > delta).to(torch::kFloat32);
  const torch::Tensor kept_magnitude = weight.abs() * kept;
  torch::Tensor alpha;
  if (channel_wise) {
    alpha = per_channel(kept_magnitude.flatten(1).sum(1) / kept.flatten(1).sum(1).clamp_min(1.0f), weight);
  } else {
    alpha = kept_magnitude.sum() / kept.sum().clamp_min(1.0f);
  }
  return {codes, alpha};
}

QuantizedWeight signed_narrow(const torch::Tensor& weight, int bits, bool channel_wise) {
  const float max_code = static_cast<float>((1 << (bits - 1)) - 1);
  const torch::Tensor magnitude = weight.abs();
  torch::Tensor max_abs = channel_wise ? per_channel(std::get<0>(magnitude.flatten(1).max(1)), weight) : magnitude.max();
  // An all-zero channel has codes 0 under any scale; 1 keeps the division defined.
  const torch::Tensor scale = torch::where(max_abs > 0, max_abs / max_code, torch::ones_like(max_abs));
  return {uniform_codes(weight, scale, -max_code, max_code, Rounding::kHalfEven), scale};
}

// Weights: scale * code forward, identity backward (the gradient reaches the latent float weight).
struct WeightStraightThrough : torch::autograd::Function<WeightStraightThrough> {
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& weight, const WeightQuantizerConfig& quantizer) {
    const QuantizedWeight q = weight_codes(weight, quantizer);
    return q.codes * q.scale;
  }
  static variable_list backward(AutogradContext*, variable_list grad) { return {grad[0], torch::Tensor()}; }
};

// t >= 0 (NaN already mapped to 0): truncation is floor, and t - floor(t) is exact, so a
// comparison with 0.5 rounds half up exactly.
inline float round_half_up_nonnegative(float t) {
  const float fl = static_cast<float>(static_cast<int32_t>(t));
  return t - fl >= 0.5f ? fl + 1.0f : fl;
}

// The two loops below see every activation of every step, so they are written to vectorize:
// branch-free, and __restrict (the pointers never alias).
void quantize_activations(const float* __restrict x, int64_t n, float scale, float max_code, float clip_max,
                          float* __restrict y, uint8_t* __restrict pass) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float t = v / scale;
    t = t > 0.0f ? t : 0.0f;  // NaN counts as 0 too
    t = t < max_code ? t : max_code;
    y[i] = round_half_up_nonnegative(t) * scale;
    pass[i] = (v > 0.0f) & (v < clip_max);
  }
}

// dx = pass ? dy : +0, as an AND of the bits (a float select next to a byte-wide mask does not
// vectorize; a branch costs ten times more, mispredicted). `pass` holds 0 or 1.
void pass_gradients(const float* __restrict dy, const uint8_t* __restrict pass, int64_t n, float* __restrict dx) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &dy[i], sizeof bits);
    bits &= 0u - static_cast<uint32_t>(pass[i]);
    std::memcpy(&dx[i], &bits, sizeof bits);
  }
}

// Activations: one fused pass computes the value and the clipped-STE mask (0 < x < M), and the
// backward is one masked copy, so a QAT step costs about what the float twin's ReLU costs.
struct ActivationQuantizer : torch::autograd::Function<ActivationQuantizer> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const ActivationConfig& activation) {
    const torch::Tensor x = contiguous_float(input, "the activation quantizer");
    const float scale = activation_scale(activation);
    const float max_code = static_cast<float>((1 << activation.bits) - 1);
    const auto clip_max = static_cast<float>(activation.max);
    torch::Tensor y = torch::empty_like(x);
    torch::Tensor pass = torch::empty(x.sizes(), x.options().dtype(torch::kUInt8));
    const float* in = x.data_ptr<float>();
    float* out = y.data_ptr<float>();
    uint8_t* mask = pass.data_ptr<uint8_t>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      quantize_activations(in + begin, end - begin, scale, max_code, clip_max, out + begin, mask + begin);
    });
    ctx->save_for_backward({pass});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const torch::Tensor pass = ctx->get_saved_variables()[0];
    const torch::Tensor dy = contiguous_float(grad[0], "the activation quantizer's gradient");
    torch::Tensor dx = torch::empty_like(dy);
    const float* upstream = dy.data_ptr<float>();
    const uint8_t* mask = pass.data_ptr<uint8_t>();
    float* out = dx.data_ptr<float>();
    at::parallel_for(0, dy.numel(), kGrain, [&](int64_t begin, int64_t end) {
      pass_gradients(upstream + begin, mask + begin, end - begin, out + begin);
    });
    return {dx, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor uniform_codes(const torch::Tensor& input, const torch::Tensor& scale_tensor, float min_code,
                            float max_code, Rounding rounding) {
  const torch::Tensor x = contiguous_float(input, "uniform_codes");
  const torch::Tensor scale = contiguous_float(scale_tensor, "uniform_codes (scale)");
  const int64_t rows = scale.numel() == 1 ? 1 : x.size(0);
  TORCH_CHECK(scale.numel() == rows, "uniform_codes: ", scale.numel(), " scales for ", x.size(0), " rows");
  const int64_t row_size = rows == 0 ? 0 : x.numel() / rows;
  torch::Tensor codes = torch::empty_like(x);
  const float* in = x.data_ptr<float>();
  const float* scales = scale.data_ptr<float>();
  float* out = codes.data_ptr<float>();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const int64_t row = i / row_size;
      const int64_t row_end = std::min(end, (row + 1) * row_size);
      const float s = scales[row];
      for (; i < row_end; ++i) out[i] = code_of(in[i], s, min_code, max_code, rounding);
    }
  });
  return codes;
}

QuantizedWeight weight_codes(const torch::Tensor& weight, const WeightQuantizerConfig& quantizer) {
  torch::NoGradGuard no_grad;
  switch (quantizer.kind) {
    case WeightQuantizerKind::kBinaryMeanScaling: return binary_mean_scaling(weight, quantizer.per_channel);
    case WeightQuantizerKind::kTernary: return ternary(weight, quantizer.per_channel);
    case WeightQuantizerKind::kSignedNarrow: return signed_narrow(weight, quantizer.bits, quantizer.per_channel);
    case WeightQuantizerKind::kNone: break;
  }
  TORCH_CHECK(false, "weight_codes: float weights have no codes");
}

torch::Tensor quantize_weight(const torch::Tensor& weight, const WeightQuantizerConfig& quantizer) {
  if (quantizer.kind == WeightQuantizerKind::kNone) return weight;
  return WeightStraightThrough::apply(weight, quantizer);
}

float activation_scale(const ActivationConfig& activation) {
  return static_cast<float>(activation.max / ((1 << activation.bits) - 1));
}

torch::Tensor activation_codes(const torch::Tensor& x, const ActivationConfig& activation) {
  const float max_code = static_cast<float>((1 << activation.bits) - 1);
  return uniform_codes(x, torch::full({}, activation_scale(activation)), 0.0f, max_code, Rounding::kHalfUp);
}

torch::Tensor apply_activation(const torch::Tensor& x, const ActivationConfig& activation) {
  if (activation.kind == ActivationKind::kRelu) return torch::relu(x);
  return ActivationQuantizer::apply(x, activation);
}

}  // namespace lowbit::trainer
