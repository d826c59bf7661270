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
const KernelTable* choose() {
  const std::vector<const KernelTable*> tables = available_kernels();
  if (const char* forced = std::getenv("LOWBIT_ISA")) {
    for (const KernelTable* t : tables)
      if (std::strcmp(t->isa, forced) == 0) return t;
  }
  return tables.back();  // optimized tables are listed slowest to fastest
}
}  // namespace

const KernelTable& kernels() {
  static const KernelTable* chosen = choose();
  return *chosen;
}

}  // namespace lowbit
