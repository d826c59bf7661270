// Graph-level passes on the IR, run before lowering (lowering.h holds the layer-level ones).
#pragma once

#include "converter/ir.h"

namespace lowbit::converter {

// Identity and Dropout (inference: identity) nodes go; their readers read the input instead.
// A Dropout whose mask output is read is an error.
void remove_identities(Graph& g);

// Evaluates, with the interpreter's kernels, every node whose inputs are all constants. Weight
// quantizers on initializers become constants that keep their integer codes (Value::quantized).
void fold_constants(Graph& g);

// Removes nodes none of whose outputs is read or a graph output.
void eliminate_dead_nodes(Graph& g);

// The three above, in that order.
void run_graph_passes(Graph& g);

}  // namespace lowbit::converter
