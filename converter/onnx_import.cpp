#include "converter/onnx_import.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include <onnx/onnx_pb.h>

#include "converter/ops.h"

namespace lowbit::converter {
namespace {

// Constants are held as doubles; this caps one at 2 GiB. Activations follow the runtime's limits.
constexpr uint64_t kMaxConstantElements = uint64_t{1} << 28;
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr uint64_t kMaxElements = uint64_t{1} << 31;

// Names go into messages and the runtime model, which rejects control characters: replace them.
void clean(std::string* name) {
  for (char& c : *name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
}

void clean_names(onnx::GraphProto* g) {
  for (onnx::ValueInfoProto& v : *g->mutable_input()) clean(v.mutable_name());
  for (onnx::ValueInfoProto& v : *g->mutable_output()) clean(v.mutable_name());
  for (onnx::TensorProto& t : *g->mutable_initializer()) clean(t.mutable_name());
  for (onnx::NodeProto& n : *g->mutable_node()) {
    for (std::string* s : {n.mutable_name(), n.mutable_op_type(), n.mutable_domain()}) clean(s);
    for (std::string& s : *n.mutable_input()) clean(&s);
    for (std::string& s : *n.mutable_output()) clean(&s);
  }
}

ElemType elem_type_of(int32_t data_type) {
  switch (data_type) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::DOUBLE: return ElemType::kFloat;
    case onnx::TensorProto::BOOL: return ElemType::kBool;
    default: return ElemType::kInt;
  }
}

template <typename T>
void read_raw(const std::string& raw, std::vector<double>* out, const std::string& name) {
  if (raw.size() != out->size() * sizeof(T))
    throw ConvertError("tensor '" + name + "' has " + std::to_string(raw.size()) + " bytes of data for " +
                       std::to_string(out->size()) + " elements");
  for (size_t i = 0; i < out->size(); ++i) {
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));  // ONNX raw data is little-endian, like the host
    (*out)[i] = static_cast<double>(v);
  }
}

template <typename Field>
void read_field(const Field& field, std::vector<double>* out, const std::string& name) {
  if (static_cast<size_t>(field.size()) != out->size())
    throw ConvertError("tensor '" + name + "' has " + std::to_string(field.size()) + " values for " +
                       std::to_string(out->size()) + " elements");
  for (int i = 0; i < field.size(); ++i) (*out)[static_cast<size_t>(i)] = static_cast<double>(field.Get(i));
}

Array tensor_to_array(const onnx::TensorProto& t, const std::string& name) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    throw ConvertError("tensor '" + name + "' keeps its data in an external file, which is not supported");
  Array a;
  uint64_t count = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || d > (int64_t{1} << 31)) throw ConvertError("tensor '" + name + "' has a dim of " + std::to_string(d));
    count *= static_cast<uint64_t>(d);
    if (count > kMaxConstantElements) throw ConvertError("tensor '" + name + "' is too large");
    a.dims.push_back(d);
  }
  a.values.resize(count);
  const bool raw = t.has_raw_data();
  const std::string& r = t.raw_data();
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT: raw ? read_raw<float>(r, &a.values, name) : read_field(t.float_data(), &a.values, name); break;
    case onnx::TensorProto::DOUBLE: raw ? read_raw<double>(r, &a.values, name) : read_field(t.double_data(), &a.values, name); break;
    case onnx::TensorProto::INT64: raw ? read_raw<int64_t>(r, &a.values, name) : read_field(t.int64_data(), &a.values, name); break;
    case onnx::TensorProto::INT32: raw ? read_raw<int32_t>(r, &a.values, name) : read_field(t.int32_data(), &a.values, name); break;
    case onnx::TensorProto::INT8: raw ? read_raw<int8_t>(r, &a.values, name) : read_field(t.int32_data(), &a.values, name); break;
    case onnx::TensorProto::UINT8: raw ? read_raw<uint8_t>(r, &a.values, name) : read_field(t.int32_data(), &a.values, name); break;
    case onnx::TensorProto::BOOL: raw ? read_raw<uint8_t>(r, &a.values, name) : read_field(t.int32_data(), &a.values, name); break;
    default: throw ConvertError("tensor '" + name + "' has data type " + std::to_string(t.data_type()) + ", which is not supported");
  }
  return a;
}

Attribute convert_attribute(const onnx::AttributeProto& p, const std::string& where) {
  Attribute a;
  switch (p.type()) {
    case onnx::AttributeProto::INT: a.kind = Attribute::Kind::kInt; a.i = p.i(); break;
    case onnx::AttributeProto::FLOAT: a.kind = Attribute::Kind::kFloat; a.f = p.f(); break;
    case onnx::AttributeProto::STRING: a.kind = Attribute::Kind::kString; a.s = p.s(); break;
    case onnx::AttributeProto::INTS:
      a.kind = Attribute::Kind::kInts;
      a.ints.assign(p.ints().begin(), p.ints().end());
      break;
    case onnx::AttributeProto::FLOATS:
      a.kind = Attribute::Kind::kFloats;
      a.floats.assign(p.floats().begin(), p.floats().end());
      break;
    case onnx::AttributeProto::TENSOR:
      a.kind = Attribute::Kind::kTensor;
      a.tensor = std::make_shared<Array>(tensor_to_array(p.t(), where + "." + p.name()));
      break;
    default: a.kind = Attribute::Kind::kOther; break;
  }
  return a;
}

