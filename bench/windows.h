// The benchmark's windows: was the machine at its best while a layer was timed?
//
// A popcount loop (PeakProbe) is timed in turn with each layer's contenders; its rate over the
// run's peak at that thread count is the window's fraction. A layer whose slowest window is below
// kQuietWindow is timed again, and the quietest attempt is kept. These functions hold that policy
// apart from the timing itself (a callback), so it is tested without timing anything.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "popcount_peak.h"

namespace bench {

using json = nlohmann::ordered_json;

// A layer's window counts as quiet when the popcount loop, timed in turn with the layer, ran at
// least this fraction of the run's peak at that thread count. Other processes show in
// other_processes_cpu; a VM's neighbours (on this VM: one vCPU 30-45 % slower for minutes, or
// every one) show only here, and they slowed lowbit's layers more than the loop (layer h W1A2,
// 1 thread: 2.45 ms where its loop read 91 % of the peak, 1.90 ms in quiet windows).
constexpr double kQuietWindow = 0.95;
// How often a layer is timed at most while its windows stay below kQuietWindow.
constexpr int kWindowAttempts = 3;

// A record's window: its popcount_loop_gbops_same_window over `peak` at its `threads`.
double window_fraction(const json& record, const PopcountPeak& peak);

// The slowest window among `records` (1 if there are none).
double slowest_window(const json& records, const PopcountPeak& peak);

// "87.1%": a window's fraction as the run's messages and windows.disturbed print it (one decimal,
// so a 94.96 % window does not read 95 %).
std::string window_percent(double fraction);

using Log = std::function<void(const std::string&)>;

// Calls time_attempt (one timing of all of a layer's or network's contenders, returning its
// records) until an attempt's slowest window is quiet or max_attempts were made, and returns the
// attempt whose slowest window was quietest, each record with window_attempts = the attempts made.
// Lowbit and oneDNN share every window of an attempt, so the choice rests on the machine alone,
// never on either library's times. `what` names the timed thing in log lines ("layer b").
json quietest_attempt(const std::string& what, const PopcountPeak& peak, int max_attempts,
                      const std::function<json()>& time_attempt, const Log& log);

// A layer's windows were judged against the peak known when it ran, which rises while the run goes
// on (each measurement keeps the maximum). Against `peak`, measured after all layers, each of
// `layers` whose slowest window in `records` is below kQuietWindow and which has attempts left
// (kWindowAttempts in all) is timed again by time_layer(layer, attempts left), which returns its
// records; they replace the layer's (adjacent) records in place when their slowest window is
// quieter. Either way the layer's records count all attempts in window_attempts.
void retime_disturbed_layers(const std::vector<std::string>& layers, const PopcountPeak& peak,
                             const std::function<json(const std::string&, int)>& time_layer, const Log& log,
                             json& records);

}  // namespace bench
