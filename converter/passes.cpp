#include "converter/passes.h"

#include <algorithm>

#include "converter/interpreter.h"

namespace lowbit::converter {

namespace {
// Folding evaluates in doubles; larger results stay nodes (lowering then reports what it needs).
constexpr uint64_t kMaxFoldedElements = uint64_t{1} << 24;
}  // namespace

void remove_identities(Graph& g) {
  const std::vector<std::vector<int>> consumers = g.consumers();
  const std::vector<int> producers = g.producers();
  std::vector<int> replacement(g.values.size());
  for (size_t i = 0; i < replacement.size(); ++i) replacement[i] = static_cast<int>(i);
  auto resolve = [&](int v) {
    while (replacement[static_cast<size_t>(v)] != v) v = replacement[static_cast<size_t>(v)];
    return v;
  };
  std::vector<Node> kept;
  for (Node& n : g.nodes) {
    if (n.op_type != "Identity" && n.op_type != "Dropout") {
      kept.push_back(std::move(n));
      continue;
    }
    if (n.outputs.size() > 1 && (!consumers[static_cast<size_t>(n.outputs[1])].empty() || g.is_graph_output(n.outputs[1])))
      throw ConvertError(n.label() + ": the dropout mask is read, which inference does not provide");
    const int x = resolve(n.inputs[0]), y = n.outputs[0];
    if (!g.is_graph_output(y)) {
      replacement[static_cast<size_t>(y)] = x;
    } else if (producers[static_cast<size_t>(x)] >= 0 && !g.is_graph_output(x)) {
      replacement[static_cast<size_t>(x)] = y;  // the graph output keeps its name: x's producer writes y
    } else {
      kept.push_back(std::move(n));  // an output that is an input, constant or other output: lowering aliases it
    }
  }
  for (Node& n : kept) {
    for (int& in : n.inputs)
      if (in != kNoValue) in = resolve(in);
    for (int& out : n.outputs) out = resolve(out);
  }
  g.nodes = std::move(kept);
}

void fold_constants(Graph& g) {
  std::vector<Node> kept;
  std::vector<Array> outputs;
  for (Node& n : g.nodes) {
    const bool foldable =
        std::all_of(n.inputs.begin(), n.inputs.end(), [&](int in) { return in == kNoValue || g.value(in).is_constant(); }) &&
        std::all_of(n.outputs.begin(), n.outputs.end(),
                    [&](int out) { return element_count(g.value(out).dims) <= kMaxFoldedElements; });
    if (!foldable) {
      kept.push_back(std::move(n));
      continue;
    }
    std::vector<const Array*> in;
    for (int id : n.inputs) in.push_back(id == kNoValue ? nullptr : g.value(id).constant.get());
    std::shared_ptr<QuantizedData> quantized;
    evaluate_node(g, n, in, outputs, quantized);
    for (size_t k = 0; k < n.outputs.size(); ++k)
      g.value(n.outputs[k]).constant = std::make_shared<Array>(std::move(outputs[k]));
    g.value(n.outputs[0]).quantized = std::move(quantized);
  }
  g.nodes = std::move(kept);
}

void eliminate_dead_nodes(Graph& g) {
  std::vector<bool> read(g.values.size(), false);
  for (int out : g.outputs) read[static_cast<size_t>(out)] = true;
  std::vector<bool> live(g.nodes.size(), false);
  for (size_t k = g.nodes.size(); k-- > 0;) {
    const Node& n = g.nodes[k];
    live[k] = std::any_of(n.outputs.begin(), n.outputs.end(), [&](int out) { return read[static_cast<size_t>(out)]; });
    if (!live[k]) continue;
    for (int in : n.inputs)
      if (in != kNoValue) read[static_cast<size_t>(in)] = true;
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (live[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
}

void run_graph_passes(Graph& g) {
  remove_identities(g);
  fold_constants(g);
  eliminate_dead_nodes(g);
}

}  // namespace lowbit::converter
