#include "onednn_baseline.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace bench {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

memory::desc nhwc(int h, int w, int c, dt type = dt::f32) { return memory::desc({1, c, h, w}, type, tag::nhwc); }

// Copies `values` into a fresh memory of `desc` (dense, element type f32, u8 or s8).
memory filled(const dnnl::engine& engine, const memory::desc& desc, const std::vector<float>& values) {
  memory m(desc, engine);
  const memory::data_type type = desc.data_type();
  if (type == dt::f32) {
    std::memcpy(m.get_data_handle(), values.data(), values.size() * sizeof(float));
  } else if (type == dt::u8) {
    auto* p = static_cast<uint8_t*>(m.get_data_handle());
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<uint8_t>(std::clamp(std::lround(values[i]), 0L, 255L));
  } else {
    auto* p = static_cast<int8_t*>(m.get_data_handle());
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<int8_t>(std::clamp(std::lround(values[i]), -128L, 127L));
  }
  return m;
}

// Reorders `user` into the layout a primitive asked for (once, at construction).
memory reordered(const dnnl::engine& engine, const memory& user, const memory::desc& wanted) {
  if (user.get_desc() == wanted) return user;
  memory from = user, m(wanted, engine);
  dnnl::stream s(engine);
  dnnl::reorder(from, m).execute(s, from, m);
  s.wait();
  return m;
}

}  // namespace

// ---- one convolution ----

OnednnConv::OnednnConv(const dnnl::engine& engine, const ConvShape& s, OnednnPrecision precision,
                       const std::vector<float>& src_nhwc, const std::vector<float>& weights_ohwi)
    : precision_(precision) {
  const bool s8 = precision == OnednnPrecision::kS8;
  const memory::desc src_md = nhwc(s.h, s.w, s.cin, s8 ? dt::u8 : dt::f32);
  const memory::desc dst_md = nhwc(s.oh(), s.ow(), s.cout, s8 ? dt::u8 : dt::f32);
  const memory::dims wdims = {s.cout, s.cin, s.k, s.k};
  const memory::desc any_weights(wdims, s8 ? dt::s8 : dt::f32, tag::any);
  const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                             src_md, any_weights, dst_md, {s.stride, s.stride}, {s.pad(), s.pad()},
                                             {s.pad(), s.pad()});
  dnnl::primitive_attr attr;
  // Requantization of the s32 accumulator to u8 (a per-tensor scale, as a quantized model has).
  if (s8) attr.set_output_scales(0, {1.0f / 16.0f});
  const dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
  impl_ = pd.impl_info_str();
  const memory user_weights = filled(engine, memory::desc(wdims, s8 ? dt::s8 : dt::f32, tag::ohwi), weights_ohwi);
  dst_ = memory(pd.dst_desc(), engine);
  args_ = {{DNNL_ARG_SRC, filled(engine, pd.src_desc(), src_nhwc)},
           {DNNL_ARG_WEIGHTS, reordered(engine, user_weights, pd.weights_desc())},
           {DNNL_ARG_DST, dst_}};
  if (pd.scratchpad_desc().get_size() > 0) args_.emplace(DNNL_ARG_SCRATCHPAD, memory(pd.scratchpad_desc(), engine));
  conv_ = dnnl::convolution_forward(pd);
}

void OnednnConv::run(dnnl::stream& stream) {
  conv_.execute(stream, args_);
  stream.wait();
}

std::vector<float> OnednnConv::output() const {
  const size_t n = dst_.get_desc().get_size() / (precision_ == OnednnPrecision::kS8 ? 1 : sizeof(float));
  std::vector<float> v(n);
  if (precision_ == OnednnPrecision::kS8) {
    const auto* p = static_cast<const uint8_t*>(dst_.get_data_handle());
    for (size_t i = 0; i < n; ++i) v[i] = p[i];
  } else {
    std::memcpy(v.data(), dst_.get_data_handle(), n * sizeof(float));
  }
  return v;
}

// ---- networks ----

memory OnednnNet::weights(const memory::dims& dims, tag user_tag, const memory::desc& wanted, float stddev) {
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(static_cast<size_t>(memory::desc(dims, dt::f32, user_tag).get_size() / sizeof(float)));
  for (float& x : v) x = d(rng_);
  return reordered(engine_, filled(engine_, memory::desc(dims, dt::f32, user_tag), v), wanted);
}

