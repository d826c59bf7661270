#include "lowbit/model_builder.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#endif

#include "model_file.h"
#include "ops/op_table.h"

namespace lowbit {
namespace {

template <typename T>
std::vector<uint8_t> to_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

}  // namespace

std::vector<uint32_t> pack_kernel_planes(const std::vector<int32_t>& codes, int32_t o, int32_t kh, int32_t kw,
                                         int32_t cg, QuantType q) {
  const KernelPlanes layout{static_cast<size_t>(kh), static_cast<size_t>(kw), static_cast<size_t>(cg), q.bits};
  std::vector<uint32_t> words(static_cast<size_t>(o) * layout.words_per_output(), 0);
  for (int32_t oc = 0; oc < o; ++oc)
    for (int32_t tap = 0; tap < kh * kw; ++tap)
      for (int32_t c = 0; c < cg; ++c) {
        const int32_t code = codes[(static_cast<size_t>(oc) * kh * kw + tap) * cg + c];
        write_code(words.data() + layout.plane_offset(oc, 0) + tap * layout.words_per_tap(), layout.words_per_plane(),
                   static_cast<size_t>(c), q, code);
      }
  return words;
}

std::vector<uint32_t> pack_pixel_planes(const int32_t* codes, size_t pixels, size_t channels, QuantType q) {
  const PixelPlanes layout{channels, q.bits};
  std::vector<uint32_t> words(pixels * layout.words_per_pixel(), 0);
  for (size_t p = 0; p < pixels; ++p)
    for (size_t c = 0; c < channels; ++c)
      write_code(words.data() + layout.plane_offset(p, 0), layout.words_per_plane(), c, q, codes[p * channels + c]);
  return words;
}

void unpack_pixel_planes(const uint32_t* words, size_t pixels, size_t channels, QuantType q, int32_t* codes) {
  const PixelPlanes layout{channels, q.bits};
  for (size_t p = 0; p < pixels; ++p)
    for (size_t c = 0; c < channels; ++c)
      codes[p * channels + c] = read_code(words + layout.plane_offset(p, 0), layout.words_per_plane(), c, q);
}

Status write_file_atomic(const std::string& path, const uint8_t* data, size_t size) {
  const std::string tmp = path + ".tmp";
#if defined(__unix__) || defined(__APPLE__)
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::Error(tmp + ": cannot create: " + std::strerror(errno));
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::Error(tmp + ": write failed: " + why);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::Error(tmp + ": cannot flush to disk");
  }
#else
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::Error(tmp + ": cannot create");
  const bool written = std::fwrite(data, 1, size, f) == size;
  if (std::fclose(f) != 0 || !written) {
    std::remove(tmp.c_str());
    return Status::Error(tmp + ": write failed");
  }
#endif
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::Error(path + ": cannot rename the temporary file into place");
  }
  return Status::Ok();
}

ModelBuilder::Id ModelBuilder::add_tensor(TensorDesc t) {
  graph_.tensors.push_back(std::move(t));
  return static_cast<Id>(graph_.tensors.size() - 1);
}

ModelBuilder::Id ModelBuilder::add_constant(TensorDesc t, std::vector<uint8_t> bytes) {
  if (!error_.empty()) return kNoTensor;
  if (bytes.size() != t.byte_size()) {
    error_ = "constant '" + t.name + "': " + std::to_string(bytes.size()) + " bytes for shape " + t.shape_string();
    return kNoTensor;
  }
  storage_.push_back(std::move(bytes));
  t.data = storage_.back().data();
  t.data_size = storage_.back().size();
  return add_tensor(std::move(t));
}

namespace {
bool set_dims(TensorDesc* t, const ModelBuilder::Dims& dims, std::string* error) {
  if (dims.empty() || dims.size() > static_cast<size_t>(kMaxRank)) {
    *error = "tensor '" + t->name + "': rank " + std::to_string(dims.size()) + " is not 1..4";
    return false;
  }
  t->rank = static_cast<int>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 1) {
      *error = "tensor '" + t->name + "': dims must be >= 1";
      return false;
    }
    t->dims[i] = dims[i];
  }
  return true;
}
}  // namespace

ModelBuilder::Id ModelBuilder::input(const std::string& name, const Dims& dims) {
  TensorDesc t;
  t.name = name;
  if (!error_.empty() || !set_dims(&t, dims, &error_)) return kNoTensor;
  const Id id = add_tensor(t);
  graph_.inputs.push_back(id);
  return id;
}

