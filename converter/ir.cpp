#include "converter/ir.h"

#include <algorithm>

namespace lowbit::converter {

uint64_t element_count(const Dims& dims) {
  uint64_t n = 1;
  for (int64_t d : dims) n *= static_cast<uint64_t>(d);
  return n;
}

std::string dims_string(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

namespace {
const Attribute* find_attr(const Node& n, const std::string& attr, Attribute::Kind kind) {
  auto it = n.attributes.find(attr);
  if (it == n.attributes.end()) return nullptr;
  if (it->second.kind != kind) throw ConvertError(n.label() + ": attribute '" + attr + "' has the wrong type");
  return &it->second;
}
}  // namespace

int64_t Node::int_attr(const std::string& attr, int64_t fallback) const {
  const Attribute* a = find_attr(*this, attr, Attribute::Kind::kInt);
  return a ? a->i : fallback;
}

double Node::float_attr(const std::string& attr, double fallback) const {
  const Attribute* a = find_attr(*this, attr, Attribute::Kind::kFloat);
  return a ? a->f : fallback;
}

std::string Node::string_attr(const std::string& attr, const std::string& fallback) const {
  const Attribute* a = find_attr(*this, attr, Attribute::Kind::kString);
  return a ? a->s : fallback;
}

std::vector<int64_t> Node::ints_attr(const std::string& attr, const std::vector<int64_t>& fallback) const {
  const Attribute* a = find_attr(*this, attr, Attribute::Kind::kInts);
  return a ? a->ints : fallback;
}

std::vector<double> Node::floats_attr(const std::string& attr) const {
  const Attribute* a = find_attr(*this, attr, Attribute::Kind::kFloats);
  return a ? a->floats : std::vector<double>{};
}

std::string Node::label() const { return op_type + " '" + name + "'"; }

int Graph::add_value(Value v) {
  values.push_back(std::move(v));
  return static_cast<int>(values.size() - 1);
}

int Graph::find_value(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return static_cast<int>(i);
  return kNoValue;
}

const Array& Graph::constant_input(const Node& n, size_t i, const char* role) const {
  const int id = n.input(i);
  if (id == kNoValue) throw ConvertError(n.label() + ": missing input " + role);
  const Value& v = value(id);
  if (!v.is_constant())
    throw ConvertError(n.label() + ": input " + role + " '" + v.name + "' must be a constant (initializer)");
  return *v.constant;
}

bool Graph::is_graph_output(int id) const { return std::find(outputs.begin(), outputs.end(), id) != outputs.end(); }

std::vector<int> Graph::producers() const {
  std::vector<int> p(values.size(), -1);
  for (size_t k = 0; k < nodes.size(); ++k)
    for (int o : nodes[k].outputs) p[static_cast<size_t>(o)] = static_cast<int>(k);
  return p;
}

std::vector<std::vector<int>> Graph::consumers() const {
  std::vector<std::vector<int>> c(values.size());
  for (size_t k = 0; k < nodes.size(); ++k)
    for (int in : nodes[k].inputs)
      if (in != kNoValue) c[static_cast<size_t>(in)].push_back(static_cast<int>(k));
  return c;
}

void sort_topologically(Graph& g) {
  std::vector<bool> ready(g.values.size(), false);
  for (int id : g.inputs) ready[static_cast<size_t>(id)] = true;
  for (size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i].is_constant()) ready[i] = true;
  std::vector<int> producer(g.values.size(), -1);
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (int o : g.nodes[k].outputs) {
      if (ready[static_cast<size_t>(o)] || producer[static_cast<size_t>(o)] >= 0)
        throw ConvertError(g.nodes[k].label() + ": output '" + g.value(o).name + "' is already defined elsewhere");
      producer[static_cast<size_t>(o)] = static_cast<int>(k);
    }
  for (const Node& n : g.nodes)
    for (int in : n.inputs)
      if (in != kNoValue && !ready[static_cast<size_t>(in)] && producer[static_cast<size_t>(in)] < 0)
        throw ConvertError(n.label() + " reads '" + g.value(in).name + "', which no node, initializer or input provides");

  std::vector<Node> sorted;
  std::vector<bool> placed(g.nodes.size(), false);
  sorted.reserve(g.nodes.size());
  bool progress = true;
  while (sorted.size() < g.nodes.size() && progress) {
    progress = false;
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      if (placed[k]) continue;
      const Node& n = g.nodes[k];
      if (!std::all_of(n.inputs.begin(), n.inputs.end(),
                       [&](int in) { return in == kNoValue || ready[static_cast<size_t>(in)]; }))
        continue;
      for (int o : n.outputs) ready[static_cast<size_t>(o)] = true;
      placed[k] = true;
      sorted.push_back(n);
      progress = true;
    }
  }
  if (sorted.size() < g.nodes.size()) {
    for (size_t k = 0; k < g.nodes.size(); ++k)
      if (!placed[k]) throw ConvertError(g.nodes[k].label() + " is part of a cycle");
  }
  for (int out : g.outputs)
    if (!ready[static_cast<size_t>(out)]) throw ConvertError("graph output '" + g.value(out).name + "' is never computed");
  g.nodes = std::move(sorted);
}

}  // namespace lowbit::converter
