// Max and average pooling over float values or integer codes, and global average pooling.
#include <cstring>

#include "ops/op_table.h"
#include "ops/ops.h"

namespace lowbit {
namespace {

struct PoolGeometry {
  int64_t n, ih, iw, c, oh, ow, kh, kw, sh, sw, pt, pl;
  bool count_pad;
};

bool pool_geometry(const OpView& v, PoolGeometry* g, std::string* err) {
  const TensorDesc& x = *v.in[0];
  if (!expect_rank(&x, 4, "input", err)) return false;
  if (x.dtype == DType::kI32) return fail(err, "pooling takes float values or codes");
  g->n = x.dims[0]; g->ih = x.dims[1]; g->iw = x.dims[2]; g->c = x.dims[3];
  g->kh = v.attr(kPoolKH); g->kw = v.attr(kPoolKW);
  g->sh = v.attr(kPoolStrideH); g->sw = v.attr(kPoolStrideW);
  g->pt = v.attr(kPoolPadTop); g->pl = v.attr(kPoolPadLeft);
  const int64_t pb = v.attr(kPoolPadBottom), pr = v.attr(kPoolPadRight);
  g->count_pad = v.attr(kPoolCountIncludePad) != 0;
  if (g->kh < 1 || g->kw < 1) return fail(err, "pool window must be >= 1");
  if (g->sh < 1 || g->sw < 1) return fail(err, "stride must be >= 1");
  if (g->pt < 0 || g->pl < 0 || pb < 0 || pr < 0) return fail(err, "padding must be >= 0");
  if (g->pt >= g->kh || pb >= g->kh || g->pl >= g->kw || pr >= g->kw)
    return fail(err, "padding must be smaller than the window");
  const int64_t eh = g->ih + g->pt + pb - g->kh, ew = g->iw + g->pl + pr - g->kw;
  if (eh < 0 || ew < 0) return fail(err, "window larger than the padded input");
  g->oh = eh / g->sh + 1;
  g->ow = ew / g->sw + 1;
  if (g->oh > kMaxDimension || g->ow > kMaxDimension) return fail(err, "output larger than the dim limit");
  return true;
}

PoolGeometry geometry_of(const OpView& v) {
  PoolGeometry g{};
  std::string ignored;
  pool_geometry(v, &g, &ignored);
  return g;
}

bool infer_pool(const OpView& v, InferredOutput* out, std::string* err) {
  PoolGeometry g;
  if (!pool_geometry(v, &g, err)) return false;
  const TensorDesc& x = *v.in[0];
  if (v.op->type == OpType::kAvgPool && x.dtype == DType::kCodes && x.quant.kind == QuantKind::kBinary)
    return fail(err, "the mean of binary codes can be 0, which binary codes cannot hold");
  out->dtype = x.dtype;
  out->rank = 4;
  out->dims[0] = x.dims[0];
  out->dims[1] = static_cast<int32_t>(g.oh);
  out->dims[2] = static_cast<int32_t>(g.ow);
  out->dims[3] = x.dims[3];
  out->quant_known = x.dtype == DType::kCodes;
  out->quant = x.quant;
  out->scale = x.scale;
  return true;
}

// Reads channel c of a pixel as a number, whatever the dtype.
struct PixelReader {
  const TensorDesc& t;
  const void* data;
  int64_t value(size_t pixel, size_t c) const {
    const PixelPlanes p = t.pixel_planes();
    return read_code(static_cast<const uint32_t*>(data) + pixel * p.words_per_pixel(), p.words_per_plane(), c, t.quant);
  }
  float fvalue(size_t pixel, size_t c) const {
    return static_cast<const float*>(data)[pixel * static_cast<size_t>(t.last_dim()) + c];
  }
};

// Largest window max_pool_codes handles (larger ones take the per-channel path).
constexpr size_t kMaxPoolWindow = 64;

// floor((2*sum + count) / (2*count)): the mean rounded half up, also for negative sums.
int64_t mean_half_up(int64_t sum, int64_t count) {
  const int64_t num = 2 * sum + count, den = 2 * count;
  return num >= 0 ? num / den : -((-num + den - 1) / den);
}

// Max pooling straight on packed codes, 32 channels per word: the maximum is decided plane by
// plane from the top, keeping for each window element whether its higher planes equal the
// maximum's so far. Two's-complement kinds compare with the sign plane inverted; binary codes
// (bit 1 = +1) order like unsigned ones. Padding lanes (all bits 0) stay 0.
void max_pool_codes(const PoolGeometry& g, const TensorDesc& x, const uint32_t* xd, uint32_t* yd, size_t row) {
  const PixelPlanes planes = x.pixel_planes();
  const size_t words = planes.words_per_plane(), pixel_words = planes.words_per_pixel();
  const int top = x.quant.bits - 1;
  const bool two_complement = x.quant.kind == QuantKind::kSigned || x.quant.kind == QuantKind::kSignedNarrow;
  const int64_t n = static_cast<int64_t>(row) / g.oh, oy = static_cast<int64_t>(row) % g.oh;
  const uint32_t* window[kMaxPoolWindow];
  for (int64_t ox = 0; ox < g.ow; ++ox) {
    size_t count = 0;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t iy = oy * g.sh - g.pt + ky;
      if (iy < 0 || iy >= g.ih) continue;
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const int64_t ix = ox * g.sw - g.pl + kx;
        if (ix >= 0 && ix < g.iw) window[count++] = xd + static_cast<size_t>((n * g.ih + iy) * g.iw + ix) * pixel_words;
      }
    }
    uint32_t* out = yd + static_cast<size_t>((n * g.oh + oy) * g.ow + ox) * pixel_words;
    for (size_t w = 0; w < words; ++w) {
      uint32_t result[kMaxBits] = {};  // in compare order: sign plane inverted
      for (int p = top; p >= 0; --p) {
        const uint32_t flip = two_complement && p == top ? ~0u : 0u;
        uint32_t any = 0;
        for (size_t i = 0; i < count; ++i) {
          uint32_t equal_above = ~0u;
          for (int q = top; q > p; --q) {
            const uint32_t flip_q = two_complement && q == top ? ~0u : 0u;
            equal_above &= ~((window[i][static_cast<size_t>(q) * words + w] ^ flip_q) ^ result[q]);
          }
          any |= equal_above & (window[i][static_cast<size_t>(p) * words + w] ^ flip);
        }
        result[p] = any;
      }
      for (int p = 0; p <= top; ++p) out[static_cast<size_t>(p) * words + w] = result[p] ^ (two_complement && p == top ? ~0u : 0u);
    }
    // The inverted sign plane turned padding lanes' zeros into ones: clear them again.
    if (two_complement && x.last_dim() % kWordBits)
      out[static_cast<size_t>(top) * words + words - 1] &= (1u << (x.last_dim() % kWordBits)) - 1u;
  }
}

