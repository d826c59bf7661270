// YAML -> Config. Every section is read through a Section, which knows the key path and the file
// for error messages and rejects keys nobody asked for.
#include "config.h"

#include <yaml-cpp/yaml.h>

#include <set>
#include <sstream>
#include <utility>

#include "atomic_file.h"

namespace lowbit::trainer {

namespace {

const char* kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "nothing";
    default: return "a scalar";
  }
}

template <class T>
const char* type_name();
template <>
const char* type_name<bool>() { return "true or false"; }
template <>
const char* type_name<int>() { return "an integer"; }
template <>
const char* type_name<int64_t>() { return "an integer"; }
template <>
const char* type_name<double>() { return "a number"; }
template <>
const char* type_name<float>() { return "a number"; }
template <>
const char* type_name<std::string>() { return "a string"; }

template <class T>
struct Choice {
  const char* name;
  T value;
};

// One YAML map being read: knows its key path ("training.optimizer") and which keys were asked for.
class Section {
 public:
  Section(YAML::Node node, std::string path, const std::string& file)
      : node_(std::move(node)), path_(std::move(path)), file_(file) {
    if (node_ && !node_.IsNull() && !node_.IsMap())
      fail(node_, path_, std::string("expected a map of settings, got ") + kind_of(node_));
  }

  [[noreturn]] void fail(const YAML::Node& at, const std::string& key_path, const std::string& problem) const {
    std::string where = file_;
    if (at && at.Mark().line >= 0) where += ":" + std::to_string(at.Mark().line + 1);
    throw ConfigError(where + ": " + (key_path.empty() ? "" : key_path + ": ") + problem);
  }

  std::string key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  // The value under `key`, or an undefined node when absent.
  YAML::Node take(const std::string& key) {
    asked_.insert(key);
    if (!node_ || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    return std::as_const(node_)[key];  // the non-const operator[] would insert the key
  }

  bool has(const std::string& key) const { return node_ && node_.IsMap() && node_[key]; }

  template <class T>
  void read(const std::string& key, T& out) {
    const YAML::Node value = take(key);
    if (value) out = scalar<T>(value, key_path(key));
  }

  template <class T>
  void read_list(const std::string& key, std::vector<T>& out) {
    const YAML::Node value = take(key);
    if (!value) return;
    const std::string path = key_path(key);
    if (!value.IsSequence()) fail(value, path, std::string("expected a list, got ") + kind_of(value));
    out.clear();
    for (size_t i = 0; i < value.size(); ++i) out.push_back(scalar<T>(value[i], path + "[" + std::to_string(i) + "]"));
  }

  template <class T, size_t N>
  void read_array(const std::string& key, T (&out)[N]) {
    std::vector<T> values;
    read_list(key, values);
    if (!has(key)) return;
    if (values.size() != N)
      fail(std::as_const(node_)[key], key_path(key), "expected a list of " + std::to_string(N) + " values, got " +
                                          std::to_string(values.size()));
    std::copy(values.begin(), values.end(), out);
  }

  template <class T>
  void read_choice(const std::string& key, T& out, std::initializer_list<Choice<T>> choices) {
    const YAML::Node value = take(key);
    if (!value) return;
    const std::string name = scalar<std::string>(value, key_path(key));
    std::string known;
    for (const Choice<T>& choice : choices) {
      if (name == choice.name) {
        out = choice.value;
        return;
      }
      known += std::string(known.empty() ? "" : ", ") + choice.name;
    }
    fail(value, key_path(key), "unknown value '" + name + "' (one of: " + known + ")");
  }

  template <class T>
  void check_range(const std::string& key, T value, T lo, T hi) const {
    if (value < lo || value > hi) {
      std::ostringstream message;
      message << "must be in [" << lo << ", " << hi << "], got " << value;
      fail(has(key) ? node_[key] : node_, key_path(key), message.str());
    }
  }

  Section section(const std::string& key) { return Section(take(key), key_path(key), file_); }

  // Every key present must have been asked for.
  void finish() const {
    if (!node_ || !node_.IsMap()) return;
    for (const auto& item : node_) {
      const std::string key = item.first.as<std::string>();
      if (asked_.count(key)) continue;
      std::string known;
      for (const std::string& k : asked_) known += (known.empty() ? "" : ", ") + k;
      fail(item.first, key_path(key), "unknown key (known here: " + known + ")");
    }
  }

  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }

 private:
  template <class T>
  T scalar(const YAML::Node& value, const std::string& path) const {
    T out{};
    if (!value.IsScalar() || !YAML::convert<T>::decode(value, out)) {
      const std::string got = value.IsScalar() ? "'" + value.Scalar() + "'" : kind_of(value);
      fail(value, path, std::string("expected ") + type_name<T>() + ", got " + got);
    }
    return out;
  }

  YAML::Node node_;
  std::string path_;
  const std::string& file_;
  std::set<std::string> asked_;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void read_network(Section& network, NetworkConfig& out) {
  const YAML::Node name = network.take("name");
  if (!name) network.fail(network.node(), network.key_path("name"), "required (one of the zoo networks)");
  network.read("name", out.name);
  bool known = false;
  std::string names;
  for (const std::string& zoo : zoo_network_names()) {
    known |= zoo == out.name;
    names += (names.empty() ? "" : ", ") + zoo;
  }
  if (!known) network.fail(name, network.key_path("name"), "unknown network '" + out.name + "' (one of: " + names + ")");

  network.read("quantize_first_layer", out.quantize_first_layer);
  network.read("quantize_last_layer", out.quantize_last_layer);
  network.read("dropout", out.dropout);
  network.check_range("dropout", out.dropout, 0.0, 0.99);
  network.read("base_channels", out.base_channels);
  network.check_range("base_channels", out.base_channels, 1, 4096);

  if (!out.quantized()) {
    // A float twin: nothing to quantize, so a quantizer section would silently do nothing.
    for (const char* key : {"weight_quantizer", "activation_quantizer"})
      if (network.has(key))
        network.fail(network.node()[key], network.key_path(key), "'" + out.name + "' is a float network (use " +
                                                                     out.name + "Quantize for quantizers)");
    out.weight_quantizer.kind = WeightQuantizerKind::kNone;
    out.activation.kind = ActivationKind::kRelu;
    network.take("weight_quantizer");
    network.take("activation_quantizer");
    return;
  }

  Section weight = network.section("weight_quantizer");
  weight.read_choice<WeightQuantizerKind>("kind", out.weight_quantizer.kind,
                                          {{"binary_mean_scaling", WeightQuantizerKind::kBinaryMeanScaling},
                                           {"ternary", WeightQuantizerKind::kTernary},
                                           {"signed_narrow", WeightQuantizerKind::kSignedNarrow}});
  weight.read("per_channel", out.weight_quantizer.per_channel);
  const YAML::Node bits = weight.take("bits");
  if (out.weight_quantizer.kind == WeightQuantizerKind::kSignedNarrow) {
    if (!bits) weight.fail(weight.node(), weight.key_path("bits"), "required for signed_narrow (2..4)");
    weight.read("bits", out.weight_quantizer.bits);
    weight.check_range("bits", out.weight_quantizer.bits, 2, 4);
  } else if (bits) {
    weight.fail(bits, weight.key_path("bits"), "only signed_narrow has a choice of bits");
  } else {
    out.weight_quantizer.bits = out.weight_quantizer.kind == WeightQuantizerKind::kTernary ? 2 : 1;
  }
  weight.finish();

  Section activation = network.section("activation_quantizer");
  activation.read_choice<ActivationKind>("kind", out.activation.kind,
                                         {{"linear_mid_tread_half", ActivationKind::kLinearMidTreadHalf}});
  activation.read("bits", out.activation.bits);
  activation.check_range("bits", out.activation.bits, 1, 4);
  activation.read("max", out.activation.max);
  if (!(out.activation.max > 0.0))
    activation.fail(activation.node()["max"], activation.key_path("max"), "must be positive");
  activation.finish();
}

void read_dataset(Section& dataset, DatasetConfig& out) {
  dataset.read_choice<std::string>("format", out.format,
                                   {{"idx", "idx"}, {"cifar10", "cifar10"}, {"image_folder", "image_folder"}});
  if (!dataset.has("format")) dataset.fail(dataset.node(), dataset.key_path("format"), "required");
  dataset.read("path", out.path);
  if (out.path.empty()) dataset.fail(dataset.node(), dataset.key_path("path"), "required (the dataset directory)");
  dataset.read_choice<std::string>("validation", out.validation, {{"test", "test"}, {"split", "split"}});
  dataset.read("val_fraction", out.val_fraction);
  dataset.check_range("val_fraction", out.val_fraction, 0.0, 0.9);
  dataset.read("train_limit", out.train_limit);
  dataset.check_range<int64_t>("train_limit", out.train_limit, 0, INT64_MAX);
  dataset.read("val_limit", out.val_limit);
  dataset.check_range<int64_t>("val_limit", out.val_limit, 0, INT64_MAX);
  dataset.read_list("class_names", out.class_names);
  dataset.read("resize", out.resize);
  int size[2] = {out.resize_height, out.resize_width};
  dataset.read_array("resize_size", size);
  out.resize_height = size[0];
  out.resize_width = size[1];
  dataset.finish();
}

void read_preprocess(Section& preprocess, Preprocess& out) {
  preprocess.read("channels", out.channels);
  int size[2] = {out.height, out.width};
  preprocess.read_array("input_size", size);
  out.height = size[0];
  out.width = size[1];
  preprocess.read("resize", out.resize);
  preprocess.read_array("pad", out.pad);
  preprocess.read("pad_value", out.pad_value);
  preprocess.read("scale", out.scale);
  preprocess.read_list("mean", out.mean);
  preprocess.read_list("std", out.std);
  preprocess.finish();
}

// augmentation: a list whose entries are a name ("horizontal_flip") or a one-key map
// ({random_crop: {padding: 2}}).
void read_augmentation(Section& root, std::vector<Augmentation>& out) {
  const YAML::Node list = root.take("augmentation");
  if (!list || list.IsNull()) return;
  if (!list.IsSequence()) root.fail(list, "augmentation", std::string("expected a list, got ") + kind_of(list));
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node entry = list[i];
    const std::string path = "augmentation[" + std::to_string(i) + "]";
    Augmentation augmentation;
    if (entry.IsScalar()) {
      augmentation.name = entry.Scalar();
    } else if (entry.IsMap() && entry.size() == 1) {
      const auto item = entry.begin();
      augmentation.name = item->first.as<std::string>();
      const YAML::Node values = item->second;
      if (values && !values.IsNull()) {
        if (!values.IsMap()) root.fail(values, path + "." + augmentation.name, "expected a map of parameters");
        for (const auto& param : values) {
          const std::string key = param.first.as<std::string>();
          double value = 0.0;
          if (!param.second.IsScalar() || !YAML::convert<double>::decode(param.second, value))
            root.fail(param.second, path + "." + augmentation.name + "." + key, "expected a number");
          augmentation.params[key] = value;
        }
      }
    } else {
      root.fail(entry, path, "expected a name or {name: {parameter: value}}");
    }
    out.push_back(std::move(augmentation));
  }
}