memory OnednnNet::bias(int n) {
  std::normal_distribution<float> d(0.0f, 0.1f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng_);
  return filled(engine_, memory::desc({n}, dt::f32, tag::a), v);
}

memory OnednnNet::input(int h, int w, int c) {
  input_ = memory(nhwc(h, w, c), engine_);
  return input_;
}

void OnednnNet::set_input(const std::vector<float>& values) {
  std::memcpy(input_.get_data_handle(), values.data(), values.size() * sizeof(float));
}

memory OnednnNet::conv(const memory& x, int cout, int k, int stride, Act act, const memory* residual) {
  const memory::dims& d = x.get_desc().dims();  // {1, C, H, W}
  const ConvShape s{static_cast<int>(d[2]), static_cast<int>(d[3]), static_cast<int>(d[1]), cout, k, stride};
  const memory::desc dst_md = nhwc(s.oh(), s.ow(), cout);
  const memory::dims wdims = {cout, s.cin, k, k};
  const dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, x.get_desc(),
      memory::desc(wdims, dt::f32, tag::any), memory::desc({cout}, dt::f32, tag::a), dst_md, {stride, stride},
      {s.pad(), s.pad()}, {s.pad(), s.pad()});
  dnnl::post_ops ops;
  if (residual) ops.append_binary(dnnl::algorithm::binary_add, residual->get_desc());
  if (act == Act::kRelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  if (act == Act::kClip2) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, 0.0f, 2.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  const dnnl::convolution_forward::primitive_desc pd(desc, attr, engine_);
  const std::string impl = pd.impl_info_str();
  if (std::find(conv_impls_.begin(), conv_impls_.end(), impl) == conv_impls_.end()) conv_impls_.push_back(impl);
  const memory y(pd.dst_desc(), engine_);
  Step step{dnnl::convolution_forward(pd),
            {{DNNL_ARG_SRC, x},
             {DNNL_ARG_WEIGHTS, weights(wdims, tag::ohwi, pd.weights_desc(), std::sqrt(2.0f / (k * k * s.cin)))},
             {DNNL_ARG_BIAS, bias(cout)},
             {DNNL_ARG_DST, y}}};
  if (residual) step.args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, *residual);
  if (pd.scratchpad_desc().get_size() > 0) step.args.emplace(DNNL_ARG_SCRATCHPAD, memory(pd.scratchpad_desc(), engine_));
  steps_.push_back(std::move(step));
  return y;
}

memory OnednnNet::max_pool(const memory& x, int k, int stride, int pad) {
  const memory::dims& d = x.get_desc().dims();
  const int h = static_cast<int>(d[2]), w = static_cast<int>(d[3]), c = static_cast<int>(d[1]);
  const memory::desc dst_md = nhwc((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1, c);
  const dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max,
                                         x.get_desc(), dst_md, {stride, stride}, {k, k}, {pad, pad}, {pad, pad});
  const dnnl::pooling_forward::primitive_desc pd(desc, engine_);
  const memory y(pd.dst_desc(), engine_);
  steps_.push_back({dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}}});
  return y;
}

memory OnednnNet::global_avg_pool(const memory& x) {
  const memory::dims& d = x.get_desc().dims();
  const int h = static_cast<int>(d[2]), w = static_cast<int>(d[3]), c = static_cast<int>(d[1]);
  const dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::pooling_avg_exclude_padding, x.get_desc(), nhwc(1, 1, c),
                                         {1, 1}, {h, w}, {0, 0}, {0, 0});
  const dnnl::pooling_forward::primitive_desc pd(desc, engine_);
  const memory y(pd.dst_desc(), engine_);
  steps_.push_back({dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}}});
  return y;
}

