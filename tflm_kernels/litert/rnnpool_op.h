/* The RNNPool custom op for TensorFlow Lite / LiteRT interpreters (the host
 * runtimes; tflm_kernels/tflm/ is the microcontroller one). It reads the
 * contract of docs/rnnpool_custom_op.md (tensors, flexbuffer options, version
 * 1) and runs the framework-free core tflm_kernels/rnnpool_core.{h,cc}.
 *
 * Used two ways, with the same code:
 *   - rnnpool_delegate.cc: a delegate that claims the CUSTOM "RNNPool" nodes
 *     of any model, loaded at run time (Python `load_delegate`);
 *   - rnnpool_registration.cc: `Register_RNNPOOL()` for a TFLite app's
 *     `resolver.AddCustom("RNNPool", ...)`.
 *
 * Life cycle: construct from the custom options (decoded, not yet checked),
 * Prepare (describes the tensors to rnnpool::ValidateRnnPoolOp, the one
 * validator TFLM's Prepare and the host tools use: every check and the int8
 * multipliers come from there; builds the int8 plan, resizes the output;
 * reports "RNNPool: ..." and returns kTfLiteError on bad input), Eval (no
 * validation; int8 uses no float).
 * Eval splits the patches over the interpreter's threads; the result does not
 * depend on the thread count (each patch is computed by the same core call).
 */
#ifndef TFLM_KERNELS_LITERT_RNNPOOL_OP_H_
#define TFLM_KERNELS_LITERT_RNNPOOL_OP_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "rnnpool_core.h"
#include "rnnpool_validate.h"
#include "tflite_abi.h"

namespace rnnpool_litert {

// The custom_code the converter writes.
constexpr char kRnnPoolCustomName[] = "RNNPool";

// The least work (multiply-adds of the patch's matrix products) worth a
// thread of its own in one invoke; the delegate option min_madds_per_thread
// overrides it.
constexpr int64_t kMinMaddsPerThread = 2000000;

class RnnPoolOp {
 public:
  // `options`: the node's custom_initial_data (a flexbuffer map).
  RnnPoolOp(const void* options, size_t length,
            int64_t min_madds_per_thread = kMinMaddsPerThread);

  // Validates the node (9 inputs, or 11 for the fused form; 1 output: tensor indices into
  // context->tensors) and sets up Eval. Resizes the output to
  // [B, H', W', 4*h2] if the input batch or size changed.
  TfLiteStatus Prepare(TfLiteContext* context, const TfLiteIntArray* inputs,
                       const TfLiteIntArray* outputs);

  // Runs the op on context->recommended_num_threads threads (as of Prepare;
  // -1 means one). `input_data` / `output_data` replace the tensors' own data
  // when not null (a delegate's buffer for a tensor the interpreter does not
  // allocate). No validation; allocates nothing on one thread (on more it
  // starts the extra threads per call: ~tens of us against ms of patches).
  TfLiteStatus Eval(TfLiteContext* context, const void* input_data = nullptr,
                    void* output_data = nullptr);

  int input_tensor() const { return tensor_index_[0]; }
  int output_tensor() const { return tensor_index_[rnnpool::kFusedStemOpInputs]; }
  // Bytes of the output of the last Prepare.
  size_t output_bytes() const;

 private:
  TfLiteStatus Fail(TfLiteContext* context, const char* message) const;
  // The fused convolution (version 2): its parameters and multipliers.
  void PrepareStem(const TfLiteContext* context, const rnnpool::TensorDesc& filter);
  // Eval of the fused form over threads_ threads (ranges of patch rows).
  void RunStemRows(const void* input, void* output);
  // run(begin, end, scratch) on `threads` threads (the calling one included),
  // [0, total) split evenly; thread w uses scratch_[w].
  template <typename Fn>
  void SplitOverThreads(int64_t total, int threads, const Fn& run);
  template <typename T>
  void RunPatches(const T* input, T* output,
                  void (*patch)(const void*, const T*, int32_t, int32_t, int32_t,
                                int32_t, T*, void*),
                  const void* params);

  // Options (constructor): typed values whose keys point into the model.
  rnnpool::OptionValue option_values_[rnnpool::kMaxOptionKeys];
  rnnpool::OpOptions options_{};

  // Prepare.
  int tensor_index_[rnnpool::kFusedStemOpInputs + 1] = {};
  bool validated_once_ = false;
  rnnpool::ValidatedOp op_{};  // float_params with its weights bound
  rnnpool::RnnPoolInt8Plan int8_plan_{};  // int8: built from op_.int8_params
  rnnpool::StemInt8Params stem_int8_{};    // version 2, int8
  rnnpool::StemFloatParams stem_float_{};  // version 2, float
  std::vector<int32_t> stem_multiplier_, stem_shift_;
  int threads_ = 1;
  int64_t min_madds_per_thread_;
  struct alignas(16) Block {
    unsigned char bytes[16];
  };
  std::vector<std::vector<Block>> scratch_;  // one per thread
  std::vector<Block> stem_simd_;  // the stem's prepared AVX2 form (PrepareStemInt8Simd)
};

}  // namespace rnnpool_litert

#endif  // TFLM_KERNELS_LITERT_RNNPOOL_OP_H_
