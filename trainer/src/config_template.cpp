// `lowbit init`: the annotated config a user starts from. Dataset-dependent choices
// (channels, padding, normalisation, augmentation) follow the dataset format.
#include <sstream>

#include "config.h"

namespace lowbit::trainer {

namespace {

struct DataDefaults {
  int channels;
  int source_height, source_width;  // 0: images are resized to the input size while loading
  const char* mean;
  const char* std;
  const char* augmentation;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

DataDefaults data_defaults(const InitChoices& c) {
  if (c.dataset_format == "idx") {
    // Digits must not be mirrored; clothes may.
    if (contains(c.dataset_path, "fashion"))
      return {1, 28, 28, "[0.2860]", "[0.3530]", "  - random_crop: {padding: 2}\n  - horizontal_flip: {p: 0.5}\n"};
    return {1, 28, 28, "[0.1307]", "[0.3081]", "  - random_crop: {padding: 2}\n"};
  }
  if (c.dataset_format == "cifar10")
    return {3, 32, 32, "[0.4914, 0.4822, 0.4465]", "[0.2470, 0.2435, 0.2616]",
            "  - random_crop: {padding: 4}\n  - horizontal_flip: {p: 0.5}\n"};
  return {3, 0, 0, "[0.485, 0.456, 0.406]", "[0.229, 0.224, 0.225]",
          "  - random_crop: {padding: 4}\n  - horizontal_flip: {p: 0.5}\n"};
}

}  // namespace

std::string render_config(const InitChoices& c) {
  const DataDefaults d = data_defaults(c);
  // Smaller images are padded (evenly, the odd pixel at the bottom/right) up to the input size.
  const int pad_h = d.source_height ? c.image_height - d.source_height : 0;
  const int pad_w = d.source_width ? c.image_width - d.source_width : 0;
  NetworkConfig network;
  network.name = c.network;
  std::ostringstream y;
  y << "# lowbit training config (docs/training.md describes every key).\n"
    << "# Train: lowbit train THIS_FILE --out runs/NAME    Evaluate: lowbit eval runs/NAME/checkpoints/best.pt\n"
    << "task: " << c.task << "\n\n"
    << "network:\n"
    << "  # LmnetV1Quantize, LmResnetQuantize, TinyNetQuantize, or the float twins LmnetV1, LmResnet, TinyNet\n"
    << "  name: " << c.network << "\n";
  if (network.quantized()) {
    y << "  # binary_mean_scaling (1 bit), ternary (TWN, 2-bit codes -1/0/+1) or signed_narrow (bits: 2..4)\n"
      << "  weight_quantizer: {kind: binary_mean_scaling, per_channel: true}\n"
      << "  # linear_mid_tread_half: codes 0..2^bits-1, value = code * max / (2^bits - 1)\n"
      << "  activation_quantizer: {kind: linear_mid_tread_half, bits: 2, max: 2.0}\n"
      << "  quantize_first_layer: true    # weights of the first conv (its input is the float image)\n"
      << "  quantize_last_layer: false    # the classifier stays float, with a bias\n";
  }
  y << "  dropout: 0.5                  # before the classifier (LmnetV1, TinyNet)\n\n"
    << "dataset:\n"
    << "  format: " << c.dataset_format << "                   # idx, cifar10 or image_folder\n"
    << "  path: " << c.dataset_path << "\n"
    << "  validation: test              # test: the dataset's test split; split: hold out val_fraction of train\n"
    << "  val_fraction: 0.1\n"
    << "  train_limit: 0                # 0 = every training image, else a seeded subset of this size\n"
    << "  val_limit: 0\n";
  if (!d.source_height)
    y << "  resize: bilinear              # image_folder: resize every image while loading\n"
      << "  resize_size: [" << c.image_height << ", " << c.image_width << "]\n";
  y << "\n"
    << "# Decoded 8-bit image -> network input; exported as the model's lowbit.preprocess.\n"
    << "preprocess:\n"
    << "  channels: " << d.channels << "\n"
    << "  input_size: [" << c.image_height << ", " << c.image_width << "]   # padding included\n"
    << "  resize: none\n"
    << "  pad: [" << pad_h / 2 << ", " << pad_w / 2 << ", " << pad_h - pad_h / 2 << ", " << pad_w - pad_w / 2
    << "]             # top, left, bottom, right\n"
    << "  pad_value: 0\n"
    << "  scale: 0.00392156862745098    # 1/255\n"
    << "  mean: " << d.mean << "\n"
    << "  std: " << d.std << "\n\n"
    << "# Applied in order to training images only: random_crop, horizontal_flip, vertical_flip,\n"
    << "# brightness, contrast, random_erasing.\n"
    << "augmentation:\n"
    << d.augmentation << "\n"
    << "training:\n"
    << "  batch_size: " << c.batch_size << "\n"
    << "  epochs: " << c.epochs << "                    # or steps: N\n"
    << "  optimizer: {kind: " << c.optimizer << ", lr: " << c.lr << ", weight_decay: 0.0}   # sgd (momentum), adam, adamw\n"
    << "  lr_schedule: {kind: cosine, warmup_epochs: 1.0}     # constant, cosine, step (milestones, gamma)\n"
    << "  seed: " << c.seed << "\n"
    << "  eval_interval: 0              # steps between evaluations; 0 = every epoch\n"
    << "  checkpoint_interval: 0        # steps between checkpoints; 0 = at every evaluation\n"
    << "  workers: 2                    # data loader threads\n"
    << "  threads: 2                    # LibTorch threads\n";
  return y.str();
}

}  // namespace lowbit::trainer
