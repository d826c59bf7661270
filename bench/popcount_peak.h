// The popcount peak of this CPU, measured in the benchmark's own process.
//
// Unit: binary multiply-accumulates per second, where one binary MAC is one bit of
// (AND + POPCOUNT + accumulate). A bit-serial kernel does exactly that work per weight-bit x
// activation-bit pair, so a layer's achieved rate (see kernels_bench.cpp) divided by this peak is
// the fraction of the machine's bit-op throughput the kernel reaches.
//
// Every instruction sequence this CPU supports is measured (AVX-512 VPOPCNTDQ, AVX2 nibble LUT on
// nibble-half weights with VPSADBW, AVX2 nibble tables picked by the activations, scalar POPCNT),
// each with several register-blocking shapes (M activation rows x N weight rows sharing every
// loaded vector, M*N independent accumulator chains) on an L1-resident working set; the peak is
// the best of all of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bench {

// One instruction sequence, implemented in its own translation unit with its ISA's flags.
struct PeakIsa {
  const char* name;
  size_t vec_bytes;  // bytes per vector register the sequence works on
  // Runs `passes` passes over M rows `a` and N rows `w` of `len` vectors each (M, N from
  // kPeakShapes[variant]) and returns the total popcount of every (a_m & w_n) pair, summed.
  uint64_t (*run)(int variant, const void* a, const void* w, size_t len, size_t passes);
  // The total one pass must produce, for sequences that pair the rows' bits otherwise than
  // popcount(a_m & w_n) (still vec_bytes * 8 bit pairs per row pair and vector); null: that one.
  uint64_t (*expected)(int variant, const void* a, const void* w, size_t len) = nullptr;
};

// Register-blocking shapes tried for every ISA: {M, N}.
constexpr int kPeakShapes[][2] = {{1, 1}, {1, 2}, {2, 2}, {1, 4}, {2, 3}, {2, 4}, {3, 4}, {4, 4}};
constexpr int kPeakShapeCount = static_cast<int>(sizeof(kPeakShapes) / sizeof(kPeakShapes[0]));

struct PeakVariant {
  std::string isa;
  int m = 0, n = 0;
  double gbops = 0.0;  // 1e9 binary MACs per second, one thread
};

struct PeakOptions {
  double trial_seconds = 0.03;  // length of one timed trial
  int trials = 3;               // best of
  std::vector<int> threads = {1, 2};
};

struct PopcountPeak {
  std::vector<PeakVariant> variants;  // every (ISA, shape) measured on one thread
  PeakVariant best;                   // the best of them
  std::vector<std::pair<int, double>> by_threads;  // threads -> aggregate gbops of `best` run on that many threads
  double gbops(int threads) const;
};

// Throws std::runtime_error if a kernel's popcount total is wrong (the timing would be meaningless).
PopcountPeak measure_popcount_peak(const PeakOptions& options);

// Measures the best sequence on each thread count again and keeps the higher value: this VM's
// vCPUs have slow stretches of seconds to minutes (the 2-thread peak once measured 1.0x one
// thread's before the layers and 1.4x after them; in another run one thread's peak measured 1,116
// G/s before and after the layers, 1,250-1,275 in other runs), and a maximum over more moments is
// closer to what the machine can do.
void remeasure_peaks(PopcountPeak& peak, const PeakOptions& options);

// The best sequence (peak.best) as a fixed amount of work per thread on `threads` threads at once,
// one trial per run(). Timed in turn with a layer's contenders, it shows what the machine's threads
// deliver in the same stretch of time: on this VM the second vCPU has slow stretches, which a
// median over trials taken in the same windows as a layer's 2-thread runs reflects.
class PeakProbe {
 public:
  PeakProbe(const PopcountPeak& peak, int threads, double trial_seconds);
  ~PeakProbe();
  PeakProbe(const PeakProbe&) = delete;
  PeakProbe& operator=(const PeakProbe&) = delete;
  void run();      // a trial that counts
  void warm_up();  // a trial that does not
  // Median over the counted trials of the sum of each thread's rate (what an op that balances its
  // work between the threads could use; the peak instead counts the slowest thread's time for
  // all), 1e9 binary MACs per second; NaN before any.
  double median_gbops() const;

 private:
  struct State;
  double trial_gbops() const;
  std::unique_ptr<State> state_;
  std::vector<double> samples_;
};

// The better of two measurements (each variant and thread count at its maximum): a peak is a
// maximum, and a measurement disturbed by another process can only have come out low.
PopcountPeak best_of(const PopcountPeak& a, const PopcountPeak& b);

}  // namespace bench
