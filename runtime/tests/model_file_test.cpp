// Robustness of the .lbm reader and writer: a round trip of a varied model, 10,000 corrupted or
// truncated files that must all fail cleanly (or, if still valid, load and run), and targeted bad
// inputs whose error messages must say what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "lowbit/lowbit.h"
#include "lowbit/model_builder.h"
#include "model_file.h"

namespace lowbit {
namespace {

constexpr size_t kOffVersion = 8, kOffHeaderSizeField = 12, kOffFileSize = 16, kOffChecksum = 56;

// ---------------------------------------------------------------------------------------------
// The model under test
// ---------------------------------------------------------------------------------------------

// Deterministic values in [-amp, amp].
std::vector<float> pattern(size_t n, float amp, uint32_t salt) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t h = static_cast<uint32_t>(i * 2654435761u + salt * 40503u);
    v[i] = amp * (static_cast<float>((h >> 8) % 2001u) / 1000.0f - 1.0f);
  }
  return v;
}

// float conv -> affine -> concat -> quantize -> qconv2d (binary weights, codes out) -> pad ->
// concat with a codes input -> space_to_depth -> qconv2d (float out) -> global avg pool -> reshape
// -> softmax. Outputs: the softmax and the codes of the first quantized conv.
void build_varied_model(ModelBuilder& b) {
  const CodeSpec act2{{2, QuantKind::kUnsigned}, 0.5f};
  const auto image = b.input("image", {1, 8, 8, 3});
  const auto skip = b.input_codes("skip", {1, 10, 10, 16}, act2);
  const auto w1 = b.constant_f32("conv1.w", {4, 3, 3, 3}, pattern(4 * 27, 0.5f, 1));
  const auto b1 = b.constant_f32("conv1.b", {4}, {0.1f, -0.2f, 0.3f, 0.0f});
  const auto conv1 = b.conv2d("conv1", image, w1, b1, ConvParams::same(3), Activation::kLeakyRelu, 0.125f);
  const auto bn_s = b.constant_f32("bn.scale", {4}, {1.5f, 0.5f, -1.0f, 2.0f});
  const auto bn_b = b.constant_f32("bn.bias", {4}, {0.25f, 0.0f, 0.5f, -0.25f});
  const auto bn = b.affine("bn", conv1, bn_s, bn_b);
  const auto cat = b.concat("cat", {bn, conv1});  // [1, 8, 8, 8]
  const auto q = b.quantize("q", cat, act2, Rounding::kHalfEven);

  std::vector<int32_t> wq_codes(16 * 3 * 3 * 8);
  for (size_t i = 0; i < wq_codes.size(); ++i) wq_codes[i] = (i * 7 + i / 5) % 3 == 0 ? -1 : 1;
  const auto wq = b.constant_weights("qconv.w", {16, 3, 3, 8}, {1, QuantKind::kBinary}, wq_codes);
  std::vector<int32_t> table;  // [16, 1 + 3]: increasing, decreasing and constant channels
  for (int32_t o = 0; o < 16; ++o) {
    if (o % 3 == 0) table.insert(table.end(), {kThresholdIncreasing, -6 + o, o, 6 + o});
    if (o % 3 == 1) table.insert(table.end(), {kThresholdDecreasing, 6, 0, -6 - o});
    if (o % 3 == 2) table.insert(table.end(), {kThresholdConstant, o % 4, 0, 0});
  }
  const auto th = b.constant_i32("qconv.th", {16, 4}, table);
  const auto qc = b.qconv2d_codes("qconv", q, wq, th, ConvParams::same(3), act2);      // [1, 8, 8, 16]
  const auto padded = b.pad("pad", qc, {0, 0, 1, 1, 1, 1, 0, 0});                     // [1, 10, 10, 16]
  const auto cat2 = b.concat("cat2", {padded, skip});                                // [1, 10, 10, 32]
  const auto s2d = b.space_to_depth("s2d", cat2, 2);                                 // [1, 5, 5, 128]

  std::vector<int32_t> wf_codes(10 * 3 * 3 * 128);
  for (size_t i = 0; i < wf_codes.size(); ++i) wf_codes[i] = static_cast<int32_t>((i * 13 + i / 7) % 4) - 2;
  const auto wf = b.constant_weights("qfloat.w", {10, 3, 3, 128}, {2, QuantKind::kSigned}, wf_codes);
  const auto sc = b.constant_f32("qfloat.scale", {10}, pattern(10, 0.01f, 2));
  const auto bi = b.constant_f32("qfloat.bias", {10}, pattern(10, 0.5f, 3));
  ConvParams valid;
  valid.stride_h = 2;  // [1, 2, 3, 10]
  const auto qf = b.qconv2d_float("qfloat", s2d, wf, sc, bi, valid);
  const auto gap = b.global_avg_pool("gap", qf);  // [1, 1, 1, 10]
  const auto flat = b.reshape("flat", gap, {1, 10});
  const auto probs = b.softmax("probs", flat);
  b.output(probs);
  b.output(qc);
}

std::vector<uint8_t> varied_model_bytes(ModelBuilder& b) {
  build_varied_model(b);
  EXPECT_EQ(b.error(), "");
  std::vector<uint8_t> bytes;
  const Status s = b.serialize(&bytes);
  EXPECT_TRUE(s.ok) << s.message;
  return bytes;
}

uint32_t find_tensor(const GraphDesc& g, const std::string& name) {
  for (size_t i = 0; i < g.tensors.size(); ++i)
    if (g.tensors[i].name == name) return static_cast<uint32_t>(i);
  ADD_FAILURE() << "no tensor named " << name;
  return 0;
}

