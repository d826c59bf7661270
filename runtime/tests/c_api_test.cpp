// The C API (lowbit.h) and its C++ wrapper (lowbit.hpp): tensor info, input/output conversion,
// argument checking, profiling, threads; and write_file_atomic.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lowbit/lowbit.h"
#include "lowbit/lowbit.hpp"
#include "lowbit/model_builder.h"

namespace lowbit {
namespace {

// ---------------------------------------------------------------------------------------------
// The model: x f32 [1,4,4,3] -> quantize -+
//            q codes [1,4,4,5] ----------+-> concat -> qconv2d 3x3 (2-bit signed weights, codes out
//            "qc" [1,4,4,6], an output) -> dequantize -> global avg pool -> reshape -> softmax "probs"
// ---------------------------------------------------------------------------------------------

constexpr int kH = 4, kW = 4, kXC = 3, kQC = 5, kC = kXC + kQC, kO = 6;
const CodeSpec kAct{{2, QuantKind::kUnsigned}, 0.5f};
const CodeSpec kOut{{2, QuantKind::kSigned}, 0.25f};

std::vector<int32_t> weight_codes() {  // [O, 3, 3, C], codes in -2..1
  std::vector<int32_t> w(kO * 9 * kC);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int32_t>((i * 5 + i / 11) % 4) - 2;
  return w;
}

std::vector<int32_t> threshold_table() {  // [O, 4]: 2-bit signed output has 3 thresholds
  std::vector<int32_t> t;
  for (int32_t o = 0; o < kO; ++o) {
    if (o == 4) {
      t.insert(t.end(), {kThresholdDecreasing, 4, -2, -10});
    } else if (o == 5) {
      t.insert(t.end(), {kThresholdConstant, 1, 0, 0});
    } else {
      t.insert(t.end(), {kThresholdIncreasing, -12 + 3 * o, -2 + o, 6 + 2 * o});
    }
  }
  return t;
}

std::vector<uint8_t> test_model_bytes() {
  ModelBuilder b;
  const auto x = b.input("x", {1, kH, kW, kXC});
  const auto q = b.input_codes("q", {1, kH, kW, kQC}, kAct);
  const auto xq = b.quantize("xq", x, kAct);
  const auto cat = b.concat("cat", {xq, q});
  const auto w = b.constant_weights("w", {kO, 3, 3, kC}, {2, QuantKind::kSigned}, weight_codes());
  const auto th = b.constant_i32("th", {kO, 4}, threshold_table());
  const auto qc = b.qconv2d_codes("qc", cat, w, th, ConvParams::same(3), kOut);
  const auto deq = b.dequantize("deq", qc);
  const auto gap = b.global_avg_pool("gap", deq);
  const auto flat = b.reshape("flat", gap, {1, kO});
  const auto probs = b.softmax("probs", flat);
  b.output(qc);
  b.output(probs);
  std::vector<uint8_t> bytes;
  const Status s = b.serialize(&bytes);
  EXPECT_TRUE(s.ok) << s.message;
  return bytes;
}

struct ModelDeleter {
  void operator()(lowbit_model* m) const { lowbit_free(m); }
};
using ModelPtr = std::unique_ptr<lowbit_model, ModelDeleter>;

ModelPtr load_test_model() {
  static const std::vector<uint8_t> bytes = test_model_bytes();
  ModelPtr m(lowbit_load_memory(bytes.data(), bytes.size()));
  EXPECT_NE(m, nullptr) << lowbit_last_error();
  return m;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}
std::string last_error() { return lowbit_last_error(); }

// Round half up of v / 0.5 into 0..3 (NaN as 0): the API's quantization for input "q".
int32_t act_code(float v) {
  float t = v / 0.5f;
  if (t != t) t = 0.0f;
  t = std::fmin(std::fmax(t, 0.0f), 3.0f);
  return static_cast<int32_t>(std::floor(t + 0.5f));
}

std::vector<float> x_values() {  // multiples of 0.125 in [-1, 2], including exact halves
  std::vector<float> v(kH * kW * kXC);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(static_cast<int>((i * 7) % 25) - 8) * 0.125f;
  return v;
}
std::vector<float> q_values() {
  std::vector<float> v(kH * kW * kQC);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(static_cast<int>((i * 3) % 17) - 3) * 0.25f;
  return v;
}

// Expected codes of "qc" [H, W, O], computed directly from the definitions.
std::vector<int32_t> reference_qc(const std::vector<float>& xv, const std::vector<float>& qv) {
  std::vector<int32_t> act(kH * kW * kC);
  for (int p = 0; p < kH * kW; ++p) {
    for (int c = 0; c < kXC; ++c) act[p * kC + c] = act_code(xv[p * kXC + c]);
    for (int c = 0; c < kQC; ++c) act[p * kC + kXC + c] = act_code(qv[p * kQC + c]);
  }
  const std::vector<int32_t> w = weight_codes();
  const std::vector<int32_t> table = threshold_table();
  std::vector<int32_t> out(kH * kW * kO);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x)
      for (int o = 0; o < kO; ++o) {
        int32_t acc = 0;
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = y + ky - 1, ix = x + kx - 1;
            if (iy < 0 || iy >= kH || ix < 0 || ix >= kW) continue;
            for (int c = 0; c < kC; ++c) acc += act[(iy * kW + ix) * kC + c] * w[((o * 3 + ky) * 3 + kx) * kC + c];
          }
        const int32_t* t = &table[o * 4];
        int32_t level = 0;
        if (t[0] == kThresholdConstant) level = t[1];
        for (int i = 1; i <= 3 && t[0] != kThresholdConstant; ++i)
          level += t[0] == kThresholdIncreasing ? acc >= t[i] : acc <= t[i];
        out[(y * kW + x) * kO + o] = -2 + level;
      }
  return out;
}