ModelBuilder::Id ModelBuilder::input_codes(const std::string& name, const Dims& dims, CodeSpec spec) {
  TensorDesc t;
  t.name = name;
  t.dtype = DType::kCodes;
  t.layout = Layout::kPixelPlanes;
  t.quant = spec.quant;
  t.scale = spec.scale;
  if (!error_.empty() || !set_dims(&t, dims, &error_)) return kNoTensor;
  const Id id = add_tensor(t);
  graph_.inputs.push_back(id);
  return id;
}

void ModelBuilder::output(Id tensor) {
  if (error_.empty() && tensor >= graph_.tensors.size()) error_ = "output names a tensor that does not exist";
  if (error_.empty()) graph_.outputs.push_back(tensor);
}

ModelBuilder::Id ModelBuilder::constant_f32(const std::string& name, const Dims& dims, const std::vector<float>& values) {
  TensorDesc t;
  t.name = name;
  if (!error_.empty() || !set_dims(&t, dims, &error_)) return kNoTensor;
  return add_constant(t, to_bytes(values));
}

ModelBuilder::Id ModelBuilder::constant_i32(const std::string& name, const Dims& dims,
                                            const std::vector<int32_t>& values) {
  TensorDesc t;
  t.name = name;
  t.dtype = DType::kI32;
  if (!error_.empty() || !set_dims(&t, dims, &error_)) return kNoTensor;
  return add_constant(t, to_bytes(values));
}

ModelBuilder::Id ModelBuilder::constant_weights(const std::string& name, const Dims& dims, QuantType quant,
                                                const std::vector<int32_t>& codes) {
  TensorDesc t;
  t.name = name;
  t.dtype = DType::kCodes;
  t.layout = Layout::kKernelPlanes;
  t.quant = quant;
  if (!error_.empty() || !set_dims(&t, dims, &error_)) return kNoTensor;
  if (t.rank != 4 || !quant.valid()) {
    error_ = "weights '" + name + "': need rank 4 [O, KH, KW, Cg] and a valid quantization";
    return kNoTensor;
  }
  if (codes.size() != t.element_count()) {
    error_ = "weights '" + name + "': " + std::to_string(codes.size()) + " codes for shape " + t.shape_string();
    return kNoTensor;
  }
  for (int32_t c : codes)
    if (c < quant.min_code() || c > quant.max_code() || (quant.kind == QuantKind::kBinary && c == 0)) {
      error_ = "weights '" + name + "': code " + std::to_string(c) + " outside the quantization's range";
      return kNoTensor;
    }
  return add_constant(t, to_bytes(pack_kernel_planes(codes, dims[0], dims[1], dims[2], dims[3], quant)));
}

ModelBuilder::Id ModelBuilder::add_op(OpType type, const std::vector<Id>& inputs, const std::string& out_name,
                                      const std::vector<int32_t>& ints, const std::vector<float>& floats,
                                      DType out_dtype, CodeSpec out_spec, const Dims& out_dims) {
  if (!error_.empty()) return kNoTensor;
  const OpTraits* traits = op_traits(type);
  const std::string who = std::string(traits ? traits->name : "?") + " '" + out_name + "'";
  if (!traits || static_cast<int>(inputs.size()) < traits->min_inputs ||
      static_cast<int>(inputs.size()) > traits->max_inputs || static_cast<int>(ints.size()) != traits->int_attrs ||
      static_cast<int>(floats.size()) != traits->float_attrs) {
    error_ = who + ": wrong number of inputs or attributes";
    return kNoTensor;
  }
  OpDesc op;
  op.type = type;
  op.inputs.assign(inputs.begin(), inputs.end());
  op.ints.assign(ints.begin(), ints.end());
  op.floats.assign(floats.begin(), floats.end());
  TensorDesc y;
  y.name = out_name;
  y.dtype = out_dtype;
  y.layout = out_dtype == DType::kCodes ? Layout::kPixelPlanes : Layout::kPlain;
  y.quant = out_spec.quant;
  y.scale = out_spec.scale;
  if (!out_dims.empty() && !set_dims(&y, out_dims, &error_)) return kNoTensor;

  OpView v{};
  v.op = &op;
  v.num_inputs = static_cast<int>(inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    const bool optional = static_cast<int>(k) >= traits->min_inputs;
    if (inputs[k] == kNoTensor && optional) continue;
    if (inputs[k] >= graph_.tensors.size()) {
      error_ = who + ": input " + std::to_string(k) + " does not exist";
      return kNoTensor;
    }
    v.in[k] = &graph_.tensors[inputs[k]];
  }
  v.out[0] = &y;
  InferredOutput out;
  std::string err;
  if (!traits->infer(v, &out, &err)) {
    error_ = who + ": " + err;
    return kNoTensor;
  }
  y.dtype = out.dtype;
  y.layout = out.dtype == DType::kCodes ? Layout::kPixelPlanes : Layout::kPlain;
  y.rank = out.rank;
  for (int d = 0; d < out.rank; ++d) y.dims[d] = out.dims[d];
  if (out.quant_known) {
    y.quant = out.quant;
    y.scale = out.scale;
  }
  if (y.dtype == DType::kCodes && (!y.quant.valid() || !(y.scale > 0.0f) || !std::isfinite(y.scale))) {
    error_ = who + ": output codes need a valid quantization and a positive scale";
    return kNoTensor;
  }
  const Id id = add_tensor(y);
  op.outputs = {id};
  graph_.ops.push_back(std::move(op));
  return id;
}

