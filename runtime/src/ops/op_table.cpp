#include "ops/op_table.h"

#include "ops/ops.h"

namespace lowbit {

const OpTraits* op_traits(OpType type) {
  switch (type) {
    case OpType::kConv2D: return &kConv2DTraits;
    case OpType::kQConv2D: return &kQConv2DTraits;
    case OpType::kDense: return &kDenseTraits;
    case OpType::kQDense: return &kQDenseTraits;
    case OpType::kAffine: return &kAffineTraits;
    case OpType::kRelu: return &kReluTraits;
    case OpType::kLeakyRelu: return &kLeakyReluTraits;
    case OpType::kSigmoid: return &kSigmoidTraits;
    case OpType::kSoftmax: return &kSoftmaxTraits;
    case OpType::kMaxPool: return &kMaxPoolTraits;
    case OpType::kAvgPool: return &kAvgPoolTraits;
    case OpType::kGlobalAvgPool: return &kGlobalAvgPoolTraits;
    case OpType::kConcat: return &kConcatTraits;
    case OpType::kSpaceToDepth: return &kSpaceToDepthTraits;
    case OpType::kDepthToSpace: return &kDepthToSpaceTraits;
    case OpType::kResizeNearest: return &kResizeNearestTraits;
    case OpType::kAdd: return &kAddTraits;
    case OpType::kMul: return &kMulTraits;
    case OpType::kPad: return &kPadTraits;
    case OpType::kReshape: return &kReshapeTraits;
    case OpType::kQuantize: return &kQuantizeTraits;
    case OpType::kDequantize: return &kDequantizeTraits;
  }
  return nullptr;
}

const char* op_name(OpType t) {
  const OpTraits* traits = op_traits(t);
  return traits ? traits->name : "unknown";
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kI32: return "i32";
    case DType::kCodes: return "codes";
  }
  return "unknown";
}

std::string TensorDesc::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

bool fail(std::string* err, std::string msg) {
  *err = std::move(msg);
  return false;
}

bool expect_dtype(const TensorDesc* t, DType want, const char* role, std::string* err) {
  if (t->dtype == want) return true;
  return fail(err, std::string(role) + " '" + t->c_name() + "' is " + dtype_name(t->dtype) + ", expected " + dtype_name(want));
}

bool expect_rank(const TensorDesc* t, int rank, const char* role, std::string* err) {
  if (t->rank == rank) return true;
  return fail(err, std::string(role) + " '" + t->c_name() + "' has rank " + std::to_string(t->rank) + ", expected " +
                       std::to_string(rank));
}

}  // namespace lowbit
