// The window policy of lowbit-bench (windows.h) on made-up records: which attempt is kept, which
// layers are timed again after the run and how their records are replaced.
#include "windows.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bench {
namespace {

// The records of one layer.
json of_layer(const json& records, const std::string& layer) {
  json r = json::array();
  for (const json& x : records)
    if (x["layer"] == layer) r.push_back(x);
  return r;
}

// Peak 100 Gbop/s on one thread, 200 on two: a record's loop rate in percent of the peak is
// `percent` on one thread, 2 * percent on two.
PopcountPeak test_peak() {
  PopcountPeak p;
  p.by_threads = {{1, 100.0}, {2, 200.0}};
  return p;
}

json record(const std::string& layer, int threads, double window_percent, const std::string& bits = "W1A2") {
  return {{"layer", layer},
          {"bits", bits},
          {"threads", threads},
          {"lowbit_ms", window_percent},  // marks which attempt a record came from
          {"popcount_loop_gbops_same_window", window_percent * threads}};
}

// One layer's records: two widths at one and two threads, windows w1 (1 thread) and w2 (2).
json layer_records(const std::string& layer, double w1, double w2, int attempts = 0) {
  json r = json::array({record(layer, 1, w1), record(layer, 1, w1, "W1A1"), record(layer, 2, w2),
                        record(layer, 2, w2, "W1A1")});
  if (attempts)
    for (json& x : r) x["window_attempts"] = attempts;
  return r;
}

TEST(Windows, FractionIsTheLoopOverThePeakAtItsThreadCount) {
  const PopcountPeak peak = test_peak();
  EXPECT_DOUBLE_EQ(window_fraction(record("b", 1, 90.0), peak), 0.90);
  EXPECT_DOUBLE_EQ(window_fraction(record("b", 2, 97.0), peak), 0.97);
  const json r = layer_records("b", 96.0, 93.0);
  EXPECT_DOUBLE_EQ(slowest_window(r, peak), 0.93);
  EXPECT_DOUBLE_EQ(slowest_window(json::array(), peak), 1.0);
  EXPECT_EQ(window_percent(0.9496), "95.0%");
  EXPECT_EQ(window_percent(0.871), "87.1%");
}

TEST(Windows, AQuietFirstAttemptIsKept) {
  int calls = 0;
  std::vector<std::string> log;
  const json kept = quietest_attempt("layer b", test_peak(), kWindowAttempts, [&] { ++calls; return layer_records("b", 99.0, 96.0); },
                                     [&](const std::string& line) { log.push_back(line); });
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(log.empty());
  ASSERT_EQ(kept.size(), 4u);
  for (const json& r : kept) EXPECT_EQ(r["window_attempts"], 1);
}

TEST(Windows, DisturbedAttemptsRepeatUntilQuiet) {
  const std::vector<double> slowest = {80.0, 96.0, 99.0};  // the third is never made
  int calls = 0;
  std::vector<std::string> log;
  const json kept = quietest_attempt("layer c", test_peak(), kWindowAttempts,
                                     [&] { return layer_records("c", 99.0, slowest[calls++]); },
                                     [&](const std::string& line) { log.push_back(line); });
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("80.0%"), std::string::npos) << log[0];
  for (const json& r : kept) {
    EXPECT_EQ(r["window_attempts"], 2);
    EXPECT_EQ(r["threads"] == 1 ? 99.0 : 96.0, r["lowbit_ms"].get<double>());
  }
}

TEST(Windows, AllAttemptsDisturbedKeepsTheQuietest) {
  // Slowest windows 85, 91, 88 %: the second attempt is kept, whichever thread count was slow.
  const std::vector<std::pair<double, double>> windows = {{85.0, 99.0}, {97.0, 91.0}, {88.0, 99.0}};
  int calls = 0;
  const json kept = quietest_attempt("layer d", test_peak(), kWindowAttempts,
                                     [&] {
                                       const auto [w1, w2] = windows[calls++];
                                       return layer_records("d", w1, w2);
                                     },
                                     [](const std::string&) {});
  EXPECT_EQ(calls, 3);
  EXPECT_DOUBLE_EQ(slowest_window(kept, test_peak()), 0.91);
  for (const json& r : kept) EXPECT_EQ(r["window_attempts"], 3);
}

