#include "thread_pool.h"

#include <gtest/gtest.h>

#ifdef __linux__
#include <sched.h>
#endif

#include <atomic>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace lowbit {
namespace {

constexpr int kMaxWorkers = 4;

struct Claims {
  std::unique_ptr<std::atomic<int>[]> count;  // times each unit was processed
  std::atomic<int> bad_worker{0};
  std::atomic<int> bad_continues{0};  // calls whose `continues` disagreed with the worker's previous call
  size_t previous_end[kMaxWorkers];   // each worker writes only its own
  int workers = 1;
};

void count_units(void* ctx, int worker, size_t begin, size_t end, bool continues) {
  Claims& c = *static_cast<Claims*>(ctx);
  if (worker < 0 || worker >= c.workers) {
    c.bad_worker.fetch_add(1);
    return;
  }
  if (continues != (c.previous_end[worker] == begin)) c.bad_continues.fetch_add(1);
  c.previous_end[worker] = end;
  for (size_t u = begin; u < end; ++u) c.count[u].fetch_add(1);
}

// Dispatches every unit count below, at and above the number of workers and chunks `repeats`
// times on each pool size (resizing in between) and checks every unit was processed exactly once,
// and `continues` exactly when the worker's previous call of the dispatch ended where the call
// begins.
void expect_every_unit_once(ThreadPool& pool, std::initializer_list<int> pool_sizes, int repeats) {
  for (int workers : pool_sizes) {
    pool.resize(workers);
    for (size_t units : {0u, 1u, 2u, 3u, 5u, 17u, 56u, 100u, 1001u}) {
      for (int repeat = 0; repeat < repeats; ++repeat) {
        Claims c;
        c.count.reset(new std::atomic<int>[units + 1]);
        for (size_t u = 0; u <= units; ++u) c.count[u].store(0);
        for (size_t& e : c.previous_end) e = ~size_t{0};
        c.workers = pool.size();
        pool.parallel_for(units, count_units, &c);
        SCOPED_TRACE("workers " + std::to_string(workers) + " units " + std::to_string(units));
        for (size_t u = 0; u < units; ++u) ASSERT_EQ(c.count[u].load(), 1) << "unit " << u;
        EXPECT_EQ(c.count[units].load(), 0) << "a unit past the end was processed";
        EXPECT_EQ(c.bad_worker.load(), 0);
        EXPECT_EQ(c.bad_continues.load(), 0);
      }
    }
  }
}

TEST(ThreadPool, EveryUnitExactlyOnce) {
  ThreadPool pool;
  expect_every_unit_once(pool, {1, 2, 3, 4, 2}, 20);
}

#ifdef __linux__
// More workers than cores: with the whole pool on one CPU, workers are often not running when a
// dispatch starts, so the caller takes their chunks and writes them off while they may be about
// to claim the dispatch; every unit must still run exactly once.
TEST(ThreadPool, EveryUnitExactlyOnceOnOneCpu) {
  cpu_set_t all, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &all)) ++cpu;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // the pool's threads inherit it
  {
    ThreadPool pool;
    expect_every_unit_once(pool, {2, 4, 3}, 100);
  }
  sched_setaffinity(0, sizeof all, &all);
}
#endif

struct FirstCalls {
  int workers = 1;
  std::atomic<int> started{0};
  std::atomic<bool> timed_out{false};
  size_t first_begin[kMaxWorkers];  // each worker writes only its own
  bool called[kMaxWorkers] = {};
};

// Each worker's first call waits until every worker has made one, so no worker can take another's
// chunks before that one starts.
void record_first_calls(void* ctx, int worker, size_t begin, size_t, bool) {
  FirstCalls& f = *static_cast<FirstCalls*>(ctx);
  if (f.called[worker]) return;
  f.called[worker] = true;
  f.first_begin[worker] = begin;
  f.started.fetch_add(1);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (f.started.load() < f.workers) {
    if (std::chrono::steady_clock::now() > give_up) {
      f.timed_out.store(true);
      return;
    }
    std::this_thread::yield();
  }
}

// A worker works through its own share from the front (so ops can carry state from one of its
// chunks to the next, like the conv's table offsets): worker w starts at units * w / workers.
TEST(ThreadPool, EachWorkerStartsAtItsShare) {
  ThreadPool pool;
  for (int workers : {2, 4}) {
    pool.resize(workers);
    if (pool.size() == 1) GTEST_SKIP() << "built without threads";
    constexpr size_t kUnits = 64;
    FirstCalls f;
    f.workers = workers;
    pool.parallel_for(kUnits, record_first_calls, &f);
    ASSERT_FALSE(f.timed_out.load()) << "not every worker made a call within 10 s";
    for (int w = 0; w < workers; ++w) EXPECT_EQ(f.first_begin[w], kUnits * w / workers) << "worker " << w;
  }
}

}  // namespace
}  // namespace lowbit
