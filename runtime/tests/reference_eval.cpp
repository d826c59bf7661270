// The reference interpreter: every op written plainly from its semantics (see reference_eval.h).
#include "reference_eval.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "lowbit/model_builder.h"
#include "lowbit/packing.h"

namespace lowbit_test {

using lowbit::DType;
using lowbit::GraphDesc;
using lowbit::Layout;
using lowbit::OpDesc;
using lowbit::OpType;
using lowbit::QuantKind;
using lowbit::QuantType;
using lowbit::TensorDesc;

size_t RefTensor::size() const {
  size_t n = 1;
  for (int32_t d : dims) n *= static_cast<size_t>(d);
  return n;
}

std::string RefTensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  s += "]";
  if (is_codes) {
    static const char* kinds[] = {"u", "s", "sn", "bin"};
    s += " codes " + std::string(kinds[static_cast<int>(quant.kind)]) + std::to_string(quant.bits) +
         " scale " + std::to_string(scale);
  }
  return s;
}

RefTensor RefTensor::floats(std::vector<int32_t> dims, const std::vector<float>& values) {
  RefTensor t;
  t.dims = std::move(dims);
  t.values.assign(values.begin(), values.end());
  if (t.values.size() != t.size()) throw std::runtime_error("RefTensor::floats: value count does not match shape");
  return t;
}

RefTensor RefTensor::codes(std::vector<int32_t> dims, QuantType quant, float scale, const std::vector<int32_t>& codes) {
  RefTensor t;
  t.dims = std::move(dims);
  t.values.assign(codes.begin(), codes.end());
  t.is_codes = true;
  t.quant = quant;
  t.scale = scale;
  if (t.values.size() != t.size()) throw std::runtime_error("RefTensor::codes: code count does not match shape");
  return t;
}

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error("reference_evaluate: " + msg); }

std::vector<int32_t> dims_of(const TensorDesc& t) { return std::vector<int32_t>(t.dims, t.dims + t.rank); }

// An empty tensor shaped and typed like the graph's declaration of `t`.
RefTensor like(const TensorDesc& t) {
  RefTensor r;
  r.dims = dims_of(t);
  r.is_codes = t.dtype == DType::kCodes;
  r.quant = t.quant;
  r.scale = t.scale;
  r.values.assign(r.size(), 0.0);
  return r;
}

int64_t as_int(double v) { return static_cast<int64_t>(v); }

// ---- constants ----

RefTensor load_constant(const TensorDesc& t) {
  RefTensor r = like(t);
  const size_t n = r.size();
  switch (t.dtype) {
    case DType::kF32: {
      if (t.data_size < n * 4) fail("constant '" + t.name + "' is too short");
      for (size_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, t.data + 4 * i, 4);
        r.values[i] = f;
      }
      break;
    }
    case DType::kI32: {
      if (t.data_size < n * 4) fail("constant '" + t.name + "' is too short");
      for (size_t i = 0; i < n; ++i) {
        int32_t v;
        std::memcpy(&v, t.data + 4 * i, 4);
        r.values[i] = v;
      }
      break;
    }
    case DType::kCodes: {
      // Copy into aligned words first (the constant's bytes need not be 4-aligned in a test graph).
      std::vector<uint32_t> words((t.data_size + 3) / 4, 0);
      std::memcpy(words.data(), t.data, t.data_size);
      if (t.layout == Layout::kKernelPlanes) {
        if (t.rank != 4) fail("kernel-planes constant '" + t.name + "' is not rank 4");
        const lowbit::KernelPlanes kp{static_cast<size_t>(t.dims[1]), static_cast<size_t>(t.dims[2]),
                                      static_cast<size_t>(t.dims[3]), t.quant.bits};
        if (words.size() < static_cast<size_t>(t.dims[0]) * kp.words_per_output())
          fail("kernel-planes constant '" + t.name + "' is too short");
        const size_t taps = kp.kh * kp.kw;
        for (size_t o = 0; o < static_cast<size_t>(t.dims[0]); ++o)
          for (size_t tap = 0; tap < taps; ++tap)
            for (size_t c = 0; c < kp.cg; ++c)
              r.values[(o * taps + tap) * kp.cg + c] = lowbit::read_code(
                  words.data() + kp.plane_offset(o, 0) + tap * kp.words_per_tap(), kp.words_per_plane(), c, t.quant);
      } else {
        const size_t channels = static_cast<size_t>(t.last_dim());
        const lowbit::PixelPlanes pp{channels, t.quant.bits};
        const size_t pixels = n / channels;
        if (words.size() < pixels * pp.words_per_pixel()) fail("codes constant '" + t.name + "' is too short");
        for (size_t p = 0; p < pixels; ++p)
          for (size_t c = 0; c < channels; ++c)
            r.values[p * channels + c] =
                lowbit::read_code(words.data() + pp.plane_offset(p, 0), pp.words_per_plane(), c, t.quant);
      }
      break;
    }
  }
  return r;
}