TEST(Windows, MaxAttemptsOfOneTimesOnce) {
  int calls = 0;
  const json kept = quietest_attempt("layer e", test_peak(), 1, [&] { ++calls; return layer_records("e", 50.0, 50.0); },
                                     [](const std::string&) {});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(kept[0]["window_attempts"], 1);
}

// After the run: a (disturbed, retimed quieter: replaced in place), f (disturbed, retimed worse:
// kept), g (quiet: not retimed), i (disturbed but out of attempts: not retimed).
TEST(Windows, RetimingAfterTheRunReplacesOnlyQuieterLayers) {
  json records = json::array();
  for (const json& part : {layer_records("a", 90.0, 99.0, 1), layer_records("f", 99.0, 92.0, 1),
                           layer_records("g", 97.0, 98.0, 1), layer_records("i", 50.0, 99.0, kWindowAttempts)})
    for (const json& r : part) records.push_back(r);
  std::vector<std::pair<std::string, int>> retimed;
  const auto time_layer = [&](const std::string& layer, int attempts) {
    retimed.emplace_back(layer, attempts);
    return layer == "a" ? layer_records("a", 96.0, 97.0, 1) : layer_records(layer, 99.0, 85.0, attempts);
  };
  std::vector<std::string> log;
  retime_disturbed_layers({"a", "f", "g", "i"}, test_peak(), time_layer,
                          [&](const std::string& line) { log.push_back(line); }, records);

  ASSERT_EQ(retimed.size(), 2u);
  EXPECT_EQ(retimed[0], std::make_pair(std::string("a"), kWindowAttempts - 1));
  EXPECT_EQ(retimed[1], std::make_pair(std::string("f"), kWindowAttempts - 1));
  ASSERT_EQ(records.size(), 16u);
  const std::vector<std::string> order = {"a", "f", "g", "i"};
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i]["layer"], order[i / 4]) << i;
  // a: the new attempt's records, attempts 1 + 1.
  EXPECT_DOUBLE_EQ(slowest_window(of_layer(records, "a"), test_peak()), 0.96);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(records[i]["window_attempts"], 2);
  // f: its earlier records (92 % beat 85 %), counting all three attempts.
  EXPECT_DOUBLE_EQ(slowest_window(of_layer(records, "f"), test_peak()), 0.92);
  for (size_t i = 4; i < 8; ++i) EXPECT_EQ(records[i]["window_attempts"], 3);
  for (size_t i = 8; i < 12; ++i) EXPECT_EQ(records[i]["window_attempts"], 1);
  for (size_t i = 12; i < 16; ++i) EXPECT_EQ(records[i]["window_attempts"], kWindowAttempts);
  ASSERT_EQ(log.size(), 4u);  // each retimed layer: why, and which timing was kept
  EXPECT_NE(log[1].find("kept the new"), std::string::npos) << log[1];
  EXPECT_NE(log[3].find("kept the earlier"), std::string::npos) << log[3];
}

TEST(Windows, RetimingJudgesAgainstTheFinalPeak) {
  // 96 % of a 100 Gbop/s peak was quiet when the layer ran; the final peak of 110 makes it 87 %.
  json records = layer_records("b", 96.0, 98.0, 1);
  PopcountPeak final_peak = test_peak();
  final_peak.by_threads[0].second = 110.0;
  int calls = 0;
  retime_disturbed_layers({"b"}, final_peak, [&](const std::string&, int attempts) {
    ++calls;
    return layer_records("b", 106.0, 99.0, attempts);
  }, [](const std::string&) {}, records);
  EXPECT_EQ(calls, 1);
  EXPECT_DOUBLE_EQ(slowest_window(of_layer(records, "b"), final_peak), 106.0 / 110.0);  // replaced
  for (const json& r : records) EXPECT_EQ(r["window_attempts"], 3);
}

}  // namespace
}  // namespace bench
