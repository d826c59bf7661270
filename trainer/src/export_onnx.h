// The ONNX side of `lowbit export` (LibTorch and ONNX protobuf types; export.h is the plain
// interface). The graph is a walk over Network::layers() (networks.h), one node group per layer:
//
//   kConv          [weight quantizer: BipolarQuant / Quant on "<conv>.weight"] -> Conv "<conv>"
//   kBatchNorm     BatchNormalization "<bn>" (inference form: <bn>.scale, .bias, .mean, .var)
//   kActivation    Quant "<act>" (<act>.scale, .zero_point, .bitwidth) or Relu "<act>"
//   kSpaceToDepth  SpaceToDepth "<s2d>" (the trainer computes ONNX's channel order)
//   kDropout       nothing (inference is the identity)
//   kAdd           Add "<add>"
//   kGlobalAvgPool GlobalAveragePool "<pool>" -> Flatten "<pool>.flatten"
//
// Node names are layer names (plus "<conv>.weight_q" for weight quantizers and the Flatten); a
// node's output tensor has its node's name, except the last layer's, which is the graph output
// "logits".
#pragma once

#include <onnx/onnx_pb.h>

#include "export.h"
#include "trained_model.h"

namespace lowbit::trainer {

// Throws ExportError naming the layer when something cannot be expressed.
onnx::ModelProto export_onnx(const TrainedModel& model);

// Node, op, quantizer and parameter counts of an exported model (bytes = its serialized size).
ExportSummary summarize_onnx(const onnx::ModelProto& model);

}  // namespace lowbit::trainer
