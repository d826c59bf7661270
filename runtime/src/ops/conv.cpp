// Convolution and dense layers, float and bit-serial quantized. Dense layers are convolutions whose
// kernel covers the whole input, so one geometry and one quantized core serve all four ops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "kernels/kernel_table.h"
#include "ops/op_table.h"
#include "ops/ops.h"

namespace lowbit {
namespace {

struct ConvGeometry {
  int64_t n, ih, iw, c;       // input
  int64_t oh, ow, o;          // output
  int64_t kh, kw, cg, og;     // kernel, channels per group in and out
  int64_t sh, sw, pt, pl, dh, dw, groups;
};

// Dense: the kernel spans the input's trailing dims, no padding, one output pixel per sample.
ConvGeometry dense_geometry(const TensorDesc& x, const TensorDesc& w) {
  ConvGeometry g{};
  g.n = x.dims[0];
  g.c = x.last_dim();
  g.ih = x.rank == 4 ? x.dims[1] : 1;
  g.iw = x.rank >= 3 ? x.dims[x.rank - 2] : 1;
  g.kh = g.ih;
  g.kw = g.iw;
  g.oh = g.ow = 1;
  g.o = w.dims[0];
  g.cg = g.c;
  g.og = g.o;
  g.sh = g.sw = g.dh = g.dw = g.groups = 1;
  return g;
}

bool is_dense(const OpView& v) { return v.op->type == OpType::kDense || v.op->type == OpType::kQDense; }
bool is_quantized(const OpView& v) { return v.op->type == OpType::kQConv2D || v.op->type == OpType::kQDense; }

bool conv_geometry(const OpView& v, ConvGeometry* g, std::string* err) {
  const TensorDesc& x = *v.in[0];
  const TensorDesc& w = *v.in[1];
  if (!expect_rank(&x, 4, "input", err) || !expect_rank(&w, 4, "weights", err)) return false;
  *g = ConvGeometry{};
  g->n = x.dims[0]; g->ih = x.dims[1]; g->iw = x.dims[2]; g->c = x.dims[3];
  g->o = w.dims[0]; g->kh = w.dims[1]; g->kw = w.dims[2]; g->cg = w.dims[3];
  g->sh = v.attr(kStrideH); g->sw = v.attr(kStrideW);
  g->pt = v.attr(kPadTop); g->pl = v.attr(kPadLeft);
  const int64_t pb = v.attr(kPadBottom), pr = v.attr(kPadRight);
  g->dh = v.attr(kDilationH); g->dw = v.attr(kDilationW);
  g->groups = v.attr(kGroups);
  if (g->sh < 1 || g->sw < 1) return fail(err, "stride must be >= 1");
  if (g->dh < 1 || g->dw < 1) return fail(err, "dilation must be >= 1");
  if (g->pt < 0 || g->pl < 0 || pb < 0 || pr < 0) return fail(err, "padding must be >= 0");
  if (g->pt >= g->kh * g->dh || pb >= g->kh * g->dh || g->pl >= g->kw * g->dw || pr >= g->kw * g->dw)
    return fail(err, "padding must be smaller than the dilated kernel");
  if (g->groups < 1 || g->c % g->groups != 0 || g->o % g->groups != 0)
    return fail(err, "groups must divide input and output channels");
  if (g->cg * g->groups != g->c)
    return fail(err, "weights have " + std::to_string(g->cg) + " input channels per group, input has " +
                         std::to_string(g->c) + " channels in " + std::to_string(g->groups) + " groups");
  g->og = g->o / g->groups;
  const int64_t eh = g->ih + g->pt + pb - g->dh * (g->kh - 1) - 1;
  const int64_t ew = g->iw + g->pl + pr - g->dw * (g->kw - 1) - 1;
  if (eh < 0 || ew < 0) return fail(err, "kernel larger than the padded input");
  g->oh = eh / g->sh + 1;
  g->ow = ew / g->sw + 1;
  if (g->oh > kMaxDimension || g->ow > kMaxDimension) return fail(err, "output larger than the dim limit");
  return true;
}

ConvGeometry geometry_of(const OpView& v) {
  ConvGeometry g{};
  if (is_dense(v)) return dense_geometry(*v.in[0], *v.in[1]);
  std::string ignored;
  conv_geometry(v, &g, &ignored);
  return g;
}

void set_output(InferredOutput* out, const ConvGeometry& g, bool dense, DType dtype) {
  out->dtype = dtype;
  if (dense) {
    out->rank = 2;
    out->dims[0] = static_cast<int32_t>(g.n);
    out->dims[1] = static_cast<int32_t>(g.o);
  } else {
    out->rank = 4;
    out->dims[0] = static_cast<int32_t>(g.n);
    out->dims[1] = static_cast<int32_t>(g.oh);
    out->dims[2] = static_cast<int32_t>(g.ow);
    out->dims[3] = static_cast<int32_t>(g.o);
  }
}

bool check_vector(const TensorDesc* t, DType dtype, int64_t length, const char* role, std::string* err) {
  if (!expect_dtype(t, dtype, role, err) || !expect_rank(t, 1, role, err)) return false;
  if (t->dims[0] != length)
    return fail(err, std::string(role) + " has " + std::to_string(t->dims[0]) + " entries, expected " +
                         std::to_string(length));
  return true;
}

Activation activation_of(const OpView& v) {
  return static_cast<Activation>(v.attr(v.op->type == OpType::kDense ? 0 : kActivation));
}

bool check_activation(const OpView& v, std::string* err) {
  const int32_t act = static_cast<int32_t>(activation_of(v));
  if (act < 0 || act > static_cast<int32_t>(Activation::kLeakyRelu)) return fail(err, "unknown activation");
  return true;
}

// Points rows[t * pixels + m] at tap t of output pixel (n, oy, ox0 + m)'s receptive field in the
// input (elements of T, pixel_stride per input pixel, the group's channels from channel_offset), or
// at `zeros` where the tap falls into the padding.
template <typename T>
void point_rows(const ConvGeometry& g, const T* x, size_t pixel_stride, size_t channel_offset, int64_t n, int64_t oy,
                int64_t ox0, size_t pixels, const T* zeros, const T** rows) {
  const int64_t count = static_cast<int64_t>(pixels);
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const T** tap_rows = rows + static_cast<size_t>(ky * g.kw + kx) * pixels;
      // Pixels [lo, hi) of the block read inside the input: ix = ix0 + m * sw in [0, iw).
      const int64_t ix0 = ox0 * g.sw - g.pl + kx * g.dw;
      int64_t lo = 0, hi = 0;
      if (iy >= 0 && iy < g.ih) {
        lo = std::min(count, ix0 >= 0 ? 0 : (-ix0 + g.sw - 1) / g.sw);
        hi = std::max(lo, std::min(count, ix0 >= g.iw ? 0 : (g.iw - ix0 + g.sw - 1) / g.sw));
      }
      for (int64_t m = 0; m < lo; ++m) tap_rows[m] = zeros;
      if (lo < hi) {
        const T* p = x + channel_offset + static_cast<size_t>((n * g.ih + iy) * g.iw + ix0 + lo * g.sw) * pixel_stride;
        for (int64_t m = lo; m < hi; ++m, p += static_cast<size_t>(g.sw) * pixel_stride) tap_rows[m] = p;
      }
      for (int64_t m = hi; m < count; ++m) tap_rows[m] = zeros;
    }
  }
}

