#include "thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

namespace lowbit {
namespace {

struct Claims {
  std::unique_ptr<std::atomic<int>[]> count;  // times each unit was processed
  std::atomic<int> bad_worker{0};
  int workers = 1;
};

void count_units(void* ctx, int worker, size_t begin, size_t end) {
  Claims& c = *static_cast<Claims*>(ctx);
  if (worker < 0 || worker >= c.workers) c.bad_worker.fetch_add(1);
  for (size_t u = begin; u < end; ++u) c.count[u].fetch_add(1);
}

// Every unit exactly once, for unit counts below, at and above the number of workers and chunks,
// with repeated dispatches on the same pool and pools resized in between.
TEST(ThreadPool, EveryUnitExactlyOnce) {
  ThreadPool pool;
  for (int workers : {1, 2, 3, 4, 2}) {
    pool.resize(workers);
    for (size_t units : {0u, 1u, 2u, 3u, 5u, 17u, 56u, 100u, 1001u}) {
      for (int repeat = 0; repeat < 20; ++repeat) {
        Claims c;
        c.count.reset(new std::atomic<int>[units + 1]);
        for (size_t u = 0; u <= units; ++u) c.count[u].store(0);
        c.workers = pool.size();
        pool.parallel_for(units, count_units, &c);
        SCOPED_TRACE("workers " + std::to_string(workers) + " units " + std::to_string(units));
        for (size_t u = 0; u < units; ++u) ASSERT_EQ(c.count[u].load(), 1) << "unit " << u;
        EXPECT_EQ(c.count[units].load(), 0) << "a unit past the end was processed";
        EXPECT_EQ(c.bad_worker.load(), 0);
      }
    }
  }
}

}  // namespace
}  // namespace lowbit
