#include "lowbit_models.h"

#include <cmath>
#include <stdexcept>

namespace bench {

using lowbit::ConvParams;
using lowbit::ModelBuilder;
using lowbit::QuantKind;
using lowbit::QuantType;
using Id = ModelBuilder::Id;

const lowbit::CodeSpec kA2{{2, QuantKind::kUnsigned}, 2.0f / 3.0f};

const std::vector<BitConfig>& bit_configs() {
  static const std::vector<BitConfig> configs = {
      {"W1A1", {1, QuantKind::kBinary}, {{1, QuantKind::kUnsigned}, 1.0f}},
      {"W1A2", {1, QuantKind::kBinary}, kA2},
      {"W2A2", {2, QuantKind::kSignedNarrow}, kA2},
  };
  return configs;
}

namespace {

// Mean of code^2 over the uniform distribution of a type's codes.
double mean_square(QuantType q) {
  double sum = 0.0;
  int count = 0;
  for (int c = q.min_code(); c <= q.max_code(); ++c) {
    if (q.kind == QuantKind::kBinary && c == 0) continue;
    sum += static_cast<double>(c) * c;
    ++count;
  }
  return sum / count;
}

std::vector<int32_t> uniform_codes(std::mt19937& rng, size_t n, QuantType q) {
  std::vector<int32_t> v(n);
  if (q.kind == QuantKind::kBinary) {
    std::bernoulli_distribution sign;
    for (int32_t& c : v) c = sign(rng) ? 1 : -1;
  } else {
    std::uniform_int_distribution<int32_t> code(q.min_code(), q.max_code());
    for (int32_t& c : v) c = code(rng);
  }
  return v;
}

// Increasing thresholds around the accumulator's spread (standard deviation `sd` for uniform random
// codes) so every output code occurs: about the quartiles of the accumulator, jittered per channel.
std::vector<int32_t> random_thresholds(std::mt19937& rng, int cout, double sd) {
  std::uniform_real_distribution<double> jitter(-0.15, 0.15);
  std::vector<int32_t> table;
  for (int o = 0; o < cout; ++o) {
    table.push_back(lowbit::kThresholdIncreasing);
    int32_t last = INT32_MIN;
    for (double z : {-0.6745, 0.0, 0.6745}) {
      int32_t t = static_cast<int32_t>(std::lround((z + jitter(rng)) * sd));
      if (t <= last) t = last + 1;
      table.push_back(t);
      last = t;
    }
  }
  return table;
}

double accumulator_sd(int taps, QuantType w, QuantType a) {
  return std::sqrt(static_cast<double>(taps) * mean_square(w) * mean_square(a));
}

size_t product(const std::vector<int32_t>& dims) {
  size_t n = 1;
  for (int32_t d : dims) n *= static_cast<size_t>(d);
  return n;
}

}  // namespace

QConvData random_qconv_data(const ConvShape& s, const BitConfig& bits, uint32_t seed) {
  std::mt19937 rng(seed);
  QConvData d;
  d.act_codes = uniform_codes(rng, static_cast<size_t>(s.h) * s.w * s.cin, bits.activations.quant);
  d.weight_codes = uniform_codes(rng, static_cast<size_t>(s.cout) * s.k * s.k * s.cin, bits.weights);
  d.thresholds = random_thresholds(rng, s.cout, accumulator_sd(s.k * s.k * s.cin, bits.weights, bits.activations.quant));
  return d;
}

ModelBuilder qconv_layer_model(const ConvShape& s, const BitConfig& bits, const QConvData& data) {
  ModelBuilder b;
  const Id x = b.input_codes("x", {1, s.h, s.w, s.cin}, bits.activations);
  const Id w = b.constant_weights("w", {s.cout, s.k, s.k, s.cin}, bits.weights, data.weight_codes);
  const Id t = b.constant_i32("thresholds", {s.cout, 4}, data.thresholds);
  b.output(b.qconv2d_codes("y", x, w, t, ConvParams::same(s.k, s.stride), kA2));
  return b;
}

ModelBuilder float_conv_layer_model(const ConvShape& s, const std::vector<float>& weights_ohwi) {
  ModelBuilder b;
  const Id x = b.input("x", {1, s.h, s.w, s.cin});
  const Id w = b.constant_f32("w", {s.cout, s.k, s.k, s.cin}, weights_ohwi);
  b.output(b.conv2d("y", x, w, lowbit::kNoTensor, ConvParams::same(s.k, s.stride)));
  return b;
}

std::vector<int32_t> apply_thresholds(const std::vector<float>& acc, const std::vector<int32_t>& table, int cout) {
  std::vector<int32_t> codes(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) {
    const int32_t* row = &table[(i % static_cast<size_t>(cout)) * 4];
    const double a = acc[i];
    int level = 0;
    if (row[0] == lowbit::kThresholdConstant) {
      level = row[1];
    } else {
      for (int j = 1; j <= 3; ++j) level += row[0] == lowbit::kThresholdIncreasing ? a >= row[j] : a <= row[j];
    }
    codes[i] = level;  // 2-bit unsigned: code = level
  }
  return codes;
}

// ---- LowbitRunner ----

LowbitRunner::LowbitRunner(const ModelBuilder& builder) {
  if (!builder.error().empty()) throw std::runtime_error("lowbit builder: " + builder.error());
  std::vector<uint8_t> bytes;
  const lowbit::Status s = builder.serialize(&bytes);
  if (!s.ok) throw std::runtime_error("lowbit serialize: " + s.message);
  std::string error;
  model_ = lowbit::Model::load(bytes.data(), bytes.size(), &error);
  if (!model_) throw std::runtime_error("lowbit load: " + error);
}

void LowbitRunner::set_threads(int threads) {
  if (!model_.set_threads(threads)) throw std::runtime_error(std::string("lowbit_set_threads: ") + lowbit_last_error());
}

void LowbitRunner::set_input(const std::vector<float>& values) {
  if (!model_.set_input(0, values)) throw std::runtime_error(std::string("lowbit_set_input_f32: ") + lowbit_last_error());
}

void LowbitRunner::run() {
  if (lowbit_run(model_.get()) < 0) throw std::runtime_error(std::string("lowbit_run: ") + lowbit_last_error());
}

std::vector<float> LowbitRunner::output() const { return model_.output(0); }

// ---- networks ----

namespace {

// Random layers of a W1A2 network.
class NetMaker {
 public:
  explicit NetMaker(uint32_t seed) : rng_(seed) {}

