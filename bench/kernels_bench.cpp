// lowbit-bench: per-layer and whole-network latency of lowbit against oneDNN, in one process.
//
// For each layer (N=1, NHWC, SAME padding) and each of W1A1, W1A2, W2A2, at each thread count:
//  * lowbit: a one-op model, graph input of random codes -> QConv2D with a random increasing
//    threshold table -> 2-bit unsigned codes (so the fused threshold output path is measured);
//    layer i is the float first layer (Conv2D f32, recorded as bits "F32");
//  * oneDNN fp32 and int8 (u8 x s8 -> u8) convolutions of the same shape and thread count;
//  * the fraction of the measured popcount peak (popcount_peak.h) the lowbit layer reaches:
//
//      peak_fraction = achieved / peak(threads),
//      achieved = N*OH*OW*Cout*KH*KW*Cin * wbits * abits / lowbit_seconds
//
//    (every weight-plane x activation-plane pair is one AND+POPCOUNT pass over the layer's MACs;
//    one such bit is one binary MAC). peak(threads) is the peak measured with that many threads
//    running the best sequence at once. Float layers have no peak fraction (null).
//
// Every lowbit layer is also checked: its output codes must equal the thresholds applied to the
// exact accumulators of a oneDNN fp32 convolution of the same integer codes (sums of small
// integers are exact in fp32), and the float layer must agree with oneDNN within 1e-3 relative.
//
// Writes <out>/kernels.json atomically; progress goes to stderr, a summary table to stdout.
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/kernel_table.h"
#include "lowbit_models.h"
#include "onednn_baseline.h"
#include "popcount_peak.h"
#include "timing.h"
#include "windows.h"