// ---- float ----

bool infer_float_common(const OpView& v, const ConvGeometry& g, bool dense, InferredOutput* out, std::string* err) {
  if (!expect_dtype(v.in[0], DType::kF32, "input", err) || !expect_dtype(v.in[1], DType::kF32, "weights", err))
    return false;
  if (v.in[2] && !check_vector(v.in[2], DType::kF32, g.o, "bias", err)) return false;
  if (!check_activation(v, err)) return false;
  set_output(out, g, dense, DType::kF32);
  return true;
}

// Conv2D and Dense (a conv whose kernel covers the input) run as a float GEMM over output channels
// (kernels().float_gemm) on weights packed at load: prepared = every group's packed weights.
// Scratch: the indirection rows and a zero tap.
size_t float_conv_k(const ConvGeometry& g) { return static_cast<size_t>(g.kh * g.kw * g.cg); }
size_t float_conv_group_floats(const ConvGeometry& g) {
  return packed_float_weight_count(static_cast<size_t>(g.og), float_conv_k(g), kernels().float_lanes);
}

size_t conv2d_prepared_bytes(const OpView& v) {
  const ConvGeometry g = geometry_of(v);
  return static_cast<size_t>(g.groups) * float_conv_group_floats(g) * sizeof(float);
}

void prepare_conv2d(const OpView& v, void* prepared) {
  const ConvGeometry g = geometry_of(v);
  const float* w = reinterpret_cast<const float*>(v.in[1]->data);
  float* packed = static_cast<float*>(prepared);
  const size_t k = float_conv_k(g), og = static_cast<size_t>(g.og);
  for (int64_t group = 0; group < g.groups; ++group)
    pack_float_weights(w + static_cast<size_t>(group) * og * k, og, k, kernels().float_lanes,
                       packed + static_cast<size_t>(group) * float_conv_group_floats(g));
}