void set_test_inputs(lowbit_model* m) {
  const std::vector<float> xv = x_values(), qv = q_values();
  ASSERT_EQ(lowbit_set_input_f32(m, 0, xv.data(), xv.size()), 0) << lowbit_last_error();
  ASSERT_EQ(lowbit_set_input_f32(m, 1, qv.data(), qv.size()), 0) << lowbit_last_error();
}

std::vector<float> output_f32(const lowbit_model* m, int index, size_t count) {
  std::vector<float> out(count, -999.0f);
  EXPECT_EQ(lowbit_get_output_f32(m, index, out.data(), count), 0) << lowbit_last_error();
  return out;
}

// Runs fn on a helper thread. False if it did not finish in time; the thread is then abandoned
// (and with it whatever fn owns), so a deadlock fails the test instead of hanging the suite.
bool finishes_within(std::chrono::seconds limit, std::function<void()> fn) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread([fn, done] {
    fn();
    done->set_value();
  }).detach();
  return finished.wait_for(limit) == std::future_status::ready;
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

TEST(CApi, InputAndOutputInfo) {
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  EXPECT_EQ(lowbit_num_inputs(m.get()), 2);
  EXPECT_EQ(lowbit_num_outputs(m.get()), 2);

  lowbit_tensor_info info{};
  ASSERT_EQ(lowbit_input_info(m.get(), 0, &info), 0);
  EXPECT_STREQ(info.name, "x");
  EXPECT_EQ(info.dtype, LOWBIT_F32);
  EXPECT_EQ(info.rank, 4);
  EXPECT_EQ(info.dims[0], 1);
  EXPECT_EQ(info.dims[1], kH);
  EXPECT_EQ(info.dims[2], kW);
  EXPECT_EQ(info.dims[3], kXC);
  EXPECT_EQ(info.bits, 0);
  EXPECT_EQ(info.scale, 1.0f);
  EXPECT_EQ(info.bytes, static_cast<size_t>(kH * kW * kXC * 4));

  ASSERT_EQ(lowbit_input_info(m.get(), 1, &info), 0);
  EXPECT_STREQ(info.name, "q");
  EXPECT_EQ(info.dtype, LOWBIT_CODES);
  EXPECT_EQ(info.rank, 4);
  EXPECT_EQ(info.dims[3], kQC);
  EXPECT_EQ(info.bits, 2);
  EXPECT_EQ(info.kind, LOWBIT_UNSIGNED);
  EXPECT_EQ(info.scale, 0.5f);
  EXPECT_EQ(info.bytes, static_cast<size_t>(kH * kW * 2 * 4));  // per pixel: 2 planes of one word

  ASSERT_EQ(lowbit_output_info(m.get(), 0, &info), 0);
  EXPECT_STREQ(info.name, "qc");
  EXPECT_EQ(info.dtype, LOWBIT_CODES);
  EXPECT_EQ(info.rank, 4);
  EXPECT_EQ(info.dims[0], 1);
  EXPECT_EQ(info.dims[1], kH);
  EXPECT_EQ(info.dims[2], kW);
  EXPECT_EQ(info.dims[3], kO);
  EXPECT_EQ(info.bits, 2);
  EXPECT_EQ(info.kind, LOWBIT_SIGNED);
  EXPECT_EQ(info.scale, 0.25f);
  EXPECT_EQ(info.bytes, static_cast<size_t>(kH * kW * 2 * 4));

  ASSERT_EQ(lowbit_output_info(m.get(), 1, &info), 0);
  EXPECT_STREQ(info.name, "probs");
  EXPECT_EQ(info.dtype, LOWBIT_F32);
  EXPECT_EQ(info.rank, 2);
  EXPECT_EQ(info.dims[0], 1);
  EXPECT_EQ(info.dims[1], kO);
  EXPECT_EQ(info.dims[2], 0);  // unused dims are zeroed
  EXPECT_EQ(info.dims[3], 0);
  EXPECT_EQ(info.bits, 0);
  EXPECT_EQ(info.scale, 1.0f);
  EXPECT_EQ(info.bytes, static_cast<size_t>(kO * 4));

  // Buffers exist and do not overlap while both are live (inputs and outputs).
  const uint8_t* in0 = static_cast<const uint8_t*>(lowbit_input_buffer(m.get(), 0));
  const uint8_t* in1 = static_cast<const uint8_t*>(lowbit_input_buffer(m.get(), 1));
  const uint8_t* out0 = static_cast<const uint8_t*>(lowbit_output_buffer(m.get(), 0));
  const uint8_t* out1 = static_cast<const uint8_t*>(lowbit_output_buffer(m.get(), 1));
  ASSERT_TRUE(in0 && in1 && out0 && out1);
  EXPECT_TRUE(in0 + 192 <= in1 || in1 + 128 <= in0);
  EXPECT_TRUE(out0 + 128 <= out1 || out1 + 24 <= out0);
}

