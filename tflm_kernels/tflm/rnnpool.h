/* TensorFlow Lite Micro glue of the RNNPool custom op.
 *
 * Contract (inputs, flexbuffer options, version): docs/rnnpool_custom_op.md.
 * Integer maths: docs/int8_rnnpool.md, implemented by the framework-free core
 * tflm_kernels/rnnpool_core.{h,cc} (+ rnnpool_tables.inc), which this file
 * only wraps:
 *   Init     keeps a pointer to the flexbuffer options (they live in the
 *            model, which outlives the interpreter).
 *   Prepare  decodes the options map (values keep their flexbuffer types)
 *            and describes the tensors for rnnpool::ValidateRnnPoolOp
 *            (tflm_kernels/rnnpool_validate.h), the validation the host tools
 *            run too: keys, value types and ranges, tensor count, types,
 *            constness, ranks, dims, quantization; it computes sigmoid(zeta),
 *            sigmoid(nu) (float) or every fixed-point multiplier (int8); for
 *            int8 it builds the core's plan (rnnpool::PrepareInt8Plan) from
 *            them and the constant weights, in a persistent buffer; then it
 *            requests the core's scratch buffer. Every failure prints one
 *            "RNNPool: ..." MicroPrintf line and returns kTfLiteError.
 *   Eval     fetches tensors and the scratch and calls RnnPoolFloat /
 *            RnnPoolInt8 (with the plan): no validation, no allocation, no
 *            per-Invoke setup, no float in the int8 branch.
 *
 * Use:
 *   tflite::MicroMutableOpResolver<N> resolver;
 *   resolver.AddCustom("RNNPool", tflite::Register_RNNPOOL());
 */
#ifndef TFLM_KERNELS_TFLM_RNNPOOL_H_
#define TFLM_KERNELS_TFLM_RNNPOOL_H_

#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/micro/micro_common.h"
#include "tflm_kernels/rnnpool_core.h"
#include "tflm_kernels/rnnpool_stem.h"
#include "tflm_kernels/rnnpool_validate.h"

namespace tflite {

// The custom_code the converter writes and the resolver is keyed by.
constexpr char kRnnPoolCustomName[] = "RNNPool";
// The options versions this kernel implements: the plain op, and the fused
// form that also computes the convolution feeding RNNPool.
constexpr int kRnnPoolOptionsVersion = rnnpool::kOptionsVersion;
constexpr int kRnnPoolFusedStemVersion = rnnpool::kFusedStemVersion;

struct OpDataRnnPool {
  // --- Init: the custom options, decoded in Prepare ---
  const char* options;
  size_t options_length;

  // --- Prepare results ---
  bool is_int8;
  rnnpool::RnnPoolShape shape;  // core enums (the contract's activation codes)
  // Float path: shape + sigmoid(zeta), sigmoid(nu); pointers set in Eval.
  rnnpool::RnnPoolFloatParams float_params;
  // int8 path: the core's plan (multipliers, tables, reordered weights, the
  // weights' addresses in the model), built once in Prepare in its own
  // persistent buffer (int8 ops only); Eval only runs it.
  rnnpool::RnnPoolInt8Plan* int8_plan;
  int scratch_index;
  // Fused form (version 2): the convolution's geometry, offsets and clamp
  // (filter / bias pointers set in Eval), and for int8 its per-channel
  // multipliers in two persistent arrays of k entries, as TFLM's CONV_2D keeps them.
  bool has_stem;
  rnnpool::StemInt8Params stem_int8;
  rnnpool::StemFloatParams stem_float;
};

// Returns the registration; add it with AddCustom(kRnnPoolCustomName, ...).
TFLMRegistration* Register_RNNPOOL();

}  // namespace tflite

#endif  // TFLM_KERNELS_TFLM_RNNPOOL_H_
