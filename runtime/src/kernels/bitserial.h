// Bit-serial integer dot products: the microkernel interface behind every quantized conv and dense.
// One dispatch point (`kernels()`) picks the implementation once per process; the reference
// implementation is the twin every optimized variant is tested against bit-exactly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/packing.h"

namespace lowbit {

// Describes how planes combine into codes for one layer:
//   acc = sum_p a_weight[p] * ( sum_j w_weight[j] * popcount(W_j & A_p) + w_offset * popcount(A_p) )
// which equals sum over lanes of w_code * a_code when activation codes carry no offset (unsigned or
// two's complement) and lanes with all activation bits 0 (padding) contribute nothing.
struct BitserialShape {
  size_t words = 0;  // words per plane in both the patch and each output channel's weights
  int a_bits = 0;
  int32_t a_weight[kMaxBits] = {};
  int w_bits = 0;
  int32_t w_weight[kMaxBits] = {};
  int32_t w_offset = 0;

  static BitserialShape make(size_t words, QuantType activations, QuantType weights);
};

// acc[o] for o < outputs: patch is [a_bits][words], weights is [outputs][w_bits][words].
using BitserialGemvFn = void (*)(const BitserialShape& s, const uint32_t* patch, const uint32_t* weights,
                                 size_t outputs, int32_t* acc);

struct KernelTable {
  const char* isa;
  BitserialGemvFn bitserial_gemv;
};

// The plain C++ kernels.
const KernelTable& reference_kernels();
// The kernels chosen for this CPU (the single dispatch point).
const KernelTable& kernels();

}  // namespace lowbit
