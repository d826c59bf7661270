// The executor's promise: all memory is planned at load, so run() never touches the heap.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define LOWBIT_HAVE_MALLINFO2 1
#endif

#include "lowbit/lowbit.h"
#include "lowbit/model_builder.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// Counting replacements for the global allocation functions of this test binary. They pair
// malloc with free; GCC cannot see that once it inlines them, hence the pragma.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using lowbit::ModelBuilder;

// A model touching every kind of step: float conv, quantize, quantized convs with scratch,
// layout ops on codes, pooling, and a float head.
std::vector<uint8_t> mixed_model() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto floats = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
  };
  const lowbit::CodeSpec a2{{2, lowbit::QuantKind::kUnsigned}, 2.0f / 3.0f};
  const lowbit::QuantType w1{1, lowbit::QuantKind::kBinary};
  ModelBuilder b;
  auto x = b.input("x", {1, 16, 16, 3});
  x = b.conv2d("c1", x, b.constant_f32("c1.w", {16, 3, 3, 3}, floats(16 * 27)), lowbit::kNoTensor,
               lowbit::ConvParams::same(3));
  x = b.quantize("q1", x, a2);
  std::vector<int32_t> w(32 * 9 * 16);
  for (int32_t& v : w) v = rng() & 1 ? 1 : -1;
  std::vector<int32_t> t;
  for (int o = 0; o < 32; ++o) t.insert(t.end(), {1, -6, 0, 6});
  auto y = b.qconv2d_codes("c2", x, b.constant_weights("c2.w", {32, 3, 3, 16}, w1, w),
                           b.constant_i32("c2.t", {32, 4}, t), lowbit::ConvParams::same(3), a2);
  y = b.concat("cat", {y, x});
  y = b.space_to_depth("s2d", y, 2);
  lowbit::PoolParams pool;
  y = b.max_pool("pool", y, pool);
  std::vector<int32_t> w3(8 * 9 * 192);
  for (int32_t& v : w3) v = rng() & 1 ? 1 : -1;
  y = b.qconv2d_float("c3", y, b.constant_weights("c3.w", {8, 3, 3, 192}, w1, w3),
                      b.constant_f32("c3.s", {8}, floats(8)), b.constant_f32("c3.b", {8}, floats(8)),
                      lowbit::ConvParams::same(3));
  y = b.global_avg_pool("gap", y);
  b.output(b.softmax("p", b.reshape("flat", y, {1, 8})));
  std::vector<uint8_t> bytes;
  EXPECT_TRUE(b.serialize(&bytes).ok) << b.error();
  return bytes;
}

TEST(Executor, RunDoesNotAllocate) {
  const std::vector<uint8_t> bytes = mixed_model();
  lowbit_model* m = lowbit_load_memory(bytes.data(), bytes.size());
  ASSERT_NE(m, nullptr) << lowbit_last_error();
  std::vector<float> input(16 * 16 * 3, 0.25f);
  ASSERT_EQ(lowbit_set_input_f32(m, 0, input.data(), input.size()), 0);
  for (int threads : {1, 2}) {
    for (int profiling : {0, 1}) {
      SCOPED_TRACE("threads " + std::to_string(threads) + " profiling " + std::to_string(profiling));
      ASSERT_EQ(lowbit_set_threads(m, threads), 0);
      ASSERT_EQ(lowbit_set_profiling(m, profiling), 0);
      ASSERT_EQ(lowbit_run(m), 0);  // warm-up: first-use statics
      const long before = g_allocations.load();
      for (int i = 0; i < 3; ++i) ASSERT_EQ(lowbit_run(m), 0);
      EXPECT_EQ(g_allocations.load() - before, 0);
    }
  }
  lowbit_free(m);
}

// 64-byte aligned storage, as the emitted model_data.c provides with alignas(64).
struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) : raw(n + 64) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(raw.data());
    data = raw.data() + (64 - p % 64) % 64;
  }
  std::vector<uint8_t> raw;
  uint8_t* data;
};

// Bytes the C library heap holds right now (0 where glibc cannot tell): catches malloc/aligned_alloc
// calls that the operator new counter cannot see, when their blocks are still held.
size_t heap_bytes_in_use() {
#if LOWBIT_HAVE_MALLINFO2
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#else
  return 0;
#endif
}

std::vector<float> run_model(lowbit_model* m, const std::vector<float>& input) {
  std::vector<float> out(8, -1.0f);
  EXPECT_EQ(lowbit_set_input_f32(m, 0, input.data(), input.size()), 0) << lowbit_last_error();
  EXPECT_EQ(lowbit_run(m), 0);
  EXPECT_EQ(lowbit_get_output_f32(m, 0, out.data(), out.size()), 0) << lowbit_last_error();
  return out;
}

