// The blocked AND+POPCOUNT+accumulate loop shared by every ISA's peak kernel. Each ISA's translation
// unit includes this with its own compiler flags and supplies a policy `P` (in an anonymous
// namespace, so instantiations compiled with different flags never merge at link time):
//
//   using Vec, Acc, Wide;           loaded vector; per-chunk accumulator; long-running accumulator
//   static constexpr size_t kChunk; steps an Acc may take before it must be widened
//   static Vec load(const Vec* p);  static Vec and_(Vec, Vec);
//   static Acc zero();              static Acc add_popcount(Acc, Vec);
//   static Wide zero_wide();        static Wide widen(Wide, Acc);   static uint64_t reduce(Wide);
//
// A policy may also declare `static constexpr int kWeightHalves = 2` with
//   static Vec high_nibbles(Vec a);  static Acc add_popcount_halves(Acc, Vec lo, Vec hi);
// for the sequence on weights stored as nibble halves (runtime/src/kernels/bitserial.h,
// pack_weights): the weight rows are split once per call, outside the passes, as the runtime
// splits them once at load.
//
// M activation rows x N weight rows: each step loads N + M vectors and runs M*N independent
// AND+POPCOUNT+ADD chains, the register-blocked inner loop of a bit-serial GEMM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "popcount_peak.h"

namespace bench {

template <class P, class = void>
struct WeightHalves : std::integral_constant<int, 1> {};
template <class P>
struct WeightHalves<P, std::void_t<decltype(P::kWeightHalves)>> : std::integral_constant<int, P::kWeightHalves> {};

// wide[k] += acc[k] for every chain: the end of a chunk.
template <class P, int K>
inline __attribute__((always_inline)) void widen_all(typename P::Wide (&wide)[K], const typename P::Acc (&acc)[K]) {
#pragma GCC unroll 16
  for (int k = 0; k < K; ++k) wide[k] = P::widen(wide[k], acc[k]);
}

// The sum of every chain's long-running accumulator.
template <class P, int K>
inline uint64_t reduce_all(const typename P::Wide (&wide)[K]) {
  uint64_t total = 0;
#pragma GCC unroll 16
  for (int k = 0; k < K; ++k) total += P::reduce(wide[k]);
  return total;
}

template <class P, int M, int N>
uint64_t and_popcount_blocked(const void* a_bytes, const void* w_bytes, size_t len, size_t passes) {
  using Vec = typename P::Vec;
  constexpr int H = WeightHalves<P>::value;
  const Vec* a = static_cast<const Vec*>(a_bytes);
  const Vec* w = static_cast<const Vec*>(w_bytes);
  struct Halves {
    Vec h[2];
  };
  std::unique_ptr<Halves[]> halves;  // [n * len + i] when H == 2
  if constexpr (H == 2) {
    halves.reset(new Halves[static_cast<size_t>(N) * len]);
    for (size_t k = 0; k < static_cast<size_t>(N) * len; ++k) P::split(w[k], halves[k].h);
  }
  typename P::Wide wide[M * N];
#pragma GCC unroll 16
  for (int k = 0; k < M * N; ++k) wide[k] = P::zero_wide();
  for (size_t pass = 0; pass < passes; ++pass) {
    // Every pass must really reload and recompute: nothing may be hoisted out of this loop.
    asm volatile("" ::: "memory");
    for (size_t i0 = 0; i0 < len; i0 += P::kChunk) {
      const size_t end = len - i0 < P::kChunk ? len : i0 + P::kChunk;
      typename P::Acc acc[M * N];
#pragma GCC unroll 16
      for (int k = 0; k < M * N; ++k) acc[k] = P::zero();
      for (size_t i = i0; i < end; ++i) {
        Vec wv[N][H];
#pragma GCC unroll 16
        for (int n = 0; n < N; ++n)
#pragma GCC unroll 16
          for (int h = 0; h < H; ++h)
            wv[n][h] = H == 1 ? P::load(w + n * len + i) : P::load(&halves[n * len + i].h[h]);
#pragma GCC unroll 16
        for (int m = 0; m < M; ++m) {
          const Vec av = P::load(a + m * len + i);
#pragma GCC unroll 16
          for (int n = 0; n < N; ++n) {
            if constexpr (H == 1) {
              acc[m * N + n] = P::add_popcount(acc[m * N + n], P::and_(av, wv[n][0]));
            } else {
              acc[m * N + n] =
                  P::add_popcount_halves(acc[m * N + n], P::and_(av, wv[n][0]), P::and_(P::high_nibbles(av), wv[n][1]));
            }
          }
        }
      }
      widen_all<P>(wide, acc);
    }
  }
  return reduce_all<P>(wide);
}

// Dispatches a kPeakShapes index to K::run<M, N>(a, w, len, passes).
template <class K>
uint64_t run_peak_shape(int variant, const void* a, const void* w, size_t len, size_t passes) {
  switch (variant) {
    case 0: return K::template run<kPeakShapes[0][0], kPeakShapes[0][1]>(a, w, len, passes);
    case 1: return K::template run<kPeakShapes[1][0], kPeakShapes[1][1]>(a, w, len, passes);
    case 2: return K::template run<kPeakShapes[2][0], kPeakShapes[2][1]>(a, w, len, passes);
    case 3: return K::template run<kPeakShapes[3][0], kPeakShapes[3][1]>(a, w, len, passes);
    case 4: return K::template run<kPeakShapes[4][0], kPeakShapes[4][1]>(a, w, len, passes);
    case 5: return K::template run<kPeakShapes[5][0], kPeakShapes[5][1]>(a, w, len, passes);
    case 6: return K::template run<kPeakShapes[6][0], kPeakShapes[6][1]>(a, w, len, passes);
    case 7: return K::template run<kPeakShapes[7][0], kPeakShapes[7][1]>(a, w, len, passes);
  }
  return 0;
}
static_assert(kPeakShapeCount == 8, "run_peak_shape lists every shape");

template <class P>
struct AndPopcountBlocked {
  template <int M, int N>
  static uint64_t run(const void* a, const void* w, size_t len, size_t passes) {
    return and_popcount_blocked<P, M, N>(a, w, len, passes);
  }
};

template <class P>
uint64_t run_peak_variant(int variant, const void* a, const void* w, size_t len, size_t passes) {
  return run_peak_shape<AndPopcountBlocked<P>>(variant, a, w, len, passes);
}


}  // namespace bench
