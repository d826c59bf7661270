// Threshold tables (docs/quantization.md §5) from an exact per-channel code function.
//
// A quantized layer followed by a chain of monotone per-channel ops and a quantizer maps its
// integer accumulator to an output code by a monotone function. Instead of inverting the chain
// algebraically (where float rounding can land a threshold one off), each threshold is found by
// binary search over the accumulator range [-bound, bound] on the function itself — the same
// function the interpreter evaluates — so the table reproduces it for every accumulator value.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "lowbit/packing.h"

namespace lowbit::converter {

// code(channel, acc): the output code of `channel` for accumulator `acc`; monotone in acc.
using ChannelCodeFn = std::function<int64_t(int64_t channel, int64_t acc)>;

// The runtime table int32 [channels, 1 + T] (T = out.threshold_count()): column 0 the direction,
// then the thresholds. Thresholds no accumulator reaches are bound + 1 (increasing) or
// -(bound + 1) (decreasing). Throws ConvertError if a code falls outside `out`'s range.
std::vector<int32_t> derive_thresholds(int64_t channels, int64_t bound, QuantType out, const ChannelCodeFn& code);

// The code the table gives for `acc` (the runtime's reading of it; used by tests).
int64_t threshold_table_code(const std::vector<int32_t>& table, int64_t channel, QuantType out, int64_t acc);

}  // namespace lowbit::converter
