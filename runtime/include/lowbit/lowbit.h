/* lowbit runtime C API: load a .lbm model, feed inputs, run, read outputs.
 *
 * Every function that can fail returns NULL or a negative number and leaves a message for
 * lowbit_last_error() (per thread). Models are not safe to run from two threads at once; give each
 * thread its own model, or use lowbit_set_threads to spread one model's ops across cores. */
#ifndef LOWBIT_LOWBIT_H_
#define LOWBIT_LOWBIT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lowbit_model lowbit_model;

typedef enum { LOWBIT_F32 = 1, LOWBIT_I32 = 2, LOWBIT_CODES = 3 } lowbit_dtype;

typedef enum {
  LOWBIT_UNSIGNED = 0,
  LOWBIT_SIGNED = 1,
  LOWBIT_SIGNED_NARROW = 2,
  LOWBIT_BINARY = 3
} lowbit_quant_kind;

typedef struct {
  const char* name;        /* owned by the model */
  lowbit_dtype dtype;
  int rank;
  int32_t dims[4];
  int bits;                /* codes only */
  lowbit_quant_kind kind;  /* codes only */
  float scale;             /* codes only: value = scale * code */
  size_t bytes;            /* size of the tensor's buffer */
} lowbit_tensor_info;

/* Loading verifies the whole file (offsets, shapes, types, op arity, checksum). The file is mapped,
 * not copied, where the platform allows; lowbit_load_memory copies the bytes. */
lowbit_model* lowbit_load_file(const char* path);
lowbit_model* lowbit_load_memory(const void* data, size_t size);
void lowbit_free(lowbit_model* model);

/* No file system, no heap: load a model whose bytes are linked into the program (e.g. the
 * model_data.c of `lowbit convert --emit-c`). The bytes are used in place and must be 64-byte
 * aligned and outlive the model; every structure the model needs (graph, plan, weights repacked
 * for this CPU's kernels, activation arena, scratch) is carved out of `workspace` (64-byte aligned,
 * `workspace_bytes` long) by a bump allocator. Neither this call, nor lowbit_run, nor the
 * input/output/introspection calls allocate. The model runs on one thread (lowbit_set_threads
 * accepts only 1). lowbit_free runs no deallocation: the workspace is the caller's again.
 * If the workspace is too small, the call fails with "workspace too small: the model needs N
 * bytes, got M" (sizing it uses the heap temporarily; only the failure path does). Failure
 * messages themselves may allocate. */
lowbit_model* lowbit_model_load_static(const void* model_bytes, size_t size, void* workspace, size_t workspace_bytes);
/* A workspace size that fits the model on every target this runtime supports: the worst case over
 * the weight layouts of all kernel tables (reference, AVX2, AVX-512, NEON), measured with this
 * build's type sizes (run it on a 64-bit host for a bound that also covers 32-bit targets).
 * Uses the heap. 0 on error (the model does not load). */
size_t lowbit_model_workspace_bytes(const void* model_bytes, size_t size);

/* The message of the last failure on this thread ("" if none). */
const char* lowbit_last_error(void);

int lowbit_num_inputs(const lowbit_model* model);
int lowbit_num_outputs(const lowbit_model* model);
int lowbit_input_info(const lowbit_model* model, int index, lowbit_tensor_info* info);
int lowbit_output_info(const lowbit_model* model, int index, lowbit_tensor_info* info);

/* Raw buffer of an input or output in its own layout (float32 row-major, or packed codes). */
void* lowbit_input_buffer(lowbit_model* model, int index);
const void* lowbit_output_buffer(const lowbit_model* model, int index);

/* Copies `count` floats into input `index`; a codes input is quantized (round half up, clamped). */
int lowbit_set_input_f32(lowbit_model* model, int index, const float* data, size_t count);
/* Copies output `index` as `count` floats; a codes output is dequantized. */
int lowbit_get_output_f32(const lowbit_model* model, int index, float* data, size_t count);

int lowbit_run(lowbit_model* model);

/* Workers for one run (>= 1). Scratch memory is planned for them at this call, not during runs;
 * input values already set are kept, but earlier lowbit_input_buffer/output_buffer pointers change. */
int lowbit_set_threads(lowbit_model* model, int threads);
/* Bytes of the activation arena (all intermediate tensors and scratch, planned at load). */
size_t lowbit_peak_activation_bytes(const lowbit_model* model);

/* Per-op timing: enable, run, then read one entry per op in execution order. */
int lowbit_set_profiling(lowbit_model* model, int enabled);
int lowbit_num_ops(const lowbit_model* model);
int lowbit_op_profile(const lowbit_model* model, int index, const char** op_type, const char** output_name,
                      double* milliseconds);

/* Graph introspection, straight from the loaded file: one entry per op in execution order (the
 * order of lowbit_op_profile; lowbit_num_ops entries). */
#define LOWBIT_MAX_OP_INPUTS 8

typedef struct {
  const char* type;      /* op type name, e.g. "QConv2D" (static) */
  int num_inputs;        /* inputs as stored, absent optional inputs included */
  /* Per input: its tensor (name NULL and rank 0 for an absent optional input) and whether it is a
   * constant of the file (weights, thresholds, scales, biases) rather than an activation. */
  lowbit_tensor_info inputs[LOWBIT_MAX_OP_INPUTS];
  int input_is_constant[LOWBIT_MAX_OP_INPUTS];
  lowbit_tensor_info output;
  uint64_t param_count;  /* elements of the constant inputs */
  uint64_t param_bytes;  /* bytes of the constant inputs as stored in the file */
  /* Multiply-accumulates of one run: Conv2D/QConv2D N*OH*OW*O*KH*KW*Cg, Dense/QDense N*O*K
   * (K = features per sample), Affine and Mul one per output element, AvgPool KH*KW per output
   * element, GlobalAvgPool one per input element; 0 for every other op (comparisons,
   * activations, Add, quantize/dequantize, layout ops). */
  uint64_t macs;
  uint64_t activation_bytes_read;     /* buffers of the non-constant inputs */
  uint64_t activation_bytes_written;  /* buffer of the output */
} lowbit_op_info;

int lowbit_model_op_info(const lowbit_model* model, int index, lowbit_op_info* info);
/* Bytes of all constant tensors as stored in the file (each counted once). */
uint64_t lowbit_model_constant_bytes(const lowbit_model* model);

#ifdef __cplusplus
}
#endif

#endif /* LOWBIT_LOWBIT_H_ */