namespace bench {
namespace {

struct LayerSpec {
  std::string name;
  ConvShape shape;
  bool is_float;  // the float first layer
};

const std::vector<LayerSpec>& all_layers() {
  static const std::vector<LayerSpec> layers = {
      {"a", {32, 32, 64, 64, 3, 1}, false},   {"b", {56, 56, 64, 64, 3, 1}, false},
      {"c", {28, 28, 128, 128, 3, 1}, false}, {"d", {14, 14, 256, 256, 3, 1}, false},
      {"e", {7, 7, 512, 512, 3, 1}, false},   {"f", {28, 28, 256, 128, 1, 1}, false},
      {"g", {56, 56, 64, 128, 3, 2}, false},  {"h", {48, 64, 256, 256, 3, 1}, false},
      {"i", {96, 128, 6, 64, 3, 1}, true},
  };
  return layers;
}

const char* kPeakFormula =
    "peak_fraction = (N*OH*OW*Cout*KH*KW*Cin * wbits * abits / lowbit_seconds) / popcount_peak(threads); "
    "one binary MAC = one bit of AND+POPCOUNT+accumulate; popcount_peak(threads) is measured in this process "
    "with that many threads on an L1-resident working set, best of every supported instruction sequence and "
    "register-blocking shape; null for float layers";

// Above this share of the machine's CPU time used by other processes, results are flagged.
constexpr double kBusyMachine = 0.05;

const char* kTimingMethod =
    "all contenders of one layer (lowbit at each width and thread count, oneDNN fp32 and int8 at each thread "
    "count; a network and its oneDNN twin) take turns for `rounds` rounds; each turn is a warm-up run then timed "
    "runs, so each contender's samples span the same wall-clock window; in total >= min_runs and >= min_seconds "
    "per contender (or >= max_seconds after floor_runs); the median run is reported. lowbit: one lowbit_run() "
    "on a model loaded for that thread count; oneDNN: one primitive execute() + stream.wait() (weights reordered "
    "once beforehand), with omp_set_num_threads(threads) before each turn; a turn after a multi-threaded turn "
    "starts settle_ms later so the idle workers (OpenMP's or a lowbit pool's) have stopped spinning, except "
    "oneDNN after oneDNN, which reuses OpenMP's workers. A layer or network whose popcount loop (a contender too) ran below "
    "windows.quiet_threshold of the peak is timed again, all its contenders, up to windows.max_attempts times; "
    "the attempt with the quietest slowest window is kept (window_attempts in its records); after the last layer "
    "the peak is measured again and a layer below the threshold of that peak gets its remaining attempts";

struct Options {
  std::string out = "bench-results";
  bool quick = false;
  std::vector<std::string> layers;
  std::vector<int> threads = {1, 2};
  bool networks = true;
  std::string save_models;  // directory for the networks' .lbm files ("" = keep them in memory)
};

struct Context {
  Options options;
  TimingPolicy policy;
  PopcountPeak peak;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::string isa;
};

void progress(const std::string& line) {
  std::fprintf(stderr, "[bench] %s\n", line.c_str());
  std::fflush(stderr);
}

std::string fmt(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// How much of the machine's CPU time other processes used while we measured: timings taken while
// something else ran are not to be trusted, so every record carries this (0 = the machine was ours).
class OtherLoadMonitor {
 public:
  OtherLoadMonitor() : start_(sample()) {}
  double fraction() const {
    const Sample now = sample();
    const double total = now.total - start_.total;
    if (total <= 0.0) return 0.0;
    const double others = (now.busy - start_.busy) - (now.self - start_.self);
    return std::clamp(others / total, 0.0, 1.0);
  }

 private:
  struct Sample {
    double busy = 0, total = 0, self = 0;  // seconds (busy/total summed over all CPUs)
  };
  static Sample sample() {
    Sample s;
    std::ifstream in("/proc/stat");
    std::string cpu;
    in >> cpu;
    double v[8] = {};
    for (double& x : v) in >> x;  // user nice system idle iowait irq softirq steal
    const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    for (double x : v) s.total += x / hz;
    s.busy = s.total - (v[3] + v[4]) / hz;
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    s.self = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
    return s;
  }
  Sample start_;
};

// oneDNN uses the calling thread's OpenMP max-threads; set before creating and running primitives.
void set_onednn_threads(int threads) {
  omp_set_num_threads(threads);
  if (omp_get_max_threads() != threads)
    throw std::runtime_error("omp_set_num_threads(" + std::to_string(threads) + ") did not take effect");
}

std::vector<float> as_floats(const std::vector<int32_t>& codes, float scale = 1.0f) {
  std::vector<float> v(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) v[i] = static_cast<float>(codes[i]) * scale;
  return v;
}

// A lowbit model loaded for one thread count, its output already checked.
struct LowbitCase {
  std::string bits;
  int threads = 1, wbits = 0, abits = 0;
  std::unique_ptr<LowbitRunner> runner;
  bool verified = false;
  size_t contender = 0;
};

// One model per thread count (so no lowbit_set_threads happens between timed batches), input set,
// run once and checked by `check`.
template <class Check>
void load_lowbit_cases(const Context& ctx, const lowbit::ModelBuilder& model, const std::vector<float>& input,
                       const std::string& bits, int wbits, int abits, Check&& check, std::vector<LowbitCase>& cases) {
  for (int t : ctx.options.threads) {
    LowbitCase c{bits, t, wbits, abits, std::make_unique<LowbitRunner>(model), false, 0};
    c.runner->set_threads(t);
    c.runner->set_input(input);
    c.runner->run();
    c.verified = check(c.runner->output());
    cases.push_back(std::move(c));
  }
}

// oneDNN fp32 and int8 convolutions of one layer, one pair per thread count, each created with
// that thread count in force.
struct OnednnCase {
  int threads = 1;
  std::unique_ptr<OnednnConv> f32, s8;
  size_t f32_contender = 0, s8_contender = 0;
};

std::vector<OnednnCase> make_onednn_cases(Context& ctx, const ConvShape& s, const std::vector<float>& src_f32,
                                          const std::vector<float>& w_f32, const std::vector<float>& src_u8,
                                          const std::vector<float>& w_s8) {
  std::vector<OnednnCase> cases;
  for (int t : ctx.options.threads) {
    set_onednn_threads(t);
    OnednnCase c;
    c.threads = t;
    c.f32 = std::make_unique<OnednnConv>(ctx.engine, s, OnednnPrecision::kF32, src_f32, w_f32);
    c.s8 = std::make_unique<OnednnConv>(ctx.engine, s, OnednnPrecision::kS8, src_u8, w_s8);
    cases.push_back(std::move(c));
  }
  return cases;
}

// One trial of the popcount loop timed beside each layer (PeakProbe): long enough that starting
// its threads is noise, short enough for ~20 trials per turn.
constexpr double kProbeTrialSeconds = 0.005;

// A lowbit model on more than one thread leaves its pool's workers spinning after a batch.
Spinners lowbit_spinners(int threads) { return threads > 1 ? Spinners::own : Spinners::none; }

// Times every case of one layer together (timing.h: round robin).
void time_layer(Context& ctx, std::vector<LowbitCase>& lowbit, std::vector<OnednnCase>& onednn,
                std::vector<std::unique_ptr<PeakProbe>>& probes, std::vector<Contender>& contenders) {
  for (LowbitCase& c : lowbit) {
    c.contender = contenders.size();
    LowbitRunner* r = c.runner.get();
    contenders.push_back({[r] { r->run(); }, {}, lowbit_spinners(c.threads), {}});
  }
  for (OnednnCase& c : onednn) {
    const int t = c.threads;
    OnednnConv* f32 = c.f32.get();
    OnednnConv* s8 = c.s8.get();
    dnnl::stream* stream = &ctx.stream;
    c.f32_contender = contenders.size();
    contenders.push_back({[f32, stream] { f32->run(*stream); }, [t] { set_onednn_threads(t); }, Spinners::openmp, {}});
    c.s8_contender = contenders.size();
    contenders.push_back({[s8, stream] { s8->run(*stream); }, [t] { set_onednn_threads(t); }, Spinners::openmp, {}});
  }
  for (std::unique_ptr<PeakProbe>& p : probes) {
    PeakProbe* probe = p.get();
    contenders.push_back({[probe] { probe->run(); }, {}, Spinners::none, [probe] { probe->warm_up(); }});
  }
  measure_round_robin(contenders, ctx.policy);
}

json make_record(const Context& ctx, const LayerSpec& layer, const LowbitCase& lb, const OnednnCase& dn,
                 const std::vector<Contender>& contenders, double other_load, double loop_gbops) {
  const ConvShape& s = layer.shape;
  const Timing lt = contenders[lb.contender].timing();
  const Timing f32 = contenders[dn.f32_contender].timing(), s8 = contenders[dn.s8_contender].timing();
  const double seconds = lt.median_ms * 1e-3;
  const double binary_gops = s.macs() * lb.wbits * lb.abits / seconds / 1e9;
  json r;
  r["layer"] = layer.name;
  r["bits"] = lb.bits;
  r["threads"] = lb.threads;
  r["lowbit_ms"] = lt.median_ms;
  r["onednn_f32_ms"] = f32.median_ms;
  r["onednn_s8_ms"] = s8.median_ms;
  r["speedup_vs_f32"] = f32.median_ms / lt.median_ms;
  r["speedup_vs_s8"] = s8.median_ms / lt.median_ms;
  // Provisional (the peak measured before the layers); recomputed from binary_gops at the end.
  r["peak_fraction"] = layer.is_float ? json(nullptr) : json(binary_gops / ctx.peak.gbops(lb.threads));
  r["isa"] = ctx.isa;  // the bit-serial kernel table this process uses
  // Extras.
  r["h"] = s.h;
  r["w"] = s.w;
  r["cin"] = s.cin;
  r["cout"] = s.cout;
  r["k"] = s.k;
  r["stride"] = s.stride;
  r["oh"] = s.oh();
  r["ow"] = s.ow();
  r["macs"] = s.macs();
  r["binary_gops"] = layer.is_float ? json(nullptr) : json(binary_gops);
  r["lowbit_gmacs"] = s.macs() / seconds / 1e9;
  r["lowbit_min_ms"] = lt.min_ms;
  r["lowbit_runs"] = lt.runs;
  r["onednn_f32_runs"] = f32.runs;
  r["onednn_s8_runs"] = s8.runs;
  r["onednn_f32_impl"] = dn.f32->impl();
  r["onednn_s8_impl"] = dn.s8->impl();
  r["output_verified"] = lb.verified;
  r["other_processes_cpu"] = other_load;
  r["popcount_loop_gbops_same_window"] = loop_gbops;
  return r;
}

std::string busy_note(double other_load) {
  return other_load > kBusyMachine ? "  (other processes used " + fmt(100.0 * other_load, 0) + "% of the CPU)" : "";
}

std::string record_line(const json& r) {
  std::ostringstream o;
  o << "layer " << r["layer"].get<std::string>() << " " << r["bits"].get<std::string>() << " t="
    << r["threads"].get<int>() << ": lowbit " << fmt(r["lowbit_ms"]) << " ms, oneDNN f32 " << fmt(r["onednn_f32_ms"])
    << " ms (x" << fmt(r["speedup_vs_f32"], 2) << "), s8 " << fmt(r["onednn_s8_ms"]) << " ms (x"
    << fmt(r["speedup_vs_s8"], 2) << ")";
  if (!r["peak_fraction"].is_null()) o << ", peak " << fmt(100.0 * r["peak_fraction"].get<double>(), 1) << "%";
  o << "; popcount loop " << fmt(r["popcount_loop_gbops_same_window"].get<double>(), 0) << " G/s";
  if (!r["output_verified"].get<bool>()) o << "  ** OUTPUT MISMATCH **";
  o << busy_note(r["other_processes_cpu"].get<double>());
  return o.str();
}

// Times the cases and appends one record per lowbit case; a layer whose window was disturbed is
// timed again (quietest_attempt, up to max_attempts in all).
void finish_layer(Context& ctx, const LayerSpec& layer, std::vector<LowbitCase>& lowbit,
                  std::vector<OnednnCase>& onednn, int max_attempts, json& records) {
  const auto time_attempt = [&] {
    const OtherLoadMonitor load;
    std::vector<Contender> contenders;
    std::vector<std::unique_ptr<PeakProbe>> probes;  // one per thread count, in options.threads' order
    for (int t : ctx.options.threads) probes.push_back(std::make_unique<PeakProbe>(ctx.peak, t, kProbeTrialSeconds));
    time_layer(ctx, lowbit, onednn, probes, contenders);
    const double other_load = load.fraction();
    json attempt = json::array();
    for (size_t i = 0; i < ctx.options.threads.size(); ++i) {
      const int t = ctx.options.threads[i];
      for (const LowbitCase& lb : lowbit) {
        if (lb.threads != t) continue;
        for (const OnednnCase& dn : onednn)
          if (dn.threads == t) attempt.push_back(make_record(ctx, layer, lb, dn, contenders, other_load, probes[i]->median_gbops()));
      }
    }
    return attempt;
  };
  for (json& r : quietest_attempt("layer " + layer.name, ctx.peak, max_attempts, time_attempt, progress)) {
    progress(record_line(r));
    records.push_back(r);
  }
}

// A quantized layer at every width: lowbit QConv2D (codes -> thresholded codes) against oneDNN.
void bench_quantized_layer(Context& ctx, const LayerSpec& layer, uint32_t seed, int max_attempts, json& records) {
  const ConvShape& s = layer.shape;
  std::vector<LowbitCase> lowbit;
  const QConvData baseline = random_qconv_data(s, bit_configs()[1], seed);  // W1A2 codes also feed oneDNN
  for (const BitConfig& bits : bit_configs()) {
    const QConvData data = bits.name == "W1A2" ? baseline : random_qconv_data(s, bits, seed);
    // Expected codes: the thresholds over exact accumulators from a oneDNN fp32 conv of the same codes.
    set_onednn_threads(ctx.options.threads.back());
    OnednnConv exact(ctx.engine, s, OnednnPrecision::kF32, as_floats(data.act_codes), as_floats(data.weight_codes));
    exact.run(ctx.stream);
    const std::vector<int32_t> expected = apply_thresholds(exact.output(), data.thresholds, s.cout);
    const float out_scale = kA2.scale;
    const auto check = [&](const std::vector<float>& got) {
      if (got.size() != expected.size()) return false;
      for (size_t i = 0; i < got.size(); ++i)
        if (std::lround(got[i] / out_scale) != expected[i]) return false;
      return true;
    };
    load_lowbit_cases(ctx, qconv_layer_model(s, bits, data), as_floats(data.act_codes, bits.activations.scale),
                      bits.name, bits.weights.bits, bits.activations.quant.bits, check, lowbit);
  }
  const std::vector<float> src = as_floats(baseline.act_codes), w = as_floats(baseline.weight_codes);
  std::vector<OnednnCase> onednn = make_onednn_cases(ctx, s, src, w, src, w);
  finish_layer(ctx, layer, lowbit, onednn, max_attempts, records);
}

// The float first layer: lowbit Conv2D f32 against oneDNN fp32 and int8 of the same shape.
void bench_float_layer(Context& ctx, const LayerSpec& layer, uint32_t seed, int max_attempts, json& records) {
  const ConvShape& s = layer.shape;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(s.k * s.k * s.cin)));
  std::vector<float> w(static_cast<size_t>(s.cout) * s.k * s.k * s.cin);
  for (float& v : w) v = normal(rng);
  const std::vector<float> x = random_image(s.h, s.w, s.cin, seed + 1);
  set_onednn_threads(ctx.options.threads.back());
  OnednnConv ref(ctx.engine, s, OnednnPrecision::kF32, x, w);
  ref.run(ctx.stream);
  const std::vector<float> expected = ref.output();
  const auto check = [&](const std::vector<float>& got) {
    if (got.size() != expected.size()) return false;
    for (size_t i = 0; i < got.size(); ++i)
      if (!(std::fabs(got[i] - expected[i]) <= 1e-3 * (1.0 + std::fabs(expected[i])))) return false;
    return true;
  };
  std::vector<LowbitCase> lowbit;
  load_lowbit_cases(ctx, float_conv_layer_model(s, w), x, "F32", 32, 32, check, lowbit);
  // int8 baseline: the image as u8 pixels, weights scaled to s8.
  float wmax = 0.0f;
  for (float v : w) wmax = std::max(wmax, std::fabs(v));
  std::vector<float> x_u8(x.size()), w_s8(w.size());
  for (size_t i = 0; i < x.size(); ++i) x_u8[i] = x[i] * 255.0f;
  for (size_t i = 0; i < w.size(); ++i) w_s8[i] = w[i] * 127.0f / wmax;
  std::vector<OnednnCase> onednn = make_onednn_cases(ctx, s, x, w, x_u8, w_s8);
  finish_layer(ctx, layer, lowbit, onednn, max_attempts, records);
}

struct NetworkSpec {
  std::string name, description;
  int h, w;
  lowbit::ModelBuilder (*lowbit_model)(uint32_t);
  OnednnNet (*onednn_model)(const dnnl::engine&, uint32_t);
};

void bench_network(Context& ctx, const NetworkSpec& net, uint32_t seed, json& networks) {
  const std::vector<float> image = random_image(net.h, net.w, 3, seed);
  const lowbit::ModelBuilder model = net.lowbit_model(seed);
  if (!ctx.options.save_models.empty()) {  // for `lowbit-run FILE --profile` or `lowbit profile`
    std::filesystem::create_directories(ctx.options.save_models);
    const std::string path = (std::filesystem::path(ctx.options.save_models) / (net.name + ".lbm")).string();
    const lowbit::Status saved = model.write_file(path);
    if (!saved.ok) throw std::runtime_error(path + ": " + saved.message);
    progress("wrote " + path);
  }
  std::vector<LowbitCase> lowbit;
  load_lowbit_cases(ctx, model, image, "W1A2", 1, 2, [](const std::vector<float>&) { return true; }, lowbit);
  std::vector<std::unique_ptr<OnednnNet>> onednn;
  for (int t : ctx.options.threads) {
    set_onednn_threads(t);
    onednn.push_back(std::make_unique<OnednnNet>(net.onednn_model(ctx.engine, seed)));
    onednn.back()->set_input(image);
  }
  // Timed like a layer, in turn with the popcount loop at each thread count, and again while the
  // loop says the machine ran below its best (quietest_attempt).
  const auto time_attempt = [&] {
    const OtherLoadMonitor load;
    std::vector<Contender> contenders;
    for (LowbitCase& c : lowbit) {
      LowbitRunner* r = c.runner.get();
      contenders.push_back({[r] { r->run(); }, {}, lowbit_spinners(c.threads), {}});
    }
    for (size_t i = 0; i < onednn.size(); ++i) {
      OnednnNet* n = onednn[i].get();
      dnnl::stream* stream = &ctx.stream;
      const int t = ctx.options.threads[i];
      contenders.push_back({[n, stream] { n->run(*stream); }, [t] { set_onednn_threads(t); }, Spinners::openmp, {}});
    }
    std::vector<std::unique_ptr<PeakProbe>> probes;
    for (int t : ctx.options.threads) {
      probes.push_back(std::make_unique<PeakProbe>(ctx.peak, t, kProbeTrialSeconds));
      PeakProbe* probe = probes.back().get();
      contenders.push_back({[probe] { probe->run(); }, {}, Spinners::none, [probe] { probe->warm_up(); }});
    }
    measure_round_robin(contenders, ctx.policy);
    const double other_load = load.fraction();
    json attempt = json::array();
    for (size_t i = 0; i < ctx.options.threads.size(); ++i) {
      const Timing lt = contenders[i].timing(), f32 = contenders[lowbit.size() + i].timing();
      json r;
      r["name"] = net.name;
      r["threads"] = ctx.options.threads[i];
      r["lowbit_ms"] = lt.median_ms;
      r["onednn_f32_ms"] = f32.median_ms;
      r["speedup_vs_f32"] = f32.median_ms / lt.median_ms;
      r["input"] = {1, net.h, net.w, 3};
      r["lowbit_runs"] = lt.runs;
      r["onednn_f32_runs"] = f32.runs;
      r["onednn_f32_conv_impls"] = onednn[i]->conv_impls();
      r["other_processes_cpu"] = other_load;
      r["popcount_loop_gbops_same_window"] = probes[i]->median_gbops();
      r["description"] = net.description;
      attempt.push_back(r);
    }
    return attempt;
  };
  for (json& r : quietest_attempt("network " + net.name, ctx.peak, kWindowAttempts, time_attempt, progress)) {
    progress("network " + net.name + " t=" + std::to_string(r["threads"].get<int>()) + ": lowbit " +
             fmt(r["lowbit_ms"].get<double>()) + " ms, oneDNN f32 " + fmt(r["onednn_f32_ms"].get<double>()) + " ms (x" +
             fmt(r["speedup_vs_f32"], 2) + ")" + busy_note(r["other_processes_cpu"].get<double>()));
    networks.push_back(r);
  }
}

void bench_layer(Context& ctx, const LayerSpec& layer, uint32_t seed, int max_attempts, json& records) {
  if (layer.is_float)
    bench_float_layer(ctx, layer, seed, max_attempts, records);
  else
    bench_quantized_layer(ctx, layer, seed, max_attempts, records);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown";
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string onednn_runtime_name(unsigned runtime) {
  switch (runtime) {
    case DNNL_RUNTIME_SEQ: return "sequential";
    case DNNL_RUNTIME_OMP: return "OpenMP";
    case DNNL_RUNTIME_TBB: return "TBB";
    case DNNL_RUNTIME_THREADPOOL: return "threadpool";
  }
  return "other (" + std::to_string(runtime) + ")";
}

// Median over layers of the speedup from the first to the last thread count of oneDNN, lowbit W1A2
// and the popcount loop (timed in the same windows as the layers): evidence that the thread count
// really reached each library, and how much the machine's threads scaled meanwhile.
json thread_scaling(const json& records, const std::vector<int>& threads) {
  json out = json::object();
  if (threads.size() < 2) return out;
  const int lo = threads.front(), hi = threads.back();
  // key: a time (the speedup is lo's / hi's) or, with `rate`, a rate (hi's / lo's).
  const auto median_ratio = [&](const char* key, const std::string& bits, bool rate = false) {
    std::vector<double> ratios;
    for (const json& a : records)
      for (const json& b : records)
        if (a["layer"] == b["layer"] && a["bits"] == bits && b["bits"] == bits && a["threads"] == lo &&
            b["threads"] == hi)
          ratios.push_back(rate ? b[key].get<double>() / a[key].get<double>() : a[key].get<double>() / b[key].get<double>());
    if (ratios.empty()) return json(nullptr);
    std::sort(ratios.begin(), ratios.end());
    return json(ratios[ratios.size() / 2]);
  };
  const std::string range = std::to_string(lo) + "_to_" + std::to_string(hi);
  out["f32_median_speedup_" + range] = median_ratio("onednn_f32_ms", "W1A2");
  out["s8_median_speedup_" + range] = median_ratio("onednn_s8_ms", "W1A2");
  out["lowbit_w1a2_median_speedup_" + range] = median_ratio("lowbit_ms", "W1A2");
  out["popcount_loop_median_speedup_" + range] = median_ratio("popcount_loop_gbops_same_window", "W1A2", true);
  return out;
}

// Sets each layer record's and network record's window_fraction (its popcount loop over the run's
// peak at its thread count) and returns the run's summary: the slowest window per thread count, the
// windows below kQuietWindow (one per layer or network and thread count: a layer's widths share
// their window) and the layers and networks that were timed more than once.
json window_quality(json& records, json& networks, const PopcountPeak& peak) {
  json slowest = json::object();
  json disturbed = json::array();
  json attempts = json::object();
  for (json* part : {&records, &networks})
    for (json& r : *part) {
      const double fraction = window_fraction(r, peak);
      r["window_fraction"] = fraction;
      const std::string t = std::to_string(r["threads"].get<int>());
      if (!slowest.contains(t) || fraction < slowest[t].get<double>()) slowest[t] = fraction;
      const std::string what = r.contains("layer") ? r["layer"].get<std::string>() : r["name"].get<std::string>();
      const std::string name = what + " " + t + " thr (" + window_percent(fraction) + ")";
      if (fraction < kQuietWindow && std::find(disturbed.begin(), disturbed.end(), name) == disturbed.end())
        disturbed.push_back(name);
      if (r["window_attempts"].get<int>() > 1) attempts[what] = r["window_attempts"];
    }
  return {{"quiet_threshold", kQuietWindow},
          {"max_attempts", kWindowAttempts},
          {"slowest_window_fraction_by_threads", slowest},
          {"disturbed", disturbed},
          {"attempts", attempts},
          {"note", "window_fraction = the popcount loop timed in turn with a layer or network / popcount_peak(threads); "
                   "below quiet_threshold the machine ran slower during its turns than at its best. A layer or network "
                   "with such a window is timed again (all its contenders, up to max_attempts in all; a layer's last "
                   "ones after all layers against the peak measured then) and the attempt whose slowest window was "
                   "quietest is kept; attempts: the layers and networks timed more than once"}};
}

void print_table(const json& doc) {
  std::printf("\npopcount peak: %.1f Gbop/s per thread (%s %dx%d); lowbit kernels: %s\n",
              doc["popcount_peak_gbops"].get<double>(), doc["popcount_peak_isa"].get<std::string>().c_str(),
              doc["popcount_peak_shape"][0].get<int>(), doc["popcount_peak_shape"][1].get<int>(),
              doc["isa"].get<std::string>().c_str());
  std::printf("%-5s %-5s %3s %10s %10s %10s %8s %8s %7s %3s %8s %s\n", "layer", "bits", "thr", "lowbit_ms", "f32_ms",
              "s8_ms", "x_f32", "x_s8", "peak%", "ok", "window%", "other-cpu%");
  for (const json& r : doc["records"]) {
    const std::string peak = r["peak_fraction"].is_null() ? "-" : fmt(100.0 * r["peak_fraction"].get<double>(), 1);
    std::printf("%-5s %-5s %3d %10.3f %10.3f %10.3f %8.2f %8.2f %7s %3s %8.0f %.0f\n", r["layer"].get<std::string>().c_str(),
                r["bits"].get<std::string>().c_str(), r["threads"].get<int>(), r["lowbit_ms"].get<double>(),
                r["onednn_f32_ms"].get<double>(), r["onednn_s8_ms"].get<double>(), r["speedup_vs_f32"].get<double>(),
                r["speedup_vs_s8"].get<double>(), peak.c_str(), r["output_verified"].get<bool>() ? "yes" : "NO",
                100.0 * r["window_fraction"].get<double>(), 100.0 * r["other_processes_cpu"].get<double>());
  }
  std::printf("oneDNN thread scaling: %s\n", doc["onednn_thread_scaling"].dump().c_str());
  if (!doc["networks"].empty()) {
    std::printf("\n%-24s %3s %10s %10s %8s %8s\n", "network", "thr", "lowbit_ms", "f32_ms", "x_f32", "window%");
    for (const json& n : doc["networks"])
      std::printf("%-24s %3d %10.3f %10.3f %8.2f %8.0f\n", n["name"].get<std::string>().c_str(), n["threads"].get<int>(),
                  n["lowbit_ms"].get<double>(), n["onednn_f32_ms"].get<double>(), n["speedup_vs_f32"].get<double>(),
                  100.0 * n["window_fraction"].get<double>());
  }
}

int run(const Options& options) {
  const auto start = std::chrono::steady_clock::now();
  const OtherLoadMonitor whole_run;
  Context ctx;
  ctx.options = options;
  if (options.quick) {
    ctx.policy = {2, 1, 3, 0.01, 0.2, 2, 30};
  }
  ctx.isa = lowbit::kernels().isa;
  std::vector<std::string> tables;
  for (const lowbit::KernelTable* t : lowbit::available_kernels()) tables.push_back(t->isa);
  const dnnl_version_t* version = dnnl::version();
  const std::string onednn_version = std::to_string(version->major) + "." + std::to_string(version->minor) + "." +
                                     std::to_string(version->patch);
  progress("cpu: " + cpu_model() + "; lowbit kernel table: " + ctx.isa + "; oneDNN " + onednn_version + " (" +
           onednn_runtime_name(version->cpu_runtime) + ")");

  PeakOptions peak_options;
  peak_options.threads = options.threads;
  if (options.quick) {
    peak_options.trial_seconds = 0.004;
    peak_options.trials = 2;
  }
  progress("measuring the popcount peak ...");
  ctx.peak = measure_popcount_peak(peak_options);
  for (const auto& [t, g] : ctx.peak.by_threads)
    progress("popcount peak, " + std::to_string(t) + " thread(s): " + fmt(g, 1) + " Gbop/s (" + ctx.peak.best.isa +
             ", " + std::to_string(ctx.peak.best.m) + "x" + std::to_string(ctx.peak.best.n) + " blocking)");

  json records = json::array(), networks = json::array();
  uint32_t seed = 1;
  std::vector<std::pair<LayerSpec, uint32_t>> benched;  // with its seed, for retime_disturbed_layers
  for (const LayerSpec& layer : all_layers()) {
    ++seed;
    const std::vector<std::string>& wanted = options.layers;
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), layer.name) == wanted.end()) continue;
    bench_layer(ctx, layer, seed, kWindowAttempts, records);
    benched.emplace_back(layer, seed);
    remeasure_peaks(ctx.peak, peak_options);
  }
  if (!benched.empty()) {
    progress("measuring the popcount peak again ...");
    ctx.peak = best_of(ctx.peak, measure_popcount_peak(peak_options));
    std::vector<std::string> names;
    for (const auto& layer_seed : benched) names.push_back(layer_seed.first.name);
    const auto time_again = [&](const std::string& name, int attempts) {
      const auto& [layer, layer_seed] =
          *std::find_if(benched.begin(), benched.end(), [&](const auto& b) { return b.first.name == name; });
      json again = json::array();
      bench_layer(ctx, layer, layer_seed, attempts, again);
      return again;
    };
    retime_disturbed_layers(names, ctx.peak, time_again, progress, records);
  }
  if (options.networks) {
    std::vector<NetworkSpec> nets = {
        {"lmnet_v1_w1a2_32x32",
         "LmnetV1Quantize W1A2 (float conv1, 5 binary qconvs, 3 space_to_depth, float 1x1 classifier, global "
         "average pool) vs the same layers in oneDNN fp32 (conv+bias+clip(0,2); space_to_depth as a strided "
         "reorder)",
         32, 32, lmnet_v1_w1a2, lmnet_v1_f32},
    };
    if (!options.quick)
      nets.push_back({"resnet18_w1a2_224x224",
                      "ResNet-18-shaped W1A2: float 7x7/2 stem + BN + 2-bit quantizer, 3x3/2 max pool on codes, "
                      "4 stages x 2 basic blocks (qconv3x3 codes -> qconv3x3 float + skip, quantize; stride-2 "
                      "qconvs and a binary 1x1/2 projection when downsampling), global average pool, float fc "
                      "1000; vs ResNet-18 fp32 in oneDNN (conv+bias+ReLU, skip via binary_add post-op, 1x1/2 "
                      "projections, max pool, fc 1000)",
                      224, 224, resnet18_w1a2, resnet18_f32});
    for (const NetworkSpec& net : nets) bench_network(ctx, net, 1000 + seed++, networks);
  }

  // The peak again now that the run is over: a peak is a maximum, and another process running
  // during either measurement could only have lowered it. Peak fractions use the final value.
  progress("measuring the popcount peak again ...");
  ctx.peak = best_of(ctx.peak, measure_popcount_peak(peak_options));
  for (json& r : records)
    if (!r["peak_fraction"].is_null())
      r["peak_fraction"] = r["binary_gops"].get<double>() / ctx.peak.gbops(r["threads"].get<int>());
  const json windows = window_quality(records, networks, ctx.peak);

  json doc;
  doc["cpu"] = cpu_model();
  doc["isa"] = ctx.isa;
  doc["popcount_peak_gbops"] = ctx.peak.best.gbops;
  doc["threads_tested"] = options.threads;
  doc["records"] = records;
  doc["networks"] = networks;
  // Metadata.
  doc["peak_fraction_formula"] = kPeakFormula;
  json by_threads = json::object();
  for (const auto& [t, g] : ctx.peak.by_threads) by_threads[std::to_string(t)] = g;
  doc["popcount_peak_gbops_by_threads"] = by_threads;
  doc["popcount_peak_isa"] = ctx.peak.best.isa;
  doc["popcount_peak_shape"] = {ctx.peak.best.m, ctx.peak.best.n};
  json variants = json::array();
  for (const PeakVariant& v : ctx.peak.variants) variants.push_back({{"isa", v.isa}, {"m", v.m}, {"n", v.n}, {"gbops", v.gbops}});
  doc["popcount_peak_variants"] = variants;
  doc["popcount_peak_note"] =
      "best of two measurements (before and after the layer runs), each the best of every supported sequence "
      "and blocking shape; by_threads runs the best sequence on that many threads at once; the best sequence "
      "is measured again after each layer on every thread count (the highest value kept)";
  doc["lowbit_kernel_tables_available"] = tables;
  const char* forced = std::getenv("LOWBIT_ISA");
  doc["lowbit_isa_env"] = forced ? json(forced) : json(nullptr);
  doc["onednn"] = {{"version", onednn_version},
                   {"cpu_runtime", onednn_runtime_name(version->cpu_runtime)},
                   {"threading_control",
                    "omp_set_num_threads(threads) on the calling thread before creating and executing the "
                    "primitives (Debian libdnnl is built with the OpenMP runtime, libgomp)"},
                   {"f32", "convolution_forward f32, src/dst nhwc, weights format_tag::any (reordered once), no bias"},
                   {"s8", "convolution_forward u8 src x s8 weights -> u8 dst, per-tensor output scale, src/dst nhwc, "
                          "weights format_tag::any (reordered once), no bias"}};
  doc["onednn_thread_scaling"] = thread_scaling(records, options.threads);
  doc["windows"] = windows;
  doc["timing"] = {{"method", kTimingMethod},
                   {"rounds", ctx.policy.rounds},
                   {"warmup_runs", ctx.policy.warmup_runs},
                   {"min_runs", ctx.policy.min_runs},
                   {"min_seconds", ctx.policy.min_seconds},
                   {"max_seconds", ctx.policy.max_seconds},
                   {"floor_runs", ctx.policy.floor_runs},
                   {"settle_ms", ctx.policy.settle_ms}};
  const double other_load = whole_run.fraction();
  doc["other_processes_cpu"] = other_load;
  doc["quick"] = options.quick;
  doc["generated_at"] = now_utc();
  doc["wall_seconds"] = seconds_since(start);

  std::filesystem::create_directories(options.out);
  const std::string path = (std::filesystem::path(options.out) / "kernels.json").string();
  const std::string text = doc.dump(2) + "\n";
  const lowbit::Status written =
      lowbit::write_file_atomic(path, reinterpret_cast<const uint8_t*>(text.data()), text.size());
  if (!written.ok) throw std::runtime_error(path + ": " + written.message);
  print_table(doc);
  if (other_load > kBusyMachine)
    progress("WARNING: other processes used " + fmt(100.0 * other_load, 0) +
             "% of the machine's CPU time during this run; timings (2-thread ones most) are unreliable");
  if (!windows["disturbed"].empty())
    progress("WARNING: the popcount loop ran below " + fmt(100.0 * kQuietWindow, 0) +
             "% of the peak in the windows of " + windows["disturbed"].dump() +
             ": the machine was slower then (a VM neighbour?); those records understate lowbit and its ratios, "
             "rerun them for clean numbers (--layers for layers, the whole run for networks)");
  progress("wrote " + path + " in " + fmt(seconds_since(start), 1) + " s");
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  bench::Options options;
  std::string layers;
  CLI::App app{"lowbit-bench: lowbit kernels and networks against oneDNN; writes <out>/kernels.json"};
  app.add_option("--out", options.out, "output directory")->capture_default_str();
  app.add_flag("--quick", options.quick, "smoke run: layers a, f, i, few repetitions, LmnetV1 only");
  app.add_option("--layers", layers, "comma-separated subset of layers a..i (default: all; --quick: a,f,i)");
  app.add_option("--threads", options.threads, "thread counts to measure")->capture_default_str()->delimiter(',');
  app.add_flag("!--no-networks", options.networks, "skip the whole-network benchmarks");
  app.add_option("--save-models", options.save_models,
                 "also write each benchmarked network (random weights) to DIR/<name>.lbm, e.g. for lowbit-run --profile");
  CLI11_PARSE(app, argc, argv);
  if (options.quick && layers.empty()) layers = "a,f,i";
  std::stringstream list(layers);
  for (std::string name; std::getline(list, name, ',');) {
    bool known = false;
    for (const bench::LayerSpec& l : bench::all_layers()) known = known || l.name == name;
    if (!known) {
      std::fprintf(stderr, "lowbit-bench: unknown layer '%s' (layers are a..i)\n", name.c_str());
      return 2;
    }
    options.layers.push_back(name);
  }
  for (int t : options.threads)
    if (t < 1) {
      std::fprintf(stderr, "lowbit-bench: thread counts must be >= 1\n");
      return 2;
    }
  try {
    return bench::run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit-bench: %s\n", e.what());
    return 1;
  }
}
