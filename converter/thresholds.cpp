#include "converter/thresholds.h"

#include "converter/ir.h"

namespace lowbit::converter {

namespace {
// The level (0 .. T) of a code in `out`: the number of thresholds it lies above.
int64_t level_of(int64_t code, QuantType out) {
  if (code < out.min_code() || code > out.max_code() || (out.kind == QuantKind::kBinary && code == 0))
    throw ConvertError("a layer produces code " + std::to_string(code) + ", outside its output type");
  return out.kind == QuantKind::kBinary ? (code + 1) / 2 : code - out.min_code();
}
}  // namespace

std::vector<int32_t> derive_thresholds(int64_t channels, int64_t bound, QuantType out, const ChannelCodeFn& code) {
  const int64_t count = out.threshold_count();
  std::vector<int32_t> table(static_cast<size_t>(channels * (count + 1)));
  for (int64_t o = 0; o < channels; ++o) {
    int32_t* row = &table[static_cast<size_t>(o * (count + 1))];
    auto level = [&](int64_t acc) { return level_of(code(o, acc), out); };
    const int64_t low = level(-bound), high = level(bound);
    if (low == high) {  // monotone and equal at both ends: constant
      row[0] = kThresholdConstant;
      row[1] = static_cast<int32_t>(low);
      for (int64_t i = 2; i <= count; ++i) row[i] = 0;
      continue;
    }
    const bool increasing = high > low;
    row[0] = increasing ? kThresholdIncreasing : kThresholdDecreasing;
    for (int64_t i = 1; i <= count; ++i) {
      // Increasing: the smallest acc with level >= i. Decreasing: the largest such acc.
      // Searched over [-bound - 1, bound + 1]; the outer values stand for "never" / "always".
      int64_t lo = -bound - 1, hi = bound + 1;
      if (increasing) {
        while (lo + 1 < hi) {  // invariant: level(lo) < i (or lo is the outer value), level(hi) >= i (or outer)
          const int64_t mid = lo + (hi - lo) / 2;
          (level(mid) >= i ? hi : lo) = mid;
        }
        row[i] = static_cast<int32_t>(hi);
      } else {
        while (lo + 1 < hi) {  // invariant: level(lo) >= i (or outer), level(hi) < i (or outer)
          const int64_t mid = lo + (hi - lo) / 2;
          (level(mid) >= i ? lo : hi) = mid;
        }
        row[i] = static_cast<int32_t>(lo);
      }
    }
  }
  return table;
}

int64_t threshold_table_code(const std::vector<int32_t>& table, int64_t channel, QuantType out, int64_t acc) {
  const int64_t count = out.threshold_count();
  const int32_t* row = &table[static_cast<size_t>(channel * (count + 1))];
  int64_t level = 0;
  if (row[0] == kThresholdConstant) {
    level = row[1];
  } else {
    for (int64_t i = 1; i <= count; ++i) level += row[0] == kThresholdIncreasing ? acc >= row[i] : acc <= row[i];
  }
  return out.level_to_code(static_cast<int32_t>(level));
}

}  // namespace lowbit::converter
