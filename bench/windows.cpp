#include "windows.h"

#include <algorithm>
#include <cstdio>

namespace bench {

double window_fraction(const json& record, const PopcountPeak& peak) {
  return record["popcount_loop_gbops_same_window"].get<double>() / peak.gbops(record["threads"].get<int>());
}

double slowest_window(const json& records, const PopcountPeak& peak) {
  double slowest = 1.0;
  for (const json& r : records) slowest = std::min(slowest, window_fraction(r, peak));
  return slowest;
}

std::string window_percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100.0 * fraction);
  return buf;
}

json quietest_attempt(const std::string& what, const PopcountPeak& peak, int max_attempts,
                      const std::function<json()>& time_attempt, const Log& log) {
  json kept = json::array();
  double kept_quiet = -1.0;
  int attempts = 0;
  while (attempts < max_attempts && kept_quiet < kQuietWindow) {
    ++attempts;
    json attempt = time_attempt();
    const double quiet = slowest_window(attempt, peak);
    if (quiet > kept_quiet) {
      kept = std::move(attempt);
      kept_quiet = quiet;
    }
    if (kept_quiet < kQuietWindow && attempts < max_attempts)
      log(what + ": the popcount loop ran at " + window_percent(quiet) + " of the peak in this window; timing it again");
  }
  for (json& r : kept) r["window_attempts"] = attempts;
  return kept;
}

void retime_disturbed_layers(const std::vector<std::string>& layers, const PopcountPeak& peak,
                             const std::function<json(const std::string&, int)>& time_layer, const Log& log,
                             json& records) {
  for (const std::string& layer : layers) {
    const auto of_layer = [&layer](const json& r) { return r["layer"] == layer; };
    const auto first = std::find_if(records.begin(), records.end(), of_layer);
    if (first == records.end()) continue;
    const auto last = std::find_if_not(first, records.end(), of_layer);
    const double quiet = slowest_window(json(first, last), peak);
    const int used = (*first)["window_attempts"].get<int>();
    if (quiet >= kQuietWindow || used >= kWindowAttempts) continue;
    log("layer " + layer + ": the popcount loop ran at " + window_percent(quiet) +
        " of the final peak in its window; timing the layer again");
    json again = time_layer(layer, kWindowAttempts - used);
    const double quiet_again = again.empty() ? -1.0 : slowest_window(again, peak);
    const int attempts = used + (again.empty() ? 0 : again[0]["window_attempts"].get<int>());
    const bool replace = quiet_again > quiet;
    log("layer " + layer + ": kept the " + (replace ? "new" : "earlier") + " timing (slowest window " +
        window_percent(std::max(quiet, quiet_again)) + " of the peak)");
    if (replace) {
      for (json& r : again) r["window_attempts"] = attempts;
      records.insert(records.erase(first, last), again.begin(), again.end());
    } else {
      for (auto r = first; r != last; ++r) (*r)["window_attempts"] = attempts;
    }
  }
}

}  // namespace bench