// ---- conv family ----

struct Conv {
  int64_t n, ih, iw, c, o, kh, kw, cg, oh, ow, sh, sw, pt, pl, dh, dw, groups;
};

Conv conv_params(const OpDesc& op, const RefTensor& x, const RefTensor& w) {
  if (x.dims.size() != 4 || w.dims.size() != 4) fail("conv needs rank-4 input and weights");
  if (op.ints.size() < 9) fail("conv has too few attributes");
  Conv g{};
  g.n = x.dims[0]; g.ih = x.dims[1]; g.iw = x.dims[2]; g.c = x.dims[3];
  g.o = w.dims[0]; g.kh = w.dims[1]; g.kw = w.dims[2]; g.cg = w.dims[3];
  g.sh = op.ints[0]; g.sw = op.ints[1];
  g.pt = op.ints[2]; g.pl = op.ints[3];
  const int64_t pb = op.ints[4], pr = op.ints[5];
  g.dh = op.ints[6]; g.dw = op.ints[7];
  g.groups = op.ints[8];
  if (g.groups < 1 || g.c != g.cg * g.groups || g.o % g.groups) fail("conv groups do not fit the channels");
  g.oh = (g.ih + g.pt + pb - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.ow = (g.iw + g.pl + pr - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return g;
}

// sum over the receptive field of x * w for output (n, oy, ox, o); T = double or int64.
template <typename T>
T conv_sum(const Conv& g, const RefTensor& x, const RefTensor& w, int64_t n, int64_t oy, int64_t ox, int64_t o) {
  const int64_t group = o / (g.o / g.groups);
  T sum = 0;
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
    if (iy < 0 || iy >= g.ih) continue;  // zero padding (code 0)
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t ix = ox * g.sw - g.pl + kx * g.dw;
      if (ix < 0 || ix >= g.iw) continue;
      for (int64_t ci = 0; ci < g.cg; ++ci) {
        const double xv = x.values[static_cast<size_t>(((n * g.ih + iy) * g.iw + ix) * g.c + group * g.cg + ci)];
        const double wv = w.values[static_cast<size_t>(((o * g.kh + ky) * g.kw + kx) * g.cg + ci)];
        if constexpr (std::is_same<T, int64_t>::value)
          sum += static_cast<T>(as_int(xv) * as_int(wv));
        else
          sum += static_cast<T>(xv * wv);
      }
    }
  }
  return sum;
}

double activate(double y, int32_t act, double alpha) {
  switch (act) {
    case 0: return y;
    case 1: return y > 0 ? y : 0.0;
    case 2: return y > 0 ? y : alpha * y;
  }
  fail("unknown activation " + std::to_string(act));
}

// Output level of a threshold table row for an exact accumulator.
int64_t threshold_level(const RefTensor& table, int64_t o, int64_t acc) {
  const int64_t cols = table.dims[1];
  const double* t = &table.values[static_cast<size_t>(o * cols)];
  const int64_t dir = as_int(t[0]);
  int64_t level = 0;
  if (dir == 0) return as_int(t[1]);
  for (int64_t i = 1; i < cols; ++i) {
    const int64_t th = as_int(t[i]);
    if (dir == 1) level += acc >= th ? 1 : 0;
    else if (dir == -1) level += acc <= th ? 1 : 0;
    else fail("threshold direction " + std::to_string(dir));
  }
  return level;
}

// Finishes a quantized accumulator for output channel o into `y` at index i.
void quantized_output(const TensorDesc& yd, RefTensor& y, size_t i, int64_t o, int64_t acc, const RefTensor* p1,
                      const RefTensor* bias) {
  if (!p1) fail("quantized op without thresholds / scale");
  if (yd.dtype == DType::kCodes) {
    if (p1->dims.size() != 2 || p1->dims[1] != yd.quant.threshold_count() + 1) fail("threshold table shape");
    const int64_t level = threshold_level(*p1, o, acc);
    y.values[i] = yd.quant.level_to_code(static_cast<int32_t>(level));
  } else {
    y.values[i] = p1->values[static_cast<size_t>(o)] * static_cast<double>(acc) +
                  (bias ? bias->values[static_cast<size_t>(o)] : 0.0);
  }
}

