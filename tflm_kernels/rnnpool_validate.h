/* Decoding and validation of one RNNPool custom op (docs/rnnpool_custom_op.md).
 *
 * The single implementation of the op contract: TFLM's Prepare
 * (tflm_kernels/tflm/rnnpool.cc) and the host tools (run_tflite,
 * memory_report, `rnnpool report`, through tflm_kernels._rnnpool_core)
 * call ValidateRnnPoolOp, so they accept exactly the same files and compute
 * with exactly the same parameters (sigmoid(zeta) / sigmoid(nu) for float;
 * every multiplier of docs/int8_rnnpool.md section 3 for int8).
 *
 * Framework-free like rnnpool_core.h: no TFLM / flatbuffers include, no heap,
 * no exceptions, no stdio. The caller describes the op: its options as a list
 * of typed values (the flexbuffer map decoded WITHOUT conversion: an int stays
 * an int, a bool a bool) and its tensors (type, dims, constness,
 * quantization). Nothing is coerced: 0.5 for an int key, a bool for an int
 * key or an int for a float key are errors.
 */
#ifndef TFLM_KERNELS_RNNPOOL_VALIDATE_H_
#define TFLM_KERNELS_RNNPOOL_VALIDATE_H_

#include <cstddef>
#include <cstdint>

#include "rnnpool_core.h"
#include "rnnpool_stem.h"

