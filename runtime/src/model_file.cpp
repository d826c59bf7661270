#include "model_file.h"

#include <cmath>
#include <cstring>

#include "ops/op_table.h"

namespace lowbit {
namespace {

constexpr uint32_t kMaxTensors = 1u << 20;
constexpr uint32_t kMaxOps = 1u << 20;
constexpr uint32_t kMaxNameLength = 4096;
constexpr uint64_t kMaxElements = 1ull << 31;

// Header field offsets.
enum : size_t {
  kOffMagic = 0, kOffVersion = 8, kOffHeaderSize = 12, kOffFileSize = 16, kOffGraphOffset = 24, kOffGraphSize = 32,
  kOffDataOffset = 40, kOffDataSize = 48, kOffChecksum = 56, kOffReserved = 60,
};

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// ---- writing ----

struct Writer {
  std::vector<uint8_t> bytes;
  template <typename T> void put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));  // the format is little-endian, as are all supported targets
    bytes.insert(bytes.end(), b, b + sizeof(T));
  }
  template <typename T> void put_at(size_t off, T v) { std::memcpy(bytes.data() + off, &v, sizeof(T)); }
};

// ---- reading ----

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T> bool get(T* v) {
    if (size_ - pos_ < sizeof(T)) return false;
    std::memcpy(v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool get_bytes(size_t n, const uint8_t** p) {
    if (size_ - pos_ < n) return false;
    *p = data_ + pos_;
    pos_ += n;
    return true;
  }
  size_t remaining() const { return size_ - pos_; }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

template <typename T> T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

Status truncated(const char* what, size_t at) {
  return Status::Error(std::string("graph section truncated while reading ") + what + " at byte " + std::to_string(at));
}

bool valid_dtype(uint8_t v) { return v >= 1 && v <= 3; }
bool valid_layout(uint8_t v) { return v <= 2; }
bool valid_kind(uint8_t v) { return v <= 3; }

Status read_tensor(Reader& r, uint64_t data_size, const uint8_t* data_section, TensorDesc* t, uint32_t index) {
  // Messages are built only on failure: a load into a workspace must not touch the heap.
  auto where = [&] { return "tensor " + std::to_string(index); };
  uint32_t name_len;
  if (!r.get(&name_len)) return truncated("a tensor name", r.pos());
  if (name_len > kMaxNameLength) return Status::Error(where() + ": name length " + std::to_string(name_len));
  const uint8_t* name;
  if (!r.get_bytes(name_len, &name)) return truncated("a tensor name", r.pos());
  for (uint32_t i = 0; i < name_len; ++i)
    if (name[i] < 0x20 || name[i] == 0x7F) return Status::Error(where() + ": name contains control characters");
  if (current_workspace_arena()) {
    char* copy = static_cast<char*>(workspace_take(name_len + 1u, 1));
    if (copy) {
      std::memcpy(copy, name, name_len);
      copy[name_len] = '\0';
      t->static_name = copy;
    } else {
      t->name.assign(reinterpret_cast<const char*>(name), name_len);  // workspace too small: sizing only
    }
  } else {
    t->name.assign(reinterpret_cast<const char*>(name), name_len);
  }
  auto who = [&] { return where() + " '" + t->c_name() + "'"; };
  uint8_t dtype, layout, bits, kind, rank, constant;
  uint16_t reserved;
  if (!r.get(&dtype) || !r.get(&layout) || !r.get(&bits) || !r.get(&kind) || !r.get(&t->scale) || !r.get(&rank) ||
      !r.get(&constant) || !r.get(&reserved))
    return truncated("a tensor record", r.pos());
  if (!valid_dtype(dtype)) return Status::Error(who() + ": unknown dtype " + std::to_string(dtype));
  if (!valid_layout(layout)) return Status::Error(who() + ": unknown layout " + std::to_string(layout));
  if (!valid_kind(kind)) return Status::Error(who() + ": unknown quantization kind " + std::to_string(kind));
  if (reserved != 0 || constant > 1) return Status::Error(who() + ": reserved bits set");
  t->dtype = static_cast<DType>(dtype);
  t->layout = static_cast<Layout>(layout);
  t->quant.bits = bits;
  t->quant.kind = static_cast<QuantKind>(kind);
  if (rank < 1 || rank > kMaxRank) return Status::Error(who() + ": rank " + std::to_string(rank));
  t->rank = rank;
  uint64_t elements = 1;
  for (int i = 0; i < rank; ++i) {
    if (!r.get(&t->dims[i])) return truncated("tensor dims", r.pos());
    if (t->dims[i] < 1 || t->dims[i] > kMaxDimension)
      return Status::Error(who() + ": dim " + std::to_string(i) + " is " + std::to_string(t->dims[i]));
    elements *= static_cast<uint64_t>(t->dims[i]);
    if (elements > kMaxElements) return Status::Error(who() + ": more than 2^31 elements");
  }
  if (t->dtype == DType::kCodes) {
    if (t->layout == Layout::kPlain) return Status::Error(who() + ": codes need a packed layout");
    if (t->layout == Layout::kKernelPlanes && rank != 4) return Status::Error(who() + ": kernel-planes tensors are rank 4");
    if (!t->quant.valid())
      return Status::Error(who() + ": invalid quantization (" + std::to_string(bits) + " bits, kind " +
                           std::to_string(kind) + ")");
    if (!std::isfinite(t->scale) || t->scale <= 0.0f) return Status::Error(who() + ": scale must be finite and > 0");
  } else {
    if (t->layout != Layout::kPlain) return Status::Error(who() + ": " + dtype_name(t->dtype) + " tensors use the plain layout");
    // Quantization fields are unused here and must be zero, so no stray bits pass unnoticed.
    if (bits != 0 || kind != 0 || t->scale != 0.0f) return Status::Error(who() + ": quantization fields set on a non-code tensor");
    t->quant = QuantType{};
    t->scale = 1.0f;
  }
  if (constant) {
    uint64_t offset, size;
    if (!r.get(&offset) || !r.get(&size)) return truncated("a constant's data range", r.pos());
    if (offset % kDataAlignment != 0) return Status::Error(who() + ": data offset not aligned");
    if (size != t->byte_size())
      return Status::Error(who() + ": holds " + std::to_string(size) + " bytes, shape " + t->shape_string() + " needs " +
                           std::to_string(t->byte_size()));
    if (offset > data_size || size > data_size - offset) return Status::Error(who() + ": data range outside the file");
    t->data = data_section + offset;
    t->data_size = size;
  }
  return Status::Ok();
}

Status read_op(Reader& r, uint32_t tensor_count, OpDesc* op, uint32_t index) {
  auto where = [&] { return "op " + std::to_string(index); };
  uint16_t type;
  uint8_t n_in, n_out;
  if (!r.get(&type) || !r.get(&n_in) || !r.get(&n_out)) return truncated("an op record", r.pos());
  const OpTraits* traits = type <= kMaxOpType ? op_traits(static_cast<OpType>(type)) : nullptr;
  if (!traits) return Status::Error(where() + ": unknown op type " + std::to_string(type));
  op->type = static_cast<OpType>(type);
  auto who = [&] { return where() + " (" + traits->name + ")"; };
  if (n_in < traits->min_inputs || n_in > traits->max_inputs)
    return Status::Error(who() + ": " + std::to_string(n_in) + " inputs, expected " + std::to_string(traits->min_inputs) +
                         ".." + std::to_string(traits->max_inputs));
  if (n_out != 1) return Status::Error(who() + ": " + std::to_string(n_out) + " outputs, expected 1");
  op->inputs.resize(n_in);
  op->outputs.resize(n_out);
  for (uint32_t& id : op->inputs) {
    if (!r.get(&id)) return truncated("op inputs", r.pos());
    const bool optional = &id - op->inputs.data() >= traits->min_inputs;
    if (id >= tensor_count && !(optional && id == kNoTensor))
      return Status::Error(who() + ": input tensor " + std::to_string(id) + " does not exist");
  }
  for (uint32_t& id : op->outputs) {
    if (!r.get(&id)) return truncated("op outputs", r.pos());
    if (id >= tensor_count) return Status::Error(who() + ": output tensor " + std::to_string(id) + " does not exist");
  }
  uint8_t n_ints, n_floats;
  uint16_t reserved;
  if (!r.get(&n_ints) || !r.get(&n_floats) || !r.get(&reserved)) return truncated("op attributes", r.pos());
  if (n_ints != traits->int_attrs || n_floats != traits->float_attrs || reserved != 0)
    return Status::Error(who() + ": " + std::to_string(n_ints) + " int and " + std::to_string(n_floats) +
                         " float attributes, expected " + std::to_string(traits->int_attrs) + " and " +
                         std::to_string(traits->float_attrs));
  op->ints.resize(n_ints);
  op->floats.resize(n_floats);
  for (int32_t& v : op->ints)
    if (!r.get(&v)) return truncated("op attributes", r.pos());
  for (float& v : op->floats) {
    if (!r.get(&v)) return truncated("op attributes", r.pos());
    if (!std::isfinite(v)) return Status::Error(who() + ": non-finite float attribute");
  }
  return Status::Ok();
}

Status read_id_list(Reader& r, uint32_t tensor_count, const char* what, Vec<uint32_t>* ids) {
  uint32_t n;
  if (!r.get(&n)) return truncated(what, r.pos());
  if (n == 0 || n > tensor_count) return Status::Error(std::string("graph has ") + std::to_string(n) + " " + what);
  ids->resize(n);
  for (uint32_t& id : *ids) {
    if (!r.get(&id)) return truncated(what, r.pos());
    if (id >= tensor_count) return Status::Error(std::string(what) + ": tensor " + std::to_string(id) + " does not exist");
  }
  return Status::Ok();
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size) {
  static const struct Table {
    uint32_t v[256];
    Table() {
      for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        v[i] = c;
      }
    }
  } table;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table.v[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<uint8_t> serialize_model(const GraphDesc& graph) {
  Writer w;
  w.bytes.resize(kHeaderSize, 0);
  const uint64_t graph_offset = kHeaderSize;

  // Constants are laid out first so the tensor records can name their offsets.
  std::vector<uint64_t> offsets(graph.tensors.size(), 0);
  uint64_t data_size = 0;
  for (size_t i = 0; i < graph.tensors.size(); ++i) {
    if (!graph.tensors[i].is_constant()) continue;
    offsets[i] = data_size;
    data_size = align_up(data_size + graph.tensors[i].data_size, kDataAlignment);
  }

  w.put(static_cast<uint32_t>(graph.tensors.size()));
  w.put(static_cast<uint32_t>(graph.ops.size()));
  for (size_t i = 0; i < graph.tensors.size(); ++i) {
    const TensorDesc& t = graph.tensors[i];
    w.put(static_cast<uint32_t>(t.name.size()));
    w.bytes.insert(w.bytes.end(), t.name.begin(), t.name.end());
    w.put(static_cast<uint8_t>(t.dtype));
    w.put(static_cast<uint8_t>(t.layout));
    const bool codes = t.dtype == DType::kCodes;
    w.put(static_cast<uint8_t>(codes ? t.quant.bits : 0));
    w.put(static_cast<uint8_t>(codes ? t.quant.kind : QuantKind::kUnsigned));
    w.put(codes ? t.scale : 0.0f);
    w.put(static_cast<uint8_t>(t.rank));
    w.put(static_cast<uint8_t>(t.is_constant()));
    w.put(static_cast<uint16_t>(0));
    for (int d = 0; d < t.rank; ++d) w.put(t.dims[d]);
    if (t.is_constant()) {
      w.put(offsets[i]);
      w.put(t.data_size);
    }
  }
  for (const OpDesc& op : graph.ops) {
    w.put(static_cast<uint16_t>(op.type));
    w.put(static_cast<uint8_t>(op.inputs.size()));
    w.put(static_cast<uint8_t>(op.outputs.size()));
    for (uint32_t id : op.inputs) w.put(id);
    for (uint32_t id : op.outputs) w.put(id);
    w.put(static_cast<uint8_t>(op.ints.size()));
    w.put(static_cast<uint8_t>(op.floats.size()));
    w.put(static_cast<uint16_t>(0));
    for (int32_t v : op.ints) w.put(v);
    for (float v : op.floats) w.put(v);
  }
  for (const Vec<uint32_t>* ids : {&graph.inputs, &graph.outputs}) {
    w.put(static_cast<uint32_t>(ids->size()));
    for (uint32_t id : *ids) w.put(id);
  }
  const uint64_t graph_size = w.bytes.size() - graph_offset;
  const uint64_t data_offset = align_up(w.bytes.size(), kDataAlignment);
  w.bytes.resize(data_offset + data_size, 0);
  for (size_t i = 0; i < graph.tensors.size(); ++i) {
    const TensorDesc& t = graph.tensors[i];
    if (t.is_constant()) std::memcpy(w.bytes.data() + data_offset + offsets[i], t.data, t.data_size);
  }

  std::memcpy(w.bytes.data() + kOffMagic, kFileMagic, sizeof(kFileMagic));
  w.put_at<uint32_t>(kOffVersion, kFormatVersion);
  w.put_at<uint32_t>(kOffHeaderSize, kHeaderSize);
  w.put_at<uint64_t>(kOffFileSize, w.bytes.size());
  w.put_at<uint64_t>(kOffGraphOffset, graph_offset);
  w.put_at<uint64_t>(kOffGraphSize, graph_size);
  w.put_at<uint64_t>(kOffDataOffset, data_offset);
  w.put_at<uint64_t>(kOffDataSize, data_size);
  w.put_at<uint32_t>(kOffChecksum, crc32(w.bytes.data() + kHeaderSize, w.bytes.size() - kHeaderSize));
  return std::move(w.bytes);
}

Status parse_model(const uint8_t* data, size_t size, GraphDesc* graph) {
  *graph = GraphDesc{};
  if (size < kHeaderSize) return Status::Error("file is " + std::to_string(size) + " bytes, shorter than the header");
  if (std::memcmp(data, kFileMagic, sizeof(kFileMagic)) != 0) return Status::Error("not a lowbit model (bad magic)");
  const uint32_t version = load<uint32_t>(data + kOffVersion);
  if (version != kFormatVersion)
    return Status::Error("format version " + std::to_string(version) + ", this runtime reads version " +
                         std::to_string(kFormatVersion));
  if (load<uint32_t>(data + kOffHeaderSize) != kHeaderSize || load<uint32_t>(data + kOffReserved) != 0)
    return Status::Error("malformed header");
  const uint64_t file_size = load<uint64_t>(data + kOffFileSize);
  if (file_size != size)
    return Status::Error("header says " + std::to_string(file_size) + " bytes, file has " + std::to_string(size) +
                         (file_size > size ? " (truncated)" : ""));
  const uint64_t graph_offset = load<uint64_t>(data + kOffGraphOffset), graph_size = load<uint64_t>(data + kOffGraphSize);
  const uint64_t data_offset = load<uint64_t>(data + kOffDataOffset), data_size = load<uint64_t>(data + kOffDataSize);
  if (graph_offset != kHeaderSize || graph_size > size - graph_offset || data_offset % kDataAlignment != 0 ||
      data_offset < graph_offset + graph_size || data_offset > size || data_size != size - data_offset)
    return Status::Error("section table is inconsistent with the file size");
  const uint32_t checksum = crc32(data + kHeaderSize, size - kHeaderSize);
  if (checksum != load<uint32_t>(data + kOffChecksum)) return Status::Error("checksum mismatch (file corrupted)");

  Reader r(data + graph_offset, graph_size);
  uint32_t tensor_count, op_count;
  if (!r.get(&tensor_count) || !r.get(&op_count)) return truncated("counts", r.pos());
  // Every record takes at least 16 bytes: bound counts before allocating.
  if (tensor_count > kMaxTensors || tensor_count > r.remaining() / 16)
    return Status::Error("tensor count " + std::to_string(tensor_count) + " is implausible");
  if (op_count > kMaxOps || op_count > r.remaining() / 8)
    return Status::Error("op count " + std::to_string(op_count) + " is implausible");
  graph->tensors.resize(tensor_count);
  for (uint32_t i = 0; i < tensor_count; ++i) {
    Status s = read_tensor(r, data_size, data + data_offset, &graph->tensors[i], i);
    if (!s.ok) return s;
  }
  graph->ops.resize(op_count);
  for (uint32_t i = 0; i < op_count; ++i) {
    Status s = read_op(r, tensor_count, &graph->ops[i], i);
    if (!s.ok) return s;
  }
  Status s = read_id_list(r, tensor_count, "inputs", &graph->inputs);
  if (s.ok) s = read_id_list(r, tensor_count, "outputs", &graph->outputs);
  if (!s.ok) return s;
  if (r.remaining() != 0) return Status::Error(std::to_string(r.remaining()) + " unread bytes after the graph");
  return Status::Ok();
}

Status verify_graph(const GraphDesc& g, Vec<uint32_t>* order) {
  const size_t nt = g.tensors.size();
  Vec<int64_t> producer(nt, -1);  // op index, or -2 for graph inputs
  for (uint32_t id : g.inputs) {
    const TensorDesc& t = g.tensors[id];
    if (t.is_constant()) return Status::Error(std::string("graph input '") + t.c_name() + "' is a constant");
    if (t.dtype == DType::kI32 || t.layout == Layout::kKernelPlanes)
      return Status::Error(std::string("graph input '") + t.c_name() + "' must be float or pixel-planes codes");
    if (producer[id] != -1) return Status::Error(std::string("tensor '") + t.c_name() + "' is listed twice as a graph input");
    producer[id] = -2;
  }
  for (size_t i = 0; i < g.ops.size(); ++i) {
    const uint32_t id = g.ops[i].outputs[0];
    const TensorDesc& t = g.tensors[id];
    if (t.is_constant()) return Status::Error("op " + std::to_string(i) + " writes constant '" + t.c_name() + "'");
    if (t.layout == Layout::kKernelPlanes || t.dtype == DType::kI32)
      return Status::Error("op " + std::to_string(i) + " output '" + t.c_name() + "' must be float or pixel-planes codes");
    if (producer[id] != -1) return Status::Error(std::string("tensor '") + t.c_name() + "' has two producers");
    producer[id] = static_cast<int64_t>(i);
  }
  for (uint32_t id : g.outputs)
    if (producer[id] == -1)
      return Status::Error(std::string("graph output '") + g.tensors[id].c_name() + "' is " +
                           (g.tensors[id].is_constant() ? "a constant" : "never computed"));

  // Kahn's algorithm over op -> op edges; also proves every input is defined.
  // Consumers of each op as one flat list (CSR): first[p] .. first[p + 1] in `consumers`. Every
  // container is sized once up front, so a load into a workspace takes each block exactly once.
  const size_t nops = g.ops.size();
  Vec<uint32_t> pending(nops, 0);
  Vec<uint32_t> first(nops + 1, 0);
  for (size_t i = 0; i < nops; ++i) {
    for (uint32_t id : g.ops[i].inputs) {
      if (id == kNoTensor) continue;
      const TensorDesc& t = g.tensors[id];
      if (t.is_constant() || producer[id] == -2) continue;
      if (producer[id] == -1)
        return Status::Error("op " + std::to_string(i) + " reads '" + t.c_name() + "', which nothing computes");
      ++first[static_cast<size_t>(producer[id]) + 1];
      ++pending[i];
    }
  }
  for (size_t i = 0; i < nops; ++i) first[i + 1] += first[i];
  Vec<uint32_t> consumers(first[nops]);
  {
    Vec<uint32_t> fill(first.begin(), first.end() - 1);
    for (size_t i = 0; i < nops; ++i)
      for (uint32_t id : g.ops[i].inputs) {
        if (id == kNoTensor || g.tensors[id].is_constant() || producer[id] == -2) continue;
        consumers[fill[static_cast<size_t>(producer[id])]++] = static_cast<uint32_t>(i);
      }
  }
  order->clear();
  order->reserve(nops);
  for (size_t i = 0; i < nops; ++i)
    if (pending[i] == 0) order->push_back(static_cast<uint32_t>(i));
  for (size_t k = 0; k < order->size(); ++k) {
    const uint32_t p = (*order)[k];
    for (uint32_t c = first[p]; c < first[p + 1]; ++c)
      if (--pending[consumers[c]] == 0) order->push_back(consumers[c]);
  }
  if (order->size() != nops) return Status::Error("the graph has a cycle");

  for (uint32_t i : *order) {
    const OpDesc& op = g.ops[i];
    const OpTraits& traits = *op_traits(op.type);
    OpView v{};
    v.op = &op;
    v.num_inputs = static_cast<int>(op.inputs.size());
    for (size_t k = 0; k < op.inputs.size(); ++k) v.in[k] = op.inputs[k] == kNoTensor ? nullptr : &g.tensors[op.inputs[k]];
    v.out[0] = &g.tensors[op.outputs[0]];
    auto who = [&] { return "op " + std::to_string(i) + " (" + traits.name + ") -> '" + v.out[0]->c_name() + "'"; };
    for (int k = 0; k < v.num_inputs; ++k) {
      if (!v.in[k]) continue;
      if (v.in[k]->layout == Layout::kKernelPlanes && !((op.type == OpType::kQConv2D || op.type == OpType::kQDense) && k == 1))
        return Status::Error(who() + ": only quantized conv/dense weights use the kernel-planes layout");
      if (v.in[k]->dtype == DType::kI32 && k != 2)
        return Status::Error(who() + ": int32 tensors are threshold tables only");
    }
    InferredOutput out;
    std::string err;
    if (!traits.infer(v, &out, &err)) return Status::Error(who() + ": " + err);
    const TensorDesc& y = *v.out[0];
    bool match = out.dtype == y.dtype && out.rank == y.rank;
    for (int d = 0; match && d < y.rank; ++d) match = out.dims[d] == y.dims[d];
    if (!match) {
      TensorDesc expected;
      expected.rank = out.rank;
      for (int d = 0; d < out.rank; ++d) expected.dims[d] = out.dims[d];
      return Status::Error(who() + ": output declared " + dtype_name(y.dtype) + " " + y.shape_string() + ", op computes " +
                           dtype_name(out.dtype) + " " + expected.shape_string());
    }
    if (out.quant_known && (out.quant != y.quant || out.scale != y.scale))
      return Status::Error(who() + ": output quantization differs from the input's");
  }
  return Status::Ok();
}

}  // namespace lowbit