void read_training(Section& training, TrainingConfig& out) {
  training.read("batch_size", out.batch_size);
  training.check_range("batch_size", out.batch_size, 1, 65536);
  training.read("epochs", out.epochs);
  training.read("steps", out.steps);
  if ((out.epochs > 0) == (out.steps > 0))
    training.fail(training.node(), training.path(), "set exactly one of 'epochs' and 'steps' (a positive count)");
  int64_t seed = 0;
  training.read("seed", seed);
  training.check_range<int64_t>("seed", seed, 0, INT64_MAX);
  out.seed = static_cast<uint64_t>(seed);
  training.read("eval_interval", out.eval_interval);
  training.check_range<int64_t>("eval_interval", out.eval_interval, 0, INT64_MAX);
  training.read("checkpoint_interval", out.checkpoint_interval);
  training.check_range<int64_t>("checkpoint_interval", out.checkpoint_interval, 0, INT64_MAX);
  training.read("workers", out.workers);
  training.check_range("workers", out.workers, 0, 64);
  training.read("threads", out.threads);
  training.check_range("threads", out.threads, 1, 256);

  Section optimizer = training.section("optimizer");
  OptimizerConfig& opt = out.optimizer;
  optimizer.read_choice<OptimizerKind>(
      "kind", opt.kind, {{"sgd", OptimizerKind::kSgd}, {"adam", OptimizerKind::kAdam}, {"adamw", OptimizerKind::kAdamW}});
  optimizer.read("lr", opt.lr);
  optimizer.check_range("lr", opt.lr, 0.0, 100.0);
  optimizer.read("weight_decay", opt.weight_decay);
  optimizer.check_range("weight_decay", opt.weight_decay, 0.0, 1.0);
  if (opt.kind == OptimizerKind::kSgd) {
    optimizer.read("momentum", opt.momentum);
    optimizer.check_range("momentum", opt.momentum, 0.0, 1.0);
    optimizer.read("nesterov", opt.nesterov);
  } else {
    optimizer.read("beta1", opt.beta1);
    optimizer.check_range("beta1", opt.beta1, 0.0, 1.0);
    optimizer.read("beta2", opt.beta2);
    optimizer.check_range("beta2", opt.beta2, 0.0, 1.0);
  }
  optimizer.finish();

  Section schedule = training.section("lr_schedule");
  LrScheduleConfig& lr = out.lr_schedule;
  schedule.read_choice<LrScheduleKind>(
      "kind", lr.kind,
      {{"constant", LrScheduleKind::kConstant}, {"cosine", LrScheduleKind::kCosine}, {"step", LrScheduleKind::kStep}});
  schedule.read("warmup_epochs", lr.warmup_epochs);
  schedule.check_range("warmup_epochs", lr.warmup_epochs, 0.0, 1e6);
  if (lr.kind == LrScheduleKind::kCosine) {
    schedule.read("min_lr", lr.min_lr);
    schedule.check_range("min_lr", lr.min_lr, 0.0, opt.lr);
  }
  if (lr.kind == LrScheduleKind::kStep) {
    schedule.read_list("milestones", lr.milestones);
    schedule.read("gamma", lr.gamma);
    schedule.check_range("gamma", lr.gamma, 0.0, 1.0);
    for (size_t i = 1; i < lr.milestones.size(); ++i)
      if (lr.milestones[i] <= lr.milestones[i - 1])
        schedule.fail(schedule.node()["milestones"], schedule.key_path("milestones"), "must be increasing");
  }
  schedule.finish();
  training.finish();
}

