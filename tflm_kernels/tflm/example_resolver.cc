/* Example: registering the RNNPool custom op with a TFLM op resolver.
 *
 * A converted model holds one CUSTOM operator per RNNPool2D layer with
 * custom_code "RNNPool" (docs/rnnpool_custom_op.md), next to ordinary
 * builtins. Size the resolver for every distinct op of your model, add the
 * custom op by that exact name, then add the builtins the model uses (the
 * ones below are those of a typical RNNPool image model; a channels_first
 * layer adds TRANSPOSE around the op, an int8 model adds QUANTIZE /
 * DEQUANTIZE at its ends). Missing ops make AllocateTensors fail with
 * "Didn't find op for builtin opcode ..." / "Didn't find custom op ...".
 *
 * Use (there is no header; declare the two names where you need them):
 *   namespace rnnpool_example {
 *   using RnnPoolOpResolver = tflite::MicroMutableOpResolver<10>;
 *   TfLiteStatus RegisterRnnPoolModelOps(RnnPoolOpResolver& resolver);
 *   }
 *   ...
 *   rnnpool_example::RnnPoolOpResolver resolver;
 *   if (rnnpool_example::RegisterRnnPoolModelOps(resolver) != kTfLiteOk) ...
 *   tflite::MicroInterpreter interpreter(model, resolver, arena, arena_size);
 *
 * rnnpool_interp_demo.cc does exactly this, and tests/test_tflm_kernel.py
 * builds and runs it, so this file stays in step with the resolver API.
 */
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tflm_kernels/tflm/rnnpool.h"

namespace rnnpool_example {

// One slot per distinct operator: RNNPool + 9 builtins.
using RnnPoolOpResolver = tflite::MicroMutableOpResolver<10>;

TfLiteStatus RegisterRnnPoolModelOps(RnnPoolOpResolver& resolver) {
  // The custom op: the name must equal the model's custom_code.
  TF_LITE_ENSURE_STATUS(resolver.AddCustom(tflite::kRnnPoolCustomName,  // "RNNPool"
                                           tflite::Register_RNNPOOL()));
  // Builtins of a typical RNNPool network (drop the ones your model lacks).
  TF_LITE_ENSURE_STATUS(resolver.AddConv2D());
  TF_LITE_ENSURE_STATUS(resolver.AddDepthwiseConv2D());
  TF_LITE_ENSURE_STATUS(resolver.AddAveragePool2D());
  TF_LITE_ENSURE_STATUS(resolver.AddMean());
  TF_LITE_ENSURE_STATUS(resolver.AddFullyConnected());
  TF_LITE_ENSURE_STATUS(resolver.AddReshape());
  TF_LITE_ENSURE_STATUS(resolver.AddSoftmax());
  TF_LITE_ENSURE_STATUS(resolver.AddQuantize());
  TF_LITE_ENSURE_STATUS(resolver.AddDequantize());
  return kTfLiteOk;
}

}  // namespace rnnpool_example