ModelBuilder::Id ModelBuilder::conv_op(OpType type, const std::string& name, const std::vector<Id>& inputs,
                                       const ConvParams& p, std::vector<int32_t> extra_ints, std::vector<float> floats,
                                       DType out_dtype, CodeSpec spec) {
  std::vector<int32_t> ints = {p.stride_h, p.stride_w,   p.pad_top,    p.pad_left, p.pad_bottom,
                               p.pad_right, p.dilation_h, p.dilation_w, p.groups};
  ints.insert(ints.end(), extra_ints.begin(), extra_ints.end());
  return add_op(type, inputs, name, ints, floats, out_dtype, spec);
}

ModelBuilder::Id ModelBuilder::conv2d(const std::string& name, Id x, Id weights, Id bias, const ConvParams& p,
                                      Activation act, float leaky_alpha) {
  return conv_op(OpType::kConv2D, name, {x, weights, bias}, p, {static_cast<int32_t>(act)}, {leaky_alpha},
                 DType::kF32, {});
}

ModelBuilder::Id ModelBuilder::dense(const std::string& name, Id x, Id weights, Id bias, Activation act,
                                     float leaky_alpha) {
  return add_op(OpType::kDense, {x, weights, bias}, name, {static_cast<int32_t>(act)}, {leaky_alpha}, DType::kF32);
}

ModelBuilder::Id ModelBuilder::qconv2d_codes(const std::string& name, Id x, Id weights, Id thresholds,
                                             const ConvParams& p, CodeSpec out) {
  return conv_op(OpType::kQConv2D, name, {x, weights, thresholds}, p, {}, {}, DType::kCodes, out);
}

ModelBuilder::Id ModelBuilder::qdense_codes(const std::string& name, Id x, Id weights, Id thresholds, CodeSpec out) {
  return add_op(OpType::kQDense, {x, weights, thresholds}, name, {}, {}, DType::kCodes, out);
}

ModelBuilder::Id ModelBuilder::qconv2d_float(const std::string& name, Id x, Id weights, Id scale, Id bias,
                                             const ConvParams& p) {
  return conv_op(OpType::kQConv2D, name, {x, weights, scale, bias}, p, {}, {}, DType::kF32, {});
}

ModelBuilder::Id ModelBuilder::qdense_float(const std::string& name, Id x, Id weights, Id scale, Id bias) {
  return add_op(OpType::kQDense, {x, weights, scale, bias}, name, {}, {}, DType::kF32);
}

ModelBuilder::Id ModelBuilder::affine(const std::string& name, Id x, Id scale, Id bias) {
  return add_op(OpType::kAffine, {x, scale, bias}, name, {}, {}, DType::kF32);
}

