// Element-wise float ops, per-channel affine (folded BatchNorm), and the float <-> code boundary.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/op_table.h"
#include "ops/ops.h"
#include "kernels/kernel_table.h"

namespace lowbit {
namespace {

size_t no_scratch(const OpView&) { return 0; }
// Units of work for per-element ops: rows of the leading dims.
size_t leading_rows(const OpView& v) { return static_cast<size_t>(v.out[0]->pixel_count()); }

bool same_as_input(const OpView& v, InferredOutput* out, std::string* err, DType dtype) {
  if (!expect_dtype(v.in[0], dtype, "input", err)) return false;
  out->dtype = dtype;
  out->rank = v.in[0]->rank;
  for (int i = 0; i < out->rank; ++i) out->dims[i] = v.in[0]->dims[i];
  return true;
}

bool infer_float_unary(const OpView& v, InferredOutput* out, std::string* err) {
  return same_as_input(v, out, err, DType::kF32);
}

// Applies f to rows [begin, end) of the last dim; f sees one row of `channels` values.
template <typename F>
void for_rows(const OpRun& r, size_t begin, size_t end, F f) {
  const size_t c = static_cast<size_t>(r.view.out[0]->last_dim());
  for (size_t row = begin; row < end; ++row) f(r.input<float>(0) + row * c, r.output<float>() + row * c, c);
}

void run_relu(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  for_rows(r, begin, end, [](const float* x, float* y, size_t c) {
    for (size_t i = 0; i < c; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

void run_leaky_relu(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const float alpha = r.view.fattr(0);
  for_rows(r, begin, end, [alpha](const float* x, float* y, size_t c) {
    for (size_t i = 0; i < c; ++i) y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
  });
}

void run_sigmoid(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  for_rows(r, begin, end, [](const float* x, float* y, size_t c) {
    for (size_t i = 0; i < c; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
  });
}

void run_softmax(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  for_rows(r, begin, end, [](const float* x, float* y, size_t c) {
    float max = x[0];
    for (size_t i = 1; i < c; ++i) max = x[i] > max ? x[i] : max;
    float sum = 0.0f;
    for (size_t i = 0; i < c; ++i) sum += (y[i] = std::exp(x[i] - max));
    for (size_t i = 0; i < c; ++i) y[i] /= sum;
  });
}

bool infer_affine(const OpView& v, InferredOutput* out, std::string* err) {
  if (!same_as_input(v, out, err, DType::kF32)) return false;
  for (int i = 1; i <= 2; ++i) {
    const TensorDesc* t = v.in[i];
    if (!expect_dtype(t, DType::kF32, i == 1 ? "scale" : "bias", err)) return false;
    if (t->rank != 1 || t->dims[0] != v.in[0]->last_dim())
      return fail(err, std::string(i == 1 ? "scale" : "bias") + " must be [channels]");
  }
  return true;
}

void run_affine(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const float* scale = r.input<float>(1);
  const float* bias = r.input<float>(2);
  for_rows(r, begin, end, [scale, bias](const float* x, float* y, size_t c) {
    for (size_t i = 0; i < c; ++i) y[i] = x[i] * scale[i] + bias[i];
  });
}

// ---- broadcasting binary ops ----

// Right-aligns both inputs to rank 4 (numpy broadcasting).
void broadcast_dims(const TensorDesc& t, int32_t dims[4]) {
  for (int i = 0; i < 4; ++i) dims[i] = 1;
  for (int i = 0; i < t.rank; ++i) dims[4 - t.rank + i] = t.dims[i];
}

bool infer_binary(const OpView& v, InferredOutput* out, std::string* err) {
  const TensorDesc& a = *v.in[0];
  const TensorDesc& b = *v.in[1];
  if (!expect_dtype(&a, DType::kF32, "first input", err) || !expect_dtype(&b, DType::kF32, "second input", err))
    return false;
  int32_t da[4], db[4];
  broadcast_dims(a, da);
  broadcast_dims(b, db);
  out->dtype = DType::kF32;
  out->rank = a.rank > b.rank ? a.rank : b.rank;
  for (int i = 0; i < 4; ++i) {
    if (da[i] != db[i] && da[i] != 1 && db[i] != 1)
      return fail(err, "shapes " + a.shape_string() + " and " + b.shape_string() + " do not broadcast");
    if (i >= 4 - out->rank) out->dims[i - (4 - out->rank)] = da[i] > db[i] ? da[i] : db[i];
  }
  return true;
}

// Rows [begin, end) of the output's leading dims; along the channels each input either runs with
// the output or repeats one value.
template <typename F>
void run_broadcast(const OpRun& r, size_t begin, size_t end, F f) {
  int32_t da[4], db[4], dy[4];
  broadcast_dims(*r.view.in[0], da);
  broadcast_dims(*r.view.in[1], db);
  broadcast_dims(*r.view.out[0], dy);
  const size_t c = static_cast<size_t>(dy[3]);
  const size_t step_a = da[3] == dy[3] ? 1 : 0, step_b = db[3] == dy[3] ? 1 : 0;
  for (size_t row = begin; row < end; ++row) {
    const int32_t w = static_cast<int32_t>(row % static_cast<size_t>(dy[2]));
    const int32_t h = static_cast<int32_t>(row / static_cast<size_t>(dy[2]) % static_cast<size_t>(dy[1]));
    const int32_t n = static_cast<int32_t>(row / (static_cast<size_t>(dy[2]) * static_cast<size_t>(dy[1])));
    auto start = [&](const int32_t* d) {
      return (((n % d[0]) * d[1] + h % d[1]) * static_cast<size_t>(d[2]) + w % d[2]) * static_cast<size_t>(d[3]);
    };
    const float* a = r.input<float>(0) + start(da);
    const float* b = r.input<float>(1) + start(db);
    float* y = r.output<float>() + row * c;
    if (step_a == 1 && step_b == 1) {  // the common case (residual adds): contiguous, vectorizable
      for (size_t i = 0; i < c; ++i) y[i] = f(a[i], b[i]);
    } else {
      for (size_t i = 0; i < c; ++i) y[i] = f(a[i * step_a], b[i * step_b]);
    }
  }
}


void run_add(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  run_broadcast(r, begin, end, [](float a, float b) { return a + b; });
}
void run_mul(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  run_broadcast(r, begin, end, [](float a, float b) { return a * b; });
}

// ---- quantize / dequantize ----

bool infer_quantize(const OpView& v, InferredOutput* out, std::string* err) {
  if (!same_as_input(v, out, err, DType::kF32)) return false;
  out->dtype = DType::kCodes;
  const int32_t rounding = v.attr(0);
  if (rounding != static_cast<int32_t>(Rounding::kHalfUp) && rounding != static_cast<int32_t>(Rounding::kHalfEven))
    return fail(err, "unknown rounding mode " + std::to_string(rounding));
  return true;
}

void run_quantize(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const TensorDesc& y = *r.view.out[0];
  const PixelPlanes planes = y.pixel_planes();
  const QuantizeArgs args{y.scale, y.quant, static_cast<Rounding>(r.view.attr(0))};
  kernels().quantize_pack(args, r.input<float>(0) + begin * planes.channels, end - begin, planes.channels,
                          r.output<uint32_t>() + begin * planes.words_per_pixel());
}

bool infer_dequantize(const OpView& v, InferredOutput* out, std::string* err) {
  if (!same_as_input(v, out, err, DType::kCodes)) return false;
  out->dtype = DType::kF32;
  return true;
}

void run_dequantize(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const TensorDesc& x = *r.view.in[0];
  const PixelPlanes planes = x.pixel_planes();
  const size_t c = planes.channels, words = planes.words_per_plane();
  float value[1u << kMaxBits];  // the float of every bit pattern
  for (uint32_t pattern = 0; pattern < (1u << x.quant.bits); ++pattern)
    value[pattern] = x.scale * static_cast<float>(x.quant.bits_to_code(pattern));
  for (size_t pixel = begin; pixel < end; ++pixel) {
    const uint32_t* in = r.input<uint32_t>(0) + pixel * planes.words_per_pixel();
    float* y = r.output<float>() + pixel * c;
    for (size_t w = 0; w < words; ++w) {
      uint32_t plane[kMaxBits];
      for (int p = 0; p < x.quant.bits; ++p) plane[p] = in[static_cast<size_t>(p) * words + w];
      const size_t first = w * kWordBits, count = std::min<size_t>(kWordBits, c - first);
      for (size_t i = 0; i < count; ++i) {
        uint32_t pattern = 0;
        for (int p = 0; p < x.quant.bits; ++p) pattern |= ((plane[p] >> i) & 1u) << p;
        y[first + i] = value[pattern];
      }
    }
  }
}

}  // namespace

const OpTraits kAffineTraits{"Affine", 3, 3, 0, 0, infer_affine, no_scratch, leading_rows, run_affine};
const OpTraits kReluTraits{"Relu", 1, 1, 0, 0, infer_float_unary, no_scratch, leading_rows, run_relu};
const OpTraits kLeakyReluTraits{"LeakyRelu", 1, 1, 0, 1, infer_float_unary, no_scratch, leading_rows, run_leaky_relu};
const OpTraits kSigmoidTraits{"Sigmoid", 1, 1, 0, 0, infer_float_unary, no_scratch, leading_rows, run_sigmoid};
const OpTraits kSoftmaxTraits{"Softmax", 1, 1, 0, 0, infer_float_unary, no_scratch, leading_rows, run_softmax};
const OpTraits kAddTraits{"Add", 2, 2, 0, 0, infer_binary, no_scratch, leading_rows, run_add};
const OpTraits kMulTraits{"Mul", 2, 2, 0, 0, infer_binary, no_scratch, leading_rows, run_mul};
const OpTraits kQuantizeTraits{"Quantize", 1, 1, 1, 0, infer_quantize, no_scratch, leading_rows, run_quantize};
const OpTraits kDequantizeTraits{"Dequantize", 1, 1, 0, 0, infer_dequantize, no_scratch, leading_rows,
                                 run_dequantize};

}  // namespace lowbit