TEST(CApi, CppWrapperMatchesC) {
  const std::vector<uint8_t> bytes = test_model_bytes();
  std::string error = "untouched";
  Model model = Model::load(bytes.data(), bytes.size(), &error);
  ASSERT_TRUE(model) << error;
  EXPECT_EQ(error, "untouched");  // not written on success
  EXPECT_EQ(model.num_inputs(), 2);
  EXPECT_EQ(model.num_outputs(), 2);
  EXPECT_STREQ(model.input_info(1).name, "q");
  EXPECT_EQ(Model::element_count(model.input_info(1)), static_cast<size_t>(kH * kW * kQC));
  EXPECT_STREQ(model.output_info(1).name, "probs");
  EXPECT_EQ(Model::element_count(model.output_info(1)), static_cast<size_t>(kO));
  EXPECT_GT(model.peak_activation_bytes(), 0u);

  EXPECT_FALSE(model.set_input(0, std::vector<float>(5)));
  EXPECT_TRUE(contains(last_error(), "'x' has 48 elements, got 5")) << last_error();
  ASSERT_TRUE(model.set_input(0, x_values()));
  ASSERT_TRUE(model.set_input(1, q_values()));
  ASSERT_TRUE(model.run());
  const std::vector<float> qc = model.output(0);
  const std::vector<float> probs = model.output(1);
  ASSERT_EQ(qc.size(), static_cast<size_t>(kH * kW * kO));
  ASSERT_EQ(probs.size(), static_cast<size_t>(kO));

  // The same through the C API.
  ModelPtr c = load_test_model();
  ASSERT_TRUE(c);
  set_test_inputs(c.get());
  ASSERT_EQ(lowbit_run(c.get()), 0);
  EXPECT_EQ(output_f32(c.get(), 0, qc.size()), qc);
  EXPECT_EQ(output_f32(c.get(), 1, probs.size()), probs);

  // Loading failures fill *error and give an empty model.
  error.clear();
  Model bad = Model::load("not a model", 11, &error);
  EXPECT_FALSE(bad);
  EXPECT_TRUE(contains(error, "shorter than the header")) << error;
  const std::string missing = ::testing::TempDir() + "lowbit_c_api_missing.lbm";
  Model none = Model::load(missing, &error);
  EXPECT_FALSE(none);
  EXPECT_TRUE(contains(error, missing)) << error;
}