ModelBuilder::Id ModelBuilder::batchnorm(const std::string& name, Id x, const std::vector<float>& gamma,
                                         const std::vector<float>& beta, const std::vector<float>& mean,
                                         const std::vector<float>& var, float eps) {
  if (!error_.empty()) return kNoTensor;
  const size_t c = gamma.size();
  if (beta.size() != c || mean.size() != c || var.size() != c) {
    error_ = "batchnorm '" + name + "': parameter vectors differ in length";
    return kNoTensor;
  }
  std::vector<float> scale(c), bias(c);
  for (size_t i = 0; i < c; ++i) {
    scale[i] = gamma[i] / std::sqrt(var[i] + eps);
    bias[i] = beta[i] - mean[i] * scale[i];
  }
  const Dims dims = {static_cast<int32_t>(c)};
  const Id s = constant_f32(name + ".scale", dims, scale);
  const Id b = constant_f32(name + ".bias", dims, bias);
  return affine(name, x, s, b);
}

ModelBuilder::Id ModelBuilder::relu(const std::string& name, Id x) {
  return add_op(OpType::kRelu, {x}, name, {}, {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::leaky_relu(const std::string& name, Id x, float alpha) {
  return add_op(OpType::kLeakyRelu, {x}, name, {}, {alpha}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::sigmoid(const std::string& name, Id x) {
  return add_op(OpType::kSigmoid, {x}, name, {}, {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::softmax(const std::string& name, Id x) {
  return add_op(OpType::kSoftmax, {x}, name, {}, {}, DType::kF32);
}

namespace {
std::vector<int32_t> pool_ints(const PoolParams& p) {
  return {p.kh, p.kw, p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right, p.count_include_pad};
}
}  // namespace

ModelBuilder::Id ModelBuilder::max_pool(const std::string& name, Id x, const PoolParams& p) {
  return add_op(OpType::kMaxPool, {x}, name, pool_ints(p), {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::avg_pool(const std::string& name, Id x, const PoolParams& p) {
  return add_op(OpType::kAvgPool, {x}, name, pool_ints(p), {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::global_avg_pool(const std::string& name, Id x) {
  return add_op(OpType::kGlobalAvgPool, {x}, name, {}, {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::concat(const std::string& name, const std::vector<Id>& xs) {
  return add_op(OpType::kConcat, xs, name, {}, {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::space_to_depth(const std::string& name, Id x, int32_t block) {
  return add_op(OpType::kSpaceToDepth, {x}, name, {block}, {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::depth_to_space(const std::string& name, Id x, int32_t block, DepthToSpaceMode mode) {
  return add_op(OpType::kDepthToSpace, {x}, name, {block, static_cast<int32_t>(mode)}, {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::resize_nearest(const std::string& name, Id x, int32_t scale_h, int32_t scale_w) {
  return add_op(OpType::kResizeNearest, {x}, name, {scale_h, scale_w}, {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::add(const std::string& name, Id a, Id b) {
  return add_op(OpType::kAdd, {a, b}, name, {}, {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::mul(const std::string& name, Id a, Id b) {
  return add_op(OpType::kMul, {a, b}, name, {}, {}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::pad(const std::string& name, Id x, const std::vector<int32_t>& pads, float value) {
  return add_op(OpType::kPad, {x}, name, pads, {value}, DType::kF32);
}
ModelBuilder::Id ModelBuilder::reshape(const std::string& name, Id x, const Dims& dims) {
  return add_op(OpType::kReshape, {x}, name, {}, {}, DType::kF32, {}, dims);
}
ModelBuilder::Id ModelBuilder::quantize(const std::string& name, Id x, CodeSpec out, Rounding rounding) {
  return add_op(OpType::kQuantize, {x}, name, {static_cast<int32_t>(rounding)}, {}, DType::kCodes, out);
}
ModelBuilder::Id ModelBuilder::dequantize(const std::string& name, Id x) {
  return add_op(OpType::kDequantize, {x}, name, {}, {}, DType::kF32);
}

Status ModelBuilder::serialize(std::vector<uint8_t>* bytes) const {
  if (!error_.empty()) return Status::Error(error_);
  if (graph_.inputs.empty() || graph_.outputs.empty()) return Status::Error("a model needs inputs and outputs");
  Vec<uint32_t> order;
  Status s = verify_graph(graph_, &order);
  if (!s.ok) return s;
  *bytes = serialize_model(graph_);
  return Status::Ok();
}

Status ModelBuilder::write_file(const std::string& path) const {
  std::vector<uint8_t> bytes;
  Status s = serialize(&bytes);
  if (!s.ok) return Status::Error(path + ": " + s.message);
  return write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace lowbit