RefTensor eval_conv(const OpDesc& op, const TensorDesc& yd, const RefTensor& x, const RefTensor& w,
                    const RefTensor* p2, const RefTensor* p3) {
  const bool quantized = op.type == OpType::kQConv2D;
  if (quantized != x.is_codes || quantized != w.is_codes) fail("conv input kinds do not match the op");
  const Conv g = conv_params(op, x, w);
  RefTensor y = like(yd);
  if (y.dims != std::vector<int32_t>{static_cast<int32_t>(g.n), static_cast<int32_t>(g.oh),
                                     static_cast<int32_t>(g.ow), static_cast<int32_t>(g.o)})
    fail("conv output declared " + y.shape_string() + " does not match the geometry");
  const int32_t act = quantized ? 0 : op.ints[9];
  const double alpha = quantized ? 0.0 : op.floats.at(0);
  size_t i = 0;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox)
        for (int64_t o = 0; o < g.o; ++o, ++i) {
          if (quantized) {
            quantized_output(yd, y, i, o, conv_sum<int64_t>(g, x, w, n, oy, ox, o), p2, p3);
          } else {
            const double b = p2 ? p2->values[static_cast<size_t>(o)] : 0.0;
            y.values[i] = activate(b + conv_sum<double>(g, x, w, n, oy, ox, o), act, alpha);
          }
        }
  return y;
}

// Dense: every sample's features (all dims after the batch, row-major) times weights [O, features];
// QDense weights are [O, KH, KW, C] in OHWI order, the same flattening as the input's.
RefTensor eval_dense(const OpDesc& op, const TensorDesc& yd, const RefTensor& x, const RefTensor& w,
                     const RefTensor* p2, const RefTensor* p3) {
  const bool quantized = op.type == OpType::kQDense;
  if (quantized != x.is_codes || quantized != w.is_codes) fail("dense input kinds do not match the op");
  const int64_t n = x.dims[0];
  const int64_t features = static_cast<int64_t>(x.size()) / n;
  const int64_t outs = w.dims[0];
  if (static_cast<int64_t>(w.size()) != outs * features) fail("dense weights do not cover the input");
  RefTensor y = like(yd);
  if (y.dims != std::vector<int32_t>{static_cast<int32_t>(n), static_cast<int32_t>(outs)})
    fail("dense output declared " + y.shape_string());
  const int32_t act = quantized ? 0 : op.ints.at(0);
  const double alpha = quantized ? 0.0 : op.floats.at(0);
  for (int64_t s = 0; s < n; ++s)
    for (int64_t o = 0; o < outs; ++o) {
      const size_t i = static_cast<size_t>(s * outs + o);
      const double* xs = &x.values[static_cast<size_t>(s * features)];
      const double* ws = &w.values[static_cast<size_t>(o * features)];
      if (quantized) {
        int64_t acc = 0;
        for (int64_t f = 0; f < features; ++f) acc += as_int(xs[f]) * as_int(ws[f]);
        quantized_output(yd, y, i, o, acc, p2, p3);
      } else {
        double sum = p2 ? p2->values[static_cast<size_t>(o)] : 0.0;
        for (int64_t f = 0; f < features; ++f) sum += xs[f] * ws[f];
        y.values[i] = activate(sum, act, alpha);
      }
    }
  return y;
}

// ---- pooling ----

RefTensor eval_pool(const OpDesc& op, const TensorDesc& yd, const RefTensor& x) {
  if (x.dims.size() != 4) fail("pool needs a rank-4 input");
  const bool is_max = op.type == OpType::kMaxPool;
  const int64_t n = x.dims[0], ih = x.dims[1], iw = x.dims[2], c = x.dims[3];
  const int64_t kh = op.ints[0], kw = op.ints[1], sh = op.ints[2], sw = op.ints[3];
  const int64_t pt = op.ints[4], pl = op.ints[5], pb = op.ints[6], pr = op.ints[7];
  const bool count_pad = op.ints[8] != 0;
  const int64_t oh = (ih + pt + pb - kh) / sh + 1, ow = (iw + pl + pr - kw) / sw + 1;
  RefTensor y = like(yd);
  if (y.dims != std::vector<int32_t>{static_cast<int32_t>(n), static_cast<int32_t>(oh), static_cast<int32_t>(ow),
                                     static_cast<int32_t>(c)})
    fail("pool output declared " + y.shape_string());
  if (y.is_codes != x.is_codes) fail("pool changes dtype");
  size_t i = 0;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t ch = 0; ch < c; ++ch, ++i) {
          double sum = 0, best = -std::numeric_limits<double>::infinity();
          int64_t count = 0;
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t iy = oy * sh - pt + ky, ix = ox * sw - pl + kx;
              if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) continue;
              const double v = x.values[static_cast<size_t>(((b * ih + iy) * iw + ix) * c + ch)];
              sum += v;  // exact for codes
              best = v > best ? v : best;
              ++count;
            }
          if (count == 0) fail("pool window without input");
          if (count_pad) count = kh * kw;
          if (is_max) {
            y.values[i] = best;
          } else if (x.is_codes) {
            // Mean rounded half up: floor((2*sum + count) / (2*count)), exact in integers.
            const int64_t num = 2 * as_int(sum) + count, den = 2 * count;
            int64_t q = num / den;
            if (num % den != 0 && num < 0) --q;
            y.values[i] = static_cast<double>(q);
          } else {
            y.values[i] = sum / static_cast<double>(count);
          }
        }
  return y;
}

