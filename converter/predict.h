// `lowbit predict`: classify image files with a converted model. Images are decoded and
// pre-processed exactly as `lowbit verify` does (model_input.h, meta.yaml's `preprocess`).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "converter/model_input.h"
#include "lowbit/lowbit.hpp"

namespace lowbit::converter {

struct ClassScore {
  std::string name;  // from meta.yaml `classes`, or the index when it has none
  size_t index = 0;
  double probability = 0;
};

struct Prediction {
  std::string image;
  std::vector<ClassScore> top;  // most probable first (ties: lower index first)
  std::string error;            // set (and top empty) when the image could not be used
};

// Softmax in double precision (max subtracted first).
std::vector<double> softmax(const std::vector<float>& logits);

// The k most probable classes of `probabilities`.
std::vector<ClassScore> top_k(const std::vector<double>& probabilities, const std::vector<std::string>& names, size_t k);

class Predictor {
 public:
  // Loads DIR/model.lbm and DIR/meta.yaml (preprocess, classes). Throws ConvertError naming the
  // directory or file when the model cannot be used for classification.
  Predictor(const std::string& model_dir, int threads = 1);

  // Class probabilities for one pre-processed input (NHWC float32): the softmax of the first
  // output, or the output itself when the model ends in a Softmax op.
  std::vector<double> probabilities(const std::vector<float>& input);
  // Decodes, pre-processes and classifies one image. Throws ConvertError naming the file.
  Prediction predict(const std::string& image_path, size_t k);

  const Preprocess& preprocess() const { return pre_; }
  const std::vector<std::string>& class_names() const { return names_; }

 private:
  std::string model_path_;
  lowbit::Model model_;
  Preprocess pre_;
  std::vector<std::string> names_;
  size_t input_elements_ = 0, output_elements_ = 0;
  bool output_is_softmax_ = false;
};

// Every image in order; an image that cannot be decoded or does not fit the model gets `error`
// set and the others still run. Model directory problems throw ConvertError.
std::vector<Prediction> predict_images(const std::string& model_dir, const std::vector<std::string>& images, size_t k,
                                       int threads = 1);

// A dataset (--data: IDX file or directory, or a directory of images) through the model: the
// top-1 class of every image, and the accuracy when labels go with it (labels_file_for).
struct DatasetPrediction {
  int label = -1;  // -1: no labels
  size_t predicted = 0;
  double probability = 0;
};
struct DatasetReport {
  std::string data, labels_file;
  std::vector<DatasetPrediction> predictions;
  size_t correct = 0;
  bool has_labels() const { return !labels_file.empty(); }
  double top1() const { return predictions.empty() ? 0.0 : static_cast<double>(correct) / predictions.size(); }
};
DatasetReport predict_dataset(const std::string& model_dir, const std::string& data, size_t limit, int threads = 1);
std::string format_dataset_report(const DatasetReport& report);
// {"data", "images", "labels", "top1" (with labels), "predictions": [{"index", "label", "predicted", "probability"}]}
std::string dataset_report_json(const DatasetReport& report);

std::string format_predictions(const std::vector<Prediction>& predictions);
// [{"image": ..., "top": [{"class": ..., "index": ..., "probability": ...}]}]; failed images carry
// "error" instead of "top".
std::string predictions_json(const std::vector<Prediction>& predictions);

}  // namespace lowbit::converter