size_t conv2d_scratch(const OpView& v) {
  const ConvGeometry g = geometry_of(v);
  return kMaxGemmPixels * static_cast<size_t>(g.kh * g.kw) * sizeof(float*) + static_cast<size_t>(g.cg) * sizeof(float);
}

void run_conv2d(const OpRun& r, size_t begin, size_t end, const WorkerScratch& scratch) {
  const ConvGeometry g = geometry_of(r.view);
  const float* x = r.input<float>(0);
  const float* bias = r.input<float>(2);
  float* y = r.output<float>();
  const float* packed = static_cast<const float*>(r.prepared);
  const float** rows = static_cast<const float**>(scratch.data);
  float* zeros = reinterpret_cast<float*>(rows + kMaxGemmPixels * static_cast<size_t>(g.kh * g.kw));
  std::fill(zeros, zeros + g.cg, 0.0f);
  const KernelTable& k = kernels();
  const FloatRows a{rows, static_cast<size_t>(g.kh * g.kw), static_cast<size_t>(g.cg)};
  const Activation act = activation_of(r.view);
  for (size_t row = begin; row < end; ++row) {
    const int64_t n = static_cast<int64_t>(row) / g.oh, oy = static_cast<int64_t>(row) % g.oh;
    const size_t row_pixel = static_cast<size_t>((n * g.oh + oy) * g.ow);
    const int64_t block = static_cast<int64_t>(gemm_pixel_block(static_cast<size_t>(g.ow)));
    for (int64_t ox0 = 0; ox0 < g.ow; ox0 += block) {
      const size_t pixels = static_cast<size_t>(std::min<int64_t>(block, g.ow - ox0));
      for (int64_t group = 0; group < g.groups; ++group) {
        const size_t o0 = static_cast<size_t>(group * g.og);
        point_rows(g, x, static_cast<size_t>(g.c), static_cast<size_t>(group * g.cg), n, oy, ox0, pixels,
                   static_cast<const float*>(zeros), rows);
        const FloatEpilogue e{bias ? bias + o0 : nullptr, act, r.view.fattr(0)};
        k.float_gemm(a, pixels, packed + static_cast<size_t>(group) * float_conv_group_floats(g), static_cast<size_t>(g.og),
                     e, y + (row_pixel + static_cast<size_t>(ox0)) * static_cast<size_t>(g.o) + o0, static_cast<size_t>(g.o));
      }
    }
  }
}

size_t conv_rows(const OpView& v) {
  const ConvGeometry g = geometry_of(v);
  return static_cast<size_t>(g.n * g.oh);
}

// ---- quantized ----

