// Builds ONNX/QONNX models in tests with the onnx protobuf API.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace lowbit::converter::test {

using Shape = std::vector<int64_t>;

// One node attribute.
struct Attr {
  std::string name;
  onnx::AttributeProto proto;
  static Attr i(const std::string& name, int64_t v);
  static Attr f(const std::string& name, float v);
  static Attr s(const std::string& name, const std::string& v);
  static Attr ints(const std::string& name, const std::vector<int64_t>& v);
};

constexpr const char* kQonnx = "qonnx.custom_op.general";

class OnnxMaker {
 public:
  explicit OnnxMaker(int64_t opset = 13);

  // A float32 input whose leading dim is the symbolic "batch".
  std::string input(const std::string& name, const Shape& dims);
  std::string constant(const std::string& name, const Shape& dims, const std::vector<float>& values);
  std::string constant_i64(const std::string& name, const Shape& dims, const std::vector<int64_t>& values);
  std::string node(const std::string& op, const std::vector<std::string>& inputs, const std::string& output,
                   const std::vector<Attr>& attrs = {}, const std::string& domain = "");
  void output(const std::string& name);
  void metadata(const std::string& key, const std::string& value);

  // QONNX Quant with scalar scale, zero point and bit width.
  std::string quant(const std::string& x, const std::string& out, float scale, int bits, bool is_signed, bool narrow = false,
                    const std::string& mode = "HALF_UP", float zero_point = 0.0f);
  // Quant / BipolarQuant with a scale tensor (per tensor or per channel).
  std::string quant_scaled(const std::string& x, const std::string& out, const Shape& scale_dims,
                           const std::vector<float>& scale, int bits, bool is_signed, bool narrow, const std::string& mode);
  std::string bipolar(const std::string& x, const std::string& out, const Shape& scale_dims, const std::vector<float>& scale);
  std::string conv(const std::string& x, const std::string& w, const std::string& bias, const std::string& out,
                   int64_t kernel, int64_t pad, int64_t stride = 1, int64_t group = 1);
  std::string batch_norm(const std::string& x, const std::string& out, const std::vector<float>& gamma,
                         const std::vector<float>& beta, const std::vector<float>& mean, const std::vector<float>& var,
                         float eps = 1e-5f);

  onnx::ModelProto& model() { return model_; }
  std::string bytes() const;
  void save(const std::string& path) const;

 private:
  onnx::GraphProto* graph() { return model_.mutable_graph(); }
  onnx::ModelProto model_;
  int counter_ = 0;
};

// Random data for test graphs.
class TestRng {
 public:
  explicit TestRng(uint32_t seed) : rng_(seed) {}
  std::vector<float> normal(size_t n, float stddev, float mean = 0.0f);
  std::vector<float> uniform(size_t n, float lo, float hi);
  // Multiples of 2^-shift in [lo, hi]: exact in float32 arithmetic.
  std::vector<float> dyadic(size_t n, int lo, int hi, int shift);
  std::mt19937& engine() { return rng_; }

 private:
  std::mt19937 rng_;
};

}  // namespace lowbit::converter::test
