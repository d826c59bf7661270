// Element-wise float ops, per-channel affine (folded BatchNorm), and the float <-> code boundary.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/op_table.h"
#include "ops/ops.h"
#include "quantize.h"

namespace lowbit {
namespace {

size_t no_scratch(const OpView&) { return 0; }
size_t serial(const OpView&) { return 1; }
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

void run_relu(const OpRun& r, size_t begin, size_t end, void*) {
  for_rows(r, begin, end, [](const float* x, float* y, size_t c) {
    for (size_t i = 0; i < c; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

void run_leaky_relu(const OpRun& r, size_t begin, size_t end, void*) {
  const float alpha = r.view.fattr(0);
  for_rows(r, begin, end, [alpha](const float* x, float* y, size_t c) {
    for (size_t i = 0; i < c; ++i) y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
  });
}

void run_sigmoid(const OpRun& r, size_t begin, size_t end, void*) {
  for_rows(r, begin, end, [](const float* x, float* y, size_t c) {
    for (size_t i = 0; i < c; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
  });
}

void run_softmax(const OpRun& r, size_t begin, size_t end, void*) {
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

void run_affine(const OpRun& r, size_t begin, size_t end, void*) {
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

template <typename F>
void run_broadcast(const OpRun& r, F f) {
  int32_t da[4], db[4], dy[4];
  broadcast_dims(*r.view.in[0], da);
  broadcast_dims(*r.view.in[1], db);
  broadcast_dims(*r.view.out[0], dy);
  const float* a = r.input<float>(0);
  const float* b = r.input<float>(1);
  float* y = r.output<float>();
  size_t i = 0;
  for (int32_t n = 0; n < dy[0]; ++n)
    for (int32_t h = 0; h < dy[1]; ++h)
      for (int32_t w = 0; w < dy[2]; ++w)
        for (int32_t c = 0; c < dy[3]; ++c, ++i) {
          auto at = [&](const int32_t* d) {
            return (((n % d[0]) * d[1] + h % d[1]) * d[2] + w % d[2]) * static_cast<size_t>(d[3]) + c % d[3];
          };
          y[i] = f(a[at(da)], b[at(db)]);
        }
}

void run_add(const OpRun& r, size_t, size_t, void*) {
  run_broadcast(r, [](float a, float b) { return a + b; });
}
void run_mul(const OpRun& r, size_t, size_t, void*) {
  run_broadcast(r, [](float a, float b) { return a * b; });
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

void run_quantize(const OpRun& r, size_t begin, size_t end, void*) {
  const TensorDesc& y = *r.view.out[0];
  const PixelPlanes planes = y.pixel_planes();
  const size_t c = planes.channels;
  const QuantType q = y.quant;
  const Rounding rounding = static_cast<Rounding>(r.view.attr(0));
  const size_t words = planes.words_per_plane();
  // A word of 32 channels at a time: the planes are assembled in registers and stored once.
  for (size_t pixel = begin; pixel < end; ++pixel) {
    const float* x = r.input<float>(0) + pixel * c;
    uint32_t* out = r.output<uint32_t>() + pixel * planes.words_per_pixel();
    for (size_t w = 0; w < words; ++w) {
      uint32_t plane[kMaxBits] = {};
      const size_t first = w * kWordBits, count = std::min<size_t>(kWordBits, c - first);
      for (size_t i = 0; i < count; ++i) {
        const uint32_t pattern = q.code_to_bits(quantize_value(x[first + i], y.scale, q, rounding));
        for (int p = 0; p < q.bits; ++p) plane[p] |= ((pattern >> p) & 1u) << i;
      }
      for (int p = 0; p < q.bits; ++p) out[static_cast<size_t>(p) * words + w] = plane[p];
    }
  }
}

bool infer_dequantize(const OpView& v, InferredOutput* out, std::string* err) {
  if (!same_as_input(v, out, err, DType::kCodes)) return false;
  out->dtype = DType::kF32;
  return true;
}

void run_dequantize(const OpRun& r, size_t begin, size_t end, void*) {
  const TensorDesc& x = *r.view.in[0];
  const PixelPlanes planes = x.pixel_planes();
  const size_t c = planes.channels;
  for (size_t pixel = begin; pixel < end; ++pixel) {
    const uint32_t* in = r.input<uint32_t>(0) + pixel * planes.words_per_pixel();
    float* y = r.output<float>() + pixel * c;
    for (size_t i = 0; i < c; ++i)
      y[i] = x.scale * static_cast<float>(read_code(in, planes.words_per_plane(), i, x.quant));
  }
}

}  // namespace

const OpTraits kAffineTraits{"Affine", 3, 3, 0, 0, infer_affine, no_scratch, leading_rows, run_affine};
const OpTraits kReluTraits{"Relu", 1, 1, 0, 0, infer_float_unary, no_scratch, leading_rows, run_relu};
const OpTraits kLeakyReluTraits{"LeakyRelu", 1, 1, 0, 1, infer_float_unary, no_scratch, leading_rows, run_leaky_relu};
const OpTraits kSigmoidTraits{"Sigmoid", 1, 1, 0, 0, infer_float_unary, no_scratch, leading_rows, run_sigmoid};
const OpTraits kSoftmaxTraits{"Softmax", 1, 1, 0, 0, infer_float_unary, no_scratch, leading_rows, run_softmax};
const OpTraits kAddTraits{"Add", 2, 2, 0, 0, infer_binary, no_scratch, serial, run_add};
const OpTraits kMulTraits{"Mul", 2, 2, 0, 0, infer_binary, no_scratch, serial, run_mul};
const OpTraits kQuantizeTraits{"Quantize", 1, 1, 1, 0, infer_quantize, no_scratch, leading_rows, run_quantize};
const OpTraits kDequantizeTraits{"Dequantize", 1, 1, 0, 0, infer_dequantize, no_scratch, leading_rows,
                                 run_dequantize};

}  // namespace lowbit
