// The lowbit side of the benchmark: single-op layer models and whole networks with random
// weights, built with lowbit::ModelBuilder and run through the public C API.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lowbit/lowbit.hpp"
#include "lowbit/model_builder.h"

namespace bench {

// One convolution: N = 1, NHWC, SAME padding (k/2 on every side), square kernel and stride.
struct ConvShape {
  int h, w, cin, cout, k, stride;
  int pad() const { return k / 2; }
  int oh() const { return (h + 2 * pad() - k) / stride + 1; }
  int ow() const { return (w + 2 * pad() - k) / stride + 1; }
  // Multiply-accumulates of one run: OH*OW*Cout*KH*KW*Cin.
  double macs() const { return static_cast<double>(oh()) * ow() * cout * k * k * cin; }
};

// A weight x activation width pair of a quantized layer.
struct BitConfig {
  std::string name;             // "W1A2"
  lowbit::QuantType weights;
  lowbit::CodeSpec activations;  // the layer's input codes
};
// W1A1 (binary x 1-bit unsigned), W1A2 (binary x 2-bit unsigned), W2A2 (2-bit signed-narrow,
// i.e. ternary, x 2-bit unsigned).
const std::vector<BitConfig>& bit_configs();

// The output codes every benchmarked quantized layer produces: 2-bit unsigned, scale 2/3 (Blueoil).
extern const lowbit::CodeSpec kA2;

// Random integer codes of one quantized layer, in the orders ModelBuilder and oneDNN both take.
struct QConvData {
  std::vector<int32_t> act_codes;     // input, NHWC
  std::vector<int32_t> weight_codes;  // OHWI
  std::vector<int32_t> thresholds;    // [cout, 4]: direction, 3 thresholds (increasing)
};
QConvData random_qconv_data(const ConvShape& s, const BitConfig& bits, uint32_t seed);

// One QConv2D (codes in -> thresholded 2-bit codes out) reading a graph input of codes.
lowbit::ModelBuilder qconv_layer_model(const ConvShape& s, const BitConfig& bits, const QConvData& data);
// One float Conv2D without bias reading a float graph input.
lowbit::ModelBuilder float_conv_layer_model(const ConvShape& s, const std::vector<float>& weights_ohwi);

// Output codes of a threshold table applied to exact accumulators (NHWC, channel fastest).
std::vector<int32_t> apply_thresholds(const std::vector<float>& acc, const std::vector<int32_t>& table, int cout);

// A loaded model. Throws std::runtime_error with the runtime's message on failure.
class LowbitRunner {
 public:
  explicit LowbitRunner(const lowbit::ModelBuilder& builder);
  void set_threads(int threads);
  void set_input(const std::vector<float>& values);  // input 0; codes inputs are quantized
  void run();
  std::vector<float> output() const;                 // output 0, dequantized
  float output_scale() const { return model_.output_info(0).scale; }

 private:
  lowbit::Model model_;
};

// Whole networks with random weights (W1A2, float first and last layers), input 1xHxWx3 float.
//  * LmnetV1Quantize at 32x32 (REFERENCE.md §2), 10 classes.
//  * ResNet-18-shaped at 224x224: float 7x7/2 stem + BN + quantizer, 3x3/2 max pool on codes,
//    4 stages x 2 basic blocks (64, 128, 256, 512); a block is qconv 3x3 (codes) -> qconv 3x3
//    (float) + skip -> quantizer; downsampling blocks use stride-2 qconvs and a stride-2 1x1
//    binary projection on the skip; global average pool, float dense 1000.
lowbit::ModelBuilder lmnet_v1_w1a2(uint32_t seed);
lowbit::ModelBuilder resnet18_w1a2(uint32_t seed);

// Random float input of a network's image input.
std::vector<float> random_image(int h, int w, int c, uint32_t seed);

}  // namespace bench