template <bool kMax>
void run_pool(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const PoolGeometry g = geometry_of(r.view);
  const TensorDesc& x = *r.view.in[0];
  const TensorDesc& y = *r.view.out[0];
  const PixelReader in{x, r.in_data[0]};
  const bool codes = x.dtype == DType::kCodes;
  const PixelPlanes out_planes = y.pixel_planes();
  if (kMax && codes && g.kh * g.kw <= static_cast<int64_t>(kMaxPoolWindow)) {
    for (size_t row = begin; row < end; ++row) max_pool_codes(g, x, r.input<uint32_t>(0), r.output<uint32_t>(), row);
    return;
  }
  for (size_t row = begin; row < end; ++row) {
    const int64_t n = static_cast<int64_t>(row) / g.oh, oy = static_cast<int64_t>(row) % g.oh;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const size_t out_pixel = static_cast<size_t>((n * g.oh + oy) * g.ow + ox);
      uint32_t* out_codes = codes ? r.output<uint32_t>() + out_pixel * out_planes.words_per_pixel() : nullptr;
      if (codes) std::memset(out_codes, 0, out_planes.words_per_pixel() * 4);
      for (int64_t c = 0; c < g.c; ++c) {
        int64_t isum = 0, imax = INT64_MIN, count = 0;
        float fsum = 0.0f, fmax = 0.0f;
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          const int64_t iy = oy * g.sh - g.pt + ky;
          if (iy < 0 || iy >= g.ih) continue;
          for (int64_t kx = 0; kx < g.kw; ++kx) {
            const int64_t ix = ox * g.sw - g.pl + kx;
            if (ix < 0 || ix >= g.iw) continue;
            const size_t pixel = static_cast<size_t>((n * g.ih + iy) * g.iw + ix);
            if (codes) {
              const int64_t q = in.value(pixel, static_cast<size_t>(c));
              isum += q;
              imax = q > imax ? q : imax;
            } else {
              const float f = in.fvalue(pixel, static_cast<size_t>(c));
              fsum += f;
              fmax = count == 0 || f > fmax ? f : fmax;
            }
            ++count;
          }
        }
        if (!kMax && g.count_pad) count = g.kh * g.kw;
        if (codes) {
          const int64_t q = kMax ? imax : mean_half_up(isum, count);
          write_code(out_codes, out_planes.words_per_plane(), static_cast<size_t>(c), y.quant, static_cast<int32_t>(q));
        } else {
          r.output<float>()[out_pixel * static_cast<size_t>(g.c) + static_cast<size_t>(c)] =
              kMax ? fmax : fsum / static_cast<float>(count);
        }
      }
    }
  }
}