RefTensor eval_global_avg_pool(const TensorDesc& yd, const RefTensor& x) {
  if (x.dims.size() != 4) fail("global pool needs a rank-4 input");
  const int64_t n = x.dims[0], area = static_cast<int64_t>(x.dims[1]) * x.dims[2], c = x.dims[3];
  RefTensor y = like(yd);
  if (y.is_codes) fail("global average pool outputs floats");
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      double sum = 0;
      for (int64_t p = 0; p < area; ++p) sum += x.values[static_cast<size_t>((b * area + p) * c + ch)];
      const double mean = sum / static_cast<double>(area);
      y.values[static_cast<size_t>(b * c + ch)] = x.is_codes ? static_cast<double>(x.scale) * mean : mean;
    }
  return y;
}

// ---- element-wise ----

void expect_float(const RefTensor& x, const char* op) {
  if (x.is_codes) fail(std::string(op) + " takes floats");
}

RefTensor eval_unary(const OpDesc& op, const TensorDesc& yd, const RefTensor& x) {
  expect_float(x, lowbit::op_name(op.type));
  RefTensor y = like(yd);
  if (y.dims != x.dims) fail("element-wise op changes the shape");
  const size_t c = x.dims.back();
  for (size_t row = 0; row < x.size() / c; ++row) {
    const double* in = &x.values[row * c];
    double* out = &y.values[row * c];
    switch (op.type) {
      case OpType::kRelu:
        for (size_t i = 0; i < c; ++i) out[i] = in[i] > 0 ? in[i] : 0.0;
        break;
      case OpType::kLeakyRelu: {
        const double alpha = op.floats.at(0);
        for (size_t i = 0; i < c; ++i) out[i] = in[i] > 0 ? in[i] : alpha * in[i];
        break;
      }
      case OpType::kSigmoid:
        for (size_t i = 0; i < c; ++i) out[i] = 1.0 / (1.0 + std::exp(-in[i]));
        break;
      case OpType::kSoftmax: {
        double mx = in[0];
        for (size_t i = 1; i < c; ++i) mx = in[i] > mx ? in[i] : mx;
        double sum = 0;
        for (size_t i = 0; i < c; ++i) sum += std::exp(in[i] - mx);
        for (size_t i = 0; i < c; ++i) out[i] = std::exp(in[i] - mx) / sum;
        break;
      }
      default: fail("not a unary op");
    }
  }
  return y;
}

RefTensor eval_affine(const TensorDesc& yd, const RefTensor& x, const RefTensor& scale, const RefTensor& bias) {
  expect_float(x, "Affine");
  RefTensor y = like(yd);
  const size_t c = x.dims.back();
  if (scale.size() != c || bias.size() != c) fail("affine parameters do not match the channels");
  for (size_t i = 0; i < x.size(); ++i) y.values[i] = x.values[i] * scale.values[i % c] + bias.values[i % c];
  return y;
}

// Dims right-aligned to rank 4, padded with 1s in front.
std::vector<int64_t> aligned4(const std::vector<int32_t>& dims) {
  std::vector<int64_t> d(4, 1);
  for (size_t i = 0; i < dims.size(); ++i) d[4 - dims.size() + i] = dims[i];
  return d;
}

