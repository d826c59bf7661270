// Float activations -> packed codes: the microkernel behind the Quantize op (the tables that
// implement it are in kernel_table.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/format.h"
#include "lowbit/packing.h"

namespace lowbit {

// The code of x is quantize_value(x, scale, q, rounding) (quantize.h, docs/quantization.md).
struct QuantizeArgs {
  float scale;
  QuantType q;
  Rounding rounding;
};

// x: `pixels` rows of `channels` floats; out: the same pixels in the pixel-planes layout
// (q.bits planes of words_for(channels) words per pixel), bits past the last channel zero.
using QuantizePackFn = void (*)(const QuantizeArgs& a, const float* x, size_t pixels, size_t channels,
                                uint32_t* out);

// The plain twin: one quantize_value per element, bits placed one at a time.
void quantize_pack_reference(const QuantizeArgs& a, const float* x, size_t pixels, size_t channels, uint32_t* out);

}  // namespace lowbit
