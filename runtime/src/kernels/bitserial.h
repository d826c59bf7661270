// Bit-serial integer dot products: the microkernel interface behind every quantized conv and dense.
// One dispatch point (`kernels()`) picks the implementation once per process; the reference
// implementation is the twin every optimized variant is tested against bit-exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

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

// acc[m * outputs + o] for pixel m < pixels (<= kMaxGemmPixels) and output o < outputs: patches is
// [pixels][a_bits][words],
// weights is [outputs][w_bits][words]. Kernels may block over pixels and outputs as they like.
using BitserialGemmFn = void (*)(const BitserialShape& s, const uint32_t* patches, size_t pixels,
                                 const uint32_t* weights, size_t outputs, int32_t* acc);

// Largest pixel block an operator hands to one gemm call (sizes its scratch).
constexpr size_t kMaxGemmPixels = 4;

struct KernelTable {
  const char* isa;
  bool (*supported)();  // whether this CPU can run the table
  BitserialGemmFn bitserial_gemm;
};

// The plain C++ kernels, the twin every optimized table is tested against.
const KernelTable& reference_kernels();
// The fastest supported table, chosen once (the single dispatch point). LOWBIT_ISA=<name> in the
// environment forces a table by name, e.g. LOWBIT_ISA=reference, if this CPU supports it.
const KernelTable& kernels();
// Every table built into this binary that this CPU supports, reference first.
std::vector<const KernelTable*> available_kernels();

}  // namespace lowbit
