#include "augment.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace lowbit::trainer::data {
namespace {

struct ParamSpec {
  const char* name;
  double default_value;
  double min, max;
  bool integer;
};

struct KindSpec {
  const char* name;
  AugmentationKind kind;
  std::vector<ParamSpec> params;
};

// Defaults follow common practice (torchvision's RandomErasing, the usual CIFAR crop padding).
const std::vector<KindSpec>& kind_table() {
  static const std::vector<KindSpec> table = {
      {"random_crop", AugmentationKind::kRandomCrop, {{"padding", 4, 0, 1024, true}}},
      {"horizontal_flip", AugmentationKind::kHorizontalFlip, {{"p", 0.5, 0, 1, false}}},
      {"vertical_flip", AugmentationKind::kVerticalFlip, {{"p", 0.5, 0, 1, false}}},
      {"brightness", AugmentationKind::kBrightness, {{"delta", 0.2, 0, 1, false}}},
      {"contrast", AugmentationKind::kContrast, {{"delta", 0.2, 0, 1, false}}},
      {"random_erasing",
       AugmentationKind::kRandomErasing,
       {{"p", 0.5, 0, 1, false},
        {"area_min", 0.02, 0, 1, false},
        {"area_max", 0.33, 0, 1, false},
        {"ratio_min", 0.3, 1e-3, 1e3, false},
        {"ratio_max", 3.3, 1e-3, 1e3, false}}},
  };
  return table;
}

std::string format_number(double value) {
  std::string text = std::to_string(value);
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text;
}

template <typename Items, typename NameOf>
std::string name_list(const Items& items, NameOf name_of) {
  std::string list;
  for (const auto& item : items) list += (list.empty() ? "" : ", ") + std::string(name_of(item));
  return list;
}

std::vector<double> resolve_params(const KindSpec& spec, const Augmentation& augmentation) {
  const std::string where = "augmentation \"" + augmentation.name + "\": ";
  for (const auto& [name, value] : augmentation.params) {
    const bool known =
        std::any_of(spec.params.begin(), spec.params.end(), [&](const ParamSpec& p) { return name == p.name; });
    if (!known)
      throw std::invalid_argument(where + "unknown parameter \"" + name + "\" (parameters: " +
                                  name_list(spec.params, [](const ParamSpec& p) { return p.name; }) + ")");
  }
  std::vector<double> values;
  for (const ParamSpec& param : spec.params) {
    const auto given = augmentation.params.find(param.name);
    const double value = given == augmentation.params.end() ? param.default_value : given->second;
    if (!(value >= param.min && value <= param.max))  // also rejects NaN
      throw std::invalid_argument(where + "\"" + param.name + "\" must be in [" + format_number(param.min) + ", " +
                                  format_number(param.max) + "], got " + format_number(value));
    if (param.integer && value != std::floor(value))
      throw std::invalid_argument(where + "\"" + param.name + "\" must be an integer, got " + format_number(value));
    values.push_back(value);
  }
  return values;
}

void require_ordered(const Augmentation& augmentation, const std::vector<double>& values, size_t low, size_t high,
                     const char* low_name, const char* high_name) {
  if (values[low] > values[high])
    throw std::invalid_argument("augmentation \"" + augmentation.name + "\": \"" + low_name + "\" must not exceed \"" +
                                high_name + "\"");
}

// Output pixel (y, x) shows input pixel (y + dy - padding, x + dx - padding): the image padded by
// `padding` on every side and cropped back at offset (dy, dx).
void random_crop(PlanarImage& image, int padding, float fill_value, Rng& rng, PlanarImage& scratch) {
  const int dy = static_cast<int>(rng.below(2 * padding + 1)) - padding;
  const int dx = static_cast<int>(rng.below(2 * padding + 1)) - padding;
  if (dy == 0 && dx == 0) return;
  scratch.reset(image.channels, image.height, image.width, fill_value);
  const int x_begin = std::max(0, -dx), x_end = std::min(image.width, image.width - dx);
  for (int c = 0; c < image.channels; ++c)
    for (int y = 0; y < image.height; ++y) {
      const int source_y = y + dy;
      if (source_y < 0 || source_y >= image.height || x_begin >= x_end) continue;
      const float* src = image.row(c, source_y);
      std::copy(src + x_begin + dx, src + x_end + dx, scratch.row(c, y) + x_begin);
    }
  std::swap(image, scratch);
}

void flip_horizontal(PlanarImage& image) {
  for (int c = 0; c < image.channels; ++c)
    for (int y = 0; y < image.height; ++y) std::reverse(image.row(c, y), image.row(c, y) + image.width);
}

void flip_vertical(PlanarImage& image) {
  for (int c = 0; c < image.channels; ++c)
    for (int y = 0; y < image.height / 2; ++y)
      std::swap_ranges(image.row(c, y), image.row(c, y) + image.width, image.row(c, image.height - 1 - y));
}

// value -> (value - pivot) * factor + pivot + offset, clamped to the 8-bit range.
void affine_clamped(PlanarImage& image, float pivot, float factor, float offset) {
  for (float& value : image.pixels) value = std::clamp((value - pivot) * factor + pivot + offset, 0.0f, 255.0f);
}

float mean_value(const PlanarImage& image) {
  double sum = 0;
  for (float value : image.pixels) sum += value;
  return image.pixels.empty() ? 0.0f : static_cast<float>(sum / image.pixels.size());
}

// Random erasing (Zhong et al. 2017), sampled like torchvision: area fraction uniform, aspect
// ratio (height / width) log-uniform, up to 10 attempts to fit the box inside the image.
void random_erasing(PlanarImage& image, const std::vector<double>& values, float fill_value, Rng& rng) {
  const double p = values[0], area_min = values[1], area_max = values[2], ratio_min = values[3], ratio_max = values[4];
  if (!rng.bernoulli(p)) return;
  const double image_area = static_cast<double>(image.height) * image.width;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double area = image_area * rng.uniform(area_min, area_max);
    const double ratio = std::exp(rng.uniform(std::log(ratio_min), std::log(ratio_max)));
    const int box_height = static_cast<int>(std::lround(std::sqrt(area * ratio)));
    const int box_width = static_cast<int>(std::lround(std::sqrt(area / ratio)));
    if (box_height < 1 || box_width < 1 || box_height > image.height || box_width > image.width) continue;
    const int top = static_cast<int>(rng.below(image.height - box_height + 1));
    const int left = static_cast<int>(rng.below(image.width - box_width + 1));
    for (int c = 0; c < image.channels; ++c)
      for (int y = top; y < top + box_height; ++y) std::fill_n(image.row(c, y) + left, box_width, fill_value);
    return;
  }
}

}  // namespace