TEST(CApi, SetInputWithWrongCountFails) {
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  std::vector<float> data(100, 0.0f);
  EXPECT_EQ(lowbit_set_input_f32(m.get(), 0, data.data(), 47), -1);
  EXPECT_TRUE(contains(last_error(), "tensor 'x' has 48 elements, got 47")) << last_error();
  EXPECT_EQ(lowbit_set_input_f32(m.get(), 1, data.data(), 81), -1);
  EXPECT_TRUE(contains(last_error(), "tensor 'q' has 80 elements, got 81")) << last_error();
  EXPECT_EQ(lowbit_set_input_f32(m.get(), 0, data.data(), 0), -1);
  EXPECT_TRUE(contains(last_error(), "got 0")) << last_error();
  EXPECT_EQ(lowbit_get_output_f32(m.get(), 1, data.data(), 7), -1);
  EXPECT_TRUE(contains(last_error(), "tensor 'probs' has 6 elements, got 7")) << last_error();
  EXPECT_EQ(lowbit_get_output_f32(m.get(), 0, data.data(), 95), -1);
  EXPECT_TRUE(contains(last_error(), "tensor 'qc' has 96 elements, got 95")) << last_error();

  // A failed call leaves the buffer alone.
  std::vector<float> ones(48, 1.0f);
  ASSERT_EQ(lowbit_set_input_f32(m.get(), 0, ones.data(), 48), 0);
  EXPECT_EQ(lowbit_set_input_f32(m.get(), 0, data.data(), 12), -1);
  EXPECT_EQ(std::memcmp(lowbit_input_buffer(m.get(), 0), ones.data(), 48 * sizeof(float)), 0);
}

TEST(CApi, OutOfRangeIndicesFail) {
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  lowbit_tensor_info info{};
  std::vector<float> data(100, 0.0f);
  for (int bad : {-1, 2, 1000, INT32_MIN}) {
    SCOPED_TRACE("index " + std::to_string(bad));
    EXPECT_EQ(lowbit_input_info(m.get(), bad, &info), -1);
    EXPECT_TRUE(contains(last_error(), "input index " + std::to_string(bad) + " out of range")) << last_error();
    EXPECT_EQ(lowbit_output_info(m.get(), bad, &info), -1);
    EXPECT_TRUE(contains(last_error(), "output index " + std::to_string(bad) + " out of range")) << last_error();
    EXPECT_EQ(lowbit_input_buffer(m.get(), bad), nullptr);
    EXPECT_TRUE(contains(last_error(), "out of range")) << last_error();
    EXPECT_EQ(lowbit_output_buffer(m.get(), bad), nullptr);
    EXPECT_TRUE(contains(last_error(), "out of range")) << last_error();
    EXPECT_EQ(lowbit_set_input_f32(m.get(), bad, data.data(), 48), -1);
    EXPECT_TRUE(contains(last_error(), "out of range")) << last_error();
    EXPECT_EQ(lowbit_get_output_f32(m.get(), bad, data.data(), 6), -1);
    EXPECT_TRUE(contains(last_error(), "out of range")) << last_error();
  }
  const char* type = nullptr;
  double ms = -1.0;
  EXPECT_EQ(lowbit_op_profile(m.get(), -1, &type, nullptr, &ms), -1);
  EXPECT_TRUE(contains(last_error(), "op index out of range")) << last_error();
  EXPECT_EQ(lowbit_op_profile(m.get(), lowbit_num_ops(m.get()), &type, nullptr, &ms), -1);
  EXPECT_TRUE(contains(last_error(), "op index out of range")) << last_error();
  EXPECT_EQ(type, nullptr);
  EXPECT_EQ(ms, -1.0);
}