// The data module validates pre-processing and augmentation; ask it now, on an empty set of
// the size the pre-processing expects, so a typo fails at load time rather than after the dataset.
void validate_data_settings(const Config& config) {
  ImageSet probe;
  probe.channels = config.preprocess.channels;
  probe.height = config.preprocess.height - config.preprocess.pad[0] - config.preprocess.pad[2];
  probe.width = config.preprocess.width - config.preprocess.pad[1] - config.preprocess.pad[3];
  try {
    BatchLoader loader(probe, config.preprocess, config.augmentation, config.training.batch_size, false, false, 0, 0);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(config.source + ": " + e.what());
  }
}

}  // namespace

bool NetworkConfig::quantized() const { return ends_with(name, "Quantize"); }

const std::vector<std::string>& zoo_network_names() {
  static const std::vector<std::string> names = {"LmnetV1Quantize", "LmnetV1",         "LmResnetQuantize",
                                                 "LmResnet",        "TinyNetQuantize", "TinyNet"};
  return names;
}

Config parse_config(const std::string& yaml_text, const std::string& source) {
  YAML::Node document;
  try {
    document = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  Config config;
  config.source = source;
  config.text = yaml_text;
  if (!document.IsMap()) throw ConfigError(source + ": expected a map of settings at the top level");

  Section root(document, "", config.source);
  root.read_choice<std::string>("task", config.task, {{"classification", "classification"}});
  Section network = root.section("network");
  if (!root.has("network")) root.fail(document, "network", "required");
  read_network(network, config.network);
  network.finish();
  Section dataset = root.section("dataset");
  if (!root.has("dataset")) root.fail(document, "dataset", "required");
  read_dataset(dataset, config.dataset);
  Section preprocess = root.section("preprocess");
  read_preprocess(preprocess, config.preprocess);
  read_augmentation(root, config.augmentation);
  Section training = root.section("training");
  if (!root.has("training")) root.fail(document, "training", "required");
  read_training(training, config.training);
  config.dataset.seed = config.training.seed;
  root.finish();
  validate_data_settings(config);
  return config;
}

Config load_config(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::runtime_error& e) {
    throw ConfigError(e.what());
  }
  return parse_config(text, path);
}

}  // namespace lowbit::trainer
