// Ops that only move values: concat, space/depth rearrangement, nearest resize, pad and reshape.
// Each describes, per output pixel, which runs of input channels land where; one mover copies those
// runs for float tensors and for packed codes alike.
#include <cstring>

#include "ops/op_table.h"
#include "ops/ops.h"

namespace lowbit {
namespace {

// Copies channel runs between pixels of two tensors of the same dtype.
struct Mover {
  const TensorDesc& in;
  const void* in_data;
  const TensorDesc& out;
  void* out_data;

  void copy(size_t in_pixel, size_t in_c, size_t out_pixel, size_t out_c, size_t count) const {
    if (out.dtype == DType::kCodes) {
      const PixelPlanes ip = in.pixel_planes(), op = out.pixel_planes();
      for (int p = 0; p < out.quant.bits; ++p)
        copy_bits(static_cast<const uint32_t*>(in_data) + ip.plane_offset(in_pixel, p), in_c,
                  static_cast<uint32_t*>(out_data) + op.plane_offset(out_pixel, p), out_c, count);
    } else {
      std::memcpy(static_cast<float*>(out_data) + out_pixel * static_cast<size_t>(out.last_dim()) + out_c,
                  static_cast<const float*>(in_data) + in_pixel * static_cast<size_t>(in.last_dim()) + in_c,
                  count * sizeof(float));
    }
  }
};

// Fills an output pixel with `value` (floats) or code 0 with zero padding lanes (codes).
void fill_pixel(const TensorDesc& out, void* out_data, size_t pixel, float value) {
  if (out.dtype == DType::kCodes) {
    const PixelPlanes p = out.pixel_planes();
    std::memset(static_cast<uint32_t*>(out_data) + pixel * p.words_per_pixel(), 0, p.words_per_pixel() * 4);
  } else {
    float* y = static_cast<float*>(out_data) + pixel * static_cast<size_t>(out.last_dim());
    for (int32_t c = 0; c < out.last_dim(); ++c) y[c] = value;
  }
}

size_t no_scratch(const OpView&) { return 0; }
size_t out_pixels(const OpView& v) { return static_cast<size_t>(v.out[0]->pixel_count()); }

// Output like the input (dtype, quantization), with the given shape.
void pass_through(const TensorDesc& x, InferredOutput* out, int rank, const int32_t* dims) {
  out->dtype = x.dtype;
  out->rank = rank;
  for (int i = 0; i < rank; ++i) out->dims[i] = dims[i];
  out->quant_known = x.dtype == DType::kCodes;
  out->quant = x.quant;
  out->scale = x.scale;
}

bool values_or_codes(const TensorDesc* x, std::string* err) {
  if (x->dtype == DType::kI32) return fail(err, "expects float values or codes");
  return true;
}

// Pixel indexing of a rank-4 input/output pair whose batch dims agree.
struct PixelGrid {
  size_t ih, iw, oh, ow;
  PixelGrid(const TensorDesc& x, const TensorDesc& y)
      : ih(static_cast<size_t>(x.dims[1])), iw(static_cast<size_t>(x.dims[2])), oh(static_cast<size_t>(y.dims[1])),
        ow(static_cast<size_t>(y.dims[2])) {}
  // Splits an output pixel into (batch, row, column).
  void decode(size_t pixel, size_t* n, size_t* oy, size_t* ox) const {
    *n = pixel / (oh * ow);
    *oy = pixel / ow % oh;
    *ox = pixel % ow;
  }
  size_t input_pixel(size_t n, size_t iy, size_t ix) const { return (n * ih + iy) * iw + ix; }
};

// ---- concat (last axis) ----

bool infer_concat(const OpView& v, InferredOutput* out, std::string* err) {
  const TensorDesc& a = *v.in[0];
  if (!values_or_codes(&a, err)) return false;
  int32_t dims[kMaxRank];
  for (int i = 0; i < a.rank; ++i) dims[i] = a.dims[i];
  dims[a.rank - 1] = 0;
  for (int k = 0; k < v.num_inputs; ++k) {
    if (!v.in[k]) return fail(err, "input " + std::to_string(k) + " is absent");
    const TensorDesc& t = *v.in[k];
    if (t.dtype != a.dtype || t.rank != a.rank) return fail(err, "inputs differ in dtype or rank");
    if (t.dtype == DType::kCodes && (t.quant != a.quant || t.scale != a.scale))
      return fail(err, "code inputs must share bit width, kind and scale");
    for (int i = 0; i + 1 < a.rank; ++i)
      if (t.dims[i] != a.dims[i]) return fail(err, "inputs differ outside the channel axis");
    dims[a.rank - 1] += t.last_dim();
  }
  pass_through(a, out, a.rank, dims);
  return true;
}

void run_concat(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  for (size_t pixel = begin; pixel < end; ++pixel) {
    fill_pixel(*r.view.out[0], r.out_data, pixel, 0.0f);
    size_t c = 0;
    for (int k = 0; k < r.view.num_inputs; ++k) {
      const TensorDesc& t = *r.view.in[k];
      Mover{t, r.in_data[k], *r.view.out[0], r.out_data}.copy(pixel, 0, pixel, c, static_cast<size_t>(t.last_dim()));
      c += static_cast<size_t>(t.last_dim());
    }
  }
}

// ---- space_to_depth / depth_to_space (TensorFlow / ONNX channel order) ----

bool infer_space_to_depth(const OpView& v, InferredOutput* out, std::string* err) {
  const TensorDesc& x = *v.in[0];
  const int32_t b = v.attr(0);
  if (!values_or_codes(&x, err) || !expect_rank(&x, 4, "input", err)) return false;
  if (b < 1 || x.dims[1] % b || x.dims[2] % b) return fail(err, "block must divide height and width");
  const int64_t channels = static_cast<int64_t>(x.dims[3]) * b * b;
  if (channels > kMaxDimension) return fail(err, "output channels beyond the dim limit");
  const int32_t dims[4] = {x.dims[0], x.dims[1] / b, x.dims[2] / b, static_cast<int32_t>(channels)};
  pass_through(x, out, 4, dims);
  return true;
}

void run_space_to_depth(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const TensorDesc& x = *r.view.in[0];
  const TensorDesc& y = *r.view.out[0];
  const size_t b = static_cast<size_t>(r.view.attr(0)), c = static_cast<size_t>(x.dims[3]);
  const PixelGrid grid(x, y);
  const Mover m{x, r.in_data[0], y, r.out_data};
  for (size_t pixel = begin; pixel < end; ++pixel) {
    fill_pixel(y, r.out_data, pixel, 0.0f);
    size_t n, oy, ox;
    grid.decode(pixel, &n, &oy, &ox);
    for (size_t dy = 0; dy < b; ++dy)
      for (size_t dx = 0; dx < b; ++dx) m.copy(grid.input_pixel(n, oy * b + dy, ox * b + dx), 0, pixel, (dy * b + dx) * c, c);
  }
}

bool infer_depth_to_space(const OpView& v, InferredOutput* out, std::string* err) {
  const TensorDesc& x = *v.in[0];
  const int32_t b = v.attr(0), mode = v.attr(1);
  if (!values_or_codes(&x, err) || !expect_rank(&x, 4, "input", err)) return false;
  const int64_t block_area = static_cast<int64_t>(b) * b;
  if (b < 1 || block_area > x.dims[3] || x.dims[3] % block_area) return fail(err, "block^2 must divide the channels");
  if (mode != static_cast<int32_t>(DepthToSpaceMode::kDCR) && mode != static_cast<int32_t>(DepthToSpaceMode::kCRD))
    return fail(err, "unknown depth_to_space mode " + std::to_string(mode));
  const int64_t h = static_cast<int64_t>(x.dims[1]) * b, w = static_cast<int64_t>(x.dims[2]) * b;
  if (h > kMaxDimension || w > kMaxDimension) return fail(err, "output beyond the dim limit");
  const int32_t dims[4] = {x.dims[0], static_cast<int32_t>(h), static_cast<int32_t>(w),
                           static_cast<int32_t>(x.dims[3] / block_area)};
  pass_through(x, out, 4, dims);
  return true;
}

void run_depth_to_space(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const TensorDesc& x = *r.view.in[0];
  const TensorDesc& y = *r.view.out[0];
  const size_t b = static_cast<size_t>(r.view.attr(0)), c = static_cast<size_t>(y.dims[3]);
  const bool crd = r.view.attr(1) == static_cast<int32_t>(DepthToSpaceMode::kCRD);
  const PixelGrid grid(x, y);
  const Mover m{x, r.in_data[0], y, r.out_data};
  for (size_t pixel = begin; pixel < end; ++pixel) {
    fill_pixel(y, r.out_data, pixel, 0.0f);
    size_t n, oy, ox;
    grid.decode(pixel, &n, &oy, &ox);
    const size_t in_pixel = grid.input_pixel(n, oy / b, ox / b);
    const size_t sub = (oy % b) * b + ox % b;
    if (crd) {
      for (size_t ch = 0; ch < c; ++ch) m.copy(in_pixel, ch * b * b + sub, pixel, ch, 1);
    } else {
      m.copy(in_pixel, sub * c, pixel, 0, c);
    }
  }
}

// ---- nearest resize by integer factors ----

bool infer_resize(const OpView& v, InferredOutput* out, std::string* err) {
  const TensorDesc& x = *v.in[0];
  const int64_t sh = v.attr(0), sw = v.attr(1);
  if (!values_or_codes(&x, err) || !expect_rank(&x, 4, "input", err)) return false;
  if (sh < 1 || sw < 1) return fail(err, "scale factors must be >= 1");
  if (x.dims[1] * sh > kMaxDimension || x.dims[2] * sw > kMaxDimension) return fail(err, "output beyond the dim limit");
  const int32_t dims[4] = {x.dims[0], static_cast<int32_t>(x.dims[1] * sh), static_cast<int32_t>(x.dims[2] * sw),
                           x.dims[3]};
  pass_through(x, out, 4, dims);
  return true;
}

void run_resize(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const TensorDesc& x = *r.view.in[0];
  const TensorDesc& y = *r.view.out[0];
  const size_t sh = static_cast<size_t>(r.view.attr(0)), sw = static_cast<size_t>(r.view.attr(1));
  const PixelGrid grid(x, y);
  const Mover m{x, r.in_data[0], y, r.out_data};
  for (size_t pixel = begin; pixel < end; ++pixel) {
    fill_pixel(y, r.out_data, pixel, 0.0f);
    size_t n, oy, ox;
    grid.decode(pixel, &n, &oy, &ox);
    m.copy(grid.input_pixel(n, oy / sh, ox / sw), 0, pixel, 0, static_cast<size_t>(x.dims[3]));
  }
}

// ---- pad: ints are begin/end pairs for the four dims of the shape right-aligned to rank 4 ----

void aligned_dims(const TensorDesc& t, int64_t d[4]) {
  for (int i = 0; i < 4; ++i) d[i] = 1;
  for (int i = 0; i < t.rank; ++i) d[4 - t.rank + i] = t.dims[i];
}

bool infer_pad(const OpView& v, InferredOutput* out, std::string* err) {
  const TensorDesc& x = *v.in[0];
  if (!values_or_codes(&x, err)) return false;
  if (x.dtype == DType::kCodes && v.fattr(0) != 0.0f) return fail(err, "codes pad with zero only");
  if (x.dtype == DType::kCodes && x.quant.kind == QuantKind::kBinary) return fail(err, "binary codes have no zero to pad with");
  int64_t d[4];
  aligned_dims(x, d);
  int32_t dims[kMaxRank];
  for (int i = 0; i < 4; ++i) {
    const int64_t before = v.attr(2 * i), after = v.attr(2 * i + 1);
    if (before < 0 || after < 0) return fail(err, "pads must be >= 0");
    if (i < 4 - x.rank && (before || after)) return fail(err, "pad names a dim the input does not have");
    const int64_t size = d[i] + before + after;
    if (size > kMaxDimension) return fail(err, "output beyond the dim limit");
    if (i >= 4 - x.rank) dims[i - (4 - x.rank)] = static_cast<int32_t>(size);
  }
  pass_through(x, out, x.rank, dims);
  return true;
}

void run_pad(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const TensorDesc& x = *r.view.in[0];
  const TensorDesc& y = *r.view.out[0];
  int64_t di[4], dout[4];
  aligned_dims(x, di);
  aligned_dims(y, dout);
  const Mover m{x, r.in_data[0], y, r.out_data};
  for (size_t pixel = begin; pixel < end; ++pixel) {
    fill_pixel(y, r.out_data, pixel, r.view.fattr(0));
    int64_t at[3] = {static_cast<int64_t>(pixel) / (dout[1] * dout[2]), static_cast<int64_t>(pixel) / dout[2] % dout[1],
                     static_cast<int64_t>(pixel) % dout[2]};
    bool inside = true;
    for (int i = 0; i < 3; ++i) {
      at[i] -= r.view.attr(2 * i);
      inside = inside && at[i] >= 0 && at[i] < di[i];
    }
    if (inside)
      m.copy(static_cast<size_t>((at[0] * di[1] + at[1]) * di[2] + at[2]), 0, pixel, static_cast<size_t>(r.view.attr(6)),
             static_cast<size_t>(di[3]));
  }
}

// ---- reshape: the declared output gives the shape ----

bool infer_reshape(const OpView& v, InferredOutput* out, std::string* err) {
  const TensorDesc& x = *v.in[0];
  const TensorDesc& y = *v.out[0];
  if (!values_or_codes(&x, err)) return false;
  if (x.element_count() != y.element_count())
    return fail(err, "cannot reshape " + x.shape_string() + " to " + y.shape_string());
  pass_through(x, out, y.rank, y.dims);
  return true;
}

void run_reshape(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const TensorDesc& x = *r.view.in[0];
  const TensorDesc& y = *r.view.out[0];
  const size_t cin = static_cast<size_t>(x.last_dim()), cout = static_cast<size_t>(y.last_dim());
  const Mover m{x, r.in_data[0], y, r.out_data};
  for (size_t pixel = begin; pixel < end; ++pixel) {
    fill_pixel(y, r.out_data, pixel, 0.0f);
    // Row-major element order is kept; runs break where input pixels end.
    for (size_t c = 0; c < cout;) {
      const size_t e = pixel * cout + c;
      const size_t run = cin - e % cin < cout - c ? cin - e % cin : cout - c;
      m.copy(e / cin, e % cin, pixel, c, run);
      c += run;
    }
  }
}

}  // namespace

const OpTraits kConcatTraits{"Concat", 2, 8, 0, 0, infer_concat, no_scratch, out_pixels, run_concat};
const OpTraits kSpaceToDepthTraits{"SpaceToDepth", 1, 1, 1, 0, infer_space_to_depth, no_scratch, out_pixels,
                                   run_space_to_depth};
const OpTraits kDepthToSpaceTraits{"DepthToSpace", 1, 1, 2, 0, infer_depth_to_space, no_scratch, out_pixels,
                                   run_depth_to_space};
const OpTraits kResizeNearestTraits{"ResizeNearest", 1, 1, 2, 0, infer_resize, no_scratch, out_pixels, run_resize};
const OpTraits kPadTraits{"Pad", 1, 1, 8, 1, infer_pad, no_scratch, out_pixels, run_pad};
const OpTraits kReshapeTraits{"Reshape", 1, 1, 0, 0, infer_reshape, no_scratch, out_pixels, run_reshape};

}  // namespace lowbit