TEST(CApi, NullArgumentsFailCleanly) {
  // Model-less calls: no crash, an error return and a message.
  EXPECT_EQ(lowbit_num_inputs(nullptr), -1);
  EXPECT_TRUE(contains(last_error(), "model is NULL")) << last_error();
  EXPECT_EQ(lowbit_num_outputs(nullptr), -1);
  EXPECT_TRUE(contains(last_error(), "model is NULL")) << last_error();
  EXPECT_EQ(lowbit_run(nullptr), -1);
  EXPECT_TRUE(contains(last_error(), "model is NULL")) << last_error();
  EXPECT_EQ(lowbit_set_threads(nullptr, 2), -1);
  EXPECT_TRUE(contains(last_error(), "model is NULL")) << last_error();
  EXPECT_EQ(lowbit_set_profiling(nullptr, 1), -1);
  EXPECT_TRUE(contains(last_error(), "model is NULL")) << last_error();
  EXPECT_EQ(lowbit_num_ops(nullptr), -1);
  EXPECT_TRUE(contains(last_error(), "model is NULL")) << last_error();
  EXPECT_EQ(lowbit_op_profile(nullptr, 0, nullptr, nullptr, nullptr), -1);
  EXPECT_TRUE(contains(last_error(), "model is NULL")) << last_error();
  EXPECT_EQ(lowbit_peak_activation_bytes(nullptr), 0u);
  lowbit_free(nullptr);

  lowbit_tensor_info info{};
  float f = 0.0f;
  EXPECT_EQ(lowbit_input_info(nullptr, 0, &info), -1);
  EXPECT_EQ(lowbit_output_info(nullptr, 0, &info), -1);
  EXPECT_EQ(lowbit_input_buffer(nullptr, 0), nullptr);
  EXPECT_EQ(lowbit_output_buffer(nullptr, 0), nullptr);
  EXPECT_EQ(lowbit_set_input_f32(nullptr, 0, &f, 1), -1);
  EXPECT_EQ(lowbit_get_output_f32(nullptr, 0, &f, 1), -1);

  EXPECT_EQ(lowbit_load_file(nullptr), nullptr);
  EXPECT_TRUE(contains(last_error(), "path is NULL")) << last_error();
  EXPECT_EQ(lowbit_load_memory(nullptr, 64), nullptr);
  EXPECT_TRUE(contains(last_error(), "data is NULL")) << last_error();

  // NULL data / info pointers with a real model.
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  EXPECT_EQ(lowbit_input_info(m.get(), 0, nullptr), -1);
  EXPECT_TRUE(contains(last_error(), "info is NULL")) << last_error();
  EXPECT_EQ(lowbit_output_info(m.get(), 0, nullptr), -1);
  EXPECT_TRUE(contains(last_error(), "info is NULL")) << last_error();
  EXPECT_EQ(lowbit_set_input_f32(m.get(), 0, nullptr, 48), -1);
  EXPECT_TRUE(contains(last_error(), "data is NULL")) << last_error();
  EXPECT_EQ(lowbit_get_output_f32(m.get(), 1, nullptr, 6), -1);
  EXPECT_TRUE(contains(last_error(), "data is NULL")) << last_error();
  EXPECT_EQ(lowbit_op_profile(m.get(), 0, nullptr, nullptr, nullptr), 0);  // every out-pointer is optional
}

// The tensor accessors given a NULL model must say so, like every other entry point, instead of
// leaving lowbit_last_error() at the previous call's message.
TEST(CApi, NullModelAccessorsSetAMessage) {
  const struct {
    const char* what;
    std::function<bool()> call;  // true if the call reported failure
  } calls[] = {
      {"lowbit_input_info", [] { lowbit_tensor_info i{}; return lowbit_input_info(nullptr, 0, &i) == -1; }},
      {"lowbit_output_info", [] { lowbit_tensor_info i{}; return lowbit_output_info(nullptr, 0, &i) == -1; }},
      {"lowbit_input_buffer", [] { return lowbit_input_buffer(nullptr, 0) == nullptr; }},
      {"lowbit_output_buffer", [] { return lowbit_output_buffer(nullptr, 0) == nullptr; }},
      {"lowbit_set_input_f32", [] { float f = 0; return lowbit_set_input_f32(nullptr, 0, &f, 1) == -1; }},
      {"lowbit_get_output_f32", [] { float f = 0; return lowbit_get_output_f32(nullptr, 0, &f, 1) == -1; }},
  };
  const std::vector<uint8_t> bytes = test_model_bytes();
  for (const auto& c : calls) {
    lowbit_free(lowbit_load_memory(bytes.data(), bytes.size()));  // a success clears the message
    ASSERT_STREQ(lowbit_last_error(), "");
    EXPECT_TRUE(c.call()) << c.what;
    EXPECT_TRUE(contains(last_error(), "model is NULL")) << c.what << "(NULL, ...) left the message '" << last_error()
                                                         << "'";
  }
}