RefTensor eval_binary(const OpDesc& op, const TensorDesc& yd, const RefTensor& a, const RefTensor& b) {
  expect_float(a, "Add/Mul");
  expect_float(b, "Add/Mul");
  const std::vector<int64_t> da = aligned4(a.dims), db = aligned4(b.dims);
  std::vector<int64_t> dy(4);
  for (int i = 0; i < 4; ++i) {
    if (da[i] != db[i] && da[i] != 1 && db[i] != 1) fail("shapes do not broadcast");
    dy[i] = std::max(da[i], db[i]);
  }
  RefTensor y = like(yd);
  if (aligned4(y.dims) != dy || y.dims.size() != std::max(a.dims.size(), b.dims.size()))
    fail("broadcast output declared " + y.shape_string());
  auto index = [](const std::vector<int64_t>& d, const int64_t* at) {
    int64_t i = 0;
    for (int k = 0; k < 4; ++k) i = i * d[k] + (d[k] == 1 ? 0 : at[k]);
    return static_cast<size_t>(i);
  };
  size_t i = 0;
  int64_t at[4];
  for (at[0] = 0; at[0] < dy[0]; ++at[0])
    for (at[1] = 0; at[1] < dy[1]; ++at[1])
      for (at[2] = 0; at[2] < dy[2]; ++at[2])
        for (at[3] = 0; at[3] < dy[3]; ++at[3], ++i) {
          const double va = a.values[index(da, at)], vb = b.values[index(db, at)];
          y.values[i] = op.type == OpType::kAdd ? va + vb : va * vb;
        }
  return y;
}

// Quantize: t = float(x) / scale in float32, clamp to the code range, round exactly.
int32_t quantize_one(double x, float scale, QuantType q, int32_t rounding) {
  const float xf = static_cast<float>(x);
  if (q.kind == QuantKind::kBinary) {
    const float t = std::isnan(xf) ? 0.0f : xf;  // NaN quantizes like zero
    return t >= 0.0f ? 1 : -1;
  }
  float t = xf / scale;
  if (std::isnan(t)) t = 0.0f;  // NaN quantizes like zero
  const float lo = static_cast<float>(q.min_code()), hi = static_cast<float>(q.max_code());
  if (t < lo) t = lo;
  if (t > hi) t = hi;
  const double d = t;  // exact
  const double down = std::floor(d);
  const double frac = d - down;  // exact: |d| < 16
  int64_t code;
  if (frac < 0.5) code = static_cast<int64_t>(down);
  else if (frac > 0.5) code = static_cast<int64_t>(down) + 1;
  else if (rounding == 0) code = static_cast<int64_t>(down) + 1;  // half up (towards +inf)
  else code = static_cast<int64_t>(down) + (static_cast<int64_t>(down) % 2 == 0 ? 0 : 1);  // half even
  return static_cast<int32_t>(code);
}

RefTensor eval_quantize(const OpDesc& op, const TensorDesc& yd, const RefTensor& x) {
  expect_float(x, "Quantize");
  const int32_t rounding = op.ints.at(0);
  if (rounding != 0 && rounding != 1) fail("unknown rounding");
  RefTensor y = like(yd);
  if (!y.is_codes || y.dims != x.dims) fail("quantize output declared " + y.shape_string());
  for (size_t i = 0; i < x.size(); ++i) y.values[i] = quantize_one(x.values[i], y.scale, y.quant, rounding);
  return y;
}

RefTensor eval_dequantize(const TensorDesc& yd, const RefTensor& x) {
  if (!x.is_codes) fail("Dequantize takes codes");
  RefTensor y = like(yd);
  if (y.is_codes || y.dims != x.dims) fail("dequantize output declared " + y.shape_string());
  for (size_t i = 0; i < x.size(); ++i) y.values[i] = static_cast<double>(x.scale) * x.values[i];
  return y;
}

// ---- layout ----

// The output takes the input's dtype and quantization; only values move.
RefTensor moved_like(const TensorDesc& yd, const RefTensor& x) {
  RefTensor y = like(yd);
  if (y.is_codes != x.is_codes || (x.is_codes && (y.quant != x.quant || y.scale != x.scale)))
    fail("layout op '" + yd.name + "' changes the dtype or quantization");
  return y;
}

RefTensor eval_concat(const TensorDesc& yd, const std::vector<const RefTensor*>& xs) {
  RefTensor y = moved_like(yd, *xs[0]);
  const size_t outer = xs[0]->size() / xs[0]->dims.back();
  const size_t cy = y.dims.back();
  size_t offset = 0;
  for (const RefTensor* x : xs) {
    if (x->is_codes != xs[0]->is_codes || x->dims.size() != xs[0]->dims.size()) fail("concat inputs differ");
    const size_t cx = x->dims.back();
    for (size_t r = 0; r < outer; ++r)
      for (size_t c = 0; c < cx; ++c) y.values[r * cy + offset + c] = x->values[r * cx + c];
    offset += cx;
  }
  if (offset != cy) fail("concat channels do not add up");
  return y;
}

