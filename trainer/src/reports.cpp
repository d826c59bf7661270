#include "reports.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <nlohmann/json.hpp>
#include <sstream>

#include "atomic_file.h"

extern char** environ;

namespace lowbit::trainer {

// ---- metrics.jsonl ----

void MetricsLog::start_new() {
  lines_.clear();
  write();
}

void MetricsLog::resume(int64_t up_to_step) {
  lines_.clear();
  std::ifstream in(path_);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    // A line that does not parse can only be a torn tail of a foreign write; it is dropped.
    if (record.is_object() && record.value("step", INT64_MAX) <= up_to_step) lines_.push_back(line);
  }
  write();
}

void MetricsLog::append(const std::vector<MetricRecord>& records) {
  for (const MetricRecord& r : records) {
    nlohmann::ordered_json line = {{"step", r.step}, {"epoch", r.epoch}, {"split", r.split}, {"loss", r.loss},
                                   {"top1", r.top1}};
    for (const auto& [key, value] : r.extra) line[key] = value;
    lines_.push_back(line.dump());
  }
  write();
}

void MetricsLog::write() const {
  std::string text;
  for (const std::string& line : lines_) text += line + "\n";
  write_file_atomically(path_, text);
}

// ---- progress ----

namespace {

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(seconds + 0.5);
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", static_cast<long long>(total / 3600),
                  static_cast<long long>(total / 60 % 60), static_cast<long long>(total % 60));
  } else {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  }
  return buffer;
}

}  // namespace

ProgressDisplay::ProgressDisplay(int64_t total_steps, int64_t start_step)
    : terminal_(::isatty(STDOUT_FILENO) == 1),
      total_steps_(total_steps),
      start_step_(start_step),
      started_(Clock::now()),
      last_draw_(started_) {}

void ProgressDisplay::step(int64_t step, double epoch, double loss, double top1, int64_t images) {
  images_since_draw_ += images;
  const Clock::time_point now = Clock::now();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  const bool last = step == total_steps_;
  if (since_draw < (terminal_ ? 0.25 : 30.0) && !last) return;
  if (since_draw > 0.0) images_per_second_ = static_cast<double>(images_since_draw_) / since_draw;
  images_since_draw_ = 0;
  last_draw_ = now;

  const double elapsed = std::chrono::duration<double>(now - started_).count();
  const int64_t done = step - start_step_;
  const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total_steps_ - step) : 0.0;
  std::ostringstream line;
  line << "step " << step << "/" << total_steps_ << " (epoch " << std::fixed << std::setprecision(2) << epoch << ")";
  if (terminal_) {
    constexpr int kWidth = 24;
    const auto filled = static_cast<int>(kWidth * step / std::max<int64_t>(1, total_steps_));
    line << " [" << std::string(static_cast<size_t>(filled), '#') << std::string(static_cast<size_t>(kWidth - filled), '.')
         << "]";
  }
  line << " loss " << std::setprecision(4) << loss << " top-1 " << std::setprecision(1) << 100.0 * top1 << "% "
       << std::setprecision(0) << images_per_second_ << " img/s ETA " << format_duration(eta);
  if (terminal_) {
    std::printf("\r\033[K%s", line.str().c_str());
    line_open_ = true;
  } else {
    std::printf("%s\n", line.str().c_str());
  }
  std::fflush(stdout);
}

void ProgressDisplay::message(const std::string& line) {
  if (line_open_) std::printf("\r\033[K");
  line_open_ = false;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void ProgressDisplay::finish() {
  if (line_open_) std::printf("\n");
  line_open_ = false;
  std::fflush(stdout);
}

// ---- plots ----

namespace {

// mode data out title: "curves" reads metrics.jsonl, "confusion" a {"classes", "confusion"} JSON.
// Exit code 3: matplotlib missing. The PNG is replaced atomically.
const char* const kPlotScript = R"PY(
import json, os, sys

def curves(data, ax_loss, ax_top1):
    records = [json.loads(line) for line in open(data) if line.strip()]
    for split, style in (("train", "-"), ("val", "-o")):
        rows = [r for r in records if r.get("split") == split]
        if rows:
            epochs = [r["epoch"] for r in rows]
            ax_loss.plot(epochs, [r["loss"] for r in rows], style, label=split, markersize=3)
            ax_top1.plot(epochs, [100.0 * r["top1"] for r in rows], style, label=split, markersize=3)
    for ax, label in ((ax_loss, "loss"), (ax_top1, "top-1 (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()

def confusion(data, ax):
    content = json.load(open(data))
    names, counts = content["classes"], content["confusion"]
    n = len(names)
    rates = [[c / max(1, sum(row)) for c in row] for row in counts]
    ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(counts[i][j]), ha="center", va="center", fontsize=6,
                        color="white" if rates[i][j] > 0.5 else "black")

def main():
    mode, data, out, title = sys.argv[1:5]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 3
    if mode == "curves":
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        curves(data, *axes)
    else:
        fig, ax = plt.subplots(figsize=(7, 6))
        confusion(data, ax)
    fig.suptitle(title)
    fig.tight_layout()
    temporary = out + ".tmp.png"
    fig.savefig(temporary, dpi=100)
    os.replace(temporary, out)
    return 0

sys.exit(main())
)PY";

// A temporary file that removes itself.
struct TemporaryFile {
  explicit TemporaryFile(const std::string& suffix, const std::string& content) {
    std::string pattern = "/tmp/lowbit-plot-XXXXXX" + suffix;
    const int fd = ::mkstemps(pattern.data(), static_cast<int>(suffix.size()));
    if (fd < 0) return;
    path = pattern;
    const bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    ::close(fd);
    if (!ok) path.clear();
  }
  ~TemporaryFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
  std::string path;
};

std::string run_plot_script(const std::string& mode, const std::string& data_path, const std::string& png_path,
                            const std::string& title) {
  // Debian's python3 has python3-matplotlib; another python3 first on PATH may not.
  const std::string python = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  const TemporaryFile script(".py", kPlotScript);
  if (script.path.empty()) return "cannot write the plotting script to /tmp";
  std::vector<std::string> args = {python, script.path, mode, data_path, png_path, title};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
    return "cannot run " + python + "; " + png_path + " not written";
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) return "matplotlib is not installed; " + png_path + " not written";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return python + " not found; " + png_path + " not written";
  return "plotting failed; " + png_path + " not written";
}

}  // namespace

