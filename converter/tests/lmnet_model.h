// An LmnetV1Quantize-shaped QONNX graph as the trainer exports it (docs/onnx-interchange.md;
// random weights), shared by the end-to-end tests.
#pragma once

#include "onnx_maker.h"

namespace lowbit::converter::test {

constexpr float kActScale = 2.0f / 3.0f;  // 2 bits, max 2.0

// LmnetV1Quantize (REFERENCE.md §2) on a 1x32x32 image with 10 classes, W1A2.
class LmnetV1Onnx {
 public:
  explicit LmnetV1Onnx(uint32_t seed) : rng_(seed) {}

  OnnxMaker make() {
    m_.input("input", {1, 1, 32, 32});
    std::string x = block("input", "conv1", 1, 32, 3);
    x = block(x, "conv2", 32, 64, 3);
    x = m_.node("SpaceToDepth", {x}, "s2d1", {Attr::i("blocksize", 2)});
    x = block(x, "conv3", 256, 128, 3);
    x = block(x, "conv4", 128, 64, 3);
    x = m_.node("SpaceToDepth", {x}, "s2d2", {Attr::i("blocksize", 2)});
    x = block(x, "conv5", 256, 128, 3);
    x = m_.node("SpaceToDepth", {x}, "s2d3", {Attr::i("blocksize", 2)});
    // conv6 keeps a float ReLU activation; conv7 is the float classifier with bias.
    conv_bn(x, "conv6", 512, 64, 1);
    m_.node("Relu", {"conv6.bn"}, "conv6.relu");
    m_.conv("conv6.relu", m_.constant("conv7.weight", {10, 64, 1, 1}, rng_.normal(640, 0.2f)),
            m_.constant("conv7.bias", {10}, rng_.normal(10, 0.1f)), "conv7", 1, 0);
    m_.node("GlobalAveragePool", {"conv7"}, "pool");
    m_.node("Flatten", {"pool"}, "logits", {Attr::i("axis", 1)});
    m_.output("logits");
    m_.metadata("lowbit.task", "classification");
    m_.metadata("lowbit.network", "LmnetV1Quantize");
    m_.metadata("lowbit.classes", R"(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                      "Sneaker", "Bag", "Ankle boot"])");
    m_.metadata("lowbit.preprocess", R"({"channels": 1, "input_size": [32, 32], "resize": "none", "pad": [2, 2, 2, 2],
                                         "pad_value": 0, "scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530]})");
    m_.metadata("lowbit.config", "network: LmnetV1Quantize\n");
    return m_;
  }

  // A pre-processed Fashion-MNIST-like image: padded, normalized.
  std::vector<float> image() {
    std::vector<float> x(32 * 32, (0.0f - 0.2860f) / 0.3530f);
    std::uniform_int_distribution<int> pixel(0, 255);
    for (int y = 2; y < 30; ++y)
      for (int c = 2; c < 30; ++c)
        x[static_cast<size_t>(y * 32 + c)] = (static_cast<float>(pixel(rng_.engine())) * 0.00392156862745098f - 0.2860f) / 0.3530f;
    return x;
  }

 private:
  void conv_bn(const std::string& x, const std::string& name, int64_t cin, int64_t cout, int64_t kernel) {
    const size_t wn = static_cast<size_t>(cout * cin * kernel * kernel);
    const std::vector<float> w = rng_.normal(wn, 0.1f);
    float mean_abs = 0;  // the exporter writes alpha = mean(|w|) per output channel
    std::vector<float> alpha(static_cast<size_t>(cout));
    for (size_t o = 0; o < alpha.size(); ++o) {
      mean_abs = 0;
      for (size_t i = 0; i < wn / alpha.size(); ++i) mean_abs += std::fabs(w[o * (wn / alpha.size()) + i]);
      alpha[o] = mean_abs / static_cast<float>(wn / alpha.size());
    }
    const std::string wq = m_.bipolar(m_.constant(name + ".weight", {cout, cin, kernel, kernel}, w), name + ".weight_q",
                                      {cout, 1, 1, 1}, alpha);
    m_.conv(x, wq, "", name, kernel, kernel / 2);
    // Running statistics on the scale of the conv output (binary weights, 2-bit inputs).
    const float spread = 0.08f * std::sqrt(static_cast<float>(cin * kernel * kernel));
    m_.batch_norm(name, name + ".bn", rng_.uniform(static_cast<size_t>(cout), 0.5f, 1.5f),
                  rng_.normal(static_cast<size_t>(cout), 0.3f, 0.8f), rng_.normal(static_cast<size_t>(cout), spread * 0.5f),
                  rng_.uniform(static_cast<size_t>(cout), spread * spread * 0.5f, spread * spread * 1.5f));
  }

  // conv → BatchNorm → 2-bit activation quantizer. conv1 sees the float image with the same nodes;
  // the converter makes it a float conv.
  std::string block(const std::string& x, const std::string& name, int64_t cin, int64_t cout, int64_t kernel) {
    conv_bn(x, name, cin, cout, kernel);
    return m_.quant(name + ".bn", name + ".act", kActScale, 2, false);
  }

  TestRng rng_;
  OnnxMaker m_;
};

}  // namespace lowbit::converter::test