RefTensor eval_space_to_depth(const OpDesc& op, const TensorDesc& yd, const RefTensor& x) {
  const int64_t b = op.ints.at(0);
  RefTensor y = moved_like(yd, x);
  const int64_t n = x.dims[0], ih = x.dims[1], iw = x.dims[2], c = x.dims[3];
  const int64_t oh = ih / b, ow = iw / b, oc = c * b * b;
  if (y.dims != std::vector<int32_t>{x.dims[0], static_cast<int32_t>(oh), static_cast<int32_t>(ow),
                                     static_cast<int32_t>(oc)})
    fail("space_to_depth output declared " + y.shape_string());
  // TF / ONNX: out[n, oy, ox, (dy*b + dx)*C + ch] = in[n, oy*b + dy, ox*b + dx, ch]
  for (int64_t s = 0; s < n; ++s)
    for (int64_t iy = 0; iy < ih; ++iy)
      for (int64_t ix = 0; ix < iw; ++ix)
        for (int64_t ch = 0; ch < c; ++ch) {
          const int64_t oy = iy / b, dy = iy % b, ox = ix / b, dx = ix % b;
          y.values[static_cast<size_t>(((s * oh + oy) * ow + ox) * oc + (dy * b + dx) * c + ch)] =
              x.values[static_cast<size_t>(((s * ih + iy) * iw + ix) * c + ch)];
        }
  return y;
}

RefTensor eval_depth_to_space(const OpDesc& op, const TensorDesc& yd, const RefTensor& x) {
  const int64_t b = op.ints.at(0), mode = op.ints.at(1);
  if (mode != 0 && mode != 1) fail("unknown depth_to_space mode");
  RefTensor y = moved_like(yd, x);
  const int64_t n = x.dims[0], ih = x.dims[1], iw = x.dims[2], ic = x.dims[3];
  const int64_t oh = ih * b, ow = iw * b, oc = ic / (b * b);
  if (y.dims != std::vector<int32_t>{x.dims[0], static_cast<int32_t>(oh), static_cast<int32_t>(ow),
                                     static_cast<int32_t>(oc)})
    fail("depth_to_space output declared " + y.shape_string());
  // ONNX DCR: in channel (dy*b + dx)*C' + ch; CRD: ch*b*b + dy*b + dx.
  for (int64_t s = 0; s < n; ++s)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t ch = 0; ch < oc; ++ch) {
          const int64_t dy = oy % b, dx = ox % b;
          const int64_t in_c = mode == 0 ? (dy * b + dx) * oc + ch : ch * b * b + dy * b + dx;
          y.values[static_cast<size_t>(((s * oh + oy) * ow + ox) * oc + ch)] =
              x.values[static_cast<size_t>(((s * ih + oy / b) * iw + ox / b) * ic + in_c)];
        }
  return y;
}

RefTensor eval_resize(const OpDesc& op, const TensorDesc& yd, const RefTensor& x) {
  const int64_t fh = op.ints.at(0), fw = op.ints.at(1);
  RefTensor y = moved_like(yd, x);
  const int64_t n = x.dims[0], ih = x.dims[1], iw = x.dims[2], c = x.dims[3];
  const int64_t oh = ih * fh, ow = iw * fw;
  if (y.dims != std::vector<int32_t>{x.dims[0], static_cast<int32_t>(oh), static_cast<int32_t>(ow), x.dims[3]})
    fail("resize output declared " + y.shape_string());
  for (int64_t s = 0; s < n; ++s)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t ch = 0; ch < c; ++ch)
          y.values[static_cast<size_t>(((s * oh + oy) * ow + ox) * c + ch)] =
              x.values[static_cast<size_t>(((s * ih + oy / fh) * iw + ox / fw) * c + ch)];
  return y;
}

RefTensor eval_pad(const OpDesc& op, const TensorDesc& yd, const RefTensor& x) {
  RefTensor y = moved_like(yd, x);
  const double value = x.is_codes ? 0.0 : op.floats.at(0);  // codes pad with code 0
  const std::vector<int64_t> di = aligned4(x.dims), dout = aligned4(y.dims);
  int64_t before[4];
  for (int i = 0; i < 4; ++i) {
    before[i] = op.ints.at(2 * i);
    if (dout[i] != di[i] + before[i] + op.ints.at(2 * i + 1)) fail("pad output declared " + y.shape_string());
  }
  size_t i = 0;
  int64_t at[4];
  for (at[0] = 0; at[0] < dout[0]; ++at[0])
    for (at[1] = 0; at[1] < dout[1]; ++at[1])
      for (at[2] = 0; at[2] < dout[2]; ++at[2])
        for (at[3] = 0; at[3] < dout[3]; ++at[3], ++i) {
          int64_t src = 0;
          bool inside = true;
          for (int k = 0; k < 4; ++k) {
            const int64_t a = at[k] - before[k];
            inside = inside && a >= 0 && a < di[k];
            src = src * di[k] + a;
          }
          y.values[i] = inside ? x.values[static_cast<size_t>(src)] : value;
        }
  return y;
}

