// Reading and writing .lbm bytes (layout in docs/model-format.md). Parsing checks every byte range,
// count and enum; verify_graph then checks what the graph means (arity, shapes, order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lowbit/graph.h"

namespace lowbit {

uint32_t crc32(const uint8_t* data, size_t size);

std::vector<uint8_t> serialize_model(const GraphDesc& graph);

// Fills *graph from the bytes; constants point into `data`, which must outlive the graph and be
// aligned to kDataAlignment for zero-copy use of the weights.
Status parse_model(const uint8_t* data, size_t size, GraphDesc* graph);

// Checks the graph's meaning and returns its ops in an order that respects every dependency.
Status verify_graph(const GraphDesc& graph, Vec<uint32_t>* order);

}  // namespace lowbit
