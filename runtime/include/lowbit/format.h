// The lowbit model-file vocabulary: data types, quantization kinds, tensor layouts and op types.
// Shared by the loader, the builder and the converter; docs/model-format.md describes the bytes,
// docs/quantization.md the meaning of codes.
#pragma once

#include <cstdint>

namespace lowbit {

constexpr char kFileMagic[8] = {'L', 'O', 'W', 'B', 'I', 'T', 'M', '\0'};
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kHeaderSize = 64;
constexpr uint32_t kDataAlignment = 64;  // constant buffers start on cache-line (and SIMD) boundaries
constexpr int kMaxRank = 4;
constexpr int kMaxBits = 4;
constexpr int32_t kMaxDimension = 1 << 24;  // largest size of any one tensor dim
constexpr int kWordBits = 32;  // packed codes live in uint32 words; see docs/quantization.md
constexpr uint32_t kNoTensor = 0xFFFFFFFFu;  // an absent optional op input

enum class DType : uint8_t {
  kF32 = 1,    // float32, row-major (NHWC for rank 4)
  kI32 = 2,    // int32, row-major (thresholds)
  kCodes = 3,  // k-bit integer codes packed into bit planes of uint32 words
};

// How a code tensor's integer codes map to values. Every kind has real = scale * code.
enum class QuantKind : uint8_t {
  kUnsigned = 0,      // 0 .. 2^k-1
  kSigned = 1,        // -2^(k-1) .. 2^(k-1)-1 (two's complement planes)
  kSignedNarrow = 2,  // -(2^(k-1)-1) .. 2^(k-1)-1 (two's complement planes, QONNX narrow)
  kBinary = 3,        // k = 1 only: bit 1 = +1, bit 0 = -1
};

// Where the words of a code tensor go.
enum class Layout : uint8_t {
  kPlain = 0,        // F32 / I32 tensors
  kPixelPlanes = 1,  // codes: [pixel][plane][word]; the last dim is packed, the others are pixels
  kKernelPlanes = 2, // codes, conv/dense weights [O, KH, KW, Cg]: [o][plane][kh][kw][word(Cg)]
};

enum class OpType : uint16_t {
  kConv2D = 1,
  kQConv2D = 2,
  kDense = 3,
  kQDense = 4,
  kAffine = 5,
  kRelu = 6,
  kLeakyRelu = 7,
  kSigmoid = 8,
  kSoftmax = 9,
  kMaxPool = 10,
  kAvgPool = 11,
  kGlobalAvgPool = 12,
  kConcat = 13,
  kSpaceToDepth = 14,
  kDepthToSpace = 15,
  kResizeNearest = 16,
  kAdd = 17,
  kMul = 18,
  kPad = 19,
  kReshape = 20,
  kQuantize = 21,
  kDequantize = 22,
};
constexpr uint16_t kMaxOpType = 22;

// Integer attributes of the conv family, in file order.
enum ConvAttr : int {
  kStrideH, kStrideW, kPadTop, kPadLeft, kPadBottom, kPadRight, kDilationH, kDilationW, kGroups,
  kActivation,  // Conv2D / Dense only
  kConvAttrCount
};
enum PoolAttr : int {
  kPoolKH, kPoolKW, kPoolStrideH, kPoolStrideW, kPoolPadTop, kPoolPadLeft, kPoolPadBottom, kPoolPadRight,
  kPoolCountIncludePad,  // AvgPool only; MaxPool ignores padding
  kPoolAttrCount
};

enum class Activation : int32_t { kNone = 0, kRelu = 1, kLeakyRelu = 2 };
enum class Rounding : int32_t { kHalfUp = 0, kHalfEven = 1 };
enum class DepthToSpaceMode : int32_t { kDCR = 0, kCRD = 1 };

// Threshold table of a QConv2D/QDense with code output: int32 [O, 1 + levels-1]; column 0 is the direction.
enum ThresholdDirection : int32_t { kThresholdConstant = 0, kThresholdIncreasing = 1, kThresholdDecreasing = -1 };

}  // namespace lowbit