RefTensor eval_reshape(const TensorDesc& yd, const RefTensor& x) {
  RefTensor y = moved_like(yd, x);
  if (y.size() != x.size()) fail("reshape changes the element count");
  y.values = x.values;  // row-major order is kept
  return y;
}

}  // namespace

std::vector<RefTensor> reference_evaluate(const GraphDesc& graph, const std::vector<RefTensor>& inputs,
                                          std::vector<RefTensor>* all_tensors) {
  const size_t nt = graph.tensors.size();
  std::vector<RefTensor> values(nt);
  std::vector<bool> ready(nt, false);
  if (inputs.size() != graph.inputs.size())
    fail(std::to_string(inputs.size()) + " inputs given, the graph has " + std::to_string(graph.inputs.size()));
  for (size_t k = 0; k < inputs.size(); ++k) {
    const TensorDesc& t = graph.tensors.at(graph.inputs[k]);
    const RefTensor& in = inputs[k];
    if (in.dims != dims_of(t) || in.is_codes != (t.dtype == DType::kCodes) || in.values.size() != in.size())
      fail("input " + std::to_string(k) + " '" + t.name + "' is " + in.shape_string() + ", the graph expects " +
           t.shape_string());
    values[graph.inputs[k]] = in;
    values[graph.inputs[k]].quant = t.quant;  // the graph's declaration is authoritative
    values[graph.inputs[k]].scale = t.scale;
    ready[graph.inputs[k]] = true;
  }
  for (size_t i = 0; i < nt; ++i)
    if (graph.tensors[i].is_constant()) {
      values[i] = load_constant(graph.tensors[i]);
      ready[i] = true;
    }

  // Dependency order: repeatedly run every op whose inputs are all available.
  std::vector<bool> done(graph.ops.size(), false);
  size_t remaining = graph.ops.size();
  while (remaining > 0) {
    bool progress = false;
    for (size_t k = 0; k < graph.ops.size(); ++k) {
      if (done[k]) continue;
      const OpDesc& op = graph.ops[k];
      bool can_run = true;
      for (uint32_t id : op.inputs)
        if (id != lowbit::kNoTensor && (id >= nt || !ready[id])) can_run = false;
      if (!can_run) continue;
      if (op.outputs.size() != 1 || op.outputs[0] >= nt) fail("op " + std::to_string(k) + " has no valid output");
      auto in = [&](size_t i) -> const RefTensor* {
        if (i >= op.inputs.size() || op.inputs[i] == lowbit::kNoTensor) return nullptr;
        return &values[op.inputs[i]];
      };
      auto req = [&](size_t i) -> const RefTensor& {
        const RefTensor* t = in(i);
        if (!t) fail(std::string(lowbit::op_name(op.type)) + " misses input " + std::to_string(i));
        return *t;
      };
      const TensorDesc& yd = graph.tensors[op.outputs[0]];
      RefTensor y;
      switch (op.type) {
        case OpType::kConv2D:
        case OpType::kQConv2D: y = eval_conv(op, yd, req(0), req(1), in(2), in(3)); break;
        case OpType::kDense:
        case OpType::kQDense: y = eval_dense(op, yd, req(0), req(1), in(2), in(3)); break;
        case OpType::kAffine: y = eval_affine(yd, req(0), req(1), req(2)); break;
        case OpType::kRelu:
        case OpType::kLeakyRelu:
        case OpType::kSigmoid:
        case OpType::kSoftmax: y = eval_unary(op, yd, req(0)); break;
        case OpType::kMaxPool:
        case OpType::kAvgPool: y = eval_pool(op, yd, req(0)); break;
        case OpType::kGlobalAvgPool: y = eval_global_avg_pool(yd, req(0)); break;
        case OpType::kConcat: {
          std::vector<const RefTensor*> xs;
          for (size_t i = 0; i < op.inputs.size(); ++i) xs.push_back(&req(i));
          y = eval_concat(yd, xs);
          break;
        }
        case OpType::kSpaceToDepth: y = eval_space_to_depth(op, yd, req(0)); break;
        case OpType::kDepthToSpace: y = eval_depth_to_space(op, yd, req(0)); break;
        case OpType::kResizeNearest: y = eval_resize(op, yd, req(0)); break;
        case OpType::kAdd:
        case OpType::kMul: y = eval_binary(op, yd, req(0), req(1)); break;
        case OpType::kPad: y = eval_pad(op, yd, req(0)); break;
        case OpType::kReshape: y = eval_reshape(yd, req(0)); break;
        case OpType::kQuantize: y = eval_quantize(op, yd, req(0)); break;
        case OpType::kDequantize: y = eval_dequantize(yd, req(0)); break;
        default: fail("unsupported op type " + std::to_string(static_cast<int>(op.type)));
      }
      values[op.outputs[0]] = std::move(y);
      ready[op.outputs[0]] = true;
      done[k] = true;
      --remaining;
      progress = true;
    }
    if (!progress) fail("some ops can never run (missing producer or a cycle)");
  }

  std::vector<RefTensor> outputs;
  for (uint32_t id : graph.outputs) {
    if (id >= nt || !ready[id]) fail("graph output " + std::to_string(id) + " is never computed");
    outputs.push_back(values[id]);
  }
  if (all_tensors) {
    for (size_t i = 0; i < nt; ++i)
      if (graph.tensors[i].is_constant()) values[i] = RefTensor{};
    *all_tensors = std::move(values);
  }
  return outputs;
}