bool infer_quantized_common(const OpView& v, const ConvGeometry& g, bool dense, InferredOutput* out, std::string* err) {
  const TensorDesc& x = *v.in[0];
  const TensorDesc& w = *v.in[1];
  if (!expect_dtype(&x, DType::kCodes, "input", err) || !expect_dtype(&w, DType::kCodes, "weights", err))
    return false;
  if (x.quant.kind == QuantKind::kBinary)
    return fail(err, "binary (+-1) activations cannot be zero-padded; use signed narrow 2-bit codes");
  if (w.layout != Layout::kKernelPlanes || !w.is_constant())
    return fail(err, "weights must be a constant in kernel-planes layout");
  // The accumulator is int32: bound the worst case instead of fixing a 16-bit style channel limit.
  const int64_t bound = g.kh * g.kw * g.cg * x.quant.max_abs_code() * w.quant.max_abs_code();
  // Strictly below INT32_MAX, so INT32_MIN / INT32_MAX can stand for always / never passed thresholds.
  if (bound >= INT32_MAX) return fail(err, "accumulator bound " + std::to_string(bound) + " exceeds int32");
  const TensorDesc* p1 = v.in[2];
  const TensorDesc& y = *v.out[0];
  if (p1 == nullptr) return fail(err, "missing thresholds or output scale");
  if (y.dtype == DType::kCodes) {
    if (v.in[3]) return fail(err, "code output takes a threshold table only");
    const int32_t levels = y.quant.threshold_count();
    if (!expect_dtype(p1, DType::kI32, "thresholds", err) || !expect_rank(p1, 2, "thresholds", err)) return false;
    if (!p1->is_constant()) return fail(err, "thresholds must be a constant");
    if (p1->dims[0] != g.o || p1->dims[1] != levels + 1)
      return fail(err, "threshold table is " + p1->shape_string() + ", expected [" + std::to_string(g.o) + ", " +
                           std::to_string(levels + 1) + "]");
    const int32_t* table = reinterpret_cast<const int32_t*>(p1->data);
    for (int64_t o = 0; o < g.o; ++o) {
      const int32_t* t = table + o * (levels + 1);
      const int32_t dir = t[0];
      if (dir == kThresholdConstant) {
        if (t[1] < 0 || t[1] > levels) return fail(err, "constant channel " + std::to_string(o) + " level out of range");
        continue;
      }
      if (dir != kThresholdIncreasing && dir != kThresholdDecreasing)
        return fail(err, "channel " + std::to_string(o) + " has threshold direction " + std::to_string(dir));
      for (int32_t i = 1; i < levels; ++i)
        if ((dir == kThresholdIncreasing && t[i + 1] < t[i]) || (dir == kThresholdDecreasing && t[i + 1] > t[i]))
          return fail(err, "thresholds of channel " + std::to_string(o) + " are not monotonic");
    }
    set_output(out, g, dense, DType::kCodes);
  } else {
    if (!check_vector(p1, DType::kF32, g.o, "output scale", err)) return false;
    if (v.in[3] && !check_vector(v.in[3], DType::kF32, g.o, "output bias", err)) return false;
    set_output(out, g, dense, DType::kF32);
  }
  return true;
}

// Dense geometry after checking that the weights fit the input: float [O, features], quantized
// [O, H, W, C] covering the input's trailing dims.
bool checked_dense_geometry(const OpView& v, ConvGeometry* g, std::string* err) {
  const TensorDesc& x = *v.in[0];
  const TensorDesc& w = *v.in[1];
  if (x.rank < 2) return fail(err, "input must have a batch dimension and features");
  if (!expect_rank(&w, is_quantized(v) ? 4 : 2, "weights", err)) return false;
  *g = dense_geometry(x, w);
  if (is_quantized(v)) {
    if (w.dims[1] != g->kh || w.dims[2] != g->kw || w.dims[3] != g->c)
      return fail(err, "weights " + w.shape_string() + " do not cover input " + x.shape_string());
    return true;
  }
  const uint64_t features = x.element_count() / static_cast<uint64_t>(x.dims[0]);
  if (static_cast<uint64_t>(w.dims[1]) != features)
    return fail(err, "weights expect " + std::to_string(w.dims[1]) + " features, input has " + std::to_string(features));
  return true;
}

// Shape inference for all four ops of the family.
bool infer_conv_family(const OpView& v, InferredOutput* out, std::string* err) {
  ConvGeometry g;
  const bool dense = is_dense(v);
  if (!(dense ? checked_dense_geometry(v, &g, err) : conv_geometry(v, &g, err))) return false;
  return is_quantized(v) ? infer_quantized_common(v, g, dense, out, err) : infer_float_common(v, g, dense, out, err);
}

struct QuantizedLayer {
  ConvGeometry g;
  BitserialShape shape;
  size_t taps;           // kh * kw
  size_t tap_words;      // words of one kernel tap (one group's channels)
  // Whether the receptive field is read in place: every group's channels start at a word boundary.
  // Otherwise each pixel's patch is gathered (bit-shifted) into scratch first.
  bool direct;
  size_t packed_group_words;  // one group's weights as the kernel table packs them
  int levels;                 // thresholds per channel for a code output, else 0
  bool activation_sums;  // the gemm takes PatchRows::activation_sums (gemm_takes_activation_sums)
  // The gemm keeps state from one call to the next (PatchRows::carry): the nibble-table gemm's
  // tables of the input rows the next output row reads again (direct reads only).
  bool gemm_carry;
};