Augmenter::Augmenter(const std::vector<Augmentation>& augmentations, float fill_value) : fill_value_(fill_value) {
  const auto& table = kind_table();
  for (const Augmentation& augmentation : augmentations) {
    const auto spec =
        std::find_if(table.begin(), table.end(), [&](const KindSpec& k) { return augmentation.name == k.name; });
    if (spec == table.end())
      throw std::invalid_argument("unknown augmentation \"" + augmentation.name +
                                  "\" (known: " + name_list(table, [](const KindSpec& k) { return k.name; }) + ")");
    Step step{spec->kind, resolve_params(*spec, augmentation)};
    if (step.kind == AugmentationKind::kRandomErasing) {
      require_ordered(augmentation, step.values, 1, 2, "area_min", "area_max");
      require_ordered(augmentation, step.values, 3, 4, "ratio_min", "ratio_max");
    }
    steps_.push_back(std::move(step));
  }
}

void Augmenter::apply(PlanarImage& image, Rng& rng, PlanarImage& scratch) const {
  for (const Step& step : steps_) {
    switch (step.kind) {
      case AugmentationKind::kRandomCrop:
        random_crop(image, static_cast<int>(step.values[0]), fill_value_, rng, scratch);
        break;
      case AugmentationKind::kHorizontalFlip:
        if (rng.bernoulli(step.values[0])) flip_horizontal(image);
        break;
      case AugmentationKind::kVerticalFlip:
        if (rng.bernoulli(step.values[0])) flip_vertical(image);
        break;
      case AugmentationKind::kBrightness: {
        const double delta = step.values[0];
        affine_clamped(image, 0.0f, 1.0f, static_cast<float>(rng.uniform(-delta, delta) * 255.0));
        break;
      }
      case AugmentationKind::kContrast: {
        const double delta = step.values[0];
        affine_clamped(image, mean_value(image), static_cast<float>(rng.uniform(1.0 - delta, 1.0 + delta)), 0.0f);
        break;
      }
      case AugmentationKind::kRandomErasing:
        random_erasing(image, step.values, fill_value_, rng);
        break;
    }
  }
}

}  // namespace lowbit::trainer::data
