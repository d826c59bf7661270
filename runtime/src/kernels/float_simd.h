// The float GEMM shared by every SIMD kernel table, vectorized over output channels like the
// bit-serial one (kernels/bitserial_simd.h). Each ISA's translation unit supplies a policy `F`:
//
//   using Vec;  static constexpr size_t kLanes;   kLanes floats
//   static Vec load(const float* p);  static Vec load_partial(const float* p, size_t n);   rest 0
//   static Vec broadcast(const float* p);  static Vec zero();  static Vec set1(float v);
//   static Vec add(Vec a, Vec b);  static Vec mul(Vec a, Vec b);          never fused
//   static Vec positive_or(Vec y, Vec other);     y where y > 0, else other (NaN -> other)
//   static void store(float* p, Vec v, size_t n); first n lanes
//   static constexpr int kAccumulators;
//
// Each output accumulates bias + x * w in the reference's order, so all tables agree bit for bit.
#pragma once

#include <algorithm>

#include "kernels/bitserial_simd.h"  // choose_blocking, LOWBIT_UNROLL
#include "kernels/float_gemm.h"

namespace lowbit {
namespace simd {

template <class F, int M, int N>
void float_block(const FloatRows& a, size_t pixels, size_t m0, const float* weights, size_t b0, size_t outputs,
                 const FloatEpilogue& e, float* out, size_t out_stride) {
  using Vec = typename F::Vec;
  constexpr size_t L = F::kLanes;
  const size_t block_floats = a.taps * a.channels * L;
  const float* block = weights + b0 * block_floats;
  Vec acc[M][N];
  LOWBIT_UNROLL
  for (int n = 0; n < N; ++n) {
    const size_t o = (b0 + static_cast<size_t>(n)) * L;
    const Vec bias = e.bias ? F::load_partial(e.bias + o, std::min(L, outputs - o)) : F::zero();
    LOWBIT_UNROLL
    for (int m = 0; m < M; ++m) acc[m][n] = bias;
  }
  for (size_t t = 0; t < a.taps; ++t) {
    const float* row[M];
    LOWBIT_UNROLL
    for (int m = 0; m < M; ++m) row[m] = a.rows[t * pixels + m0 + static_cast<size_t>(m)];
    const float* tap_weights = block + t * a.channels * L;
    for (size_t c = 0; c < a.channels; ++c) {
      Vec w[N];
      LOWBIT_UNROLL
      for (int n = 0; n < N; ++n) w[n] = F::load(tap_weights + n * block_floats + c * L);
      LOWBIT_UNROLL
      for (int m = 0; m < M; ++m) {
        const Vec x = F::broadcast(row[m] + c);
        LOWBIT_UNROLL
        for (int n = 0; n < N; ++n) acc[m][n] = F::add(acc[m][n], F::mul(x, w[n]));
      }
    }
  }
  const Vec alpha = F::set1(e.alpha);
  LOWBIT_UNROLL
  for (int m = 0; m < M; ++m)
    LOWBIT_UNROLL
    for (int n = 0; n < N; ++n) {
      Vec y = acc[m][n];
      if (e.activation == Activation::kRelu) y = F::positive_or(y, F::zero());
      else if (e.activation == Activation::kLeakyRelu) y = F::positive_or(y, F::mul(y, alpha));
      const size_t o = (b0 + static_cast<size_t>(n)) * L;
      F::store(out + (m0 + static_cast<size_t>(m)) * out_stride + o, y, std::min(L, outputs - o));
    }
}

template <class F, int M, int N>
void float_pixel_block(const FloatRows& a, size_t pixels, size_t m0, const float* weights, size_t outputs,
                       const FloatEpilogue& e, float* out, size_t out_stride) {
  const size_t blocks = (outputs + F::kLanes - 1) / F::kLanes;
  size_t n = 0;
  for (; n + N <= blocks; n += N) float_block<F, M, N>(a, pixels, m0, weights, n, outputs, e, out, out_stride);
  for (; n < blocks; ++n) float_block<F, M, 1>(a, pixels, m0, weights, n, outputs, e, out, out_stride);
}

template <class F>
void float_gemm(const FloatRows& a, size_t pixels, const float* weights, size_t outputs, const FloatEpilogue& e,
                float* out, size_t out_stride) {
  constexpr Blocking b = choose_blocking(1, 1, F::kAccumulators);
  size_t m = 0;
  for (; m + b.pixels <= pixels; m += b.pixels)
    float_pixel_block<F, b.pixels, b.blocks>(a, pixels, m, weights, outputs, e, out, out_stride);
  for (; m < pixels; ++m) float_pixel_block<F, 1, b.blocks>(a, pixels, m, weights, outputs, e, out, out_stride);
}

}  // namespace simd
}  // namespace lowbit
