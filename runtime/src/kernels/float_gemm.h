// Float convolution as a GEMM over the same kind of indirection the bit-serial kernels use: the
// microkernel interface behind Conv2D (first layers see float images; last layers produce floats).
#pragma once

#include <cstddef>

#include "lowbit/format.h"

namespace lowbit {

// Weights packed once at load: output channels in blocks of `lanes`, [block][k][lane] with
// k = tap * channels + c; lanes past the last output channel are zero.
size_t packed_float_weight_count(size_t outputs, size_t k, size_t lanes);
// weights: [outputs][k] (Conv2D's [O, KH, KW, Cg] of one group).
void pack_float_weights(const float* weights, size_t outputs, size_t k, size_t lanes, float* packed);

// rows[t * pixels + m]: the `channels` input floats of tap t for pixel m (zeros for padding).
struct FloatRows {
  const float* const* rows;
  size_t taps;
  size_t channels;
};

// What happens after the dot products: bias (nullptr = none), then the activation.
struct FloatEpilogue {
  const float* bias;  // [outputs]
  Activation activation;
  float alpha;        // LeakyRelu slope
};

// out[m * out_stride + o] for pixel m < pixels (<= kMaxGemmPixels), output o < outputs. Each output
// is bias, then + x * w for every tap and channel in order, in float32 without fused multiply-add:
// every table gives bit-identical results.
using FloatGemmFn = void (*)(const FloatRows& a, size_t pixels, const float* packed_weights, size_t outputs,
                             const FloatEpilogue& e, float* out, size_t out_stride);

}  // namespace lowbit
