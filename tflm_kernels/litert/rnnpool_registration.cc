/* The RNNPool custom op for a TensorFlow Lite app (Android / Linux C++):
 *
 *   #include "tensorflow/lite/kernels/register.h"
 *   namespace tflite::ops::custom { TfLiteRegistration* Register_RNNPOOL(); }
 *   tflite::ops::builtin::BuiltinOpResolver resolver;
 *   resolver.AddCustom("RNNPool", tflite::ops::custom::Register_RNNPOOL());
 *
 * Build it with the app, against TFLite's own headers:
 *   -DRNNPOOL_USE_TFLITE_HEADERS, with this folder, tflm_kernels/ and TFLite's
 *   source root on the include path, and rnnpool_op.cc, flexbuffer_map.cc,
 *   ../rnnpool_core.cc, ../rnnpool_validate.cc as sources (README.md here).
 * The pip package does not build this file (it has no TFLite headers); the
 * same RnnPoolOp runs in its delegate, which the tests exercise.
 */
#include "rnnpool_op.h"

namespace rnnpool_litert {
namespace {

void* Init(TfLiteContext*, const char* buffer, size_t length) {
  return new RnnPoolOp(buffer, length);
}

void Free(TfLiteContext*, void* op) { delete static_cast<RnnPoolOp*>(op); }

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  return static_cast<RnnPoolOp*>(node->user_data)->Prepare(context, node->inputs, node->outputs);
}

TfLiteStatus Invoke(TfLiteContext* context, TfLiteNode* node) {
  return static_cast<RnnPoolOp*>(node->user_data)->Eval(context);
}

}  // namespace
}  // namespace rnnpool_litert

namespace tflite {
namespace ops {
namespace custom {

TfLiteRegistration* Register_RNNPOOL() {
  static TfLiteRegistration registration = [] {
    TfLiteRegistration r{};
    r.init = rnnpool_litert::Init;
    r.free = rnnpool_litert::Free;
    r.prepare = rnnpool_litert::Prepare;
    r.invoke = rnnpool_litert::Invoke;
    return r;
  }();
  return &registration;
}

}  // namespace custom
}  // namespace ops
}  // namespace tflite
