// Thin C++ wrapper over the C API: RAII ownership and std::vector convenience.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lowbit/lowbit.h"

namespace lowbit {

class Model {
 public:
  // Returns an empty Model and sets *error on failure.
  static Model load(const std::string& path, std::string* error) { return wrap(lowbit_load_file(path.c_str()), error); }
  static Model load(const void* data, size_t size, std::string* error) {
    return wrap(lowbit_load_memory(data, size), error);
  }

  explicit operator bool() const { return static_cast<bool>(model_); }
  lowbit_model* get() const { return model_.get(); }

  int num_inputs() const { return lowbit_num_inputs(get()); }
  int num_outputs() const { return lowbit_num_outputs(get()); }
  lowbit_tensor_info input_info(int i) const {
    lowbit_tensor_info info{};
    lowbit_input_info(get(), i, &info);
    return info;
  }
  lowbit_tensor_info output_info(int i) const {
    lowbit_tensor_info info{};
    lowbit_output_info(get(), i, &info);
    return info;
  }
  static size_t element_count(const lowbit_tensor_info& info) {
    size_t n = 1;
    for (int i = 0; i < info.rank; ++i) n *= static_cast<size_t>(info.dims[i]);
    return n;
  }

  bool set_input(int i, const std::vector<float>& data) { return lowbit_set_input_f32(get(), i, data.data(), data.size()) == 0; }
  bool run() { return lowbit_run(get()) == 0; }
  std::vector<float> output(int i) const {
    std::vector<float> out(element_count(output_info(i)));
    lowbit_get_output_f32(get(), i, out.data(), out.size());
    return out;
  }
  bool set_threads(int n) { return lowbit_set_threads(get(), n) == 0; }
  size_t peak_activation_bytes() const { return lowbit_peak_activation_bytes(get()); }

  // Introspection and per-op timing, one entry per op in execution order.
  int num_ops() const { return lowbit_num_ops(get()); }
  lowbit_op_info op_info(int i) const {
    lowbit_op_info info{};
    lowbit_model_op_info(get(), i, &info);
    return info;
  }
  uint64_t constant_bytes() const { return lowbit_model_constant_bytes(get()); }
  bool set_profiling(bool on) { return lowbit_set_profiling(get(), on ? 1 : 0) == 0; }
  // Milliseconds op i took in the last run with profiling on (0 before any).
  double op_milliseconds(int i) const {
    double ms = 0;
    lowbit_op_profile(get(), i, nullptr, nullptr, &ms);
    return ms;
  }

 private:
  struct Free {
    void operator()(lowbit_model* m) const { lowbit_free(m); }
  };
  static Model wrap(lowbit_model* m, std::string* error) {
    Model model;
    model.model_.reset(m);
    if (!m && error) *error = lowbit_last_error();
    return model;
  }
  std::unique_ptr<lowbit_model, Free> model_;
};

}  // namespace lowbit
