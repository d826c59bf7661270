// The oneDNN baselines: one convolution per layer (fp32, and int8 as u8 activations x s8 weights)
// and whole fp32 networks built from convolution / pooling / inner-product primitives.
//
// As a user would set it up: activations NHWC (format_tag::nhwc) fixed, weights format_tag::any so
// oneDNN picks its preferred blocked layout, weights reordered into it once at construction
// (outside any timing). run() is one primitive execution (per layer, or the network's primitives
// in order) plus stream.wait().
//
// Threading: Debian's libdnnl is built with the OpenMP CPU runtime (libgomp); the thread count is
// the calling thread's OpenMP max-threads, so callers set omp_set_num_threads(t) before
// constructing (oneDNN sizes its work partitioning at primitive creation) and keep it while running.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "lowbit_models.h"

namespace bench {

enum class OnednnPrecision {
  kF32,  // f32 src, weights, dst
  kS8,   // u8 src, s8 weights, u8 dst with a per-tensor output scale
};

class OnednnConv {
 public:
  // src NHWC and weights OHWI as values; for kS8 they are rounded and clamped to u8 / s8.
  OnednnConv(const dnnl::engine& engine, const ConvShape& s, OnednnPrecision precision,
             const std::vector<float>& src_nhwc, const std::vector<float>& weights_ohwi);
  void run(dnnl::stream& stream);
  std::vector<float> output() const;  // dst NHWC as floats
  std::string impl() const { return impl_; }

 private:
  dnnl::primitive conv_;
  std::unordered_map<int, dnnl::memory> args_;
  dnnl::memory dst_;
  OnednnPrecision precision_;
  std::string impl_;
};

// An fp32 network: a chain of primitives over NHWC activations, built layer by layer.
class OnednnNet {
 public:
  enum class Act { kNone, kRelu, kClip2 };  // kClip2 = clip(x, 0, 2), the float form of the 2-bit quantizer

  OnednnNet(const dnnl::engine& engine, uint32_t seed) : engine_(engine), rng_(seed) {}
  dnnl::memory input(int h, int w, int c);
  // Conv with bias and an optional residual added before the activation (binary_add post-op).
  dnnl::memory conv(const dnnl::memory& x, int cout, int k, int stride, Act act, const dnnl::memory* residual = nullptr);
  dnnl::memory max_pool(const dnnl::memory& x, int k, int stride, int pad);
  dnnl::memory global_avg_pool(const dnnl::memory& x);
  dnnl::memory space_to_depth(const dnnl::memory& x, int block);  // a strided reorder
  dnnl::memory dense(const dnnl::memory& x, int out);
  void set_input(const std::vector<float>& values);
  void run(dnnl::stream& stream);
  // Implementation names of the convolutions, e.g. "jit:avx512_core" (distinct, in order).
  std::string conv_impls() const;

 private:
  struct Step {
    dnnl::primitive primitive;
    std::unordered_map<int, dnnl::memory> args;
  };
  dnnl::memory weights(const dnnl::memory::dims& dims, dnnl::memory::format_tag user_tag,
                       const dnnl::memory::desc& wanted, float stddev);
  dnnl::memory bias(int n);

  dnnl::engine engine_;
  std::mt19937 rng_;
  dnnl::memory input_;
  std::vector<Step> steps_;
  std::vector<std::string> conv_impls_;
};

// The fp32 counterparts of lowbit_models.h's networks (same layer shapes; see the .cpp).
OnednnNet lmnet_v1_f32(const dnnl::engine& engine, uint32_t seed);
OnednnNet resnet18_f32(const dnnl::engine& engine, uint32_t seed);

}  // namespace bench
