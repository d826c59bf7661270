// The C API: a thin shell over Executor that turns Status into lowbit_last_error().
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "executor.h"
#include "kernels/kernel_table.h"
#include "lowbit/lowbit.h"
#include "lowbit/model_builder.h"
#include "quantize.h"

struct lowbit_model {
  std::unique_ptr<lowbit::Executor> owned;  // heap loads
  lowbit::Executor* exec = nullptr;
  bool in_workspace = false;                // lowbit_model_load_static: everything lives in the caller's workspace
};

namespace {

thread_local std::string g_last_error;

int fail(std::string message) {
  g_last_error = std::move(message);
  return -1;
}

lowbit_model* finish_load(const lowbit::Status& read, std::unique_ptr<lowbit::ModelBytes> bytes, const std::string& who) {
  if (!read.ok) {
    fail(who + ": " + read.message);
    return nullptr;
  }
  std::unique_ptr<lowbit::Executor> exec;
  const lowbit::Status s = lowbit::Executor::load(std::move(bytes), &exec);
  if (!s.ok) {
    fail(who + ": " + s.message);
    return nullptr;
  }
  g_last_error.clear();
  lowbit_model* m = new lowbit_model;
  m->exec = exec.get();
  m->owned = std::move(exec);
  return m;
}

constexpr uintptr_t kStaticAlignment = 64;

// Loads `data` in place with every structure taken from `workspace` (see lowbit_model_load_static).
// With a workspace too small (or none) the load still completes, on the heap, so that *need is the
// exact workspace size; it then frees everything and reports the shortfall.
lowbit::Status load_into_workspace(const uint8_t* data, size_t size, void* workspace, size_t workspace_bytes,
                                   lowbit_model** out, uint64_t* need) {
  lowbit::WorkspaceArena arena;
  arena.base = static_cast<uint8_t*>(workspace);
  arena.size = workspace ? workspace_bytes : 0;
  lowbit::WorkspaceArena* previous = lowbit::install_workspace_arena(&arena);
  void* model_memory = lowbit::workspace_take(sizeof(lowbit_model), kStaticAlignment);
  void* exec_memory = lowbit::workspace_take(sizeof(lowbit::Executor), kStaticAlignment);
  lowbit::Executor* exec = nullptr;
  lowbit::Status s = lowbit::Executor::load_in_place(data, size, exec_memory, &exec);
  lowbit::install_workspace_arena(previous);
  *need = arena.used;
  if (s.ok && !arena.overflowed) {
    lowbit_model* m = new (model_memory) lowbit_model;
    m->exec = exec;
    m->in_workspace = true;
    *out = m;
    return s;
  }
  if (exec_memory)
    exec->~Executor();
  else
    delete exec;
  if (s.ok)
    s = lowbit::Status::Error("workspace too small: the model needs " + std::to_string(arena.used) + " bytes, got " +
                              std::to_string(arena.size) + " (lowbit_model_workspace_bytes)");
  return s;
}

const lowbit::TensorDesc* io_tensor(const lowbit_model* m, int index, bool output) {
  if (!m) return fail("model is NULL"), nullptr;
  const lowbit::Vec<uint32_t>& ids = output ? m->exec->graph().outputs : m->exec->graph().inputs;
  if (index < 0 || static_cast<size_t>(index) >= ids.size()) {
    fail(std::string(output ? "output" : "input") + " index " + std::to_string(index) + " out of range");
    return nullptr;
  }
  return &m->exec->graph().tensors[ids[static_cast<size_t>(index)]];
}

uint32_t io_id(const lowbit_model* m, int index, bool output) {
  return (output ? m->exec->graph().outputs : m->exec->graph().inputs)[static_cast<size_t>(index)];
}

int fill_info(const lowbit::TensorDesc* t, lowbit_tensor_info* info) {
  if (!t) return -1;
  if (!info) return fail("info is NULL");
  info->name = t->c_name();
  info->dtype = static_cast<lowbit_dtype>(t->dtype);
  info->rank = t->rank;
  for (int i = 0; i < 4; ++i) info->dims[i] = i < t->rank ? t->dims[i] : 0;
  info->bits = t->dtype == lowbit::DType::kCodes ? t->quant.bits : 0;
  info->kind = static_cast<lowbit_quant_kind>(t->quant.kind);
  info->scale = t->dtype == lowbit::DType::kCodes ? t->scale : 1.0f;
  info->bytes = t->byte_size();
  return 0;
}

// Multiply-accumulates of one run of `op`, from its tensors' geometry (see lowbit_op_info in lowbit.h).
uint64_t op_macs(const lowbit::GraphDesc& g, const lowbit::OpDesc& op) {
  using lowbit::OpType;
  const lowbit::TensorDesc& out = g.tensors[op.outputs[0]];
  const lowbit::TensorDesc& x = g.tensors[op.inputs[0]];
  switch (op.type) {
    case OpType::kConv2D:
    case OpType::kQConv2D: {
      const lowbit::TensorDesc& w = g.tensors[op.inputs[1]];  // [O, KH, KW, Cg]
      return out.element_count() * static_cast<uint64_t>(w.dims[1]) * static_cast<uint64_t>(w.dims[2]) *
             static_cast<uint64_t>(w.dims[3]);
    }
    case OpType::kDense:
    case OpType::kQDense:  // every output reads all features of its sample
      return out.element_count() * (x.element_count() / static_cast<uint64_t>(x.dims[0]));
    case OpType::kAffine:
    case OpType::kMul: return out.element_count();
    case OpType::kAvgPool:
      return out.element_count() * static_cast<uint64_t>(op.ints[lowbit::kPoolKH]) *
             static_cast<uint64_t>(op.ints[lowbit::kPoolKW]);
    case OpType::kGlobalAvgPool: return x.element_count();
    default: return 0;
  }
}

int check_count(const lowbit::TensorDesc* t, size_t count) {
  if (count != t->element_count())
    return fail(std::string("tensor '") + t->c_name() + "' has " + std::to_string(t->element_count()) + " elements, got " +
                std::to_string(count));
  return 0;
}

}  // namespace