  Id normal(ModelBuilder& b, const std::string& name, const std::vector<int32_t>& dims, float stddev, float mean = 0) {
    std::normal_distribution<float> d(mean, stddev);
    std::vector<float> v(product(dims));
    for (float& x : v) x = d(rng_);
    return b.constant_f32(name, dims, v);
  }

  // Float conv on the image, BatchNorm as an affine, then the 2-bit activation quantizer.
  Id stem(ModelBuilder& b, const std::string& name, Id image, int o, int k, int stride) {
    const int c = b.tensor(image).last_dim();
    const Id w = normal(b, name + ".w", {o, k, k, c}, 1.0f / std::sqrt(static_cast<float>(k * k * c)));
    Id x = b.conv2d(name, image, w, lowbit::kNoTensor, ConvParams::same(k, stride));
    x = b.affine(name + ".bn", x, normal(b, name + ".bn.scale", {o}, 0.2f, 1.0f), normal(b, name + ".bn.bias", {o}, 0.3f, 0.8f));
    return b.quantize(name + ".act", x, kA2);
  }

  Id binary_weights(ModelBuilder& b, const std::string& name, int o, int k, int c) {
    const BitConfig& w1a2 = bit_configs()[1];
    return b.constant_weights(name, {o, k, k, c}, w1a2.weights, uniform_codes(rng_, static_cast<size_t>(o) * k * k * c, w1a2.weights));
  }

  // Binary-weight conv, 2-bit codes -> 2-bit codes through random increasing thresholds.
  Id qconv(ModelBuilder& b, const std::string& name, Id x, int o, int k, int stride = 1) {
    const int c = b.tensor(x).last_dim();
    const Id w = binary_weights(b, name + ".w", o, k, c);
    const std::vector<int32_t> table = random_thresholds(rng_, o, accumulator_sd(k * k * c, {1, QuantKind::kBinary}, kA2.quant));
    const Id t = b.constant_i32(name + ".thresholds", {o, 4}, table);
    return b.qconv2d_codes(name, x, w, t, ConvParams::same(k, stride), kA2);
  }