TEST(CApi, SetInputQuantizesCodesInput) {
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  const float values[] = {-1.0f, 0.0f, 0.2f, 0.25f, 0.3f, 0.5f,  0.74f,    0.75f,     1.0f,
                          1.24f, 1.25f, 1.6f, 100.f, -0.26f, NAN, INFINITY, -INFINITY};
  const int32_t codes[] = {0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0, 3, 0};  // round half up, clamped
  const size_t count = kH * kW * kQC;
  std::vector<float> in(count);
  std::vector<int32_t> want(count);
  for (size_t i = 0; i < count; ++i) {
    in[i] = values[i % 17];
    want[i] = codes[i % 17];
  }
  // Pre-fill the buffer with ones so stale bits would show.
  uint32_t* words = static_cast<uint32_t*>(lowbit_input_buffer(m.get(), 1));
  ASSERT_NE(words, nullptr);
  std::memset(words, 0xFF, kH * kW * 2 * 4);
  ASSERT_EQ(lowbit_set_input_f32(m.get(), 1, in.data(), count), 0) << lowbit_last_error();

  std::vector<int32_t> got(count, -7);
  unpack_pixel_planes(words, kH * kW, kQC, {2, QuantKind::kUnsigned}, got.data());
  EXPECT_EQ(got, want);
  for (int w = 0; w < kH * kW * 2; ++w) EXPECT_EQ(words[w] >> kQC, 0u) << "lanes past the channels in word " << w;

  // A float input is copied as is.
  const std::vector<float> xv = x_values();
  ASSERT_EQ(lowbit_set_input_f32(m.get(), 0, xv.data(), xv.size()), 0);
  EXPECT_EQ(std::memcmp(lowbit_input_buffer(m.get(), 0), xv.data(), xv.size() * sizeof(float)), 0);

  // Writing codes directly into the buffer is the other way in; it round-trips.
  const std::vector<uint32_t> packed = pack_pixel_planes(want.data(), kH * kW, kQC, {2, QuantKind::kUnsigned});
  ASSERT_EQ(packed.size(), static_cast<size_t>(kH * kW * 2));
  EXPECT_EQ(std::memcmp(words, packed.data(), packed.size() * 4), 0);
}

TEST(CApi, GetOutputDequantizesCodesOutput) {
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  set_test_inputs(m.get());
  ASSERT_EQ(lowbit_run(m.get()), 0);

  const size_t count = kH * kW * kO;
  const uint32_t* words = static_cast<const uint32_t*>(lowbit_output_buffer(m.get(), 0));
  ASSERT_NE(words, nullptr);
  std::vector<int32_t> codes(count);
  unpack_pixel_planes(words, kH * kW, kO, {2, QuantKind::kSigned}, codes.data());
  const std::vector<float> values = output_f32(m.get(), 0, count);
  for (size_t i = 0; i < count; ++i) {
    EXPECT_GE(codes[i], -2);
    EXPECT_LE(codes[i], 1);
    EXPECT_EQ(values[i], 0.25f * static_cast<float>(codes[i])) << "element " << i;
  }
  // The codes are what the layer should compute, and the softmax follows from them.
  EXPECT_EQ(codes, reference_qc(x_values(), q_values()));
  std::vector<double> mean(kO, 0.0);
  for (size_t i = 0; i < count; ++i) mean[i % kO] += 0.25 * codes[i] / (kH * kW);
  double denom = 0.0;
  for (double v : mean) denom += std::exp(v);
  const std::vector<float> probs = output_f32(m.get(), 1, kO);
  for (int o = 0; o < kO; ++o) EXPECT_NEAR(probs[o], std::exp(mean[o]) / denom, 1e-5) << "channel " << o;
  // Several distinct codes, so the check above means something.
  int seen[4] = {};
  for (int32_t c : codes) seen[c + 2] = 1;
  EXPECT_GE(seen[0] + seen[1] + seen[2] + seen[3], 3);
}

TEST(CApi, ProfilingGivesOneEntryPerOp) {
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  ASSERT_EQ(lowbit_num_ops(m.get()), 7);
  set_test_inputs(m.get());
  ASSERT_EQ(lowbit_set_profiling(m.get(), 1), 0);
  ASSERT_EQ(lowbit_run(m.get()), 0);
  const char* types[] = {"Quantize", "Concat", "QConv2D", "Dequantize", "GlobalAvgPool", "Reshape", "Softmax"};
  const char* outputs[] = {"xq", "cat", "qc", "deq", "gap", "flat", "probs"};
  for (int i = 0; i < 7; ++i) {
    const char* type = nullptr;
    const char* output = nullptr;
    double ms = -1.0;
    ASSERT_EQ(lowbit_op_profile(m.get(), i, &type, &output, &ms), 0) << lowbit_last_error();
    ASSERT_NE(type, nullptr);
    ASSERT_NE(output, nullptr);
    EXPECT_STREQ(type, types[i]) << "step " << i;
    EXPECT_STREQ(output, outputs[i]) << "step " << i;
    EXPECT_GE(ms, 0.0) << type;
    EXPECT_LT(ms, 60000.0) << type;
  }
  // Turning profiling off keeps runs working.
  ASSERT_EQ(lowbit_set_profiling(m.get(), 0), 0);
  EXPECT_EQ(lowbit_run(m.get()), 0);
}

