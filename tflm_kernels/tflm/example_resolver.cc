/* Example: registering the RNNPool custom op with a TFLM op resolver.
 *
 * A model from `converters.convert` holds one CUSTOM operator per RNNPool2D
 * layer with custom_code "RNNPool" (docs/rnnpool_custom_op.md), next to
 * ordinary builtins. Size the resolver for every distinct op of your model,
 * add the custom op by that exact name, then add the builtins the model uses.
 * The builtins below are those of the converted models of this repository,
 * float and int8 (rnnpool_keras.app.demo.tiny_rnnpool_cnn, the VWW and face
 * models of rnnpool_keras.app.zoo, channels_first layers, the Keras
 * Applications backbones of rnnpool_keras.app.stem_backbone); drop the ones your
 * model lacks, add the ones it has (rnnpool_run_model prints a model's
 * operator codes). Missing ops make AllocateTensors fail with "Didn't find op
 * for builtin opcode ..." / "Didn't find custom op ...".
 *
 * rnnpool_run_model.cc and rnnpool_interp_demo.cc use it, and
 * tests/test_tflm_kernel.py builds and runs both, so this file stays in step
 * with the resolver API and with what the converter emits.
 */
#include "tflm_kernels/tflm/example_resolver.h"

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tflm_kernels/tflm/rnnpool.h"

namespace rnnpool_example {

TfLiteStatus RegisterRnnPoolModelOps(RnnPoolOpResolver& resolver) {
  // The custom op: the name must equal the model's custom_code.
  TF_LITE_ENSURE_STATUS(resolver.AddCustom(tflite::kRnnPoolCustomName,  // "RNNPool"
                                           tflite::Register_RNNPOOL()));
  // Convolutions and the classifier (BatchNorm and ReLU6 are fused into them).
  TF_LITE_ENSURE_STATUS(resolver.AddConv2D());
  TF_LITE_ENSURE_STATUS(resolver.AddDepthwiseConv2D());
  TF_LITE_ENSURE_STATUS(resolver.AddFullyConnected());
  // MobileNetV2 blocks: residual ADD; PAD before strided convolutions.
  TF_LITE_ENSURE_STATUS(resolver.AddAdd());
  TF_LITE_ENSURE_STATUS(resolver.AddPad());
  // Edge replication after RNNPool (Cropping2D + Concatenate) and the face
  // model's concatenated heads.
  TF_LITE_ENSURE_STATUS(resolver.AddStridedSlice());
  TF_LITE_ENSURE_STATUS(resolver.AddConcatenation());
  // Flatten / Reshape. Reshape((-1, C)) with an unknown batch size computes its
  // shape at run time (SHAPE, STRIDED_SLICE, PACK): the face model's heads.
  TF_LITE_ENSURE_STATUS(resolver.AddReshape());
  TF_LITE_ENSURE_STATUS(resolver.AddShape());
  TF_LITE_ENSURE_STATUS(resolver.AddPack());
  // GlobalAveragePooling2D.
  TF_LITE_ENSURE_STATUS(resolver.AddMean());
  // A channels_first RNNPool2D: NCHW <-> NHWC around the op.
  TF_LITE_ENSURE_STATUS(resolver.AddTranspose());
  // int8: requantisation between tensors of different scales (Concatenate).
  TF_LITE_ENSURE_STATUS(resolver.AddQuantize());
  // Keras Applications backbones behind an RNNPool stem
  // (rnnpool_keras.app.stem_backbone): squeeze-excite and Rescaling /
  // Normalization (MUL, SUB), EfficientNet's swish and sigmoid gates
  // (LOGISTIC, MUL), MobileNetV3's hard-swish (ReLU6 of x + 3, MUL).
  TF_LITE_ENSURE_STATUS(resolver.AddMul());
  TF_LITE_ENSURE_STATUS(resolver.AddSub());
  TF_LITE_ENSURE_STATUS(resolver.AddLogistic());
  TF_LITE_ENSURE_STATUS(resolver.AddRelu6());
  return kTfLiteOk;
}

}  // namespace rnnpool_example