QuantizedLayer quantized_layer(const OpView& v) {
  QuantizedLayer q;
  q.g = geometry_of(v);
  q.taps = static_cast<size_t>(q.g.kh * q.g.kw);
  q.tap_words = words_for(static_cast<size_t>(q.g.cg));
  q.shape = BitserialShape::make(q.taps * q.tap_words, v.in[0]->quant, v.in[1]->quant);
  q.direct = q.g.groups == 1 || q.g.cg % static_cast<int64_t>(kWordBits) == 0;
  q.packed_group_words = packed_weight_words(kernels().weights, q.shape, static_cast<size_t>(q.g.og));
  q.levels = v.out[0]->dtype == DType::kCodes ? v.out[0]->quant.threshold_count() : 0;
  q.activation_sums = gemm_takes_activation_sums(kernels().weights, q.shape);
  q.gemm_carry = q.direct && nibble_layout(kernels().weights, q.shape);
  return q;
}

// Per-input-pixel activation sums (PatchRows::activation_sums) of the input rows a worker read
// last, kept while its calls continue one another within a run: consecutive output rows share
// kh - 1 input rows, so each is counted once, not kh times. Direct-mapped: slot r % slots holds
// every group's sums of global input row tag = n * ih + iy; kh * dh slots cover the rows one output
// row reads without two of them sharing a slot.
struct RowSumCache {
  int32_t* tags;  // [slot][group], -1: empty
  int32_t* rows;  // [slot][group][iw]
  static size_t slots(const QuantizedLayer& q) { return static_cast<size_t>(q.g.kh * q.g.dh); }
  static size_t words(const QuantizedLayer& q) {
    return slots(q) * static_cast<size_t>(q.g.groups) * (1 + static_cast<size_t>(q.g.iw));
  }
  // reset: the worker's previous call did not end where this one begins, so nothing cached may be
  // trusted (false also where the layer keeps no sums: its scratch has no room for them).
  RowSumCache(const QuantizedLayer& q, int32_t* base, bool reset)
      : tags(base), rows(base + slots(q) * static_cast<size_t>(q.g.groups)) {
    if (reset) std::fill(tags, rows, -1);
  }
  // Input row iy of image n, the group's channels: one sum per input pixel.
  const int32_t* row(const QuantizedLayer& q, const TensorDesc& x, const uint32_t* xd, int64_t n, int64_t iy,
                     int64_t group) {
    const ConvGeometry& g = q.g;
    const int64_t global_row = n * g.ih + iy;
    const size_t entry = static_cast<size_t>(global_row) % slots(q) * static_cast<size_t>(g.groups) + static_cast<size_t>(group);
    int32_t* sums = rows + entry * static_cast<size_t>(g.iw);
    if (tags[entry] != global_row) {
      const PixelPlanes in = x.pixel_planes();
      std::fill(sums, sums + g.iw, 0);
      kernels().pixel_code_sums(q.shape, xd + in.plane_offset(static_cast<size_t>(global_row * g.iw), 0) +
                                             static_cast<size_t>(group) * q.tap_words,
                                static_cast<size_t>(g.iw), in.words_per_pixel(), in.words_per_plane(), q.tap_words, sums);
      tags[entry] = static_cast<int32_t>(global_row);
    }
    return sums;
  }
};

// One worker's scratch: what the gemm carries from one call to the next (tables that take it; at
// the start, 64-byte aligned like the whole), the indirection rows, a zero tap for the padding
// (direct) or the gathered patches (otherwise), the accumulators of one pixel block, and for
// binary weights the activation sums (direct: the output row's per group, then the column sums
// over the kh input rows it reads; otherwise one pixel block's).
struct QuantizedScratch {
  size_t carry_bytes, row_count, zero_words, patch_words, acc_words, sum_words;

  QuantizedScratch(const QuantizedLayer& q, const TensorDesc& x)
      : carry_bytes(q.gemm_carry ? sizeof(GemmCarry) : 0),
        row_count(kMaxGemmPixels * (q.direct ? q.taps : 1)),
        zero_words(q.direct ? static_cast<size_t>(q.shape.a_bits - 1) * x.pixel_planes().words_per_plane() + q.tap_words : 0),
        patch_words(q.direct ? 0 : kMaxGemmPixels * static_cast<size_t>(q.shape.a_bits) * q.shape.words),
        acc_words(q.levels ? 0 : kMaxGemmPixels * static_cast<size_t>(q.g.og)),  // codes leave the gemm packed
        sum_words(!q.activation_sums ? 0
                  : q.direct       ? static_cast<size_t>(q.g.groups * q.g.ow + q.g.iw + 1) +
                                   RowSumCache::words(q)
                                   : kMaxGemmPixels) {}
  size_t bytes() const {
    return carry_bytes + row_count * sizeof(uint32_t*) + (zero_words + patch_words + acc_words + sum_words) * 4;
  }
  // The previous call's carry if this call continues it, else an empty one.
  GemmCarry* carry(const WorkerScratch& s) const {
    if (!carry_bytes) return nullptr;
    return s.continues ? static_cast<GemmCarry*>(s.data) : new (s.data) GemmCarry;
  }
  const uint32_t** rows(void* base) const {
    return reinterpret_cast<const uint32_t**>(static_cast<uint8_t*>(base) + carry_bytes);
  }
  uint32_t* zeros(void* base) const {
    return reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(base) + carry_bytes + row_count * sizeof(uint32_t*));
  }
  uint32_t* patches(void* base) const { return zeros(base) + zero_words; }
  int32_t* acc(void* base) const { return reinterpret_cast<int32_t*>(patches(base) + patch_words); }
  int32_t* sums(void* base) const { return acc(base) + acc_words; }
};