std::string plot_curves(const std::string& metrics_path, const std::string& png_path, const std::string& title) {
  return run_plot_script("curves", metrics_path, png_path, title);
}

std::string plot_confusion(const std::vector<std::string>& class_names, const std::vector<int64_t>& confusion,
                           const std::string& png_path, const std::string& title) {
  const size_t n = class_names.size();
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i)
    rows.push_back(std::vector<int64_t>(confusion.begin() + static_cast<ptrdiff_t>(i * n),
                                        confusion.begin() + static_cast<ptrdiff_t>((i + 1) * n)));
  const TemporaryFile data(".json", nlohmann::json{{"classes", class_names}, {"confusion", rows}}.dump());
  if (data.path.empty()) return "cannot write the confusion data to /tmp";
  return run_plot_script("confusion", data.path, png_path, title);
}

// ---- evaluation report ----

std::string evaluation_json(const EvaluationSummary& s) {
  const size_t n = s.class_names.size();
  nlohmann::json per_class = nlohmann::json::array(), confusion = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i) {
    const auto row = s.confusion.begin() + static_cast<std::ptrdiff_t>(i * n);
    const int64_t total = std::accumulate(row, row + static_cast<std::ptrdiff_t>(n), int64_t{0});
    per_class.push_back(total ? static_cast<double>(s.confusion[i * n + i]) / static_cast<double>(total) : 0.0);
    confusion.push_back(std::vector<int64_t>(row, row + static_cast<std::ptrdiff_t>(n)));
  }
  const nlohmann::json j = {{"images", s.images},         {"loss", s.loss},
                            {"top1", s.top1},             {"top5", s.top5},
                            {"class_names", s.class_names}, {"per_class_top1", per_class},
                            {"confusion", confusion}};
  return j.dump(2) + "\n";
}

LatencyStats latency_stats(std::vector<double> ms) {
  LatencyStats stats;
  if (ms.empty()) return stats;
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))]; };
  stats.runs = ms.size();
  stats.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  stats.median_ms = at(0.5);
  stats.p95_ms = at(0.95);
  return stats;
}

std::string latency_json(const std::string& target, int threads, const LatencyStats& s) {
  const nlohmann::json j = {{"target", target},     {"framework", "LibTorch"}, {"threads", threads},
                            {"runs", s.runs},       {"mean_ms", s.mean_ms},    {"median_ms", s.median_ms},
                            {"p95_ms", s.p95_ms}};
  return j.dump(2) + "\n";
}

std::string format_evaluation(const EvaluationSummary& s) {
  const size_t n = s.class_names.size();
  std::ostringstream out;
  out << std::fixed << std::setprecision(2);
  out << "images " << s.images << "  loss " << std::setprecision(4) << s.loss << std::setprecision(2) << "  top-1 "
      << 100.0 * s.top1 << " %  top-5 " << 100.0 * s.top5 << " %\n";
  size_t name_width = 5;
  for (const std::string& name : s.class_names) name_width = std::max(name_width, name.size());
  out << "\nper-class accuracy:\n";
  for (size_t i = 0; i < n; ++i) {
    int64_t total = 0;
    for (size_t j = 0; j < n; ++j) total += s.confusion[i * n + j];
    const int64_t correct = s.confusion[i * n + i];
    out << "  " << std::setw(3) << i << " " << std::left << std::setw(static_cast<int>(name_width)) << s.class_names[i]
        << std::right << "  " << std::setw(6) << (total ? 100.0 * static_cast<double>(correct) / total : 0.0)
        << " %  (" << correct << " / " << total << ")\n";
  }
  int64_t widest = 1;
  for (int64_t count : s.confusion) widest = std::max(widest, count);
  const int cell = std::max(4, static_cast<int>(std::to_string(widest).size()) + 1);
  out << "\nconfusion matrix (rows: true class, columns: predicted class):\n     ";
  for (size_t j = 0; j < n; ++j) out << std::setw(cell) << j;
  out << "\n";
  for (size_t i = 0; i < n; ++i) {
    out << "  " << std::setw(3) << i;
    for (size_t j = 0; j < n; ++j) out << std::setw(cell) << s.confusion[i * n + j];
    out << "\n";
  }
  return out.str();
}

}  // namespace lowbit::trainer
