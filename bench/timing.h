// One timing methodology for every measurement in the harness, lowbit and oneDNN alike.
//
// The things compared on one layer (lowbit at each width and thread count, oneDNN fp32 and int8 at
// each thread count) are "contenders" that take turns: `rounds` rounds, in each of which every
// contender runs one batch (a warm-up run, then timed runs). Each contender's samples are thus
// spread over the same stretch of wall-clock time, so a machine whose speed drifts while it is
// measured (clock, memory placement, a neighbour on the host) affects all of them alike and the
// ratios stay fair. A contender's result is the median of all its timed runs.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace bench {

// This VM has slow stretches of a few seconds in which every contender's time rises by up to 2x;
// with 5 rounds in ~5 s per layer one could cover most of a contender's samples and move its
// median. 15 rounds over ~15 s keep it to a minority.
struct TimingPolicy {
  int rounds = 15;           // turns each contender takes
  int warmup_runs = 3;       // untimed runs before a contender's first batch (1 before later ones)
  int min_runs = 15;         // timed runs over all rounds, at least ...
  double min_seconds = 1.5;  // ... and at least this much timed time,
  double max_seconds = 6.0;  // unless this much time passed (slow contenders) ...
  int floor_runs = 3;        // ... and this many runs did
  int settle_ms = 30;        // pause before a batch that follows one leaving threads spinning
};

struct Timing {
  double median_ms = 0.0;
  double min_ms = 0.0;
  int runs = 0;
};

// The median of v (the mean of the two middle values for an even count); NaN when v is empty.
inline double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Threads a contender leaves spinning for a while after its batch (waiting for more work), which
// would take a core from the next contender: a batch that does not reuse them waits `settle_ms`.
enum class Spinners {
  none,    // runs on the calling thread only
  openmp,  // OpenMP's workers (libgomp), shared by every OpenMP contender
  own,     // workers of its own (a lowbit model's thread pool)
};

struct Contender {
  std::function<void()> run;     // one complete execution (including any stream wait)
  std::function<void()> before;  // called before each batch, outside the timing (may be empty)
  Spinners spinners = Spinners::none;
  std::function<void()> warm_up;  // an untimed run, for contenders that record their own samples (empty: run)
  std::vector<double> seconds{};  // timed samples

  Timing timing() const {
    Timing r;
    r.runs = static_cast<int>(seconds.size());
    if (seconds.empty()) return r;
    r.median_ms = median(seconds) * 1e3;
    r.min_ms = *std::min_element(seconds.begin(), seconds.end()) * 1e3;
    return r;
  }
};

inline void measure_round_robin(std::vector<Contender>& contenders, const TimingPolicy& p) {
  const int rounds = std::max(1, p.rounds);
  const int batch_min_runs = (p.min_runs + rounds - 1) / rounds;
  const int batch_floor_runs = std::max(1, (p.floor_runs + rounds - 1) / rounds);
  const double batch_min_seconds = p.min_seconds / rounds, batch_max_seconds = p.max_seconds / rounds;
  Spinners previous = Spinners::own;  // unknown history: settle before the first batch too
  for (int round = 0; round < rounds; ++round) {
    for (Contender& c : contenders) {
      if (c.before) c.before();
      const bool reuses = previous == Spinners::openmp && c.spinners == Spinners::openmp;
      if (previous != Spinners::none && !reuses) std::this_thread::sleep_for(std::chrono::milliseconds(p.settle_ms));
      const int warmup = round == 0 ? p.warmup_runs : 1;
      for (int i = 0; i < warmup; ++i) c.warm_up ? c.warm_up() : c.run();
      int runs = 0;
      double total = 0.0;
      while (true) {
        const auto start = std::chrono::steady_clock::now();
        c.run();
        const double t = seconds_since(start);
        c.seconds.push_back(t);
        total += t;
        ++runs;
        if (runs >= batch_min_runs && total >= batch_min_seconds) break;
        if (runs >= batch_floor_runs && total >= batch_max_seconds) break;
      }
      previous = c.spinners;
    }
  }
}

}  // namespace bench
