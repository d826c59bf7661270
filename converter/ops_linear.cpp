// Conv, Gemm and MatMul: shape inference and interpreter kernels.
//
// The kernels accumulate in long double. When both operands are quantized (codes times float32
// scales) every product is an integer multiple of scale_x * scale_w and the 64-bit significand
// keeps the sum exact, so the double result is the correctly rounded acc * scale_x * scale_w —
// exactly what threshold derivation computes from the integer accumulator (lowering.cpp).
#include "converter/op_util.h"

namespace lowbit::converter {
namespace {

struct ConvShape {
  int64_t n, c, ih, iw, o, cg, groups;
  Window2D win;
};

ConvShape conv_shape(const Graph& g, const Node& n) {
  expect_rank(g, n, 0, 4);
  expect_rank(g, n, 1, 4);
  const Dims& x = input_dims(g, n, 0);
  const Dims& w = input_dims(g, n, 1);
  ConvShape s{};
  s.n = x[0];
  s.c = x[1];
  s.ih = x[2];
  s.iw = x[3];
  s.o = w[0];
  s.cg = w[1];
  s.groups = n.int_attr("group", 1);
  if (s.groups < 1 || s.c % s.groups != 0 || s.o % s.groups != 0 || s.cg * s.groups != s.c)
    node_error(n, "input " + dims_string(x) + " and weights " + dims_string(w) + " do not fit group " +
                      std::to_string(s.groups));
  const std::vector<int64_t> kernel = n.ints_attr("kernel_shape", {w[2], w[3]});
  if (kernel.size() != 2 || kernel[0] != w[2] || kernel[1] != w[3]) node_error(n, "kernel_shape does not match the weights");
  s.win = window_2d(n, s.ih, s.iw, w[2], w[3], false);
  return s;
}

void infer_conv(Graph& g, const Node& n) {
  const ConvShape s = conv_shape(g, n);
  if (n.input(2) != kNoValue && input_dims(g, n, 2) != Dims{s.o}) node_error(n, "bias must be [" + std::to_string(s.o) + "]");
  set_output(g, n, 0, {s.n, s.o, s.win.oh, s.win.ow});
}

void eval_conv(const EvalArgs& a) {
  const ConvShape s = conv_shape(a.graph, a.node);
  const Window2D& w = s.win;
  const Array& x = a.input(0);
  const Array& wt = a.input(1);
  const Array* bias = a.in.size() > 2 ? a.in[2] : nullptr;
  const int64_t og = s.o / s.groups;
  std::vector<double>& y = a.out[0].values;
  size_t i = 0;
  for (int64_t b = 0; b < s.n; ++b)
    for (int64_t o = 0; o < s.o; ++o)
      for (int64_t oy = 0; oy < w.oh; ++oy)
        for (int64_t ox = 0; ox < w.ow; ++ox, ++i) {
          const int64_t c0 = (o / og) * s.cg;
          long double sum = 0;
          for (int64_t ci = 0; ci < s.cg; ++ci)
            for (int64_t ky = 0; ky < w.kh; ++ky) {
              const int64_t iy = oy * w.sh - w.pt + ky * w.dh;
              if (iy < 0 || iy >= s.ih) continue;
              for (int64_t kx = 0; kx < w.kw; ++kx) {
                const int64_t ix = ox * w.sw - w.pl + kx * w.dw;
                if (ix < 0 || ix >= s.iw) continue;
                const double xv = x.values[static_cast<size_t>(((b * s.c + c0 + ci) * s.ih + iy) * s.iw + ix)];
                const double wv = wt.values[static_cast<size_t>(((o * s.cg + ci) * w.kh + ky) * w.kw + kx)];
                sum += static_cast<long double>(xv) * wv;
              }
            }
          y[i] = linear_output(static_cast<double>(sum), 1.0, bias ? bias->values[static_cast<size_t>(o)] : 0.0);
        }
}

void infer_dense(Graph& g, const Node& n) {
  const DenseForm f = dense_form(g, n);
  const Dims out = {input_dims(g, n, 0)[0], f.o};
  if (n.input(2) != kNoValue && broadcast_dims(n, out, input_dims(g, n, 2)) != out)
    node_error(n, "C does not broadcast to the output " + dims_string(out));
  set_output(g, n, 0, out);
}

void eval_dense(const EvalArgs& a) {
  const DenseForm f = dense_form(a.graph, a.node);
  const Array& x = a.input(0);
  const Array& w = a.input(1);
  const Array* c = a.in.size() > 2 ? a.in[2] : nullptr;
  Array& y = a.out[0];
  const Broadcast c_index(c ? c->dims : Dims{}, y.dims);
  const int64_t batch = x.dims[0];
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t o = 0; o < f.o; ++o) {
      long double sum = 0;
      for (int64_t k = 0; k < f.k; ++k) {
        const size_t wi = static_cast<size_t>(f.transpose_weight ? k * f.o + o : o * f.k + k);
        sum += static_cast<long double>(x.values[static_cast<size_t>(b * f.k + k)]) * w.values[wi];
      }
      const size_t i = static_cast<size_t>(b * f.o + o);
      const double bias_term = c ? f.beta * c->values[c_index(i)] : 0.0;
      y.values[i] = linear_output(static_cast<double>(sum), f.alpha, bias_term);
    }
}

}  // namespace

extern const OpSchema kConvSchema{"Conv", false, 2, 3, 1, infer_conv, eval_conv};
extern const OpSchema kGemmSchema{"Gemm", false, 2, 3, 1, infer_dense, eval_dense};
extern const OpSchema kMatMulSchema{"MatMul", false, 2, 2, 1, infer_dense, eval_dense};

}  // namespace lowbit::converter
