/* The example op resolver for converted RNNPool models (example_resolver.cc).
 *
 *   rnnpool_example::RnnPoolOpResolver resolver;
 *   if (rnnpool_example::RegisterRnnPoolModelOps(resolver) != kTfLiteOk) ...
 *   tflite::MicroInterpreter interpreter(model, resolver, arena, arena_size);
 */
#ifndef TFLM_KERNELS_TFLM_EXAMPLE_RESOLVER_H_
#define TFLM_KERNELS_TFLM_EXAMPLE_RESOLVER_H_

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace rnnpool_example {

// One slot per distinct operator that RegisterRnnPoolModelOps adds.
inline constexpr unsigned int kRnnPoolModelOpCount = 19;
using RnnPoolOpResolver = tflite::MicroMutableOpResolver<kRnnPoolModelOpCount>;

// Adds the RNNPool custom op and the builtins of the converted models of this
// repository; kTfLiteError if the resolver is full.
TfLiteStatus RegisterRnnPoolModelOps(RnnPoolOpResolver& resolver);

}  // namespace rnnpool_example

#endif  // TFLM_KERNELS_TFLM_EXAMPLE_RESOLVER_H_
