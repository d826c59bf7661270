// The op table rows, one per op type, defined next to their kernels.
#pragma once

#include "ops/op_table.h"

namespace lowbit {

extern const OpTraits kConv2DTraits, kQConv2DTraits, kDenseTraits, kQDenseTraits;
extern const OpTraits kAffineTraits, kReluTraits, kLeakyReluTraits, kSigmoidTraits, kSoftmaxTraits;
extern const OpTraits kAddTraits, kMulTraits, kQuantizeTraits, kDequantizeTraits;
extern const OpTraits kMaxPoolTraits, kAvgPoolTraits, kGlobalAvgPoolTraits;
extern const OpTraits kConcatTraits, kSpaceToDepthTraits, kDepthToSpaceTraits, kResizeNearestTraits, kPadTraits,
    kReshapeTraits;

}  // namespace lowbit
