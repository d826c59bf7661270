// MaxPool, AveragePool and GlobalAveragePool: shape inference and interpreter kernels.
#include <algorithm>
#include <limits>

#include "converter/op_util.h"

namespace lowbit::converter {
namespace {

Window2D pool_window(const Graph& g, const Node& n) {
  expect_rank(g, n, 0, 4);
  const Dims& x = input_dims(g, n, 0);
  const std::vector<int64_t> kernel = n.ints_attr("kernel_shape", {});
  if (kernel.size() != 2) node_error(n, "kernel_shape must have 2 entries");
  return window_2d(n, x[2], x[3], kernel[0], kernel[1], true);
}

void infer_pool(Graph& g, const Node& n) {
  const Window2D w = pool_window(g, n);
  const Dims& x = input_dims(g, n, 0);
  set_output(g, n, 0, {x[0], x[1], w.oh, w.ow});
}

template <bool kMax>
void eval_pool(const EvalArgs& a) {
  const Window2D w = pool_window(a.graph, a.node);
  const Array& x = a.input(0);
  const int64_t planes = x.dims[0] * x.dims[1], ih = x.dims[2], iw = x.dims[3];
  const bool count_pad = a.node.int_attr("count_include_pad", 0) != 0;
  size_t i = 0;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oy = 0; oy < w.oh; ++oy)
      for (int64_t ox = 0; ox < w.ow; ++ox, ++i) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        int64_t count = 0;
        for (int64_t ky = 0; ky < w.kh; ++ky)
          for (int64_t kx = 0; kx < w.kw; ++kx) {
            const int64_t iy = oy * w.sh - w.pt + ky * w.dh, ix = ox * w.sw - w.pl + kx * w.dw;
            const bool inside = iy >= 0 && iy < ih && ix >= 0 && ix < iw;
            // count_include_pad counts the explicit padding, not the ceil_mode overhang.
            const bool in_padding = iy >= -w.pt && iy < ih + w.pb && ix >= -w.pl && ix < iw + w.pr;
            if (inside) {
              const double v = x.values[static_cast<size_t>((p * ih + iy) * iw + ix)];
              best = std::max(best, v);
              sum += v;
            }
            count += inside || (count_pad && in_padding) ? 1 : 0;
          }
        a.out[0].values[i] = kMax ? best : sum / static_cast<double>(count);
      }
}

void infer_global_average_pool(Graph& g, const Node& n) {
  expect_rank(g, n, 0, 4);
  const Dims& x = input_dims(g, n, 0);
  set_output(g, n, 0, {x[0], x[1], 1, 1});
}

void eval_global_average_pool(const EvalArgs& a) {
  const Array& x = a.input(0);
  const size_t area = static_cast<size_t>(x.dims[2] * x.dims[3]);
  for (size_t p = 0; p < a.out[0].size(); ++p) {
    double sum = 0;
    for (size_t k = 0; k < area; ++k) sum += x.values[p * area + k];
    a.out[0].values[p] = sum / static_cast<double>(area);
  }
}

}  // namespace

extern const OpSchema kMaxPoolSchema{"MaxPool", false, 1, 1, 1, infer_pool, eval_pool<true>};
extern const OpSchema kAveragePoolSchema{"AveragePool", false, 1, 1, 1, infer_pool, eval_pool<false>};
extern const OpSchema kGlobalAveragePoolSchema{"GlobalAveragePool", false, 1, 1, 1, infer_global_average_pool,
                                               eval_global_average_pool};

}  // namespace lowbit::converter