namespace rnnpool {

// The options versions this code implements: 1, the plain op; 2, the fused
// form whose op also computes the convolution that feeds RNNPool (two more
// inputs, six more keys; docs/rnnpool_custom_op.md).
constexpr int32_t kOptionsVersion = 1;
constexpr int32_t kFusedStemVersion = 2;
// Inputs and outputs of the op (contract order).
constexpr int32_t kOpInputs = 9;
constexpr int32_t kFusedStemOpInputs = 11;
constexpr int32_t kOpOutputs = 1;
// The contract defines 26 keys; a map with more is rejected before its keys
// are read (so a caller may decode at most this many entries).
constexpr int32_t kMaxOptionKeys = 26;
// Limits of the fused convolution: taps per output (kh * kw * in) keep its
// int32 accumulator exact ((255 * 128) * 16384 < 2^31 before the bias).
constexpr int32_t kMaxStemTaps = 16384;
constexpr int32_t kMaxStemKernel = 64;
// Room for a message naming the key or tensor and what was expected.
constexpr size_t kMessageBytes = 192;

// The flexbuffer type of one option value, as stored (no conversion).
enum class OptionType : int32_t {
  kInt = 0,     // signed integer (any width)
  kUInt = 1,    // unsigned integer (any width)
  kFloat = 2,   // float32 or float64
  kBool = 3,
  kString = 4,  // string or key
  kOther = 5,   // null, vector, map, blob, ...
};

struct OptionValue {
  const char* key;   // NUL-terminated; must outlive the call
  OptionType type;
  int64_t int_value;     // kInt
  uint64_t uint_value;   // kUInt
  double float_value;    // kFloat
};

// What the caller found in custom_options.
enum class OptionsStatus : int32_t {
  kOk = 0,
  kMissing = 1,    // null or empty custom_options
  kMalformed = 2,  // not a verifiable flexbuffer, or its root is not a map
};

struct OpOptions {
  OptionsStatus status;
  const OptionValue* values;  // `count` entries (at most kMaxOptionKeys are read)
  int32_t count;              // number of keys in the map
};

// Element types the contract uses; anything else is kOther (named in messages).
enum class TensorType : int32_t { kFloat32 = 0, kInt8 = 1, kInt32 = 2, kOther = 3 };

// TfLiteType's codes of those types (the .tflite schema's TensorType numbers,
// which TFLite and TFLM keep stable): the glue of both runtimes maps a
// tensor's type with TensorTypeOfTfLiteType and static_asserts the codes.
constexpr int32_t kTfLiteFloat32Code = 1;
constexpr int32_t kTfLiteInt32Code = 2;
constexpr int32_t kTfLiteInt8Code = 9;

inline TensorType TensorTypeOfTfLiteType(int32_t code) {
  switch (code) {
    case kTfLiteFloat32Code: return TensorType::kFloat32;
    case kTfLiteInt8Code: return TensorType::kInt8;
    case kTfLiteInt32Code: return TensorType::kInt32;
    default: return TensorType::kOther;
  }
}

enum class Quantization : int32_t {
  kNone = 0,       // no affine quantization
  kPerTensor = 1,  // one scale (and at most one zero point)
  kPerChannel = 2, // several scales or zero points
};

struct TensorDesc {
  bool present;            // false: optional input (-1) or missing
  TensorType type;
  const char* type_name;   // e.g. "uint8", for messages; may be null
  int32_t rank;
  const int* dims;         // `rank` entries; int as TfLiteIntArray's (int32_t is long on arm-none-eabi)
  bool is_constant;        // data in the model (weights)
  Quantization quantization;
  float scale;             // kPerTensor
  int32_t zero_point;      // kPerTensor (0 if the file gives none)
  // kPerChannel: the scales along `quantized_dimension` (null otherwise) and
  // whether every zero point is 0. Only the fused convolution's filter may be
  // quantized per channel.
  const float* channel_scales;
  int32_t num_channel_scales;
  int32_t quantized_dimension;
  bool channel_zero_points_zero;
};

// A per-channel description's scales, quantized dimension and zero-point
// check from a runtime's TfLiteAffineQuantization (TFLM's, or the LiteRT
// glue's copy of the ABI: both hold `scale` and `zero_point` arrays of
// {size, data[]} and `quantized_dimension`). The scales stay the runtime's.
template <typename Affine>
void DescribeChannels(const Affine& affine, TensorDesc* d) {
  if (affine.scale != nullptr) {
    d->channel_scales = affine.scale->data;
    d->num_channel_scales = affine.scale->size;
  }
  d->quantized_dimension = affine.quantized_dimension;
  d->channel_zero_points_zero = true;
  for (int i = 0; affine.zero_point != nullptr && i < affine.zero_point->size; ++i) {
    if (affine.zero_point->data[i] != 0) d->channel_zero_points_zero = false;
  }
}

// The fused convolution of a version-2 op, as Prepare derives it (the
// per-channel multipliers are not here: StemMultipliers fills them).
struct ValidatedStem {
  StemShape shape;
  int32_t padding;             // contract code: 0 valid, 1 same
  int32_t activation;          // TFLite ActivationFunctionType: 0 none, 1 relu, 2 relu_n1_to_1, 3 relu6
  int32_t input_offset;        // int8: -zp of the image
  int32_t output_offset;       // int8: stem_output_zero_point
  int32_t activation_min_int8, activation_max_int8;
  float activation_min, activation_max;  // float model
  double input_scale;          // int8: the image's scale
  double output_scale;         // int8: stem_output_scale (a float32 value)
};

// What Prepare keeps: the validated op with every derived constant. The
// weight / bias pointers in float_params / int8_params are null (bound at
// Eval); int8 tables point at BuiltinTable.
struct ValidatedOp {
  bool is_int8;
  bool has_stem;       // version 2: `stem` holds the fused convolution
  ValidatedStem stem;
  RnnPoolShape shape;
  int32_t batch, height, width;  // RNNPool's input dims (the stem's output if has_stem)
  int32_t out_height, out_width;
  RnnPoolFloatParams float_params;
  RnnPoolInt8Params int8_params;
  size_t scratch_bytes;  // RnnPool{Float,Int8}ScratchBytes(shape), or StemRnnPool* for the fused form
};

// Validates the op. On success fills `out` and returns true; otherwise writes
// a NUL-terminated English message (naming the key / tensor and what was
// expected; "RNNPool: " is not included) into `message` and returns false.
// inputs / outputs: num_inputs / num_outputs descriptions in contract order.
bool ValidateRnnPoolOp(const OpOptions& options, const TensorDesc* inputs,
                       int32_t num_inputs, const TensorDesc* outputs,
                       int32_t num_outputs, ValidatedOp* out, char* message,
                       size_t message_bytes);

// The fused convolution's per-channel multipliers M_c = s_x * s_w[c] / s_stem
// (q, shift into `q[c]`, `shift[c]`, c < op.shape.in_channels) of a validated
// int8 version-2 op; `filter` is its input 9 (as given to the validator).
void StemMultipliers(const ValidatedOp& op, const TensorDesc& filter, int32_t* q,
                     int32_t* shift);

// Contract activation code (0 sigmoid, 1 tanh, 2 relu, 3 quantSigm,
// 4 quantTanh) -> core enum; false for an unknown code.
bool ActivationFromContract(int32_t code, Activation* out);

}  // namespace rnnpool

#endif  // TFLM_KERNELS_RNNPOOL_VALIDATE_H_
