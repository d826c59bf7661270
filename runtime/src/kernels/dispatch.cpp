// The single dispatch point: which kernel table this process uses.
#include <cstdlib>
#include <cstring>

#include "kernels/kernel_table.h"

namespace lowbit {

std::vector<const KernelTable*> available_kernels() {
  std::vector<const KernelTable*> tables = {&reference_kernels()};
  for (const KernelTable* t : optimized_kernel_tables())
    if (t->supported()) tables.push_back(t);
  return tables;
}

namespace {

// The tables built into this binary, slowest to fastest (see optimized_kernel_tables); a plain
// array so that the first kernels() call — possibly inside lowbit_model_load_static — allocates nothing.
const KernelTable* choose() {
  const KernelTable* built[] = {
      &reference_kernels(),
#if defined(__x86_64__)
      &kAvx2Kernels, &kAvx512Kernels,
#endif
#if defined(__ARM_NEON)
      &kNeonKernels,
#endif
  };
  const char* forced = std::getenv("LOWBIT_ISA");
  const KernelTable* best = built[0];
  for (const KernelTable* t : built) {
    if (t != built[0] && !t->supported()) continue;
    if (forced && std::strcmp(t->isa, forced) == 0) return t;
    best = t;
  }
  return best;  // optimized tables are listed slowest to fastest
}

thread_local const KernelTable* g_layout_override = nullptr;

// Layouts only (no kernels): what each table of every target packs its weights for.
const KernelTable kLayouts[] = {
    {"reference", nullptr, kReferenceWeights, nullptr, 1, nullptr, nullptr, nullptr},
    {"avx2", nullptr, kAvx2Weights, nullptr, kAvx2FloatLanes, nullptr, nullptr, nullptr},
    {"avx512", nullptr, kAvx512Weights, nullptr, kAvx512FloatLanes, nullptr, nullptr, nullptr},
    {"neon", nullptr, kNeonWeights, nullptr, kNeonFloatLanes, nullptr, nullptr, nullptr},
};

}  // namespace

const KernelTable& kernels() {
  if (const KernelTable* layout = g_layout_override) return *layout;
  static const KernelTable* chosen = choose();
  return *chosen;
}

size_t kernel_layout_count() { return sizeof(kLayouts) / sizeof(kLayouts[0]); }
const KernelTable& kernel_layout(size_t i) { return kLayouts[i]; }
const KernelTable* set_kernel_layout_override(const KernelTable* layout) {
  const KernelTable* old = g_layout_override;
  g_layout_override = layout;
  return old;
}

}  // namespace lowbit