TEST(CApi, SetThreadsRejectsNonPositive) {
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  for (int bad : {0, -1, INT32_MIN}) {
    EXPECT_EQ(lowbit_set_threads(m.get(), bad), -1) << bad;
    EXPECT_TRUE(contains(last_error(), "thread count must be >= 1")) << last_error();
  }
  // The model still runs after a refused change.
  set_test_inputs(m.get());
  EXPECT_EQ(lowbit_run(m.get()), 0);
  EXPECT_EQ(lowbit_set_threads(m.get(), 1), 0);
  EXPECT_EQ(lowbit_run(m.get()), 0);
}

TEST(CApi, TwoThreadsGiveIdenticalOutputs) {
  ModelPtr one = load_test_model();
  ASSERT_TRUE(one);
  set_test_inputs(one.get());
  ASSERT_EQ(lowbit_run(one.get()), 0);
  const std::vector<float> want_qc = output_f32(one.get(), 0, kH * kW * kO);
  const std::vector<float> want_probs = output_f32(one.get(), 1, kO);
  const size_t one_thread_bytes = lowbit_peak_activation_bytes(one.get());

  // Set threads and run right away, twice, then go back to one thread. A deadlock in the pool
  // must fail the test rather than hang the suite, so the work runs under a watchdog; on a
  // timeout the model is deliberately leaked (its threads are stuck).
  struct Result {
    int set = -9, run1 = -9, run2 = -9, back = -9, run3 = -9;
    std::vector<float> qc, probs, qc_again;
    size_t bytes = 0;
  };
  auto result = std::make_shared<Result>();
  lowbit_model* raw = load_test_model().release();
  ASSERT_NE(raw, nullptr);
  const bool finished = finishes_within(std::chrono::seconds(5), [raw, result] {
    result->set = lowbit_set_threads(raw, 2);
    set_test_inputs(raw);  // after set_threads, which re-plans (and clears) the activation arena
    result->run1 = lowbit_run(raw);
    result->qc.assign(kH * kW * kO, 0.0f);
    result->probs.assign(kO, 0.0f);
    lowbit_get_output_f32(raw, 0, result->qc.data(), result->qc.size());
    lowbit_get_output_f32(raw, 1, result->probs.data(), result->probs.size());
    result->run2 = lowbit_run(raw);
    result->bytes = lowbit_peak_activation_bytes(raw);
    result->back = lowbit_set_threads(raw, 1);
    set_test_inputs(raw);
    result->run3 = lowbit_run(raw);
    result->qc_again.assign(kH * kW * kO, 0.0f);
    lowbit_get_output_f32(raw, 0, result->qc_again.data(), result->qc_again.size());
  });
  ASSERT_TRUE(finished) << "lowbit_run did not return within 5 s after lowbit_set_threads(2): the thread pool "
                           "deadlocked";
  lowbit_free(raw);
  EXPECT_EQ(result->set, 0);
  EXPECT_EQ(result->run1, 0);
  EXPECT_EQ(result->run2, 0);
  EXPECT_EQ(result->back, 0);
  EXPECT_EQ(result->run3, 0);
  EXPECT_EQ(result->qc, want_qc);
  EXPECT_EQ(result->probs, want_probs);  // bitwise: same kernels, same per-element order
  EXPECT_EQ(result->qc_again, want_qc);
  EXPECT_GE(result->bytes, one_thread_bytes);  // scratch is planned per worker
}

TEST(CApi, PeakActivationBytes) {
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  const size_t bytes = lowbit_peak_activation_bytes(m.get());
  EXPECT_GT(bytes, 0u);
  // At least both inputs and the live code tensors fit; and nothing absurd.
  EXPECT_GE(bytes, static_cast<size_t>(192 + 128));
  EXPECT_LT(bytes, static_cast<size_t>(1 << 20));
}

