// The blocked bit-serial GEMM shared by every SIMD kernel table. Each ISA's translation unit
// includes this with its own compiler flags and supplies a policy `P`:
//
//   using Vec, Acc;                      vector of words; vector of popcount accumulators
//   static constexpr size_t kWords;      uint32 words per Vec
//   static Vec load(const uint32_t* p);
//   static Vec load_partial(const uint32_t* p, size_t n);   first n < kWords words, the rest 0
//   static Vec and_(Vec a, Vec b);
//   static Acc zero();
//   static Acc add_popcount(Acc acc, Vec x);                acc += popcount(x) per lane
//   static int64_t combine(const Acc* acc, const int64_t* coef, int n);  sum_i coef[i] * total(acc[i])
//
// Blocking: M pixels x N output channels share every weight and activation vector they load, and
// all a_bits x w_bits plane pairs of a block advance together, so each loaded vector feeds several
// AND+POPCNT+ADD chains. M and N are chosen so the accumulators (M*N*a_bits*w_bits) fit in registers.
#pragma once

#include "kernels/bitserial.h"

namespace lowbit {
namespace simd {

template <class P, int AB, int WB, int M, int N>
void gemm_block(const BitserialShape& s, const uint32_t* patches, const uint32_t* weights, size_t outputs,
                const int64_t* coef, const int64_t* offset_terms, int32_t* acc) {
  using Vec = typename P::Vec;
  using Acc = typename P::Acc;
  const size_t words = s.words;
  const size_t pixel_stride = static_cast<size_t>(AB) * words;
  const size_t output_stride = static_cast<size_t>(WB) * words;
  Acc c[M][N][AB * WB];
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < AB * WB; ++k) c[m][n][k] = P::zero();

  auto step = [&](size_t i, auto load) {
    Vec w[N][WB];
    for (int n = 0; n < N; ++n)
      for (int j = 0; j < WB; ++j) w[n][j] = load(weights + n * output_stride + j * words + i);
    for (int m = 0; m < M; ++m)
      for (int p = 0; p < AB; ++p) {
        const Vec a = load(patches + m * pixel_stride + p * words + i);
        for (int n = 0; n < N; ++n)
          for (int j = 0; j < WB; ++j) c[m][n][p * WB + j] = P::add_popcount(c[m][n][p * WB + j], P::and_(w[n][j], a));
      }
  };
  size_t i = 0;
  for (; i + P::kWords <= words; i += P::kWords) step(i, [](const uint32_t* p) { return P::load(p); });
  if (i < words) {
    const size_t rest = words - i;
    step(i, [rest](const uint32_t* p) { return P::load_partial(p, rest); });
  }
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n)
      acc[static_cast<size_t>(m) * outputs + static_cast<size_t>(n)] =
          static_cast<int32_t>(P::combine(c[m][n], coef, AB * WB) + offset_terms[m]);
}

// All outputs for up to `pixels` pixels, in blocks of M pixels x N outputs (remainders 1 x 1).
template <class P, int AB, int WB>
void gemm_planes(const BitserialShape& s, const uint32_t* patches, size_t pixels, const uint32_t* weights,
                 size_t outputs, int32_t* acc) {
  constexpr int kPairs = AB * WB;
  constexpr int M = kPairs <= 2 ? 4 : 2;
  constexpr int N = kPairs <= 4 ? 2 : 1;
  int64_t coef[kPairs];
  for (int p = 0; p < AB; ++p)
    for (int j = 0; j < WB; ++j) coef[p * WB + j] = static_cast<int64_t>(s.a_weight[p]) * s.w_weight[j];
  // The weight offset term (binary weights: -1 per lane) depends on the activations only.
  int64_t offset_terms[kMaxGemmPixels] = {};
  for (size_t m = 0; m < pixels; ++m)
    for (int p = 0; p < AB; ++p) {
      const uint32_t* plane = patches + (m * AB + static_cast<size_t>(p)) * s.words;
      int64_t count = 0;
      for (size_t i = 0; i < s.words; ++i) count += __builtin_popcount(plane[i]);
      offset_terms[m] += static_cast<int64_t>(s.a_weight[p]) * s.w_offset * count;
    }
  const size_t pixel_stride = static_cast<size_t>(AB) * s.words;
  const size_t output_stride = static_cast<size_t>(WB) * s.words;
  size_t m = 0;
  for (; m + M <= pixels; m += M) {
    size_t o = 0;
    for (; o + N <= outputs; o += N)
      gemm_block<P, AB, WB, M, N>(s, patches + m * pixel_stride, weights + o * output_stride, outputs, coef,
                                  offset_terms + m, acc + m * outputs + o);
    for (; o < outputs; ++o)
      gemm_block<P, AB, WB, M, 1>(s, patches + m * pixel_stride, weights + o * output_stride, outputs, coef,
                                  offset_terms + m, acc + m * outputs + o);
  }
  for (; m < pixels; ++m)
    for (size_t o = 0; o < outputs; ++o)
      gemm_block<P, AB, WB, 1, 1>(s, patches + m * pixel_stride, weights + o * output_stride, outputs, coef,
                                  offset_terms + m, acc + m * outputs + o);
}

// Picks the instantiation for the layer's plane counts.
template <class P>
void gemm(const BitserialShape& s, const uint32_t* patches, size_t pixels, const uint32_t* weights, size_t outputs,
          int32_t* acc) {
  using Fn = void (*)(const BitserialShape&, const uint32_t*, size_t, const uint32_t*, size_t, int32_t*);
  static constexpr Fn kTable[kMaxBits][kMaxBits] = {
      {gemm_planes<P, 1, 1>, gemm_planes<P, 1, 2>, gemm_planes<P, 1, 3>, gemm_planes<P, 1, 4>},
      {gemm_planes<P, 2, 1>, gemm_planes<P, 2, 2>, gemm_planes<P, 2, 3>, gemm_planes<P, 2, 4>},
      {gemm_planes<P, 3, 1>, gemm_planes<P, 3, 2>, gemm_planes<P, 3, 3>, gemm_planes<P, 3, 4>},
      {gemm_planes<P, 4, 1>, gemm_planes<P, 4, 2>, gemm_planes<P, 4, 3>, gemm_planes<P, 4, 4>},
  };
  kTable[s.a_bits - 1][s.w_bits - 1](s, patches, pixels, weights, outputs, acc);
}

// The plain combine: reduce each accumulator, then weight it.
template <class P>
int64_t combine_by_reducing(const typename P::Acc* acc, const int64_t* coef, int n) {
  int64_t total = 0;
  for (int k = 0; k < n; ++k) total += coef[k] * P::total(acc[k]);
  return total;
}

}  // namespace simd
}  // namespace lowbit