TEST(StaticLoad, NoHeapDuringLoadRunAndFreeAndSameOutputs) {
  const std::vector<uint8_t> bytes = mixed_model();
  AlignedBuffer model(bytes.size());
  std::memcpy(model.data, bytes.data(), bytes.size());
  const size_t need = lowbit_model_workspace_bytes(model.data, bytes.size());
  ASSERT_GT(need, 0u) << lowbit_last_error();
  EXPECT_EQ(need % 64, 0u);
  AlignedBuffer workspace(need);
  std::vector<float> input(16 * 16 * 3);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>(static_cast<int>(i % 17) - 8) / 8.0f;

  lowbit_model* heap = lowbit_load_memory(bytes.data(), bytes.size());
  ASSERT_NE(heap, nullptr) << lowbit_last_error();
  const std::vector<float> want = run_model(heap, input);
  lowbit_free(heap);

  const long before = g_allocations.load();
  const size_t heap_before = heap_bytes_in_use();
  lowbit_model* m = lowbit_model_load_static(model.data, bytes.size(), workspace.data, need);
  ASSERT_NE(m, nullptr) << lowbit_last_error();
  float out[8];
  for (int i = 0; i < 3; ++i) {  // (the plan may reuse the input's memory: set it before every run)
    ASSERT_EQ(lowbit_set_input_f32(m, 0, input.data(), input.size()), 0);
    ASSERT_EQ(lowbit_run(m), 0);
    ASSERT_EQ(lowbit_get_output_f32(m, 0, out, 8), 0);
  }
  lowbit_tensor_info info;
  ASSERT_EQ(lowbit_input_info(m, 0, &info), 0);
  EXPECT_STREQ(info.name, "x");
  lowbit_op_info op;
  ASSERT_EQ(lowbit_model_op_info(m, 0, &op), 0);
  EXPECT_EQ(heap_bytes_in_use(), heap_before);
  lowbit_free(m);
  EXPECT_EQ(g_allocations.load() - before, 0) << "operator new called during load_static/run/free";
  for (int i = 0; i < 8; ++i) EXPECT_EQ(std::memcmp(&out[i], &want[static_cast<size_t>(i)], sizeof(float)), 0) << i;
  EXPECT_EQ(heap_bytes_in_use(), heap_before);

  // The workspace is reusable after lowbit_free, and the model bytes were used in place.
  m = lowbit_model_load_static(model.data, bytes.size(), workspace.data, need);
  ASSERT_NE(m, nullptr) << lowbit_last_error();
  EXPECT_EQ(run_model(m, input), want);
  EXPECT_EQ(lowbit_set_threads(m, 1), 0);
  EXPECT_EQ(lowbit_set_threads(m, 2), -1);
  EXPECT_NE(std::string(lowbit_last_error()).find("re-planning would need the heap"), std::string::npos) << lowbit_last_error();
  lowbit_free(m);
}

TEST(StaticLoad, WorkspaceTooSmallFailsWithTheNeededSize) {
  const std::vector<uint8_t> bytes = mixed_model();
  AlignedBuffer model(bytes.size());
  std::memcpy(model.data, bytes.data(), bytes.size());
  const size_t need = lowbit_model_workspace_bytes(model.data, bytes.size());
  ASSERT_GT(need, 0u) << lowbit_last_error();
  AlignedBuffer workspace(need);
  // The exact need of this CPU's layout is reported (need is the most any target's layout needs:
  // AVX2 pads weights to 32 channels, NEON to 4).
  EXPECT_EQ(lowbit_model_load_static(model.data, bytes.size(), workspace.data, 64), nullptr);
  const std::string err = lowbit_last_error();
  const size_t at = err.find("needs ") + 6;
  ASSERT_LT(at, err.size()) << err;
  const size_t exact = std::stoul(err.substr(at));
  EXPECT_LE(exact, need);
  for (size_t size : {size_t{0}, size_t{64}, exact / 2, exact - 64}) {
    SCOPED_TRACE(size);
    EXPECT_EQ(lowbit_model_load_static(model.data, bytes.size(), size ? workspace.data : nullptr, size), nullptr);
    const std::string size_err = lowbit_last_error();
    EXPECT_NE(size_err.find("workspace too small: the model needs " + std::to_string(exact)), std::string::npos) << size_err;
    EXPECT_NE(size_err.find("got " + std::to_string(size)), std::string::npos) << size_err;
  }
  // ... and is enough.
  lowbit_model* m = lowbit_model_load_static(model.data, bytes.size(), workspace.data, exact);
  ASSERT_NE(m, nullptr) << lowbit_last_error();
  lowbit_free(m);
}

TEST(StaticLoad, RejectsMisalignedOrCorruptBytes) {
  const std::vector<uint8_t> bytes = mixed_model();
  AlignedBuffer model(bytes.size() + 1);
  std::memcpy(model.data + 1, bytes.data(), bytes.size());
  AlignedBuffer workspace(1 << 20);
  EXPECT_EQ(lowbit_model_load_static(model.data + 1, bytes.size(), workspace.data, 1 << 20), nullptr);
  EXPECT_NE(std::string(lowbit_last_error()).find("64-byte aligned"), std::string::npos) << lowbit_last_error();
  std::memcpy(model.data, bytes.data(), bytes.size());
  EXPECT_EQ(lowbit_model_load_static(model.data, bytes.size(), workspace.data + 8, 1 << 19), nullptr);
  EXPECT_NE(std::string(lowbit_last_error()).find("workspace must be 64-byte aligned"), std::string::npos);
  model.data[bytes.size() - 1] ^= 1;
  EXPECT_EQ(lowbit_model_load_static(model.data, bytes.size(), workspace.data, 1 << 20), nullptr);
  EXPECT_NE(std::string(lowbit_last_error()).find("checksum"), std::string::npos) << lowbit_last_error();
  EXPECT_EQ(lowbit_model_workspace_bytes(model.data, bytes.size()), 0u);
}

TEST(Executor, AllocationCounterSeesTheHeap) {
  // Guards the test above against a counter that never counts.
  const long before = g_allocations.load();
  auto* v = new std::vector<int>(100);
  delete v;
  EXPECT_GE(g_allocations.load() - before, 2);
}

}  // namespace
