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
  size_t weight_lanes;  // the `lanes` its bitserial_gemm expects the weights packed with
  size_t weight_halves;  // and the `halves` (2: nibble halves, see pack_weights)
  int accumulators;     // its bitserial_gemm's register budget: choose_blocking, and so the weight groups
  BitserialGemmFn bitserial_gemm;
  size_t float_lanes;   // the `lanes` its float_gemm expects the weights packed with
  FloatGemmFn float_gemm;
  QuantizePackFn quantize_pack;
};

// The plain C++ kernels, the twin every optimized table is tested against.
const KernelTable& reference_kernels();
// The lanes every table of every target packs its weights with (each ISA's file checks its own).
constexpr size_t kAvx2WeightLanes = 8, kAvx2WeightHalves = 2, kAvx2FloatLanes = 8;
constexpr size_t kAvx512WeightLanes = 16, kAvx512FloatLanes = 16;
constexpr size_t kNeonWeightLanes = 4, kNeonFloatLanes = 4;
constexpr int kAvx2Accumulators = 8, kAvx512Accumulators = 20;
#if defined(__aarch64__) || !defined(__arm__)
constexpr int kNeonAccumulators = 12;  // AArch64: of 32 registers
#else
constexpr int kNeonAccumulators = 6;  // ARMv7: of 16 registers
#endif

// The group_blocks table t packs a layer's weights with (pack_weights).
inline size_t weight_group_blocks(const KernelTable& t, const BitserialShape& s) {
  return static_cast<size_t>(choose_blocking(s.a_bits, s.w_bits, t.accumulators).blocks);
}

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
