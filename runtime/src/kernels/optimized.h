// The optimized kernel tables compiled into this build, slowest to fastest. Each lives in its own
// translation unit built with its ISA's flags; only its supported() check runs on every CPU.
#pragma once

#include <vector>

#include "kernels/bitserial.h"

namespace lowbit {

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