  // Binary-weight conv, codes -> float (y = scale * acc + bias), scaled to unit spread.
  Id qconv_float(ModelBuilder& b, const std::string& name, Id x, int o, int k, int stride = 1) {
    const int c = b.tensor(x).last_dim();
    const Id w = binary_weights(b, name + ".w", o, k, c);
    const float sd = static_cast<float>(accumulator_sd(k * k * c, {1, QuantKind::kBinary}, kA2.quant));
    const Id scale = normal(b, name + ".scale", {o}, 0.1f / sd, 0.5f / sd);
    const Id bias = normal(b, name + ".bias", {o}, 0.2f);
    return b.qconv2d_float(name, x, w, scale, bias, ConvParams::same(k, stride));
  }

  // ResNet basic block on codes; `stride` 2 halves the resolution and projects the skip.
  Id basic_block(ModelBuilder& b, const std::string& name, Id x, int o, int stride) {
    Id y = qconv(b, name + ".conv1", x, o, 3, stride);
    y = qconv_float(b, name + ".conv2", y, o, 3);
    const Id skip = stride == 1 && b.tensor(x).last_dim() == o ? b.dequantize(name + ".skip", x)
                                                              : qconv_float(b, name + ".down", x, o, 1, stride);
    return b.quantize(name + ".act", b.add(name + ".add", skip, y), kA2);
  }

 private:
  std::mt19937 rng_;
};

}  // namespace

ModelBuilder lmnet_v1_w1a2(uint32_t seed) {
  NetMaker z(seed);
  ModelBuilder b;
  const Id image = b.input("image", {1, 32, 32, 3});
  Id x = z.stem(b, "conv1", image, 32, 3, 1);
  x = z.qconv(b, "conv2", x, 64, 3);
  x = b.space_to_depth("s2d1", x, 2);
  x = z.qconv(b, "conv3", x, 128, 3);
  x = z.qconv(b, "conv4", x, 64, 3);
  x = b.space_to_depth("s2d2", x, 2);
  x = z.qconv(b, "conv5", x, 128, 3);
  x = b.space_to_depth("s2d3", x, 2);
  x = z.qconv(b, "conv6", x, 64, 1);
  // conv7: the float classifier (1x1, bias) on dequantized codes, then global average pooling.
  x = b.dequantize("conv6.float", x);
  x = b.conv2d("conv7", x, z.normal(b, "conv7.w", {10, 1, 1, 64}, 0.2f), z.normal(b, "conv7.b", {10}, 0.1f),
               ConvParams::same(1));
  x = b.global_avg_pool("pool", x);
  b.output(b.reshape("logits", x, {1, 10}));
  return b;
}

ModelBuilder resnet18_w1a2(uint32_t seed) {
  NetMaker z(seed);
  ModelBuilder b;
  const Id image = b.input("image", {1, 224, 224, 3});
  Id x = z.stem(b, "stem", image, 64, 7, 2);  // 112x112x64 codes
  lowbit::PoolParams pool;
  pool.kh = pool.kw = 3;
  pool.stride_h = pool.stride_w = 2;
  pool.pad_top = pool.pad_left = pool.pad_bottom = pool.pad_right = 1;
  x = b.max_pool("stem.pool", x, pool);  // 56x56x64
  const int widths[] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    const std::string name = "stage" + std::to_string(stage + 1);
    x = z.basic_block(b, name + ".block1", x, widths[stage], stage == 0 ? 1 : 2);
    x = z.basic_block(b, name + ".block2", x, widths[stage], 1);
  }
  x = b.dequantize("head.float", x);
  x = b.global_avg_pool("head.pool", x);
  x = b.reshape("head.flat", x, {1, 512});
  x = b.dense("fc", x, z.normal(b, "fc.w", {1000, 512}, 0.05f), z.normal(b, "fc.b", {1000}, 0.01f));
  b.output(x);
  return b;
}

std::vector<float> random_image(int h, int w, int c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(h) * w * c);
  for (float& p : v) p = pixel(rng);
  return v;
}

}  // namespace bench