TEST(CApi, LastErrorIsPerThread) {
  ModelPtr m = load_test_model();
  ASSERT_TRUE(m);
  EXPECT_EQ(lowbit_set_threads(m.get(), 0), -1);
  const std::string mine = last_error();
  ASSERT_FALSE(mine.empty());
  std::string other_before, other_after;
  std::thread t([&] {
    other_before = lowbit_last_error();
    lowbit_load_memory("xyz", 3);
    other_after = lowbit_last_error();
  });
  t.join();
  EXPECT_EQ(other_before, "");
  EXPECT_TRUE(contains(other_after, "shorter than the header")) << other_after;
  EXPECT_EQ(last_error(), mine);
}

// ---------------------------------------------------------------------------------------------
// write_file_atomic
// ---------------------------------------------------------------------------------------------

bool file_exists(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f) std::fclose(f);
  return f != nullptr;
}

std::string read_all(const std::string& path) {
  std::string s;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "<missing>";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

void write_plain(const std::string& path, const std::string& content) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  std::fwrite(content.data(), 1, content.size(), f);
  std::fclose(f);
}

TEST(WriteFileAtomic, CreatesAndReplacesWithoutLeavingTemp) {
  const std::string path = ::testing::TempDir() + "lowbit_atomic_test.bin";
  const std::string tmp = path + ".tmp";
  std::remove(path.c_str());
  std::remove(tmp.c_str());

  const std::string first = "first version, rather longer than the second one";
  Status s = write_file_atomic(path, reinterpret_cast<const uint8_t*>(first.data()), first.size());
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_EQ(read_all(path), first);
  EXPECT_FALSE(file_exists(tmp));

  // Replacing a longer file leaves exactly the new bytes (no stale tail), and a stale temporary
  // from an interrupted earlier write is no obstacle.
  write_plain(tmp, "leftover from a crash");
  const std::string second = "second";
  s = write_file_atomic(path, reinterpret_cast<const uint8_t*>(second.data()), second.size());
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_EQ(read_all(path), second);
  EXPECT_FALSE(file_exists(tmp));

  // Empty content is a valid file too.
  s = write_file_atomic(path, nullptr, 0);
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_EQ(read_all(path), "");
  EXPECT_FALSE(file_exists(tmp));
  std::remove(path.c_str());
}

TEST(WriteFileAtomic, ModelBuilderWriteFileReplacesModel) {
  const std::string path = ::testing::TempDir() + "lowbit_atomic_model.lbm";
  write_plain(path, "an old, unrelated file in the way");
  ModelBuilder b;
  const auto x = b.input("x", {1, 3});
  b.output(b.relu("y", x));
  const Status s = b.write_file(path);
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_FALSE(file_exists(path + ".tmp"));
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(b.serialize(&bytes).ok);
  EXPECT_EQ(read_all(path), std::string(bytes.begin(), bytes.end()));
  ModelPtr m(lowbit_load_file(path.c_str()));
  ASSERT_NE(m, nullptr) << lowbit_last_error();
  const float in[3] = {-1.0f, 0.5f, 2.0f};
  ASSERT_EQ(lowbit_set_input_f32(m.get(), 0, in, 3), 0);
  ASSERT_EQ(lowbit_run(m.get()), 0);
  float out[3] = {};
  ASSERT_EQ(lowbit_get_output_f32(m.get(), 0, out, 3), 0);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 0.5f);
  EXPECT_EQ(out[2], 2.0f);
  std::remove(path.c_str());

  // A builder with an error writes nothing.
  ModelBuilder broken;
  broken.relu("y", 12345);
  const Status bad = broken.write_file(path);
  EXPECT_FALSE(bad.ok);
  EXPECT_TRUE(contains(bad.message, path)) << bad.message;
  EXPECT_FALSE(file_exists(path));
  EXPECT_FALSE(file_exists(path + ".tmp"));
}

TEST(WriteFileAtomic, FailsCleanlyInMissingDirectory) {
  const std::string path = ::testing::TempDir() + "lowbit_no_such_dir/sub/model.lbm";
  const std::string data = "data";
  const Status s = write_file_atomic(path, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  EXPECT_FALSE(s.ok);
  EXPECT_TRUE(contains(s.message, path + ".tmp")) << s.message;
  EXPECT_TRUE(contains(s.message, "cannot create")) << s.message;
  EXPECT_FALSE(file_exists(path));
}

}  // namespace
}  // namespace lowbit