size_t find_op(const GraphDesc& g, const std::string& output_name) {
  for (size_t i = 0; i < g.ops.size(); ++i)
    if (g.tensors[g.ops[i].outputs[0]].name == output_name) return i;
  ADD_FAILURE() << "no op producing " << output_name;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Byte-level helpers
// ---------------------------------------------------------------------------------------------

uint32_t get_u32(const std::vector<uint8_t>& f, size_t off) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(f[off + i]) << (8 * i);
  return v;
}
uint64_t get_u64(const std::vector<uint8_t>& f, size_t off) {
  return get_u32(f, off) | static_cast<uint64_t>(get_u32(f, off + 4)) << 32;
}
void put_u32(std::vector<uint8_t>& f, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) f[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64(std::vector<uint8_t>& f, size_t off, uint64_t v) {
  put_u32(f, off, static_cast<uint32_t>(v));
  put_u32(f, off + 4, static_cast<uint32_t>(v >> 32));
}

// Recomputes the CRC-32 of bytes [64, size) into the header, as a writer would.
void fix_checksum(std::vector<uint8_t>& f) {
  if (f.size() < kHeaderSize) return;
  put_u32(f, kOffChecksum, crc32(f.data() + kHeaderSize, f.size() - kHeaderSize));
}

// Where the fields of a (valid) file's graph section are, found by walking the records the way
// docs/model-format.md lays them out.
struct GraphMap {
  size_t graph_end = 0;                               // first byte after the graph section
  std::vector<size_t> fields;                         // offsets of every 4-byte field
  std::vector<std::vector<size_t>> tensor_dims;       // per tensor: offsets of its dims
  std::vector<size_t> constant_offset;                // per tensor: offset of its u64 data offset (0 if none)
  std::vector<std::vector<size_t>> op_inputs;         // per op: offsets of its input ids
  std::vector<size_t> op_header;                      // per op: offset of u16 type, u8 n_in, u8 n_out
};

GraphMap map_graph(const std::vector<uint8_t>& f) {
  GraphMap m;
  size_t p = kHeaderSize;
  const uint32_t tensors = get_u32(f, p), ops = get_u32(f, p + 4);
  m.fields = {p, p + 4};
  p += 8;
  for (uint32_t t = 0; t < tensors; ++t) {
    const uint32_t name_len = get_u32(f, p);
    m.fields.push_back(p);
    p += 4 + name_len;
    m.fields.push_back(p);      // dtype, layout, bits, kind
    m.fields.push_back(p + 4);  // scale
    const uint8_t rank = f[p + 8], constant = f[p + 9];
    m.fields.push_back(p + 8);  // rank, constant, reserved
    p += 12;
    m.tensor_dims.emplace_back();
    for (int d = 0; d < rank; ++d, p += 4) {
      m.fields.push_back(p);
      m.tensor_dims.back().push_back(p);
    }
    m.constant_offset.push_back(constant ? p : 0);
    if (constant) {
      for (int k = 0; k < 4; ++k) m.fields.push_back(p + 4 * k);  // u64 offset, u64 size
      p += 16;
    }
  }
  for (uint32_t o = 0; o < ops; ++o) {
    m.op_header.push_back(p);
    m.fields.push_back(p);
    const uint8_t n_in = f[p + 2], n_out = f[p + 3];
    p += 4;
    m.op_inputs.emplace_back();
    for (int k = 0; k < n_in; ++k, p += 4) {
      m.fields.push_back(p);
      m.op_inputs.back().push_back(p);
    }
    for (int k = 0; k < n_out; ++k, p += 4) m.fields.push_back(p);
    const uint8_t n_ints = f[p], n_floats = f[p + 1];
    m.fields.push_back(p);
    p += 4;
    for (int k = 0; k < n_ints + n_floats; ++k, p += 4) m.fields.push_back(p);
  }
  for (int list = 0; list < 2; ++list) {
    const uint32_t n = get_u32(f, p);
    m.fields.push_back(p);
    p += 4;
    for (uint32_t k = 0; k < n; ++k, p += 4) m.fields.push_back(p);
  }
  m.graph_end = p;
  EXPECT_EQ(p, kHeaderSize + get_u64(f, 32)) << "graph walk disagrees with the header's graph size";
  return m;
}

// Loads the bytes; returns the loader's message, or "" (with a test failure) if it loaded.
std::string load_error(const std::vector<uint8_t>& bytes) {
  lowbit_model* m = lowbit_load_memory(bytes.data(), bytes.size());
  if (m) {
    lowbit_free(m);
    ADD_FAILURE() << "the model loaded, expected an error";
    return "";
  }
  const std::string msg = lowbit_last_error();
  EXPECT_NE(msg, "");
  return msg;
}

std::string serialized_error(const GraphDesc& g) { return load_error(serialize_model(g)); }

// Feeds every input (when it is not absurdly large), runs and reads every output.
void run_loaded(lowbit_model* m) {
  std::vector<float> buf;
  for (int i = 0; i < lowbit_num_inputs(m); ++i) {
    lowbit_tensor_info info{};
    ASSERT_EQ(lowbit_input_info(m, i, &info), 0) << lowbit_last_error();
    size_t n = 1;
    for (int d = 0; d < info.rank; ++d) n *= static_cast<size_t>(info.dims[d]);
    if (n > (1u << 20)) continue;  // the arena is zero-initialized; leave big inputs at zero
    buf.resize(n);
    for (size_t k = 0; k < n; ++k) buf[k] = static_cast<float>(static_cast<int>(k % 17) - 8) * 0.25f;
    EXPECT_EQ(lowbit_set_input_f32(m, i, buf.data(), n), 0) << lowbit_last_error();
  }
  EXPECT_EQ(lowbit_run(m), 0);
  for (int i = 0; i < lowbit_num_outputs(m); ++i) {
    lowbit_tensor_info info{};
    ASSERT_EQ(lowbit_output_info(m, i, &info), 0) << lowbit_last_error();
    size_t n = 1;
    for (int d = 0; d < info.rank; ++d) n *= static_cast<size_t>(info.dims[d]);
    if (n > (1u << 20) || info.dtype == LOWBIT_I32) continue;
    buf.resize(n);
    EXPECT_EQ(lowbit_get_output_f32(m, i, buf.data(), n), 0) << lowbit_last_error();
  }
}

// ---------------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------------

TEST(ModelFileRoundTrip, ParseMatchesBuilderGraph) {
  ModelBuilder b;
  const std::vector<uint8_t> bytes = varied_model_bytes(b);
  ASSERT_FALSE(bytes.empty());
  const GraphDesc& want = b.graph();

  GraphDesc got;
  const Status s = parse_model(bytes.data(), bytes.size(), &got);
  ASSERT_TRUE(s.ok) << s.message;
  lowbit::Vec<uint32_t> order;
  const Status v = verify_graph(got, &order);
  ASSERT_TRUE(v.ok) << v.message;
  EXPECT_EQ(order.size(), want.ops.size());

  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  size_t constants = 0;
  for (size_t i = 0; i < want.tensors.size(); ++i) {
    const TensorDesc& a = want.tensors[i];
    const TensorDesc& t = got.tensors[i];
    SCOPED_TRACE("tensor " + std::to_string(i) + " '" + a.name + "'");
    EXPECT_EQ(t.name, a.name);
    EXPECT_EQ(t.dtype, a.dtype);
    EXPECT_EQ(t.layout, a.layout);
    EXPECT_EQ(t.quant.bits, a.quant.bits);
    EXPECT_EQ(t.quant.kind, a.quant.kind);
    EXPECT_EQ(std::memcmp(&t.scale, &a.scale, sizeof(float)), 0) << t.scale << " vs " << a.scale;
    ASSERT_EQ(t.rank, a.rank);
    for (int d = 0; d < a.rank; ++d) EXPECT_EQ(t.dims[d], a.dims[d]) << "dim " << d;
    ASSERT_EQ(t.is_constant(), a.is_constant());
    if (a.is_constant()) {
      ++constants;
      ASSERT_EQ(t.data_size, a.data_size);
      EXPECT_EQ(std::memcmp(t.data, a.data, a.data_size), 0) << "constant bytes differ";
      const uint64_t offset = static_cast<uint64_t>(t.data - bytes.data());
      EXPECT_EQ(offset % kDataAlignment, 0u) << "constant at file offset " << offset;
      EXPECT_LE(offset + t.data_size, bytes.size());
    }
  }
  EXPECT_EQ(constants, 9u);

  ASSERT_EQ(got.ops.size(), want.ops.size());
  for (size_t i = 0; i < want.ops.size(); ++i) {
    const OpDesc& a = want.ops[i];
    const OpDesc& o = got.ops[i];
    SCOPED_TRACE("op " + std::to_string(i) + " " + op_name(a.type));
    EXPECT_EQ(o.type, a.type);
    EXPECT_EQ(o.inputs, a.inputs);
    EXPECT_EQ(o.outputs, a.outputs);
    EXPECT_EQ(o.ints, a.ints);
    ASSERT_EQ(o.floats.size(), a.floats.size());
    for (size_t k = 0; k < a.floats.size(); ++k)
      EXPECT_EQ(std::memcmp(&o.floats[k], &a.floats[k], sizeof(float)), 0) << "float " << k;
  }
  EXPECT_EQ(got.inputs, want.inputs);
  EXPECT_EQ(got.outputs, want.outputs);

  // The op types this model is meant to cover.
  std::vector<OpType> types;
  for (const OpDesc& op : got.ops) types.push_back(op.type);
  for (OpType t : {OpType::kConv2D, OpType::kAffine, OpType::kConcat, OpType::kQuantize, OpType::kQConv2D,
                   OpType::kPad, OpType::kSpaceToDepth, OpType::kGlobalAvgPool, OpType::kReshape, OpType::kSoftmax})
    EXPECT_NE(std::find(types.begin(), types.end(), t), types.end()) << op_name(t);

  // Writing what was read gives the same bytes.
  EXPECT_EQ(serialize_model(got), bytes);
}

TEST(ModelFileRoundTrip, HeaderFieldsAndAlignment) {
  ModelBuilder b;
  const std::vector<uint8_t> bytes = varied_model_bytes(b);
  ASSERT_GE(bytes.size(), kHeaderSize);
  EXPECT_EQ(std::memcmp(bytes.data(), kFileMagic, sizeof(kFileMagic)), 0);
  EXPECT_EQ(get_u32(bytes, kOffVersion), kFormatVersion);
  EXPECT_EQ(get_u32(bytes, kOffHeaderSizeField), kHeaderSize);
  EXPECT_EQ(get_u64(bytes, kOffFileSize), bytes.size());
  EXPECT_EQ(get_u64(bytes, 24), kHeaderSize);
  const uint64_t data_offset = get_u64(bytes, 40);
  EXPECT_EQ(data_offset % kDataAlignment, 0u);
  EXPECT_GE(data_offset, kHeaderSize + get_u64(bytes, 32));
  EXPECT_EQ(get_u64(bytes, 48), bytes.size() - data_offset);
  EXPECT_EQ(get_u32(bytes, kOffChecksum), crc32(bytes.data() + kHeaderSize, bytes.size() - kHeaderSize));
  EXPECT_EQ(get_u32(bytes, 60), 0u);
  const GraphMap map = map_graph(bytes);
  for (size_t off : map.constant_offset) {
    if (off) {
      EXPECT_EQ((data_offset + get_u64(bytes, off)) % kDataAlignment, 0u);
    }
  }
  // The standard CRC-32 check value.
  const char* check = "123456789";
  EXPECT_EQ(crc32(reinterpret_cast<const uint8_t*>(check), 9), 0xCBF43926u);
}

TEST(ModelFileRoundTrip, WriteFileThenLoadFileRuns) {
  ModelBuilder b;
  const std::vector<uint8_t> bytes = varied_model_bytes(b);
  const std::string path = ::testing::TempDir() + "lowbit_model_file_roundtrip.lbm";
  const Status s = b.write_file(path);
  ASSERT_TRUE(s.ok) << s.message;

  std::FILE* f = std::fopen(path.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::vector<uint8_t> on_disk(bytes.size() + 16);
  on_disk.resize(std::fread(on_disk.data(), 1, on_disk.size(), f));
  std::fclose(f);
  EXPECT_EQ(on_disk, bytes);

  lowbit_model* from_file = lowbit_load_file(path.c_str());
  ASSERT_NE(from_file, nullptr) << lowbit_last_error();
  EXPECT_STREQ(lowbit_last_error(), "");
  lowbit_model* from_memory = lowbit_load_memory(bytes.data(), bytes.size());
  ASSERT_NE(from_memory, nullptr) << lowbit_last_error();
  EXPECT_EQ(lowbit_num_inputs(from_file), 2);
  EXPECT_EQ(lowbit_num_outputs(from_file), 2);
  EXPECT_EQ(lowbit_num_ops(from_file), 12);

  // The mapped and the copied model compute the same thing.
  run_loaded(from_file);
  run_loaded(from_memory);
  for (int i = 0; i < 2; ++i) {
    lowbit_tensor_info info{};
    ASSERT_EQ(lowbit_output_info(from_file, i, &info), 0);
    size_t n = 1;
    for (int d = 0; d < info.rank; ++d) n *= static_cast<size_t>(info.dims[d]);
    std::vector<float> a(n), c(n);
    ASSERT_EQ(lowbit_get_output_f32(from_file, i, a.data(), n), 0);
    ASSERT_EQ(lowbit_get_output_f32(from_memory, i, c.data(), n), 0);
    EXPECT_EQ(std::memcmp(a.data(), c.data(), n * sizeof(float)), 0) << "output " << i;
    if (i == 0) {
      float sum = 0.0f;
      for (size_t k = 0; k < n; ++k) {
        EXPECT_TRUE(a[k] >= 0.0f && a[k] <= 1.0f) << a[k];
        sum += a[k];
      }
      EXPECT_NEAR(sum, 1.0f, 1e-4f);
    }
  }
  lowbit_free(from_file);
  lowbit_free(from_memory);
  std::remove(path.c_str());
}

// ---------------------------------------------------------------------------------------------
// Fuzz
// ---------------------------------------------------------------------------------------------

TEST(ModelFileFuzz, CorruptedFilesFailCleanly) {
  ModelBuilder b;
  const std::vector<uint8_t> original = varied_model_bytes(b);
  ASSERT_FALSE(original.empty());
  const GraphMap map = map_graph(original);
  const size_t n = original.size();

  std::mt19937 rng(20240611u);  // mt19937's output sequence is fixed by the standard
  auto below = [&rng](size_t bound) { return static_cast<size_t>(rng() % bound); };
  auto nonzero_byte = [&rng]() { return static_cast<uint8_t>(1 + rng() % 255); };
  const uint32_t extremes[] = {0u,          0xFFFFFFFFu, 0x7FFFFFFFu, 0x80000000u, 1u,          2u,
                               3u,          4u,          5u,          7u,          8u,          9u,
                               16u,         31u,         32u,         33u,         64u,         255u,
                               256u,        0xFFFFu,     0x10000u,    0x01000000u, 0x01000001u, 0xFFFFFFFEu,
                               0x7FFFFFFEu, 0x80000001u, 0xFFFFFFF0u, 46341u};

  enum { kTruncate, kFlip, kFlipChecked, kGarbage, kExtreme, kCategories };
  const char* names[kCategories] = {"(a) truncation", "(b) byte flips", "(c) header/graph flips + checksum",
                                    "(d) garbage", "(e) extreme fields + checksum"};
  int total[kCategories] = {}, rejected[kCategories] = {}, ran[kCategories] = {};
  int unchanged_skips = 0;
  std::string sample_error[kCategories];

  const auto start = std::chrono::steady_clock::now();
  std::vector<uint8_t> f;
  for (int iter = 0; iter < 10000; ++iter) {
    const int cat = iter % kCategories;
    f = original;
    switch (cat) {
      case kTruncate:
        f.resize(below(n));
        break;
      case kFlip: {
        const size_t flips = 1 + below(8);
        for (size_t k = 0; k < flips; ++k) f[below(n)] ^= nonzero_byte();
        if (f == original) f[below(n)] ^= nonzero_byte();  // two flips of one byte may cancel
        break;
      }
      case kFlipChecked: {
        const size_t flips = 1 + below(8);
        for (size_t k = 0; k < flips; ++k) {
          size_t at = below(map.graph_end - 4);
          if (at >= kOffChecksum) at += 4;  // the checksum is rewritten anyway
          f[at] ^= nonzero_byte();
        }
        fix_checksum(f);
        break;
      }
      case kGarbage: {
        f.resize(below(2 * n + 1));
        for (uint8_t& byte : f) byte = static_cast<uint8_t>(rng());
        const size_t variant = below(3);
        if (variant >= 1 && f.size() >= kHeaderSize) {  // a real magic and version
          std::memcpy(f.data(), kFileMagic, sizeof(kFileMagic));
          put_u32(f, kOffVersion, kFormatVersion);
          put_u32(f, kOffHeaderSizeField, kHeaderSize);
        }
        if (variant == 2 && f.size() >= kHeaderSize + 8) {  // and a consistent header and checksum
          f.resize((f.size() + kDataAlignment - 1) / kDataAlignment * kDataAlignment, 0);
          put_u64(f, kOffFileSize, f.size());
          put_u64(f, 24, kHeaderSize);
          put_u64(f, 32, f.size() - kHeaderSize);  // all graph...
          put_u64(f, 40, f.size());                // ...and an empty data section at the end
          put_u64(f, 48, 0);
          put_u32(f, 60, 0);
          put_u32(f, kHeaderSize, 1 + static_cast<uint32_t>(below(8)));  // few tensors and ops, to get deep
          put_u32(f, kHeaderSize + 4, static_cast<uint32_t>(below(8)));
          fix_checksum(f);
        }
        break;
      }
      case kExtreme: {
        const size_t fields = 1 + below(2);
        for (size_t k = 0; k < fields; ++k) {
          const uint32_t value = extremes[below(sizeof(extremes) / sizeof(extremes[0]))];
          const size_t at = below(4) != 0 ? map.fields[below(map.fields.size())]
                                          : kHeaderSize + below(map.graph_end - kHeaderSize - 3);
          put_u32(f, at, value);
        }
        fix_checksum(f);
        break;
      }
    }
    if ((cat == kFlipChecked || cat == kExtreme) && f == original) {
      ++unchanged_skips;  // the mutation wrote what was there; nothing to test
      continue;
    }
    ++total[cat];
    lowbit_model* m = lowbit_load_memory(f.empty() ? nullptr : f.data(), f.size());
    if (!m) {
      ++rejected[cat];
      const char* err = lowbit_last_error();
      if (err == nullptr || err[0] == '\0') {
        ADD_FAILURE() << names[cat] << " iteration " << iter << ": rejected without a message";
      } else if (sample_error[cat].empty() || below(50) == 0) {
        sample_error[cat] = err;
        for (char& ch : sample_error[cat])  // corrupted names may hold any byte
          if (static_cast<unsigned char>(ch) < 32 || static_cast<unsigned char>(ch) > 126) ch = '?';
      }
      continue;
    }
    // Still a valid model: it must also run.
    EXPECT_STREQ(lowbit_last_error(), "");
    if (lowbit_peak_activation_bytes(m) <= (256u << 20)) {
      run_loaded(m);
      ++ran[cat];
    }
    lowbit_free(m);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf("[ fuzz     ] model of %zu bytes (graph section %zu bytes), %.2f s, %d no-op mutations skipped\n", n,
              map.graph_end - kHeaderSize, seconds, unchanged_skips);
  for (int c = 0; c < kCategories; ++c)
    std::printf("[ fuzz     ] %-36s %4d / %4d rejected, %3d accepted and ran; e.g. \"%s\"\n", names[c], rejected[c],
                total[c], ran[c], sample_error[c].c_str());
  std::fflush(stdout);

  EXPECT_EQ(rejected[kTruncate], total[kTruncate]);
  EXPECT_EQ(rejected[kFlip], total[kFlip]);
  EXPECT_EQ(rejected[kGarbage], total[kGarbage]);
  // Flips in names and float attributes, or a different but existing tensor id, can leave a valid
  // model; with this seed about 2-5% do. Most must be caught by the structural checks.
  EXPECT_GE(rejected[kFlipChecked], total[kFlipChecked] * 9 / 10);
  EXPECT_GE(rejected[kExtreme], total[kExtreme] * 9 / 10);
  for (int c = 0; c < kCategories; ++c) EXPECT_GE(total[c], 1900) << names[c];
}

// ---------------------------------------------------------------------------------------------
// Targeted bad inputs
// ---------------------------------------------------------------------------------------------

class ModelFileErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = varied_model_bytes(builder_);
    ASSERT_FALSE(bytes_.empty());
    map_ = map_graph(bytes_);
  }
  const GraphDesc& graph() const { return builder_.graph(); }

  ModelBuilder builder_;
  std::vector<uint8_t> bytes_;
  GraphMap map_;
};

TEST_F(ModelFileErrors, ValidModelLoads) {
  lowbit_model* m = lowbit_load_memory(bytes_.data(), bytes_.size());
  ASSERT_NE(m, nullptr) << lowbit_last_error();
  lowbit_free(m);
}

TEST_F(ModelFileErrors, EmptyFile) {
  EXPECT_EQ(lowbit_load_memory(nullptr, 0), nullptr);
  EXPECT_NE(std::string(lowbit_last_error()).find("shorter than the header"), std::string::npos) << lowbit_last_error();
  const uint8_t one = 0;
  EXPECT_EQ(lowbit_load_memory(&one, 0), nullptr);
  EXPECT_NE(std::string(lowbit_last_error()).find("0 bytes"), std::string::npos) << lowbit_last_error();

  const std::string path = ::testing::TempDir() + "lowbit_empty.lbm";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  EXPECT_EQ(lowbit_load_file(path.c_str()), nullptr);
  const std::string msg = lowbit_last_error();
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("shorter than the header"), std::string::npos) << msg;
  std::remove(path.c_str());
}

