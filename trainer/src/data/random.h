// Deterministic random numbers for the data pipeline. Everything random in a run (the
// validation split, the limits, the epoch order, each sample's augmentation) draws from a
// generator seeded by derive_seed(seed, stream, ...), so results depend only on those numbers and
// are the same on every platform (no std:: distributions, whose output is implementation-defined).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace lowbit::trainer::data {

// What a generator is used for; keeps the streams of one seed independent.
enum class Stream : uint64_t { kValidationSplit = 1, kTrainLimit, kValLimit, kEpochOrder, kSample };

// SplitMix64's finaliser: a bijection with full avalanche, so nearby inputs give unrelated outputs.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline uint64_t derive_seed(uint64_t seed, Stream stream, std::initializer_list<uint64_t> coordinates = {}) {
  uint64_t h = mix64(seed ^ mix64(static_cast<uint64_t>(stream)));
  for (uint64_t c : coordinates) h = mix64(h ^ c);
  return h;
}

// SplitMix64 generator.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64() {
    const uint64_t current = state_;
    state_ += 0x9e3779b97f4a7c15ull;
    return mix64(current);  // mix64 adds the increment itself
  }
  // [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // [0, n) for 0 < n <= 2^53; the bias of the float method is below 2^-53 * n.
  int64_t below(int64_t n) { return static_cast<int64_t>(uniform() * static_cast<double>(n)); }
  bool bernoulli(double p) { return uniform() < p; }

 private:
  uint64_t state_;
};

// Fisher-Yates.
template <typename T>
void shuffle(std::vector<T>& items, Rng& rng) {
  for (size_t i = items.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.below(static_cast<int64_t>(i)));
    std::swap(items[i - 1], items[j]);
  }
}

}  // namespace lowbit::trainer::data