// A Constant node's value as an array.
Array constant_node_value(const onnx::NodeProto& p, const std::string& label) {
  for (const onnx::AttributeProto& attr : p.attribute()) {
    if (attr.name() == "value") return tensor_to_array(attr.t(), label);
    if (attr.name() == "value_float") return Array::scalar(attr.f());
    if (attr.name() == "value_int") return Array::scalar(static_cast<double>(attr.i()));
    if (attr.name() == "value_floats") {
      std::vector<double> v(attr.floats().begin(), attr.floats().end());
      return Array({static_cast<int64_t>(v.size())}, v);
    }
    if (attr.name() == "value_ints") {
      std::vector<double> v(attr.ints().begin(), attr.ints().end());
      return Array({static_cast<int64_t>(v.size())}, v);
    }
  }
  throw ConvertError("Constant " + label + " has no supported value attribute");
}

std::string node_name(const onnx::NodeProto& p, int index) {
  if (!p.name().empty()) return p.name();
  if (p.output_size() > 0 && !p.output(0).empty()) return p.output(0);
  return "#" + std::to_string(index);
}

// One error listing every unsupported op type once, with the names of its nodes.
void check_supported(const onnx::GraphProto& graph) {
  std::vector<std::pair<std::string, std::vector<std::string>>> unsupported;
  for (int k = 0; k < graph.node_size(); ++k) {
    const onnx::NodeProto& p = graph.node(k);
    if (p.op_type() == "Constant" && (p.domain().empty() || p.domain() == "ai.onnx")) continue;
    if (find_op_schema(p.domain(), p.op_type())) continue;
    const std::string type = p.domain().empty() ? p.op_type() : p.domain() + "." + p.op_type();
    auto it = std::find_if(unsupported.begin(), unsupported.end(), [&](const auto& u) { return u.first == type; });
    if (it == unsupported.end()) it = unsupported.insert(unsupported.end(), {type, {}});
    it->second.push_back(node_name(p, k));
  }
  if (unsupported.empty()) return;
  std::string message = "unsupported ops: ";
  for (size_t i = 0; i < unsupported.size(); ++i) {
    message += (i ? "; " : "") + unsupported[i].first + " (node" + (unsupported[i].second.size() > 1 ? "s " : " ");
    for (size_t j = 0; j < unsupported[i].second.size(); ++j) message += (j ? ", '" : "'") + unsupported[i].second[j] + "'";
    message += ")";
  }
  throw ConvertError(message);
}

class Importer {
 public:
  Importer(const onnx::ModelProto& model, const std::string& source, const ImportOptions& options)
      : model_(model), options_(options) {
    g_.source = source;
  }

  Graph run() {
    const onnx::GraphProto& graph = model_.graph();
    read_opset();
    check_supported(graph);
    for (const onnx::StringStringEntryProto& e : model_.metadata_props()) g_.metadata[e.key()] = e.value();
    for (const onnx::TensorProto& t : graph.initializer()) add_constant(t.name(), tensor_to_array(t, t.name()), elem_type_of(t.data_type()));
    for (const onnx::ValueInfoProto& in : graph.input())
      if (g_.find_value(in.name()) == kNoValue) add_input(in);
    for (int k = 0; k < graph.node_size(); ++k) add_node(graph.node(k), k);
    for (const onnx::ValueInfoProto& out : graph.output()) {
      const int id = g_.find_value(out.name());
      if (id == kNoValue) throw ConvertError("graph output '" + out.name() + "' is never computed");
      g_.outputs.push_back(id);
    }
    if (g_.outputs.empty()) throw ConvertError("the graph has no outputs");
    if (g_.inputs.empty()) throw ConvertError("the graph has no inputs");
    sort_topologically(g_);
    infer_shapes(g_);
    return std::move(g_);
  }

 private:
  void read_opset() {
    bool found = false;
    for (const onnx::OperatorSetIdProto& o : model_.opset_import())
      if (o.domain().empty() || o.domain() == "ai.onnx") {
        g_.opset = o.version();
        found = true;
      }
    if (!found) throw ConvertError("the model imports no ONNX opset");
    if (g_.opset < 7) throw ConvertError("opset " + std::to_string(g_.opset) + " is too old (7 or newer is supported)");
  }

  int value_named(const std::string& name) {
    const auto it = ids_.find(name);
    return it == ids_.end() ? kNoValue : it->second;
  }

