// C++ API that assembles a lowbit model and writes .lbm files. Used by the converter and the tests.
// Each layer method checks its inputs through the same verification the loader runs, so a builder
// mistake surfaces at the call that made it (see error()).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "lowbit/graph.h"

namespace lowbit {

struct ConvParams {
  int32_t stride_h = 1, stride_w = 1;
  int32_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int32_t dilation_h = 1, dilation_w = 1;
  int32_t groups = 1;
  // "SAME"-style symmetric padding for an odd kernel at stride 1.
  static ConvParams same(int32_t kernel, int32_t stride = 1) {
    ConvParams p;
    p.stride_h = p.stride_w = stride;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = kernel / 2;
    return p;
  }
};

struct PoolParams {
  int32_t kh = 2, kw = 2, stride_h = 2, stride_w = 2;
  int32_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool count_include_pad = false;
};

// A code tensor's type: what its integers mean.
struct CodeSpec {
  QuantType quant;
  float scale = 1.0f;
};

class ModelBuilder {
 public:
  using Id = uint32_t;
  using Dims = std::vector<int32_t>;

  // Graph inputs: float or packed codes.
  Id input(const std::string& name, const Dims& dims);
  Id input_codes(const std::string& name, const Dims& dims, CodeSpec spec);
  void output(Id tensor);

  // Constants (copied into the builder).
  Id constant_f32(const std::string& name, const Dims& dims, const std::vector<float>& values);
  Id constant_i32(const std::string& name, const Dims& dims, const std::vector<int32_t>& values);
  // Quantized weights [O, KH, KW, Cg] given as integer codes in OHWI order; packed into kernel planes.
  Id constant_weights(const std::string& name, const Dims& dims, QuantType quant, const std::vector<int32_t>& codes);

  // Layers. Each returns its output tensor, named `name`.
  Id conv2d(const std::string& name, Id x, Id weights, Id bias, const ConvParams& p,
            Activation act = Activation::kNone, float leaky_alpha = 0.1f);
  Id dense(const std::string& name, Id x, Id weights, Id bias, Activation act = Activation::kNone,
           float leaky_alpha = 0.1f);
  // Quantized conv / dense producing codes through a threshold table int32 [O, 1 + levels-1].
  Id qconv2d_codes(const std::string& name, Id x, Id weights, Id thresholds, const ConvParams& p, CodeSpec out);
  Id qdense_codes(const std::string& name, Id x, Id weights, Id thresholds, CodeSpec out);
  // Quantized conv / dense producing floats: y = scale[o] * acc + bias[o] (bias may be kNoTensor).
  Id qconv2d_float(const std::string& name, Id x, Id weights, Id scale, Id bias, const ConvParams& p);
  Id qdense_float(const std::string& name, Id x, Id weights, Id scale, Id bias);
  Id affine(const std::string& name, Id x, Id scale, Id bias);
  // BatchNorm folded to a per-channel affine: scale = gamma / sqrt(var + eps), bias = beta - mean * scale.
  Id batchnorm(const std::string& name, Id x, const std::vector<float>& gamma, const std::vector<float>& beta,
               const std::vector<float>& mean, const std::vector<float>& var, float eps = 1e-5f);
  Id relu(const std::string& name, Id x);
  Id leaky_relu(const std::string& name, Id x, float alpha);
  Id sigmoid(const std::string& name, Id x);
  Id softmax(const std::string& name, Id x);
  Id max_pool(const std::string& name, Id x, const PoolParams& p);
  Id avg_pool(const std::string& name, Id x, const PoolParams& p);
  Id global_avg_pool(const std::string& name, Id x);
  Id concat(const std::string& name, const std::vector<Id>& xs);
  Id space_to_depth(const std::string& name, Id x, int32_t block);
  Id depth_to_space(const std::string& name, Id x, int32_t block, DepthToSpaceMode mode = DepthToSpaceMode::kDCR);
  Id resize_nearest(const std::string& name, Id x, int32_t scale_h, int32_t scale_w);
  Id add(const std::string& name, Id a, Id b);
  Id mul(const std::string& name, Id a, Id b);
  // pads: {before, after} for each dim of the shape right-aligned to rank 4 (8 values).
  Id pad(const std::string& name, Id x, const std::vector<int32_t>& pads, float value = 0.0f);
  Id reshape(const std::string& name, Id x, const Dims& dims);
  Id quantize(const std::string& name, Id x, CodeSpec out, Rounding rounding = Rounding::kHalfUp);
  Id dequantize(const std::string& name, Id x);

  // Adds any op; the output tensor is described by the op's own shape inference (codes outputs take
  // `out_spec`, pass-through ops inherit the input's). Returns kNoTensor and sets error() on failure.
  Id add_op(OpType type, const std::vector<Id>& inputs, const std::string& out_name, const std::vector<int32_t>& ints,
            const std::vector<float>& floats, DType out_dtype, CodeSpec out_spec = {}, const Dims& out_dims = {});

  const TensorDesc& tensor(Id id) const { return graph_.tensors.at(id); }
  const GraphDesc& graph() const { return graph_; }

  // The first error any call met (empty when all went well). Later calls after an error do nothing.
  const std::string& error() const { return error_; }

  // Verifies the whole graph and produces the file bytes.
  Status serialize(std::vector<uint8_t>* bytes) const;
  // Writes atomically: temporary file, fsync, rename.
  Status write_file(const std::string& path) const;

 private:
  Id add_tensor(TensorDesc t);
  Id add_constant(TensorDesc t, std::vector<uint8_t> bytes);
  Id conv_op(OpType type, const std::string& name, const std::vector<Id>& inputs, const ConvParams& p,
             std::vector<int32_t> extra_ints, std::vector<float> floats, DType out_dtype, CodeSpec spec);

  GraphDesc graph_;
  std::deque<std::vector<uint8_t>> storage_;  // constant bytes; deque keeps addresses stable
  std::string error_;
};

// Packs integer codes [O, KH, KW, Cg] (OHWI order) into the kernel-planes layout.
std::vector<uint32_t> pack_kernel_planes(const std::vector<int32_t>& codes, int32_t o, int32_t kh, int32_t kw,
                                         int32_t cg, QuantType q);
// Packs integer codes [pixels, C] into the pixel-planes layout, and back.
std::vector<uint32_t> pack_pixel_planes(const int32_t* codes, size_t pixels, size_t channels, QuantType q);
void unpack_pixel_planes(const uint32_t* words, size_t pixels, size_t channels, QuantType q, int32_t* codes);

// Writes bytes to path atomically (temporary file, fsync, rename).
Status write_file_atomic(const std::string& path, const uint8_t* data, size_t size);

}  // namespace lowbit