extern "C" {

lowbit_model* lowbit_load_file(const char* path) {
  if (!path) return fail("path is NULL"), nullptr;
  std::unique_ptr<lowbit::ModelBytes> bytes;
  const lowbit::Status s = lowbit::ModelBytes::map_file(path, &bytes);
  return finish_load(s, std::move(bytes), path);
}

lowbit_model* lowbit_load_memory(const void* data, size_t size) {
  if (!data && size) return fail("data is NULL"), nullptr;
  std::unique_ptr<lowbit::ModelBytes> bytes;
  const lowbit::Status s = lowbit::ModelBytes::copy_of(data, size, &bytes);
  return finish_load(s, std::move(bytes), "<memory>");
}

lowbit_model* lowbit_model_load_static(const void* model_bytes, size_t size, void* workspace, size_t workspace_bytes) {
  if (!model_bytes) return fail("model bytes are NULL"), nullptr;
  if (reinterpret_cast<uintptr_t>(model_bytes) % kStaticAlignment != 0)
    return fail("model bytes must be 64-byte aligned (they are used in place)"), nullptr;
  if (!workspace && workspace_bytes) return fail("workspace is NULL"), nullptr;
  if (reinterpret_cast<uintptr_t>(workspace) % kStaticAlignment != 0)
    return fail("workspace must be 64-byte aligned"), nullptr;
  lowbit_model* m = nullptr;
  uint64_t need = 0;
  const lowbit::Status s =
      load_into_workspace(static_cast<const uint8_t*>(model_bytes), size, workspace, workspace_bytes, &m, &need);
  if (!s.ok) return fail("<static>: " + s.message), nullptr;
  g_last_error.clear();
  return m;
}

size_t lowbit_model_workspace_bytes(const void* model_bytes, size_t size) {
  if (!model_bytes) return fail("model bytes are NULL"), 0;
  // The load is sized once per weight layout of every target; the largest need wins. Sizes come
  // from this build's types, which are at least as large on a 64-bit host as on a 32-bit target.
  uint64_t worst = 0;
  for (size_t i = 0; i < lowbit::kernel_layout_count(); ++i) {
    const lowbit::KernelTable* previous = lowbit::set_kernel_layout_override(&lowbit::kernel_layout(i));
    lowbit_model* m = nullptr;
    uint64_t need = 0;
    const lowbit::Status s =
        load_into_workspace(static_cast<const uint8_t*>(model_bytes), size, nullptr, 0, &m, &need);
    lowbit::set_kernel_layout_override(previous);
    if (!s.ok && s.message.compare(0, 19, "workspace too small") != 0) return fail("<static>: " + s.message), 0;
    worst = std::max(worst, need);
  }
  // Loads may put the workspace anywhere 64-byte aligned; round up to whole 64-byte lines.
  worst = (worst + kStaticAlignment - 1) / kStaticAlignment * kStaticAlignment;
  if (worst > SIZE_MAX) return fail("<static>: workspace larger than this platform's address space"), 0;
  g_last_error.clear();
  return static_cast<size_t>(worst);
}

void lowbit_free(lowbit_model* model) {
  if (!model) return;
  if (!model->in_workspace) {
    delete model;
    return;
  }
  // Nothing to release: the memory is the caller's workspace; only the destructors run.
  model->exec->~Executor();
  model->~lowbit_model();
}

const char* lowbit_last_error(void) { return g_last_error.c_str(); }

int lowbit_num_inputs(const lowbit_model* m) { return m ? static_cast<int>(m->exec->graph().inputs.size()) : fail("model is NULL"); }
int lowbit_num_outputs(const lowbit_model* m) { return m ? static_cast<int>(m->exec->graph().outputs.size()) : fail("model is NULL"); }

int lowbit_input_info(const lowbit_model* m, int index, lowbit_tensor_info* info) {
  return fill_info(io_tensor(m, index, false), info);
}
int lowbit_output_info(const lowbit_model* m, int index, lowbit_tensor_info* info) {
  return fill_info(io_tensor(m, index, true), info);
}

void* lowbit_input_buffer(lowbit_model* m, int index) {
  return io_tensor(m, index, false) ? m->exec->tensor_data(io_id(m, index, false)) : nullptr;
}
const void* lowbit_output_buffer(const lowbit_model* m, int index) {
  return io_tensor(m, index, true) ? const_cast<lowbit_model*>(m)->exec->tensor_data(io_id(m, index, true)) : nullptr;
}

int lowbit_set_input_f32(lowbit_model* m, int index, const float* data, size_t count) {
  const lowbit::TensorDesc* t = io_tensor(m, index, false);
  if (!t || check_count(t, count) != 0) return -1;
  if (!data && count) return fail("data is NULL");
  void* dst = m->exec->tensor_data(io_id(m, index, false));
  if (t->dtype == lowbit::DType::kF32) {
    std::memcpy(dst, data, count * sizeof(float));
    return 0;
  }
  const lowbit::PixelPlanes planes = t->pixel_planes();
  uint32_t* words = static_cast<uint32_t*>(dst);
  std::memset(words, 0, t->byte_size());
  for (size_t i = 0; i < count; ++i) {
    const size_t pixel = i / planes.channels, c = i % planes.channels;
    lowbit::write_code(words + planes.plane_offset(pixel, 0), planes.words_per_plane(), c, t->quant,
                       lowbit::quantize_value(data[i], t->scale, t->quant, lowbit::Rounding::kHalfUp));
  }
  return 0;
}

int lowbit_get_output_f32(const lowbit_model* m, int index, float* data, size_t count) {
  const lowbit::TensorDesc* t = io_tensor(m, index, true);
  if (!t || check_count(t, count) != 0) return -1;
  if (!data && count) return fail("data is NULL");
  const void* src = const_cast<lowbit_model*>(m)->exec->tensor_data(io_id(m, index, true));
  if (t->dtype == lowbit::DType::kF32) {
    std::memcpy(data, src, count * sizeof(float));
    return 0;
  }
  if (t->dtype != lowbit::DType::kCodes) return fail(std::string("output '") + t->c_name() + "' is not float or codes");
  const lowbit::PixelPlanes planes = t->pixel_planes();
  const uint32_t* words = static_cast<const uint32_t*>(src);
  for (size_t i = 0; i < count; ++i) {
    const size_t pixel = i / planes.channels, c = i % planes.channels;
    data[i] = t->scale * static_cast<float>(lowbit::read_code(words + planes.plane_offset(pixel, 0),
                                                              planes.words_per_plane(), c, t->quant));
  }
  return 0;
}

int lowbit_run(lowbit_model* m) {
  if (!m) return fail("model is NULL");
  m->exec->run();
  return 0;
}

int lowbit_set_threads(lowbit_model* m, int threads) {
  if (!m) return fail("model is NULL");
  const lowbit::Status s = m->exec->set_threads(threads);
  return s.ok ? 0 : fail(s.message);
}

size_t lowbit_peak_activation_bytes(const lowbit_model* m) { return m ? m->exec->peak_activation_bytes() : 0; }

int lowbit_set_profiling(lowbit_model* m, int enabled) {
  if (!m) return fail("model is NULL");
  m->exec->set_profiling(enabled != 0);
  return 0;
}

int lowbit_num_ops(const lowbit_model* m) { return m ? static_cast<int>(m->exec->step_count()) : fail("model is NULL"); }

int lowbit_op_profile(const lowbit_model* m, int index, const char** op_type, const char** output_name,
                      double* milliseconds) {
  if (!m) return fail("model is NULL");
  if (index < 0 || static_cast<size_t>(index) >= m->exec->step_count()) return fail("op index out of range");
  const lowbit::OpDesc& op = m->exec->step_op(static_cast<size_t>(index));
  if (op_type) *op_type = lowbit::op_name(op.type);
  if (output_name) *output_name = m->exec->graph().tensors[op.outputs[0]].c_name();
  if (milliseconds) *milliseconds = m->exec->step_profile(static_cast<size_t>(index)).milliseconds;
  return 0;
}

int lowbit_model_op_info(const lowbit_model* m, int index, lowbit_op_info* info) {
  if (!m) return fail("model is NULL");
  if (index < 0 || static_cast<size_t>(index) >= m->exec->step_count()) return fail("op index out of range");
  if (!info) return fail("info is NULL");
  const lowbit::GraphDesc& g = m->exec->graph();
  const lowbit::OpDesc& op = m->exec->step_op(static_cast<size_t>(index));
  *info = lowbit_op_info{};
  info->type = lowbit::op_name(op.type);
  info->num_inputs = static_cast<int>(op.inputs.size());  // the loader caps inputs at 8
  for (size_t i = 0; i < op.inputs.size() && i < LOWBIT_MAX_OP_INPUTS; ++i) {
    if (op.inputs[i] == lowbit::kNoTensor) continue;
    const lowbit::TensorDesc& t = g.tensors[op.inputs[i]];
    fill_info(&t, &info->inputs[i]);
    if (t.is_constant()) {
      info->input_is_constant[i] = 1;
      info->param_count += t.element_count();
      info->param_bytes += t.data_size;
    } else {
      info->activation_bytes_read += t.byte_size();
    }
  }
  const lowbit::TensorDesc& out = g.tensors[op.outputs[0]];
  fill_info(&out, &info->output);
  info->activation_bytes_written = out.byte_size();
  info->macs = op_macs(g, op);
  return 0;
}

uint64_t lowbit_model_constant_bytes(const lowbit_model* m) {
  if (!m) return fail("model is NULL"), 0;
  uint64_t bytes = 0;
  for (const lowbit::TensorDesc& t : m->exec->graph().tensors)
    if (t.is_constant()) bytes += t.data_size;
  return bytes;
}

}  // extern "C"
