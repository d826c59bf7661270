// Ops that only move values: Concat, SpaceToDepth, DepthToSpace, Resize/Upsample (nearest), Pad,
// Reshape, Flatten, Transpose. Shape inference and interpreter kernels (NCHW).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "converter/op_util.h"

namespace lowbit::converter {
namespace {

std::vector<size_t> strides_of(const Dims& dims) {
  std::vector<size_t> s(dims.size(), 1);
  for (size_t k = dims.size(); k-- > 1;) s[k - 1] = s[k] * static_cast<size_t>(dims[k]);
  return s;
}

// Calls f(out_index, coordinates) for every element of `dims` in row-major order.
template <typename F>
void for_each_index(const Dims& dims, F f) {
  std::vector<int64_t> at(dims.size(), 0);
  const uint64_t count = element_count(dims);
  for (uint64_t i = 0; i < count; ++i) {
    f(static_cast<size_t>(i), at);
    for (size_t k = dims.size(); k-- > 0;) {
      if (++at[k] < dims[k]) break;
      at[k] = 0;
    }
  }
}

// ---- Concat ----

void infer_concat(Graph& g, const Node& n) {
  Dims out = input_dims(g, n, 0);
  const int64_t axis = normalized_axis(n, n.int_attr("axis", 1), static_cast<int64_t>(out.size()));
  for (size_t i = 1; i < n.inputs.size(); ++i) {
    const Dims& d = input_dims(g, n, i);
    if (d.size() != out.size()) node_error(n, "inputs differ in rank");
    for (size_t k = 0; k < d.size(); ++k)
      if (static_cast<int64_t>(k) != axis && d[k] != out[k]) node_error(n, "inputs differ outside the concat axis");
    out[static_cast<size_t>(axis)] += d[static_cast<size_t>(axis)];
  }
  set_output(g, n, 0, out);
}

void eval_concat(const EvalArgs& a) {
  const Dims& out = a.out[0].dims;
  const size_t axis = static_cast<size_t>(normalized_axis(a.node, a.node.int_attr("axis", 1), static_cast<int64_t>(out.size())));
  const size_t outer = static_cast<size_t>(element_count(Dims(out.begin(), out.begin() + static_cast<long>(axis))));
  size_t offset = 0;  // elements of one outer slice already written
  const size_t out_slice = a.out[0].size() / outer;
  for (size_t i = 0; i < a.in.size(); ++i) {
    const Array& x = a.input(i);
    const size_t slice = x.size() / outer;
    for (size_t o = 0; o < outer; ++o)
      std::copy_n(x.values.begin() + static_cast<long>(o * slice), slice,
                  a.out[0].values.begin() + static_cast<long>(o * out_slice + offset));
    offset += slice;
  }
}

// ---- SpaceToDepth / DepthToSpace ----

int64_t block_size(const Node& n) {
  const int64_t b = n.int_attr("blocksize", 0);
  if (b < 1 || b > 4096) node_error(n, "blocksize must be >= 1");
  return b;
}

void infer_space_to_depth(Graph& g, const Node& n) {
  expect_rank(g, n, 0, 4);
  const Dims& x = input_dims(g, n, 0);
  const int64_t b = block_size(n);
  if (x[2] % b || x[3] % b) node_error(n, "blocksize must divide height and width");
  set_output(g, n, 0, {x[0], x[1] * b * b, x[2] / b, x[3] / b});
}

// ONNX order: output channel (by * b + bx) * C + c of SpaceToDepth is input (c, y*b + by, x*b + bx).
void eval_space_to_depth(const EvalArgs& a) {
  const Array& x = a.input(0);
  const int64_t b = block_size(a.node), c = x.dims[1];
  const std::vector<size_t> xs = strides_of(x.dims);
  for_each_index(a.out[0].dims, [&](size_t i, const std::vector<int64_t>& at) {
    const int64_t block = at[1] / c, ch = at[1] % c;
    const int64_t iy = at[2] * b + block / b, ix = at[3] * b + block % b;
    a.out[0].values[i] = x.values[static_cast<size_t>(at[0]) * xs[0] + static_cast<size_t>(ch) * xs[1] +
                                  static_cast<size_t>(iy) * xs[2] + static_cast<size_t>(ix)];
  });
}

bool depth_to_space_crd(const Node& n) {
  const std::string mode = n.string_attr("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") node_error(n, "unknown mode '" + mode + "'");
  return mode == "CRD";
}

void infer_depth_to_space(Graph& g, const Node& n) {
  expect_rank(g, n, 0, 4);
  const Dims& x = input_dims(g, n, 0);
  const int64_t b = block_size(n);
  depth_to_space_crd(n);
  if (x[1] % (b * b)) node_error(n, "blocksize^2 must divide the channels");
  set_output(g, n, 0, {x[0], x[1] / (b * b), x[2] * b, x[3] * b});
}

void eval_depth_to_space(const EvalArgs& a) {
  const Array& x = a.input(0);
  const int64_t b = block_size(a.node), oc = a.out[0].dims[1];
  const bool crd = depth_to_space_crd(a.node);
  const std::vector<size_t> xs = strides_of(x.dims);
  for_each_index(a.out[0].dims, [&](size_t i, const std::vector<int64_t>& at) {
    const int64_t by = at[2] % b, bx = at[3] % b;
    const int64_t ic = crd ? at[1] * b * b + by * b + bx : (by * b + bx) * oc + at[1];
    a.out[0].values[i] = x.values[static_cast<size_t>(at[0]) * xs[0] + static_cast<size_t>(ic) * xs[1] +
                                  static_cast<size_t>(at[2] / b) * xs[2] + static_cast<size_t>(at[3] / b)];
  });
}

// ---- Resize / Upsample (nearest) ----

}  // namespace

ResizePlan resize_plan(const Graph& g, const Node& n) {
  const Dims& x = input_dims(g, n, 0);
  const std::string mode = n.string_attr("mode", "nearest");
  if (mode != "nearest") node_error(n, "mode '" + mode + "' is not supported (nearest only)");
  if (n.has("axes")) node_error(n, "the axes attribute is not supported");
  std::vector<double> scales;
  std::vector<int64_t> sizes;
  if (n.op_type == "Upsample") {
    scales = n.inputs.size() > 1 ? g.constant_input(n, 1, "scales").values : n.floats_attr("scales");
  } else if (g.opset <= 10) {
    scales = g.constant_input(n, 1, "scales").values;
  } else {
    if (n.input(2) != kNoValue && !g.constant_input(n, 2, "scales").values.empty())
      scales = g.constant_input(n, 2, "scales").values;
    if (n.input(3) != kNoValue) sizes = integer_values(n, g.constant_input(n, 3, "sizes"), "sizes");
  }
  ResizePlan p;
  if (!sizes.empty()) {
    if (sizes.size() != x.size()) node_error(n, "sizes must have one entry per dim");
    p.out = sizes;
    for (size_t k = 0; k < x.size(); ++k) p.scales.push_back(static_cast<double>(sizes[k]) / static_cast<double>(x[k]));
    return p;
  }
  if (scales.size() != x.size()) node_error(n, "needs one scale per dim");
  p.scales = scales;
  for (size_t k = 0; k < x.size(); ++k) {
    if (!(scales[k] > 0) || scales[k] > 4096) node_error(n, "scales must be positive");
    p.out.push_back(static_cast<int64_t>(std::floor(static_cast<double>(x[k]) * scales[k])));
  }
  return p;
}

namespace {

void infer_resize(Graph& g, const Node& n) {
  const ResizePlan p = resize_plan(g, n);
  set_output(g, n, 0, p.out);
  const Dims& x = input_dims(g, n, 0);
  for (size_t k = 0; k < x.size(); ++k) nearest_source_index(n, x[k], p.out[k], p.scales[k]);
}

void eval_resize(const EvalArgs& a) {
  const Array& x = a.input(0);
  const ResizePlan p = resize_plan(a.graph, a.node);
  std::vector<std::vector<int64_t>> source(x.dims.size());
  for (size_t k = 0; k < x.dims.size(); ++k) source[k] = nearest_source_index(a.node, x.dims[k], p.out[k], p.scales[k]);
  const std::vector<size_t> xs = strides_of(x.dims);
  for_each_index(a.out[0].dims, [&](size_t i, const std::vector<int64_t>& at) {
    size_t src = 0;
    for (size_t k = 0; k < at.size(); ++k) src += static_cast<size_t>(source[k][static_cast<size_t>(at[k])]) * xs[k];
    a.out[0].values[i] = x.values[src];
  });
}

// ---- Pad ----

}  // namespace

PadPlan pad_plan(const Graph& g, const Node& n) {
  const size_t rank = input_dims(g, n, 0).size();
  const std::string mode = n.string_attr("mode", "constant");
  if (mode != "constant") node_error(n, "mode '" + mode + "' is not supported (constant only)");
  PadPlan p;
  if (g.opset < 11) {
    p.pads = n.ints_attr("pads", {});
    p.value = n.float_attr("value", 0.0);
  } else {
    if (n.input(3) != kNoValue) node_error(n, "the axes input is not supported");
    p.pads = integer_values(n, g.constant_input(n, 1, "pads"), "pads");
    if (n.input(2) != kNoValue) p.value = scalar_value(n, g.constant_input(n, 2, "constant_value"), "constant_value");
  }
  if (p.pads.size() != 2 * rank) node_error(n, "pads must have 2 entries per dim");
  for (int64_t v : p.pads)
    if (v < 0 || v > (int64_t{1} << 24)) node_error(n, "pads must be >= 0 (cropping is not supported)");
  return p;
}

namespace {

void infer_pad(Graph& g, const Node& n) {
  const PadPlan p = pad_plan(g, n);
  Dims out = input_dims(g, n, 0);
  for (size_t k = 0; k < out.size(); ++k) out[k] += p.pads[k] + p.pads[k + out.size()];
  set_output(g, n, 0, out);
}

void eval_pad(const EvalArgs& a) {
  const Array& x = a.input(0);
  const PadPlan p = pad_plan(a.graph, a.node);
  const std::vector<size_t> xs = strides_of(x.dims);
  for_each_index(a.out[0].dims, [&](size_t i, const std::vector<int64_t>& at) {
    size_t src = 0;
    for (size_t k = 0; k < at.size(); ++k) {
      const int64_t c = at[k] - p.pads[k];
      if (c < 0 || c >= x.dims[k]) {
        a.out[0].values[i] = p.value;
        return;
      }
      src += static_cast<size_t>(c) * xs[k];
    }
    a.out[0].values[i] = x.values[src];
  });
}

// ---- Reshape / Flatten / Transpose ----

void infer_reshape(Graph& g, const Node& n) {
  const Value& x = input_value(g, n, 0);
  const std::vector<int64_t> shape = integer_values(n, g.constant_input(n, 1, "shape"), "shape");
  const bool allow_zero = n.int_attr("allowzero", 0) != 0;
  Dims out;
  int64_t inferred = -1;
  uint64_t known = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    int64_t d = shape[k];
    if (d == 0 && !allow_zero) {
      if (k >= x.dims.size()) node_error(n, "shape copies a dim the input does not have");
      d = x.dims[k];
    }
    if (d == -1) {
      if (inferred >= 0) node_error(n, "shape has more than one -1");
      inferred = static_cast<int64_t>(k);
      d = 1;
    } else if (d < 1) {
      node_error(n, "shape entries must be positive");
    } else {
      known *= static_cast<uint64_t>(d);
      if (known > element_count(x.dims)) node_error(n, "cannot reshape " + dims_string(x.dims));
    }
    out.push_back(d);
  }
  const uint64_t total = element_count(x.dims);
  if (inferred >= 0) {
    if (total % known) node_error(n, "cannot reshape " + dims_string(x.dims));
    out[static_cast<size_t>(inferred)] = static_cast<int64_t>(total / known);
  }
  if (element_count(out) != total) node_error(n, "cannot reshape " + dims_string(x.dims) + " to " + dims_string(out));
  set_output(g, n, 0, out, x.type);
}

void infer_flatten(Graph& g, const Node& n) {
  const Value& x = input_value(g, n, 0);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = n.int_attr("axis", 1);
  if (axis < -rank || axis > rank) node_error(n, "axis out of range");
  if (axis < 0) axis += rank;
  const Dims outer(x.dims.begin(), x.dims.begin() + axis), inner(x.dims.begin() + axis, x.dims.end());
  set_output(g, n, 0, {static_cast<int64_t>(element_count(outer)), static_cast<int64_t>(element_count(inner))}, x.type);
}

// Reshape and Flatten keep the row-major order of the elements.
void eval_copy(const EvalArgs& a) { a.out[0].values = a.input(0).values; }

std::vector<int64_t> transpose_perm(const Graph& g, const Node& n) {
  const size_t rank = input_dims(g, n, 0).size();
  std::vector<int64_t> reversed(rank);
  std::iota(reversed.rbegin(), reversed.rend(), 0);
  const std::vector<int64_t> perm = n.ints_attr("perm", reversed);
  std::vector<bool> seen(rank, false);
  if (perm.size() != rank) node_error(n, "perm must have one entry per dim");
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) node_error(n, "perm is not a permutation");
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

void infer_transpose(Graph& g, const Node& n) {
  const Value& x = input_value(g, n, 0);
  Dims out;
  for (int64_t p : transpose_perm(g, n)) out.push_back(x.dims[static_cast<size_t>(p)]);
  set_output(g, n, 0, out, x.type);
}

void eval_transpose(const EvalArgs& a) {
  const Array& x = a.input(0);
  const std::vector<int64_t> perm = transpose_perm(a.graph, a.node);
  const std::vector<size_t> xs = strides_of(x.dims);
  for_each_index(a.out[0].dims, [&](size_t i, const std::vector<int64_t>& at) {
    size_t src = 0;
    for (size_t k = 0; k < at.size(); ++k) src += static_cast<size_t>(at[k]) * xs[static_cast<size_t>(perm[k])];
    a.out[0].values[i] = x.values[src];
  });
}

}  // namespace