size_t pool_rows(const OpView& v) {
  const PoolGeometry g = geometry_of(v);
  return static_cast<size_t>(g.n * g.oh);
}

bool infer_global_avg_pool(const OpView& v, InferredOutput* out, std::string* err) {
  const TensorDesc& x = *v.in[0];
  if (!expect_rank(&x, 4, "input", err)) return false;
  if (x.dtype == DType::kI32) return fail(err, "pooling takes float values or codes");
  out->dtype = DType::kF32;
  out->rank = 4;
  out->dims[0] = x.dims[0];
  out->dims[1] = out->dims[2] = 1;
  out->dims[3] = x.dims[3];
  return true;
}

void run_global_avg_pool(const OpRun& r, size_t begin, size_t end, const WorkerScratch&) {
  const TensorDesc& x = *r.view.in[0];
  const PixelReader in{x, r.in_data[0]};
  const size_t c_count = static_cast<size_t>(x.dims[3]);
  const size_t area = static_cast<size_t>(x.dims[1]) * static_cast<size_t>(x.dims[2]);
  for (size_t n = begin; n < end; ++n) {
    for (size_t c = 0; c < c_count; ++c) {
      float mean;
      if (x.dtype == DType::kCodes) {
        int64_t sum = 0;  // exact integer sum, one rounding at the end
        for (size_t i = 0; i < area; ++i) sum += in.value(n * area + i, c);
        mean = x.scale * static_cast<float>(static_cast<double>(sum) / static_cast<double>(area));
      } else {
        float sum = 0.0f;
        for (size_t i = 0; i < area; ++i) sum += in.fvalue(n * area + i, c);
        mean = sum / static_cast<float>(area);
      }
      r.output<float>()[n * c_count + c] = mean;
    }
  }
}

size_t no_scratch(const OpView&) { return 0; }
size_t batch_rows(const OpView& v) { return static_cast<size_t>(v.in[0]->dims[0]); }

}  // namespace

const OpTraits kMaxPoolTraits{"MaxPool", 1, 1, kPoolAttrCount, 0, infer_pool, no_scratch, pool_rows, run_pool<true>};
const OpTraits kAvgPoolTraits{"AvgPool", 1, 1, kPoolAttrCount, 0, infer_pool, no_scratch, pool_rows, run_pool<false>};
const OpTraits kGlobalAvgPoolTraits{"GlobalAvgPool", 1, 1, 0, 0, infer_global_avg_pool, no_scratch, batch_rows,
                                    run_global_avg_pool};

}  // namespace lowbit
