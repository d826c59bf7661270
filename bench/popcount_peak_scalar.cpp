// Scalar peak sequence: 64-bit AND + POPCNT + ADD (compiled with -mpopcnt on x86-64).
#include "popcount_peak_kernel.h"

namespace bench {
namespace {
struct Scalar {
  using Vec = uint64_t;
  using Acc = uint64_t;
  using Wide = uint64_t;
  static constexpr size_t kChunk = ~size_t{0};
  static Vec load(const Vec* p) { return *p; }
  static Vec and_(Vec a, Vec b) { return a & b; }
  static Acc zero() { return 0; }
  static Acc add_popcount(Acc acc, Vec x) { return acc + static_cast<uint64_t>(__builtin_popcountll(x)); }
  static Wide zero_wide() { return 0; }
  static Wide widen(Wide wide, Acc acc) { return wide + acc; }
  static uint64_t reduce(Wide wide) { return wide; }
};
}  // namespace

extern const PeakIsa kPeakScalar{"scalar-popcnt", sizeof(uint64_t), run_peak_variant<Scalar>};

}  // namespace bench