std::vector<int64_t> nearest_source_index(const Node& n, int64_t in, int64_t out, double scale) {
  const bool upsample = n.op_type == "Upsample";
  const std::string transform = upsample ? "asymmetric" : n.string_attr("coordinate_transformation_mode", "half_pixel");
  const std::string rounding = upsample ? "floor" : n.string_attr("nearest_mode", "round_prefer_floor");
  std::vector<int64_t> index(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const double x = static_cast<double>(o);
    double src;
    if (transform == "half_pixel") src = (x + 0.5) / scale - 0.5;
    else if (transform == "pytorch_half_pixel") src = out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    else if (transform == "align_corners") src = out > 1 ? x * static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
    else if (transform == "asymmetric") src = x / scale;
    else if (transform == "tf_half_pixel_for_nn") src = (x + 0.5) / scale;
    else node_error(n, "coordinate_transformation_mode '" + transform + "' is not supported");
    double r;
    if (rounding == "round_prefer_floor") r = src - std::floor(src) == 0.5 ? std::floor(src) : std::round(src);
    else if (rounding == "round_prefer_ceil") r = std::round(src);
    else if (rounding == "floor") r = std::floor(src);
    else if (rounding == "ceil") r = std::ceil(src);
    else node_error(n, "nearest_mode '" + rounding + "' is not supported");
    index[static_cast<size_t>(o)] = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(r), 0), in - 1);
  }
  return index;
}

extern const OpSchema kConcatSchema{"Concat", false, 1, 64, 1, infer_concat, eval_concat};
extern const OpSchema kSpaceToDepthSchema{"SpaceToDepth", false, 1, 1, 1, infer_space_to_depth, eval_space_to_depth};
extern const OpSchema kDepthToSpaceSchema{"DepthToSpace", false, 1, 1, 1, infer_depth_to_space, eval_depth_to_space};
extern const OpSchema kResizeSchema{"Resize", false, 1, 4, 1, infer_resize, eval_resize};
extern const OpSchema kUpsampleSchema{"Upsample", false, 1, 2, 1, infer_resize, eval_resize};
extern const OpSchema kPadSchema{"Pad", false, 1, 4, 1, infer_pad, eval_pad};
extern const OpSchema kReshapeSchema{"Reshape", false, 2, 2, 1, infer_reshape, eval_copy};
extern const OpSchema kFlattenSchema{"Flatten", false, 1, 1, 1, infer_flatten, eval_copy};
extern const OpSchema kTransposeSchema{"Transpose", false, 1, 1, 1, infer_transpose, eval_transpose};

}  // namespace lowbit::converter