memory OnednnNet::space_to_depth(const memory& x, int block) {
  const memory::dims& d = x.get_desc().dims();
  const memory::dim h = d[2], w = d[3], c = d[1], hb = h / block, wb = w / block;
  // Both sides viewed as 5-D [H/b, b, W/b, b, C] over the same bytes as the NHWC tensors:
  // the input's strides walk its rows and columns, the output's put (dy, dx, c) in its channels.
  const memory::dims dims5 = {hb, block, wb, block, c};
  const memory::desc src5(dims5, dt::f32, memory::dims{block * w * c, w * c, block * c, c, 1});
  const memory::desc dst5(dims5, dt::f32, memory::dims{wb * block * block * c, block * c, block * block * c, c, 1});
  const memory y(nhwc(static_cast<int>(hb), static_cast<int>(wb), static_cast<int>(c * block * block)), engine_);
  const memory src_view(src5, engine_, x.get_data_handle());
  const memory dst_view(dst5, engine_, y.get_data_handle());
  steps_.push_back({dnnl::reorder(src_view, dst_view), {{DNNL_ARG_FROM, src_view}, {DNNL_ARG_TO, dst_view}}});
  return y;
}

memory OnednnNet::dense(const memory& x, int out) {
  const memory::dims& d = x.get_desc().dims();  // {1, C, 1, 1}
  const memory::dims wdims = {out, d[1], d[2], d[3]};
  const dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, x.get_desc(),
                                               memory::desc(wdims, dt::f32, tag::any),
                                               memory::desc({out}, dt::f32, tag::a),
                                               memory::desc({1, out}, dt::f32, tag::nc));
  const dnnl::inner_product_forward::primitive_desc pd(desc, engine_);
  const memory y(pd.dst_desc(), engine_);
  steps_.push_back({dnnl::inner_product_forward(pd),
                    {{DNNL_ARG_SRC, x},
                     {DNNL_ARG_WEIGHTS, weights(wdims, tag::ohwi, pd.weights_desc(), 0.05f)},
                     {DNNL_ARG_BIAS, bias(out)},
                     {DNNL_ARG_DST, y}}});
  return y;
}

void OnednnNet::run(dnnl::stream& stream) {
  for (Step& s : steps_) s.primitive.execute(stream, s.args);
  stream.wait();
}

std::string OnednnNet::conv_impls() const {
  std::string s;
  for (const std::string& i : conv_impls_) s += (s.empty() ? "" : ", ") + i;
  return s;
}

// LmnetV1 in fp32: every quantized block becomes conv + bias (folded BatchNorm) + clip(0, 2), the
// float activation the 2-bit quantizer replaces; space_to_depth is a strided reorder; conv6 ReLU;
// conv7 1x1 with bias; global average pool.
OnednnNet lmnet_v1_f32(const dnnl::engine& engine, uint32_t seed) {
  OnednnNet n(engine, seed);
  using Act = OnednnNet::Act;
  memory x = n.input(32, 32, 3);
  x = n.conv(x, 32, 3, 1, Act::kClip2);
  x = n.conv(x, 64, 3, 1, Act::kClip2);
  x = n.space_to_depth(x, 2);
  x = n.conv(x, 128, 3, 1, Act::kClip2);
  x = n.conv(x, 64, 3, 1, Act::kClip2);
  x = n.space_to_depth(x, 2);
  x = n.conv(x, 128, 3, 1, Act::kClip2);
  x = n.space_to_depth(x, 2);
  x = n.conv(x, 64, 1, 1, Act::kRelu);
  x = n.conv(x, 10, 1, 1, Act::kNone);
  n.global_avg_pool(x);
  return n;
}

// ResNet-18 in fp32 with the lowbit network's shapes: 7x7/2 stem + ReLU, 3x3/2 max pool, basic
// blocks conv3x3 + ReLU -> conv3x3 + skip (binary_add post-op) + ReLU, 1x1/2 projection convs on
// downsampling skips, global average pool, fc 1000 (BatchNorms folded into the conv biases).
OnednnNet resnet18_f32(const dnnl::engine& engine, uint32_t seed) {
  OnednnNet n(engine, seed);
  using Act = OnednnNet::Act;
  memory x = n.input(224, 224, 3);
  x = n.conv(x, 64, 7, 2, Act::kRelu);
  x = n.max_pool(x, 3, 2, 1);
  const int widths[] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    for (int block = 0; block < 2; ++block) {
      const int stride = stage > 0 && block == 0 ? 2 : 1;
      const memory y = n.conv(x, widths[stage], 3, stride, Act::kRelu);
      const memory skip = stride == 1 ? x : n.conv(x, widths[stage], 1, stride, Act::kNone);
      x = n.conv(y, widths[stage], 3, 1, Act::kRelu, &skip);
    }
  }
  x = n.global_avg_pool(x);
  n.dense(x, 1000);
  return n;
}

}  // namespace bench