size_t quantized_scratch(const OpView& v) { return QuantizedScratch(quantized_layer(v), *v.in[0]).bytes(); }

// Prepared constants: every group's packed weights, then (code output) the thresholds in the
// kernels' form: sign [O], thresholds [levels][O].
size_t quantized_prepared_bytes(const OpView& v) {
  const QuantizedLayer q = quantized_layer(v);
  const size_t thresholds = q.levels ? static_cast<size_t>(q.g.o) * (1 + static_cast<size_t>(q.levels)) : 0;
  return (static_cast<size_t>(q.g.groups) * q.packed_group_words + thresholds) * 4;
}

// Rewrites the file's threshold table [O, 1 + levels] into the kernels' uniform form.
ThresholdArgs threshold_args(const TensorDesc& y, size_t channels, const int32_t* sign) {
  const int32_t offset = y.quant.kind == QuantKind::kBinary || y.quant.kind == QuantKind::kUnsigned ? 0 : y.quant.min_code();
  return ThresholdArgs{sign, sign + channels, channels, y.quant.threshold_count(), offset, y.quant.bits};
}

void prepare_thresholds(const int32_t* table, size_t channels, int levels, int32_t* sign, int32_t* thresholds) {
  for (size_t o = 0; o < channels; ++o) {
    const int32_t* t = table + o * static_cast<size_t>(levels + 1);
    sign[o] = t[0] == kThresholdDecreasing ? -1 : 1;
    for (int k = 0; k < levels; ++k) {
      int32_t u;
      if (t[0] == kThresholdConstant) u = k < t[1] ? INT32_MIN : INT32_MAX;  // |acc| < INT32_MAX
      else if (t[0] == kThresholdDecreasing) u = t[1 + k] == INT32_MIN ? INT32_MAX : -t[1 + k];
      else u = t[1 + k];
      thresholds[static_cast<size_t>(k) * channels + o] = u;
    }
  }
}

void prepare_quantized(const OpView& v, void* prepared) {
  const QuantizedLayer q = quantized_layer(v);
  const uint32_t* weights = reinterpret_cast<const uint32_t*>(v.in[1]->data);
  uint32_t* packed = static_cast<uint32_t*>(prepared);
  const size_t group_weight_words = static_cast<size_t>(q.g.og) * q.shape.words * static_cast<size_t>(q.shape.w_bits);
  for (int64_t group = 0; group < q.g.groups; ++group)
    pack_weights(kernels().weights, q.shape, weights + static_cast<size_t>(group) * group_weight_words,
                 static_cast<size_t>(q.g.og), packed + static_cast<size_t>(group) * q.packed_group_words);
  if (q.levels) {
    int32_t* sign = reinterpret_cast<int32_t*>(packed + static_cast<size_t>(q.g.groups) * q.packed_group_words);
    prepare_thresholds(reinterpret_cast<const int32_t*>(v.in[2]->data), static_cast<size_t>(q.g.o), q.levels, sign,
                       sign + q.g.o);
  }
}

// Gathers one group's receptive field into patch [a_bits][kh][kw][tap_words]; padding stays zero.
void gather_patch(const QuantizedLayer& q, const TensorDesc& x, const uint32_t* xd, int64_t n, int64_t oy, int64_t ox,
                  int64_t group, uint32_t* patch) {
  const ConvGeometry& g = q.g;
  const PixelPlanes in = x.pixel_planes();
  std::memset(patch, 0, q.shape.words * static_cast<size_t>(q.shape.a_bits) * 4);
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
    if (iy < 0 || iy >= g.ih) continue;
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t ix = ox * g.sw - g.pl + kx * g.dw;
      if (ix < 0 || ix >= g.iw) continue;
      const size_t pixel = static_cast<size_t>((n * g.ih + iy) * g.iw + ix);
      const size_t tap = static_cast<size_t>(ky * g.kw + kx) * q.tap_words;
      for (int p = 0; p < q.shape.a_bits; ++p)
        copy_bits(xd + in.plane_offset(pixel, p), static_cast<size_t>(group * g.cg), patch + p * q.shape.words + tap, 0,
                  static_cast<size_t>(g.cg));
    }
  }
}

