#include "onnx_maker.h"

#include <cmath>
#include <fstream>
#include <stdexcept>

namespace lowbit::converter::test {

Attr Attr::i(const std::string& name, int64_t v) {
  Attr a{name, {}};
  a.proto.set_type(onnx::AttributeProto::INT);
  a.proto.set_i(v);
  return a;
}

Attr Attr::f(const std::string& name, float v) {
  Attr a{name, {}};
  a.proto.set_type(onnx::AttributeProto::FLOAT);
  a.proto.set_f(v);
  return a;
}

Attr Attr::s(const std::string& name, const std::string& v) {
  Attr a{name, {}};
  a.proto.set_type(onnx::AttributeProto::STRING);
  a.proto.set_s(v);
  return a;
}

Attr Attr::ints(const std::string& name, const std::vector<int64_t>& v) {
  Attr a{name, {}};
  a.proto.set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a.proto.add_ints(x);
  return a;
}

OnnxMaker::OnnxMaker(int64_t opset) {
  model_.set_ir_version(8);
  model_.set_producer_name("converter_tests");
  onnx::OperatorSetIdProto* std_opset = model_.add_opset_import();
  std_opset->set_domain("");
  std_opset->set_version(opset);
  onnx::OperatorSetIdProto* qonnx = model_.add_opset_import();
  qonnx->set_domain(kQonnx);
  qonnx->set_version(1);
  graph()->set_name("test");
}

std::string OnnxMaker::input(const std::string& name, const Shape& dims) {
  onnx::ValueInfoProto* in = graph()->add_input();
  in->set_name(name);
  onnx::TypeProto::Tensor* t = in->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (size_t k = 0; k < dims.size(); ++k) {
    onnx::TensorShapeProto::Dimension* d = t->mutable_shape()->add_dim();
    if (k == 0) d->set_dim_param("batch");
    else d->set_dim_value(dims[k]);
  }
  return name;
}

std::string OnnxMaker::constant(const std::string& name, const Shape& dims, const std::vector<float>& values) {
  onnx::TensorProto* t = graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return name;
}

std::string OnnxMaker::constant_i64(const std::string& name, const Shape& dims, const std::vector<int64_t>& values) {
  onnx::TensorProto* t = graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t v : values) t->add_int64_data(v);
  return name;
}

std::string OnnxMaker::node(const std::string& op, const std::vector<std::string>& inputs, const std::string& output,
                            const std::vector<Attr>& attrs, const std::string& domain) {
  onnx::NodeProto* n = graph()->add_node();
  n->set_op_type(op);
  n->set_name(output);
  n->set_domain(domain);
  for (const std::string& in : inputs) n->add_input(in);
  n->add_output(output);
  for (const Attr& a : attrs) {
    onnx::AttributeProto* p = n->add_attribute();
    *p = a.proto;
    p->set_name(a.name);
  }
  return output;
}

void OnnxMaker::output(const std::string& name) {
  onnx::ValueInfoProto* out = graph()->add_output();
  out->set_name(name);
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
}

void OnnxMaker::metadata(const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* e = model_.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

std::string OnnxMaker::quant(const std::string& x, const std::string& out, float scale, int bits, bool is_signed, bool narrow,
                             const std::string& mode, float zero_point) {
  const std::string id = out + ".q" + std::to_string(counter_++);
  const std::string zp = constant(id + ".zero_point", {}, {zero_point});
  const std::string s = constant(id + ".scale", {}, {scale});
  const std::string b = constant(id + ".bitwidth", {}, {static_cast<float>(bits)});
  return node("Quant", {x, s, zp, b}, out,
              {Attr::i("signed", is_signed), Attr::i("narrow", narrow), Attr::s("rounding_mode", mode)}, kQonnx);
}

std::string OnnxMaker::quant_scaled(const std::string& x, const std::string& out, const Shape& scale_dims,
                                    const std::vector<float>& scale, int bits, bool is_signed, bool narrow,
                                    const std::string& mode) {
  const std::string s = constant(out + ".scale", scale_dims, scale);
  const std::string zp = constant(out + ".zero_point", {}, {0.0f});
  const std::string b = constant(out + ".bitwidth", {}, {static_cast<float>(bits)});
  return node("Quant", {x, s, zp, b}, out,
              {Attr::i("signed", is_signed), Attr::i("narrow", narrow), Attr::s("rounding_mode", mode)}, kQonnx);
}

std::string OnnxMaker::bipolar(const std::string& x, const std::string& out, const Shape& scale_dims,
                               const std::vector<float>& scale) {
  return node("BipolarQuant", {x, constant(out + ".scale", scale_dims, scale)}, out, {}, kQonnx);
}

std::string OnnxMaker::conv(const std::string& x, const std::string& w, const std::string& bias, const std::string& out,
                            int64_t kernel, int64_t pad, int64_t stride, int64_t group) {
  std::vector<std::string> inputs = {x, w};
  if (!bias.empty()) inputs.push_back(bias);
  return node("Conv", inputs, out,
              {Attr::ints("kernel_shape", {kernel, kernel}), Attr::ints("pads", {pad, pad, pad, pad}),
               Attr::ints("strides", {stride, stride}), Attr::i("group", group)});
}

std::string OnnxMaker::batch_norm(const std::string& x, const std::string& out, const std::vector<float>& gamma,
                                  const std::vector<float>& beta, const std::vector<float>& mean,
                                  const std::vector<float>& var, float eps) {
  const Shape c = {static_cast<int64_t>(gamma.size())};
  return node("BatchNormalization",
              {x, constant(out + ".gamma", c, gamma), constant(out + ".beta", c, beta), constant(out + ".mean", c, mean),
               constant(out + ".var", c, var)},
              out, {Attr::f("epsilon", eps)});
}

std::string OnnxMaker::bytes() const {
  std::string s;
  if (!model_.SerializeToString(&s)) throw std::runtime_error("cannot serialize the test model");
  return s;
}

void OnnxMaker::save(const std::string& path) const {
  std::ofstream f(path, std::ios::binary);
  f << bytes();
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::vector<float> TestRng::normal(size_t n, float stddev, float mean) {
  std::normal_distribution<float> d(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng_);
  return v;
}

std::vector<float> TestRng::uniform(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng_);
  return v;
}

std::vector<float> TestRng::dyadic(size_t n, int lo, int hi, int shift) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = std::ldexp(static_cast<float>(d(rng_)), -shift);
  return v;
}

}  // namespace lowbit::converter::test
