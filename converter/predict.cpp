#include "converter/predict.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "converter/ir.h"

namespace lowbit::converter {

std::vector<double> softmax(const std::vector<float>& logits) {
  std::vector<double> p(logits.size());
  if (logits.empty()) return p;
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp(static_cast<double>(logits[i]) - top);
  for (double& v : p) v /= sum;
  return p;
}

std::vector<ClassScore> top_k(const std::vector<double>& probabilities, const std::vector<std::string>& names, size_t k) {
  std::vector<size_t> order(probabilities.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), [&](size_t a, size_t b) {
    return probabilities[a] != probabilities[b] ? probabilities[a] > probabilities[b] : a < b;
  });
  std::vector<ClassScore> top;
  for (size_t i = 0; i < k; ++i) {
    const size_t c = order[i];
    top.push_back({c < names.size() ? names[c] : std::to_string(c), c, probabilities[c]});
  }
  return top;
}

Predictor::Predictor(const std::string& model_dir, int threads) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(model_dir)) throw ConvertError(model_dir + ": no such model directory");
  model_path_ = (fs::path(model_dir) / "model.lbm").string();
  std::string error;
  model_ = lowbit::Model::load(model_path_, &error);
  if (!model_) throw ConvertError(error);  // the runtime names the file
  if (!model_.set_threads(threads)) throw ConvertError(model_path_ + ": " + lowbit_last_error());
  pre_ = read_preprocess(model_dir);
  names_ = read_class_names(model_dir);
  if (model_.num_inputs() != 1 || model_.num_outputs() < 1)
    throw ConvertError(model_path_ + ": predict needs a model with one input and an output");
  input_elements_ = lowbit::Model::element_count(model_.input_info(0));
  const size_t want = static_cast<size_t>(pre_.height) * pre_.width * pre_.channels;
  if (input_elements_ != want)
    throw ConvertError(model_path_ + ": its input has " + std::to_string(input_elements_) + " values, " + model_dir +
                       "/meta.yaml describes " + std::to_string(pre_.height) + "x" + std::to_string(pre_.width) + "x" +
                       std::to_string(pre_.channels) + " images");
  const lowbit_tensor_info out = model_.output_info(0);
  output_elements_ = lowbit::Model::element_count(out);
  if (!names_.empty() && names_.size() != output_elements_)
    throw ConvertError(model_dir + "/meta.yaml: " + std::to_string(names_.size()) + " classes for the " +
                       std::to_string(output_elements_) + " values of output '" + out.name + "'");
  // A model that already ends in Softmax gives probabilities; anything else gives logits.
  for (int i = 0; i < model_.num_ops(); ++i) {
    const lowbit_op_info op = model_.op_info(i);
    if (std::string(op.output.name) == out.name) output_is_softmax_ = std::string(op.type) == "Softmax";
  }
}

std::vector<double> Predictor::probabilities(const std::vector<float>& input) {
  if (!model_.set_input(0, input) || !model_.run()) throw ConvertError(model_path_ + ": " + lowbit_last_error());
  const std::vector<float> out = model_.output(0);
  return output_is_softmax_ ? std::vector<double>(out.begin(), out.end()) : softmax(out);
}

Prediction Predictor::predict(const std::string& image_path, size_t k) {
  Prediction p;
  p.image = image_path;
  p.top = top_k(probabilities(preprocess_pixels(pre_, decode_image(image_path), image_path)), names_, k);
  return p;
}

std::vector<Prediction> predict_images(const std::string& model_dir, const std::vector<std::string>& images, size_t k,
                                       int threads) {
  Predictor predictor(model_dir, threads);
  std::vector<Prediction> out;
  for (const std::string& image : images) {
    try {
      out.push_back(predictor.predict(image, k));
    } catch (const ConvertError& e) {
      Prediction failed;
      failed.image = image;
      failed.error = e.what();
      out.push_back(std::move(failed));
    }
  }
  return out;
}

DatasetReport predict_dataset(const std::string& model_dir, const std::string& data, size_t limit, int threads) {
  Predictor predictor(model_dir, threads);
  const std::vector<Pixels> images = load_dataset(data, limit);
  DatasetReport report;
  report.data = data;
  report.labels_file = labels_file_for(data);
  std::vector<uint8_t> labels;
  if (report.has_labels()) {
    labels = read_idx_labels(report.labels_file, images.size());
    if (labels.size() != images.size())
      throw ConvertError(report.labels_file + ": " + std::to_string(labels.size()) + " labels for " +
                         std::to_string(images.size()) + " images");
  }
  for (size_t i = 0; i < images.size(); ++i) {
    const std::vector<double> p =
        predictor.probabilities(preprocess_pixels(predictor.preprocess(), images[i], data + " image " + std::to_string(i)));
    const ClassScore best = top_k(p, predictor.class_names(), 1).at(0);
    DatasetPrediction d{labels.empty() ? -1 : labels[i], best.index, best.probability};
    if (d.label >= 0 && static_cast<size_t>(d.label) == d.predicted) ++report.correct;
    report.predictions.push_back(d);
  }
  return report;
}

std::string format_dataset_report(const DatasetReport& r) {
  std::ostringstream out;
  out << r.data << ": " << r.predictions.size() << " images";
  if (r.has_labels())
    out << ", top-1 " << std::fixed << std::setprecision(2) << 100.0 * r.top1() << " % (" << r.correct << " correct; labels "
        << r.labels_file << ")";
  else
    out << " (no labels found, so no accuracy)";
  out << "\n";
  return out.str();
}

std::string dataset_report_json(const DatasetReport& r) {
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (size_t i = 0; i < r.predictions.size(); ++i) {
    const DatasetPrediction& p = r.predictions[i];
    all.push_back({{"index", i}, {"label", p.label}, {"predicted", p.predicted}, {"probability", p.probability}});
  }
  nlohmann::ordered_json j = {{"data", r.data}, {"images", r.predictions.size()}, {"labels", r.labels_file}};
  if (r.has_labels()) j["top1"] = r.top1();
  j["predictions"] = all;
  return j.dump(1) + "\n";
}

std::string format_predictions(const std::vector<Prediction>& predictions) {
  std::ostringstream out;
  for (const Prediction& p : predictions) {
    if (!p.error.empty()) continue;  // reported on stderr by the command
    out << p.image << "\n";
    size_t width = 0;
    for (const ClassScore& s : p.top) width = std::max(width, s.name.size());
    for (size_t i = 0; i < p.top.size(); ++i) {
      const ClassScore& s = p.top[i];
      out << "  " << i + 1 << ". " << std::left << std::setw(static_cast<int>(width)) << s.name << std::right
          << "  " << std::setw(8) << std::fixed << std::setprecision(4) << s.probability << "  (class " << s.index
          << ")\n";
    }
  }
  return out.str();
}

std::string predictions_json(const std::vector<Prediction>& predictions) {
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const Prediction& p : predictions) {
    if (!p.error.empty()) {
      all.push_back({{"image", p.image}, {"error", p.error}});
      continue;
    }
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    for (const ClassScore& s : p.top) top.push_back({{"class", s.name}, {"index", s.index}, {"probability", s.probability}});
    all.push_back({{"image", p.image}, {"top", top}});
  }
  return all.dump(2) + "\n";
}

}  // namespace lowbit::converter
