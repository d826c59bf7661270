// The executor's promise: all memory is planned at load, so run() never touches the heap.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>

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

TEST(Executor, AllocationCounterSeesTheHeap) {
  // Guards the test above against a counter that never counts.
  const long before = g_allocations.load();
  auto* v = new std::vector<int>(100);
  delete v;
  EXPECT_GE(g_allocations.load() - before, 2);
}

}  // namespace