// PatchRows::activation_sums of output row (n, oy), a group's channels read in place: column sums
// over the kh input rows it reads (each input pixel counted once, RowSumCache), then every output
// pixel adds up its kw columns (padding counts 0). On a 3x3 stride-1 layer that counts 9x fewer
// words than the gemm counting per tap, and a layer with several channel blocks as many times
// fewer again (the gemm counted per block).
void row_activation_sums(const QuantizedLayer& q, const TensorDesc& x, const uint32_t* xd, int64_t n, int64_t oy,
                         int64_t group, RowSumCache& cache, int32_t* column_sums, int32_t* sums) {
  const ConvGeometry& g = q.g;
  // column_sums[i + 1] = the sum of columns 0..i (column_sums[0] = 0): a run of taps is a difference.
  std::fill(column_sums, column_sums + g.iw + 1, 0);
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
    if (iy < 0 || iy >= g.ih) continue;
    const int32_t* row = cache.row(q, x, xd, n, iy, group);
    for (int64_t ix = 0; ix < g.iw; ++ix) column_sums[ix + 1] += row[ix];
  }
  for (int64_t ix = 0; ix < g.iw; ++ix) column_sums[ix + 1] += column_sums[ix];
  for (int64_t ox = 0; ox < g.ow; ++ox) {
    const int64_t first = ox * g.sw - g.pl;
    if (g.dw == 1) {
      const int64_t lo = std::max<int64_t>(first, 0), hi = std::min<int64_t>(first + g.kw, g.iw);
      sums[ox] = hi > lo ? column_sums[hi] - column_sums[lo] : 0;
      continue;
    }
    int32_t sum = 0;
    for (int64_t kx = 0, ix = first; kx < g.kw; ++kx, ix += g.dw)
      if (ix >= 0 && ix < g.iw) sum += column_sums[ix + 1] - column_sums[ix];
    sums[ox] = sum;
  }
}