  int new_value(const std::string& name) {
    if (ids_.count(name)) throw ConvertError("tensor '" + name + "' is defined twice");
    Value v;
    v.name = name;
    const int id = g_.add_value(std::move(v));
    ids_[name] = id;
    return id;
  }

  void add_constant(const std::string& name, Array a, ElemType type) {
    if (name.empty()) throw ConvertError("an initializer has no name");
    const int id = new_value(name);
    Value& v = g_.value(id);
    v.dims = a.dims;
    v.type = type;
    v.shape_known = true;
    v.constant = std::make_shared<Array>(std::move(a));
  }

  void add_input(const onnx::ValueInfoProto& in) {
    if (!in.type().has_tensor_type()) throw ConvertError("input '" + in.name() + "' is not a tensor");
    const onnx::TypeProto::Tensor& t = in.type().tensor_type();
    if (t.elem_type() != onnx::TensorProto::FLOAT) throw ConvertError("input '" + in.name() + "' is not float32");
    const int id = new_value(in.name());
    Value& v = g_.value(id);
    for (int k = 0; k < t.shape().dim_size(); ++k) {
      const onnx::TensorShapeProto::Dimension& d = t.shape().dim(k);
      if (d.has_dim_value() && d.dim_value() > 0) v.dims.push_back(d.dim_value());
      else if (k == 0) v.dims.push_back(options_.batch);  // the symbolic batch
      else throw ConvertError("input '" + in.name() + "' dim " + std::to_string(k) + " has no fixed size");
    }
    if (v.dims.empty()) throw ConvertError("input '" + in.name() + "' has no shape");
    uint64_t count = 1;
    for (int64_t d : v.dims) {
      if (d > kMaxDim) throw ConvertError("input '" + in.name() + "' has a dim of " + std::to_string(d));
      count *= static_cast<uint64_t>(d);
      if (count > kMaxElements) throw ConvertError("input '" + in.name() + "' is too large");
    }
    v.shape_known = true;
    g_.inputs.push_back(id);
  }

  void add_node(const onnx::NodeProto& p, int index) {
    const std::string name = node_name(p, index);
    if (p.op_type() == "Constant" && (p.domain().empty() || p.domain() == "ai.onnx")) {
      if (p.output_size() != 1) throw ConvertError("Constant '" + name + "' must have one output");
      const Array a = constant_node_value(p, "'" + name + "'");
      add_constant(p.output(0), a, ElemType::kFloat);
      return;
    }
    Node n;
    n.op_type = p.op_type();
    n.domain = p.domain() == "ai.onnx" ? "" : p.domain();
    n.name = name;
    for (const std::string& in : p.input()) {
      if (in.empty()) {
        n.inputs.push_back(kNoValue);
        continue;
      }
      int id = value_named(in);
      if (id == kNoValue) id = new_value(in);  // produced by a later node (sorted afterwards) or by nothing
      n.inputs.push_back(id);
    }
    while (!n.inputs.empty() && n.inputs.back() == kNoValue) n.inputs.pop_back();
    int outputs = p.output_size();
    while (outputs > 0 && p.output(outputs - 1).empty()) --outputs;
    for (int k = 0; k < outputs; ++k) {
      const std::string& out = p.output(k);
      if (out.empty()) throw ConvertError(n.label() + ": unnamed output " + std::to_string(k));
      int id = value_named(out);
      if (id == kNoValue) id = new_value(out);
      else if (g_.value(id).is_constant() || defined_.count(id))
        throw ConvertError(n.label() + ": output '" + out + "' is already defined elsewhere");
      defined_.insert(id);
      n.outputs.push_back(id);
    }
    for (const onnx::AttributeProto& a : p.attribute()) n.attributes[a.name()] = convert_attribute(a, name);
    g_.nodes.push_back(std::move(n));
  }

  const onnx::ModelProto& model_;
  ImportOptions options_;
  Graph g_;
  std::map<std::string, int> ids_;
  std::set<int> defined_;
};

}  // namespace

Graph import_onnx_bytes(const std::string& bytes, const std::string& source, const ImportOptions& options) {
  onnx::ModelProto model;
  if (bytes.empty()) throw ConvertError("the file is empty");
  if (!model.ParseFromString(bytes)) throw ConvertError("not a valid ONNX model (truncated or corrupt protobuf)");
  if (!model.has_graph()) throw ConvertError("not an ONNX model (no graph)");
  if (model.graph().node_size() == 0) throw ConvertError("the graph has no nodes");
  clean_names(model.mutable_graph());
  return Importer(model, source, options).run();
}

Graph import_onnx_file(const std::string& path, const ImportOptions& options) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ConvertError(std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream buffer;
  buffer << f.rdbuf();
  if (f.bad()) throw ConvertError("cannot read the file");
  return import_onnx_bytes(buffer.str(), path, options);
}

}  // namespace lowbit::converter