TEST_F(ModelFileErrors, WrongMagic) {
  bytes_[0] = 'X';
  EXPECT_NE(load_error(bytes_).find("bad magic"), std::string::npos);
  const std::string text = "this is not a model, just some text that is longer than sixty-four bytes......";
  EXPECT_NE(load_error(std::vector<uint8_t>(text.begin(), text.end())).find("bad magic"), std::string::npos);
}

TEST_F(ModelFileErrors, WrongVersionIsNamed) {
  put_u32(bytes_, kOffVersion, 7);
  const std::string msg = load_error(bytes_);
  EXPECT_NE(msg.find("version 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("version 1"), std::string::npos) << msg;  // and which version this runtime reads
}

TEST_F(ModelFileErrors, MalformedHeader) {
  std::vector<uint8_t> f = bytes_;
  put_u32(f, kOffHeaderSizeField, 128);
  EXPECT_NE(load_error(f).find("malformed header"), std::string::npos);
  f = bytes_;
  put_u32(f, 60, 1);  // reserved
  EXPECT_NE(load_error(f).find("malformed header"), std::string::npos);
  f = bytes_;
  put_u64(f, 40, get_u64(f, 40) + 64);  // data offset moved, data size not
  EXPECT_NE(load_error(f).find("section table"), std::string::npos);
  f = bytes_;
  put_u64(f, 32, 1ull << 62);  // graph size larger than the file
  EXPECT_NE(load_error(f).find("section table"), std::string::npos);
  f = bytes_;
  put_u64(f, 24, 0);  // graph overlapping the header
  EXPECT_NE(load_error(f).find("section table"), std::string::npos);
}

TEST_F(ModelFileErrors, TruncatedFile) {
  for (size_t keep : {bytes_.size() - 1, bytes_.size() / 2, static_cast<size_t>(kHeaderSize)}) {
    std::vector<uint8_t> f(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(keep));
    const std::string msg = load_error(f);
    EXPECT_NE(msg.find("truncated"), std::string::npos) << keep << ": " << msg;
  }
  std::vector<uint8_t> f(bytes_.begin(), bytes_.begin() + 10);
  EXPECT_NE(load_error(f).find("shorter than the header"), std::string::npos);
}

TEST_F(ModelFileErrors, ChecksumMismatch) {
  for (size_t at : {static_cast<size_t>(kHeaderSize), map_.graph_end - 1, bytes_.size() - 1}) {
    std::vector<uint8_t> f = bytes_;
    f[at] ^= 0x10;
    EXPECT_NE(load_error(f).find("checksum mismatch"), std::string::npos) << "byte " << at;
  }
  std::vector<uint8_t> f = bytes_;
  f[kOffChecksum] ^= 1;
  EXPECT_NE(load_error(f).find("checksum mismatch"), std::string::npos);
}

TEST_F(ModelFileErrors, GraphSectionTruncatedInside) {
  // A consistent header and checksum around a graph section that ends early.
  std::vector<uint8_t> f = bytes_;
  put_u64(f, 32, get_u64(f, 32) - 6);
  const std::string msg = load_error(f);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(ModelFileErrors, ZeroDim) {
  GraphDesc g = graph();
  g.tensors[find_tensor(g, "image")].dims[2] = 0;
  const std::string msg = serialized_error(g);
  EXPECT_NE(msg.find("'image'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dim 2 is 0"), std::string::npos) << msg;

  // The same by patching bytes, for a constant, with a fixed checksum.
  std::vector<uint8_t> f = bytes_;
  put_u32(f, map_.tensor_dims[find_tensor(g, "conv1.b")][0], 0);
  fix_checksum(f);
  EXPECT_NE(load_error(f).find("dim 0 is 0"), std::string::npos);
}

TEST_F(ModelFileErrors, OversizedShapes) {
  GraphDesc g = graph();
  TensorDesc& image = g.tensors[find_tensor(g, "image")];
  image.dims[1] = (1 << 24) + 1;
  EXPECT_NE(serialized_error(g).find("is 16777217"), std::string::npos);
  image.dims[0] = image.dims[1] = image.dims[2] = 1 << 12;  // 2^36 elements, each dim allowed
  EXPECT_NE(serialized_error(g).find("more than 2^31 elements"), std::string::npos);
}

TEST_F(ModelFileErrors, BadTensorRecords) {
  const uint32_t bias = find_tensor(graph(), "conv1.b");
  const uint32_t skip = find_tensor(graph(), "skip");
  struct Case {
    uint32_t tensor;
    void (*mutate)(TensorDesc*);
    const char* expect;
  };
  const Case cases[] = {
      {bias, [](TensorDesc* t) { t->dtype = static_cast<DType>(9); }, "unknown dtype 9"},
      {bias, [](TensorDesc* t) { t->layout = static_cast<Layout>(5); }, "unknown layout 5"},
      {skip, [](TensorDesc* t) { t->quant.kind = static_cast<QuantKind>(4); }, "unknown quantization kind 4"},
      {bias, [](TensorDesc* t) { t->rank = 0; }, "rank 0"},
      {bias, [](TensorDesc* t) { t->layout = Layout::kPixelPlanes; }, "plain layout"},
      {skip, [](TensorDesc* t) { t->quant.bits = 5; }, "invalid quantization"},
      {skip, [](TensorDesc* t) { t->quant = {2, QuantKind::kBinary}; }, "invalid quantization"},
      {skip, [](TensorDesc* t) { t->scale = 0.0f; }, "scale must be finite and > 0"},
      {skip, [](TensorDesc* t) { t->scale = NAN; }, "scale must be finite and > 0"},
      {skip, [](TensorDesc* t) { t->layout = Layout::kPlain; }, "codes need a packed layout"},
  };
  for (const Case& c : cases) {
    GraphDesc g = graph();
    c.mutate(&g.tensors[c.tensor]);
    const std::string msg = serialized_error(g);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << msg;
  }

  // A name longer than the format allows.
  GraphDesc g = graph();
  g.tensors[bias].name.assign(5000, 'n');
  EXPECT_NE(serialized_error(g).find("name length 5000"), std::string::npos);
}

TEST_F(ModelFileErrors, BadConstantRanges) {
  const uint32_t bias = find_tensor(graph(), "conv1.b");
  const size_t at = map_.constant_offset[bias];
  ASSERT_NE(at, 0u);
  std::vector<uint8_t> f = bytes_;
  put_u64(f, at, get_u64(f, at) + 4);
  fix_checksum(f);
  EXPECT_NE(load_error(f).find("not aligned"), std::string::npos);
  f = bytes_;
  put_u64(f, at, 1ull << 40);
  fix_checksum(f);
  EXPECT_NE(load_error(f).find("outside the file"), std::string::npos);
  f = bytes_;
  put_u64(f, at, 0xFFFFFFFFFFFFFFC0ull);  // offset + size would wrap around
  fix_checksum(f);
  EXPECT_NE(load_error(f).find("outside the file"), std::string::npos);
  f = bytes_;
  put_u64(f, at + 8, 20);
  fix_checksum(f);
  EXPECT_NE(load_error(f).find("holds 20 bytes"), std::string::npos);
}

TEST_F(ModelFileErrors, UnknownOpType) {
  for (uint16_t type : {uint16_t{0}, uint16_t{kMaxOpType + 1}, uint16_t{999}, uint16_t{0xFFFF}}) {
    GraphDesc g = graph();
    g.ops[find_op(g, "probs")].type = static_cast<OpType>(type);
    const std::string msg = serialized_error(g);
    EXPECT_NE(msg.find("unknown op type " + std::to_string(type)), std::string::npos) << msg;
  }
}

TEST_F(ModelFileErrors, WrongInputCount) {
  GraphDesc g = graph();
  OpDesc& softmax = g.ops[find_op(g, "probs")];
  softmax.inputs.push_back(softmax.inputs[0]);
  std::string msg = serialized_error(g);
  EXPECT_NE(msg.find("(Softmax)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2 inputs, expected 1..1"), std::string::npos) << msg;

  g = graph();
  g.ops[find_op(g, "cat")].inputs.resize(1);  // concat takes 2..8
  msg = serialized_error(g);
  EXPECT_NE(msg.find("1 inputs, expected 2..8"), std::string::npos) << msg;

  g = graph();
  g.ops[find_op(g, "qfloat")].inputs.resize(2);
  EXPECT_NE(serialized_error(g).find("2 inputs, expected 3..4"), std::string::npos);
}

TEST_F(ModelFileErrors, BadOpRecords) {
  GraphDesc g = graph();
  g.ops[find_op(g, "conv1")].ints.pop_back();
  EXPECT_NE(serialized_error(g).find("9 int and 1 float attributes, expected 10 and 1"), std::string::npos);

  g = graph();
  g.ops[find_op(g, "conv1")].floats[0] = INFINITY;
  EXPECT_NE(serialized_error(g).find("non-finite float attribute"), std::string::npos);

  g = graph();
  g.ops[find_op(g, "probs")].outputs.push_back(0);
  EXPECT_NE(serialized_error(g).find("2 outputs, expected 1"), std::string::npos);

  g = graph();
  g.ops[find_op(g, "probs")].inputs[0] = 1000;
  EXPECT_NE(serialized_error(g).find("input tensor 1000 does not exist"), std::string::npos);

  g = graph();
  g.ops[find_op(g, "probs")].inputs[0] = kNoTensor;  // not an optional input
  EXPECT_NE(serialized_error(g).find("does not exist"), std::string::npos);

  g = graph();
  g.ops[find_op(g, "probs")].outputs[0] = 1000;
  EXPECT_NE(serialized_error(g).find("output tensor 1000 does not exist"), std::string::npos);

  g = graph();
  g.outputs.push_back(1000);
  EXPECT_NE(serialized_error(g).find("outputs: tensor 1000 does not exist"), std::string::npos);

  g = graph();
  g.inputs.clear();
  EXPECT_NE(serialized_error(g).find("graph has 0 inputs"), std::string::npos);

  // An absent optional input (the float qconv's bias) is fine.
  g = graph();
  g.ops[find_op(g, "qfloat")].inputs[3] = kNoTensor;
  const std::vector<uint8_t> f = serialize_model(g);
  lowbit_model* m = lowbit_load_memory(f.data(), f.size());
  ASSERT_NE(m, nullptr) << lowbit_last_error();
  run_loaded(m);
  lowbit_free(m);
}

TEST_F(ModelFileErrors, GraphCycle) {
  // Patch the first conv to read the softmax output: conv1 -> ... -> probs -> conv1.
  const size_t conv1 = find_op(graph(), "conv1");
  const uint32_t probs = find_tensor(graph(), "probs");
  std::vector<uint8_t> f = bytes_;
  ASSERT_EQ(get_u32(f, map_.op_inputs[conv1][0]), find_tensor(graph(), "image"));
  put_u32(f, map_.op_inputs[conv1][0], probs);
  fix_checksum(f);
  const std::string msg = load_error(f);
  EXPECT_NE(msg.find("cycle"), std::string::npos) << msg;

  // An op reading its own output is the smallest cycle.
  const size_t bn = find_op(graph(), "bn");
  f = bytes_;
  put_u32(f, map_.op_inputs[bn][0], find_tensor(graph(), "bn"));
  fix_checksum(f);
  EXPECT_NE(load_error(f).find("cycle"), std::string::npos);
}

TEST_F(ModelFileErrors, OpsInAnyFileOrderLoad) {
  // Ops listed in reverse dependency order still load (they run in topological order).
  GraphDesc g = graph();
  std::reverse(g.ops.begin(), g.ops.end());
  const std::vector<uint8_t> f = serialize_model(g);
  lowbit_model* m = lowbit_load_memory(f.data(), f.size());
  ASSERT_NE(m, nullptr) << lowbit_last_error();
  const char* type = nullptr;
  ASSERT_EQ(lowbit_op_profile(m, 0, &type, nullptr, nullptr), 0);
  EXPECT_STREQ(type, "Conv2D");
  lowbit_free(m);
}

TEST_F(ModelFileErrors, GraphStructure) {
  GraphDesc g = graph();
  g.ops[find_op(g, "bn")].outputs[0] = find_tensor(g, "conv1");
  EXPECT_NE(serialized_error(g).find("two producers"), std::string::npos);

  g = graph();
  g.ops[find_op(g, "bn")].outputs[0] = find_tensor(g, "bn.scale");
  EXPECT_NE(serialized_error(g).find("writes constant 'bn.scale'"), std::string::npos);

  g = graph();
  g.inputs.push_back(find_tensor(g, "conv1.w"));
  EXPECT_NE(serialized_error(g).find("graph input 'conv1.w' is a constant"), std::string::npos);

  g = graph();
  g.inputs.push_back(g.inputs[0]);
  EXPECT_NE(serialized_error(g).find("listed twice"), std::string::npos);

  g = graph();  // nothing computes the image any more
  g.inputs.erase(g.inputs.begin());
  EXPECT_NE(serialized_error(g).find("reads 'image', which nothing computes"), std::string::npos);

  g = graph();  // an output nothing computes
  TensorDesc orphan = g.tensors[find_tensor(g, "probs")];
  orphan.name = "orphan";
  g.tensors.push_back(orphan);
  g.outputs.push_back(static_cast<uint32_t>(g.tensors.size() - 1));
  EXPECT_NE(serialized_error(g).find("'orphan' is never computed"), std::string::npos);

  g = graph();  // only trailing optional inputs (a bias) may be absent; a concat operand may not
  g.ops[find_op(g, "cat")].inputs.push_back(lowbit::kNoTensor);
  EXPECT_NE(serialized_error(g).find("input 2 is absent"), std::string::npos) << serialized_error(g);

  g = graph();  // weights in kernel planes fed to a float op
  g.ops[find_op(g, "probs")].inputs[0] = find_tensor(g, "qconv.w");
  EXPECT_NE(serialized_error(g).find("kernel-planes layout"), std::string::npos);

  g = graph();  // an int32 table outside the threshold slot
  g.ops[find_op(g, "probs")].inputs[0] = find_tensor(g, "qconv.th");
  EXPECT_NE(serialized_error(g).find("int32 tensors are threshold tables only"), std::string::npos);
}

TEST_F(ModelFileErrors, OutputShapeMismatch) {
  GraphDesc g = graph();
  g.tensors[find_tensor(g, "conv1")].dims[3] = 5;
  std::string msg = serialized_error(g);
  EXPECT_NE(msg.find("'conv1'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("output declared f32 [1, 8, 8, 5], op computes f32 [1, 8, 8, 4]"), std::string::npos) << msg;

  g = graph();  // a dtype mismatch is one too
  g.tensors[find_tensor(g, "gap")].dtype = DType::kCodes;
  g.tensors[find_tensor(g, "gap")].layout = Layout::kPixelPlanes;
  EXPECT_NE(serialized_error(g).find("op computes f32"), std::string::npos);

  g = graph();  // reshape to a different element count
  g.tensors[find_tensor(g, "flat")].dims[1] = 11;
  g.tensors[find_tensor(g, "probs")].dims[1] = 11;
  EXPECT_NE(serialized_error(g).find("cannot reshape [1, 1, 1, 10] to [1, 11]"), std::string::npos);

  g = graph();  // a layout op must keep its input's quantization
  g.tensors[find_tensor(g, "pad")].scale = 0.25f;
  EXPECT_NE(serialized_error(g).find("quantization differs"), std::string::npos);

  g = graph();  // a shape the op cannot compute (stride 0)
  g.ops[find_op(g, "qfloat")].ints[kStrideH] = 0;
  EXPECT_NE(serialized_error(g).find("stride must be >= 1"), std::string::npos);
}

TEST_F(ModelFileErrors, Thresholds) {
  const uint32_t th = find_tensor(graph(), "qconv.th");
  const TensorDesc& t = graph().tensors[th];
  std::vector<int32_t> table(t.data_size / 4);
  std::memcpy(table.data(), t.data, t.data_size);
  ASSERT_EQ(table[0], kThresholdIncreasing);
  ASSERT_EQ(table[4], kThresholdDecreasing);
  ASSERT_EQ(table[8], kThresholdConstant);

  auto with_table = [&](const std::vector<int32_t>& values) {
    GraphDesc g = graph();
    g.tensors[th].data = reinterpret_cast<const uint8_t*>(values.data());
    return serialized_error(g);
  };
  std::vector<int32_t> bad = table;
  std::swap(bad[2], bad[3]);  // increasing channel 0: -6, 6, 0
  EXPECT_NE(with_table(bad).find("thresholds of channel 0 are not monotonic"), std::string::npos);
  bad = table;
  std::swap(bad[5], bad[7]);  // decreasing channel 1: -7, 0, 6
  EXPECT_NE(with_table(bad).find("thresholds of channel 1 are not monotonic"), std::string::npos);
  bad = table;
  bad[12] = 2;  // channel 3 direction
  EXPECT_NE(with_table(bad).find("channel 3 has threshold direction 2"), std::string::npos);
  bad = table;
  bad[9] = 4;  // constant channel 2 level beyond 3
  EXPECT_NE(with_table(bad).find("constant channel 2 level out of range"), std::string::npos);
  bad = table;
  bad[9] = -1;
  EXPECT_NE(with_table(bad).find("constant channel 2 level out of range"), std::string::npos);

  // Equal neighbours are sorted.
  std::vector<int32_t> ok = table;
  ok[2] = ok[1];
  GraphDesc g = graph();
  g.tensors[th].data = reinterpret_cast<const uint8_t*>(ok.data());
  const std::vector<uint8_t> f = serialize_model(g);
  lowbit_model* m = lowbit_load_memory(f.data(), f.size());
  EXPECT_NE(m, nullptr) << lowbit_last_error();
  lowbit_free(m);

  // A threshold table of the wrong shape.
  g = graph();
  g.tensors[th].dims[1] = 3;
  g.tensors[th].data_size = 16 * 3 * 4;
  EXPECT_NE(serialized_error(g).find("threshold table is [16, 3], expected [16, 4]"), std::string::npos);
}

// A QConv2D whose worst-case accumulator does not fit int32. kh*kw*Cg*15*8 > 2^31 needs about 18M
// weight lanes, i.e. a ~9 MB file (4-bit weights, packed).
GraphDesc huge_qconv(int activation_bits, std::vector<uint8_t>* weight_storage, std::vector<int32_t>* table) {
  constexpr int32_t kCg = 8947872;  // 2 * 1 * kCg * 15 * 8 = 2147489280 > INT32_MAX
  GraphDesc g;
  TensorDesc x;
  x.name = "x";
  x.dtype = DType::kCodes;
  x.layout = Layout::kPixelPlanes;
  x.quant = {static_cast<uint8_t>(activation_bits), QuantKind::kUnsigned};
  x.rank = 4;
  x.dims[0] = 1; x.dims[1] = 2; x.dims[2] = 1; x.dims[3] = kCg;
  TensorDesc w = x;
  w.name = "w";
  w.layout = Layout::kKernelPlanes;
  w.quant = {4, QuantKind::kSigned};
  weight_storage->assign(w.byte_size(), 0);
  w.data = weight_storage->data();
  w.data_size = weight_storage->size();
  TensorDesc th;
  th.name = "th";
  th.dtype = DType::kI32;
  th.rank = 2;
  th.dims[0] = 1; th.dims[1] = 16;
  table->assign(16, 0);
  (*table)[0] = kThresholdIncreasing;
  for (int i = 1; i < 16; ++i) (*table)[static_cast<size_t>(i)] = i * 100;
  th.data = reinterpret_cast<const uint8_t*>(table->data());
  th.data_size = 64;
  TensorDesc y;
  y.name = "y";
  y.dtype = DType::kCodes;
  y.layout = Layout::kPixelPlanes;
  y.quant = {4, QuantKind::kUnsigned};
  y.rank = 4;
  y.dims[0] = y.dims[1] = y.dims[2] = y.dims[3] = 1;
  g.tensors = {x, w, th, y};
  OpDesc op;
  op.type = OpType::kQConv2D;
  op.inputs = {0, 1, 2};
  op.outputs = {3};
  op.ints = {1, 1, 0, 0, 0, 0, 1, 1, 1};
  g.ops = {op};
  g.inputs = {0};
  g.outputs = {3};
  return g;
}

TEST_F(ModelFileErrors, AccumulatorBeyondInt32) {
  std::vector<uint8_t> weights;
  std::vector<int32_t> table;
  const GraphDesc g = huge_qconv(4, &weights, &table);
  EXPECT_EQ(weights.size(), 8947872u);
  lowbit::Vec<uint32_t> order;
  const Status v = verify_graph(g, &order);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.message.find("accumulator bound 2147489280 exceeds int32"), std::string::npos) << v.message;
  const std::string msg = serialized_error(g);
  EXPECT_NE(msg.find("accumulator bound 2147489280 exceeds int32"), std::string::npos) << msg;

  // The same layer with 2-bit activations (bound 3 * 8 per lane) is fine.
  const GraphDesc small = huge_qconv(2, &weights, &table);
  const Status ok = verify_graph(small, &order);
  EXPECT_TRUE(ok.ok) << ok.message;
}

// Hand-made graphs of one op on a float input, for attribute edge cases.
GraphDesc one_op_graph(OpType type, std::vector<int32_t> in_dims, std::vector<int32_t> out_dims,
                       std::vector<int32_t> ints, std::vector<float> floats, const TensorDesc* weights) {
  GraphDesc g;
  auto f32 = [](const char* name, const std::vector<int32_t>& dims) {
    TensorDesc t;
    t.name = name;
    t.rank = static_cast<int>(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) t.dims[i] = dims[i];
    return t;
  };
  g.tensors.push_back(f32("x", in_dims));
  g.tensors.push_back(f32("y", out_dims));
  OpDesc op;
  op.type = type;
  op.inputs = {0};
  op.outputs = {1};
  if (weights) {
    g.tensors.push_back(*weights);
    op.inputs.push_back(2);
  }
  op.ints.assign(ints.begin(), ints.end());
  op.floats.assign(floats.begin(), floats.end());
  g.ops = {op};
  g.inputs = {0};
  g.outputs = {1};
  return g;
}

// A convolution whose output height does not fit int32 must be rejected, not truncated: with
// kh = 1, dilation 2^31-1 and pads of 2^31-2 (each below the "dilated kernel" bound kh*dilation),
// oh = 9 + 2^32 - 4 = 2^32 + 5, which wraps to the declared 5; running such a model writes far
// outside the activation arena.
TEST_F(ModelFileErrors, ConvOutputSizeBeyondInt32IsRejected) {
  const std::vector<float> one = {1.0f};
  TensorDesc w;
  w.name = "w";
  w.rank = 4;
  w.dims[0] = w.dims[1] = w.dims[2] = w.dims[3] = 1;
  w.data = reinterpret_cast<const uint8_t*>(one.data());
  w.data_size = 4;
  const GraphDesc g = one_op_graph(OpType::kConv2D, {1, 9, 1, 1}, {1, 5, 1, 1},
                                   {1, 1, 2147483646, 0, 2147483646, 0, 2147483647, 1, 1, 0}, {0.0f}, &w);
  const std::vector<uint8_t> f = serialize_model(g);
  lowbit_model* m = lowbit_load_memory(f.data(), f.size());
  EXPECT_EQ(m, nullptr) << "a Conv2D computing 2^32 + 5 output rows loaded as 5 rows";
  lowbit_free(m);  // never run: it would write out of bounds

  // The honest declaration of the same layer is refused as well (the shape is not representable).
  GraphDesc honest = g;
  honest.tensors[1].dims[1] = 1 << 24;
  EXPECT_NE(serialized_error(honest), "");
}

// On 32-bit targets an arena of exactly 4 GiB (the cap) wraps to 0 in size_t: the loader must
// refuse it rather than allocate nothing and let the first run write through a null-sized arena.
// Two 2 GiB activations are a 192-byte file. On 64-bit targets the model is legal (and would
// allocate 4 GiB), so there is nothing to check.
TEST_F(ModelFileErrors, ArenaBeyondAddressSpaceIsRejected) {
  if (sizeof(size_t) > 4) GTEST_SKIP() << "only 32-bit targets cannot address a 4 GiB arena";
  ModelBuilder b;
  const auto x = b.input("x", {1 << 14, 1 << 15});  // 2^29 floats
  b.output(b.relu("y", x));
  std::vector<uint8_t> f;
  const Status s = b.serialize(&f);
  ASSERT_TRUE(s.ok) << s.message;
  lowbit_model* m = lowbit_load_memory(f.data(), f.size());
  EXPECT_EQ(m, nullptr) << "loaded with peak_activation_bytes = " << lowbit_peak_activation_bytes(m);
  lowbit_free(m);  // never run
}

#if GTEST_HAS_DEATH_TEST
// DepthToSpace checks `channels % (block * block)` in int32: block 65536 makes block*block wrap to 0
// and the loader dies of SIGFPE (an integer division by zero) while verifying the file. The check
// runs in a child process so that the bug fails this test instead of killing the suite.
TEST(ModelFileDeathTest, DepthToSpaceHugeBlockIsRejected) {
  for (int32_t block : {65536, 131072, 46341, 2147483647}) {
    const GraphDesc g = one_op_graph(OpType::kDepthToSpace, {1, 1, 1, 4}, {1, 2, 2, 1}, {block, 0}, {}, nullptr);
    const std::vector<uint8_t> f = serialize_model(g);
    EXPECT_EXIT(
        {
          lowbit_model* m = lowbit_load_memory(f.data(), f.size());
          const bool rejected = m == nullptr && lowbit_last_error()[0] != '\0';
          lowbit_free(m);
          std::exit(rejected ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "")
        << "DepthToSpace block " << block;
  }
}
#endif

TEST_F(ModelFileErrors, MissingFileNamesThePath) {
  const std::string path = ::testing::TempDir() + "lowbit_no_such_dir/missing_model.lbm";
  EXPECT_EQ(lowbit_load_file(path.c_str()), nullptr);
  const std::string msg = lowbit_last_error();
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;

  EXPECT_EQ(lowbit_load_file(::testing::TempDir().c_str()), nullptr);  // a directory
  EXPECT_NE(std::string(lowbit_last_error()).find("not a regular file"), std::string::npos) << lowbit_last_error();
}

TEST_F(ModelFileErrors, ErrorsComeFromTheLastCallOnly) {
  EXPECT_EQ(lowbit_load_memory("junk", 4), nullptr);
  EXPECT_STRNE(lowbit_last_error(), "");
  lowbit_model* m = lowbit_load_memory(bytes_.data(), bytes_.size());
  ASSERT_NE(m, nullptr);
  EXPECT_STREQ(lowbit_last_error(), "");  // a successful load clears the message
  lowbit_free(m);
}

}  // namespace
}  // namespace lowbit