void run_quantized(const OpRun& r, size_t begin, size_t end, const WorkerScratch& scratch) {
  const QuantizedLayer q = quantized_layer(r.view);
  const ConvGeometry& g = q.g;
  const TensorDesc& x = *r.view.in[0];
  const TensorDesc& y = *r.view.out[0];
  const uint32_t* xd = r.input<uint32_t>(0);
  const uint32_t* packed = static_cast<const uint32_t*>(r.prepared);
  const QuantizedScratch layout(q, x);
  const uint32_t** rows = layout.rows(scratch.data);
  uint32_t* zeros = layout.zeros(scratch.data);
  uint32_t* patches = layout.patches(scratch.data);
  int32_t* acc = layout.acc(scratch.data);
  int32_t* sums = layout.sums(scratch.data);                       // q.activation_sums only
  int32_t* column_sums = sums + static_cast<size_t>(g.groups * g.ow);  // direct only
  RowSumCache row_sums(q, column_sums + g.iw + 1, q.activation_sums && q.direct && !scratch.continues);
  const KernelTable& k = kernels();
  const size_t out_pixel_words = q.levels ? y.pixel_planes().words_per_pixel() : static_cast<size_t>(g.o);
  const ThresholdArgs thresholds =
      q.levels ? threshold_args(y, static_cast<size_t>(g.o),
                                reinterpret_cast<const int32_t*>(packed + static_cast<size_t>(g.groups) * q.packed_group_words))
               : ThresholdArgs{};
  const size_t patch_words = static_cast<size_t>(q.shape.a_bits) * q.shape.words;
  // The carry lives for this worker's consecutive rows of this run: the input does not change in between.
  PatchRows a = q.direct ? PatchRows{rows, q.taps, q.tap_words, x.pixel_planes().words_per_plane(), layout.carry(scratch)}
                         : PatchRows{rows, 1, q.shape.words, q.shape.words};
  if (q.direct)  // the kernels read a padding tap's plane p at zeros + p * plane_stride; only those words
    for (int p = 0; p < q.shape.a_bits; ++p) std::memset(zeros + static_cast<size_t>(p) * a.plane_stride, 0, q.tap_words * 4);

  for (size_t row = begin; row < end; ++row) {
    const int64_t n = static_cast<int64_t>(row) / g.oh, oy = static_cast<int64_t>(row) % g.oh;
    const size_t row_pixel = static_cast<size_t>((n * g.oh + oy) * g.ow);
    if (q.levels) std::memset(r.output<uint32_t>() + row_pixel * out_pixel_words, 0, static_cast<size_t>(g.ow) * out_pixel_words * 4);
    if (q.activation_sums && q.direct)
      for (int64_t group = 0; group < g.groups; ++group)
        row_activation_sums(q, x, xd, n, oy, group, row_sums, column_sums, sums + static_cast<size_t>(group * g.ow));
    // A block of neighbouring output pixels goes through the gemm together so they share weight loads.
    const int64_t block = static_cast<int64_t>(gemm_pixel_block(static_cast<size_t>(g.ow)));
    for (int64_t ox0 = 0; ox0 < g.ow; ox0 += block) {
      const size_t pixels = static_cast<size_t>(std::min<int64_t>(block, g.ow - ox0));
      for (int64_t group = 0; group < g.groups; ++group) {
        if (q.direct) {
          point_rows(g, xd, x.pixel_planes().words_per_pixel(), static_cast<size_t>(group) * q.tap_words, n, oy, ox0,
                     pixels, zeros, rows);
          if (q.activation_sums) a.activation_sums = sums + static_cast<size_t>(group * g.ow + ox0);
        } else {
          for (size_t m = 0; m < pixels; ++m) {
            gather_patch(q, x, xd, n, oy, ox0 + static_cast<int64_t>(m), group, patches + m * patch_words);
            rows[m] = patches + m * patch_words;
          }
          if (q.activation_sums) {
            std::fill(sums, sums + pixels, 0);
            k.pixel_code_sums(q.shape, patches, pixels, patch_words, q.shape.words, q.shape.words, sums);
            a.activation_sums = sums;
          }
        }
        const int64_t o0 = group * g.og;
        const uint32_t* group_weights = packed + static_cast<size_t>(group) * q.packed_group_words;
        const size_t block_pixel = row_pixel + static_cast<size_t>(ox0);
        if (q.levels) {
          const GemmOutput codes{nullptr, &thresholds, static_cast<size_t>(o0),
                                 r.output<uint32_t>() + block_pixel * out_pixel_words, out_pixel_words,
                                 y.pixel_planes().words_per_plane()};
          k.bitserial_gemm(q.shape, a, pixels, group_weights, static_cast<size_t>(g.og), codes);
          continue;
        }
        k.bitserial_gemm(q.shape, a, pixels, group_weights, static_cast<size_t>(g.og), GemmOutput{acc, nullptr, 0, nullptr, 0, 0});
        const float* scale = r.input<float>(2);
        const float* bias = r.input<float>(3);
        for (size_t m = 0; m < pixels; ++m) {
          const int32_t* pixel_acc = acc + m * static_cast<size_t>(g.og);
          float* out = r.output<float>() + (block_pixel + m) * out_pixel_words;
          for (int64_t i = 0; i < g.og; ++i)
            out[o0 + i] = scale[o0 + i] * static_cast<float>(pixel_acc[i]) + (bias ? bias[o0 + i] : 0.0f);
        }
      }
    }
  }
}

}  // namespace

const OpTraits kConv2DTraits{"Conv2D", 2, 3, kConvAttrCount, 1, infer_conv_family, conv2d_scratch, conv_rows, run_conv2d,
                             conv2d_prepared_bytes, prepare_conv2d};
const OpTraits kDenseTraits{"Dense", 2, 3, 1, 1, infer_conv_family, conv2d_scratch, conv_rows, run_conv2d,
                            conv2d_prepared_bytes, prepare_conv2d};
const OpTraits kQConv2DTraits{"QConv2D", 3, 4, kActivation, 0, infer_conv_family, quantized_scratch, conv_rows,
                              run_quantized, quantized_prepared_bytes, prepare_quantized};
const OpTraits kQDenseTraits{"QDense", 3, 4, 0, 0, infer_conv_family, quantized_scratch, conv_rows, run_quantized,
                             quantized_prepared_bytes, prepare_quantized};

}  // namespace lowbit
