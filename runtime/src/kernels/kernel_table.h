// The kernel tables: one per instruction set, each a set of named microkernels with a plain C++
// twin in the reference table. One dispatch point (`kernels()`) picks the table once per process.
#pragma once

#include <vector>

#include "kernels/bitserial.h"
#include "kernels/float_gemm.h"
#include "kernels/quantize_pack.h"

namespace lowbit {

struct KernelTable {
  const char* isa;
  bool (*supported)();  // whether this CPU can run the table
  WeightLayout weights;  // how its bitserial_gemm expects the weights packed (pack_weights)
  BitserialGemmFn bitserial_gemm;
  size_t float_lanes;   // the `lanes` its float_gemm expects the weights packed with
  FloatGemmFn float_gemm;
  QuantizePackFn quantize_pack;
  PixelCodeSumsFn pixel_code_sums;  // pixel_code_sums<this unit's type>: the same loop, this ISA's popcount
};

// The plain C++ kernels, the twin every optimized table is tested against.
const KernelTable& reference_kernels();
// The lanes every table of every target packs its weights with (each ISA's file checks its own).
constexpr WeightLayout kReferenceWeights{1, 1, 1, false, false};
constexpr WeightLayout kAvx2Weights{8, 2, 8, true, true};
constexpr WeightLayout kAvx512Weights{16, 1, 20, false, true};
#if defined(__aarch64__) || !defined(__arm__)
constexpr WeightLayout kNeonWeights{4, 1, 12, false, true};  // AArch64: 12 accumulators of 32 registers
#else
constexpr WeightLayout kNeonWeights{4, 1, 6, false, true};  // ARMv7: 6 of 16 registers
#endif
constexpr size_t kAvx2FloatLanes = 8, kAvx512FloatLanes = 16, kNeonFloatLanes = 4;

// Weight layouts of all tables of all targets, reference first: KernelTables with lanes but no
// kernels (never run them). lowbit_model_workspace_bytes sizes a model's prepared constants for
// each: while an override is set on a thread, kernels() returns it there.
size_t kernel_layout_count();
const KernelTable& kernel_layout(size_t i);
const KernelTable* set_kernel_layout_override(const KernelTable* layout);  // returns the previous one

// The fastest supported table, chosen once (the single dispatch point). LOWBIT_ISA=<name> in the
// environment forces a table by name, e.g. LOWBIT_ISA=reference, if this CPU supports it.
const KernelTable& kernels();
// Every table built into this binary that this CPU supports, reference first.
std::vector<const KernelTable*> available_kernels();

// The optimized tables compiled into this build, slowest to fastest. Each lives in its own
// translation unit built with its ISA's flags; only its supported() check runs on every CPU.
#if defined(__x86_64__)
extern const KernelTable kAvx2Kernels;
extern const KernelTable kAvx512Kernels;
#endif
#if defined(__ARM_NEON)
extern const KernelTable kNeonKernels;
#endif

inline std::vector<const KernelTable*> optimized_kernel_tables() {
  return {
#if defined(__x86_64__)
      &kAvx2Kernels, &kAvx512Kernels,
#endif
#if defined(__ARM_NEON)
      &kNeonKernels,
#endif
  };
}

}  // namespace lowbit