// ---- bridges ----

bool write_model_input(lowbit_model* model, int index, const RefTensor& value, std::string* error) {
  lowbit_tensor_info info{};
  if (lowbit_input_info(model, index, &info) != 0) {
    *error = lowbit_last_error();
    return false;
  }
  const std::vector<int32_t> dims(info.dims, info.dims + info.rank);
  if (dims != value.dims || value.values.size() != value.size()) {
    *error = "input " + std::to_string(index) + " shape mismatch: model " + std::to_string(info.rank) +
             "-d, value " + value.shape_string();
    return false;
  }
  void* buffer = lowbit_input_buffer(model, index);
  if (info.dtype == LOWBIT_F32) {
    if (value.is_codes) return *error = "input " + std::to_string(index) + " takes floats", false;
    std::vector<float> f(value.values.begin(), value.values.end());
    std::memcpy(buffer, f.data(), f.size() * sizeof(float));
    return true;
  }
  if (info.dtype != LOWBIT_CODES || !value.is_codes || info.bits != value.quant.bits ||
      static_cast<int>(info.kind) != static_cast<int>(value.quant.kind)) {
    *error = "input " + std::to_string(index) + " takes codes of another type than " + value.shape_string();
    return false;
  }
  std::vector<int32_t> codes(value.values.size());
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<int32_t>(value.values[i]);
  const size_t channels = static_cast<size_t>(value.dims.back());
  const std::vector<uint32_t> words =
      lowbit::pack_pixel_planes(codes.data(), codes.size() / channels, channels, value.quant);
  if (words.size() * 4 != info.bytes) return *error = "packed input size mismatch", false;
  std::memcpy(buffer, words.data(), info.bytes);
  return true;
}

RefTensor read_model_output(const lowbit_model* model, int index) {
  lowbit_tensor_info info{};
  if (lowbit_output_info(model, index, &info) != 0) throw std::runtime_error(lowbit_last_error());
  RefTensor r;
  r.dims.assign(info.dims, info.dims + info.rank);
  const size_t n = r.size();
  const void* buffer = lowbit_output_buffer(model, index);
  if (info.dtype == LOWBIT_F32) {
    std::vector<float> f(n);
    std::memcpy(f.data(), buffer, n * sizeof(float));
    r.values.assign(f.begin(), f.end());
    return r;
  }
  if (info.dtype != LOWBIT_CODES) throw std::runtime_error("output is neither float nor codes");
  r.is_codes = true;
  r.quant.bits = static_cast<uint8_t>(info.bits);
  r.quant.kind = static_cast<QuantKind>(info.kind);
  r.scale = info.scale;
  std::vector<uint32_t> words(info.bytes / 4);
  std::memcpy(words.data(), buffer, info.bytes);
  std::vector<int32_t> codes(n);
  const size_t channels = static_cast<size_t>(r.dims.back());
  lowbit::unpack_pixel_planes(words.data(), n / channels, channels, r.quant, codes.data());
  r.values.assign(codes.begin(), codes.end());
  return r;
}

}  // namespace lowbit_test
