/* TFLM kernel of the RNNPool custom op: see rnnpool.h and
 * docs/rnnpool_custom_op.md. The maths is rnnpool_core.{h,cc}. */
#include "tflm_kernels/tflm/rnnpool.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "flatbuffers/flexbuffers.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/kernels/internal/compatibility.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tflm_kernels/rnnpool_core.h"

namespace tflite {
namespace {

// Tensor order of the contract.
constexpr int kInputTensor = 0;
constexpr int kRnn1KernelTensor = 1;
constexpr int kRnn1RecurrentTensor = 2;
constexpr int kRnn1GateBiasTensor = 3;
constexpr int kRnn1UpdateBiasTensor = 4;
constexpr int kRnn2KernelTensor = 5;
constexpr int kRnn2RecurrentTensor = 6;
constexpr int kRnn2GateBiasTensor = 7;
constexpr int kRnn2UpdateBiasTensor = 8;
constexpr int kNumInputs = 9;
constexpr int kOutputTensor = 0;

// For helpers without a TfLiteContext (they print their own message).
#define RNNPOOL_RETURN_IF_ERROR(expr)          \
  do {                                         \
    if ((expr) != kTfLiteOk) return kTfLiteError; \
  } while (0)

enum class KeyType { kInt, kFloat };

struct KeyInfo {
  const char* name;
  KeyType type;
};

// Indexed by RnnPoolOptionKey.
constexpr KeyInfo kKeys[kRnnPoolNumKeys] = {
    {"version", KeyType::kInt},
    {"pool_h", KeyType::kInt},
    {"pool_w", KeyType::kInt},
    {"stride_h", KeyType::kInt},
    {"stride_w", KeyType::kInt},
    {"padding", KeyType::kInt},
    {"gate_activation", KeyType::kInt},
    {"update_activation", KeyType::kInt},
    {"rnn1_zeta", KeyType::kFloat},
    {"rnn1_nu", KeyType::kFloat},
    {"rnn2_zeta", KeyType::kFloat},
    {"rnn2_nu", KeyType::kFloat},
    {"rnn1_zeta_q14", KeyType::kInt},
    {"rnn1_nu_q14", KeyType::kInt},
    {"rnn2_zeta_q14", KeyType::kInt},
    {"rnn2_nu_q14", KeyType::kInt},
    {"rnn1_preactivation_scale", KeyType::kFloat},
    {"rnn1_state_scale", KeyType::kFloat},
    {"rnn2_preactivation_scale", KeyType::kFloat},
    {"rnn2_state_scale", KeyType::kFloat},
};

constexpr uint32_t Bit(int key) { return uint32_t{1} << key; }
constexpr uint32_t kCommonKeys =
    Bit(kRnnPoolKeyVersion) | Bit(kRnnPoolKeyPoolH) | Bit(kRnnPoolKeyPoolW) |
    Bit(kRnnPoolKeyStrideH) | Bit(kRnnPoolKeyStrideW) |
    Bit(kRnnPoolKeyPadding) | Bit(kRnnPoolKeyGateActivation) |
    Bit(kRnnPoolKeyUpdateActivation);
constexpr uint32_t kFloatKeys =
    Bit(kRnnPoolKeyRnn1Zeta) | Bit(kRnnPoolKeyRnn1Nu) |
    Bit(kRnnPoolKeyRnn2Zeta) | Bit(kRnnPoolKeyRnn2Nu);
constexpr uint32_t kInt8Keys =
    Bit(kRnnPoolKeyRnn1ZetaQ14) | Bit(kRnnPoolKeyRnn1NuQ14) |
    Bit(kRnnPoolKeyRnn2ZetaQ14) | Bit(kRnnPoolKeyRnn2NuQ14) |
    Bit(kRnnPoolKeyRnn1PreactivationScale) | Bit(kRnnPoolKeyRnn1StateScale) |
    Bit(kRnnPoolKeyRnn2PreactivationScale) | Bit(kRnnPoolKeyRnn2StateScale);

void SetError(OpDataRnnPool* data, RnnPoolOptionsError error,
              const char* key) {
  if (data->options_error != RnnPoolOptionsError::kNone) return;  // keep first
  data->options_error = error;
  data->error_key[0] = '\0';
  if (key != nullptr) {
    std::strncpy(data->error_key, key, sizeof(data->error_key) - 1);
    data->error_key[sizeof(data->error_key) - 1] = '\0';
  }
}

int FindKey(const char* name) {
  for (int i = 0; i < kRnnPoolNumKeys; ++i) {
    if (std::strcmp(name, kKeys[i].name) == 0) return i;
  }
  return -1;
}

void ParseOptions(OpDataRnnPool* data, const char* buffer, size_t length) {
  if (buffer == nullptr || length == 0) {
    SetError(data, RnnPoolOptionsError::kNoOptions, nullptr);
    return;
  }
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(buffer);
  if (!flexbuffers::VerifyBuffer(bytes, length)) {
    SetError(data, RnnPoolOptionsError::kMalformed, nullptr);
    return;
  }
  const flexbuffers::Reference root = flexbuffers::GetRoot(bytes, length);
  if (!root.IsMap()) {
    SetError(data, RnnPoolOptionsError::kMalformed, nullptr);
    return;
  }
  const flexbuffers::Map map = root.AsMap();
  const flexbuffers::TypedVector keys = map.Keys();
  const flexbuffers::Vector values = map.Values();
  for (size_t i = 0; i < keys.size(); ++i) {
    const char* name = keys[i].AsKey();
    const int key = FindKey(name);
    if (key < 0) {
      SetError(data, RnnPoolOptionsError::kUnknownKey, name);
      continue;
    }
    if (data->present & Bit(key)) {
      SetError(data, RnnPoolOptionsError::kDuplicateKey, name);
      continue;
    }
    const flexbuffers::Reference value = values[i];
    if (kKeys[key].type == KeyType::kInt) {
      if (!value.IsIntOrUint()) {
        SetError(data, RnnPoolOptionsError::kWrongValueType, name);
        continue;
      }
      if (value.IsUInt() && value.AsUInt64() > uint64_t{INT32_MAX}) {
        SetError(data, RnnPoolOptionsError::kIntOutOfRange, name);
        continue;
      }
      const int64_t v = value.AsInt64();
      if (v < INT32_MIN || v > INT32_MAX) {
        SetError(data, RnnPoolOptionsError::kIntOutOfRange, name);
        continue;
      }
      data->int_options[key] = static_cast<int32_t>(v);
    } else {
      // A float option may be written as a float (32 or 64 bit) or an int.
      if (!value.IsNumeric()) {
        SetError(data, RnnPoolOptionsError::kWrongValueType, name);
        continue;
      }
      data->float_options[key] = value.AsDouble();
    }
    data->present |= Bit(key);
  }
  if ((data->present & Bit(kRnnPoolKeyVersion)) &&
      data->int_options[kRnnPoolKeyVersion] != kRnnPoolOptionsVersion) {
    data->error_value = data->int_options[kRnnPoolKeyVersion];
    SetError(data, RnnPoolOptionsError::kUnsupportedVersion, "version");
  }
}

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  TFLITE_DCHECK(context->AllocatePersistentBuffer != nullptr);
  void* raw = context->AllocatePersistentBuffer(context, sizeof(OpDataRnnPool));
  if (raw == nullptr) return nullptr;
  OpDataRnnPool* data = static_cast<OpDataRnnPool*>(raw);
  std::memset(data, 0, sizeof(*data));
  data->options_error = RnnPoolOptionsError::kNone;
  data->scratch_index = -1;
  ParseOptions(data, buffer, length);
  return data;
}

TfLiteStatus ReportOptionsError(const OpDataRnnPool& data) {
  switch (data.options_error) {
    case RnnPoolOptionsError::kNone:
      return kTfLiteOk;
    case RnnPoolOptionsError::kNoOptions:
      MicroPrintf("RNNPool: no custom options (a flexbuffer map is required)");
      break;
    case RnnPoolOptionsError::kMalformed:
      MicroPrintf("RNNPool: custom options are not a valid flexbuffer map");
      break;
    case RnnPoolOptionsError::kUnknownKey:
      MicroPrintf("RNNPool: unknown option key '%s'", data.error_key);
      break;
    case RnnPoolOptionsError::kDuplicateKey:
      MicroPrintf("RNNPool: option key '%s' given twice", data.error_key);
      break;
    case RnnPoolOptionsError::kWrongValueType:
      MicroPrintf("RNNPool: option '%s' has the wrong value type", data.error_key);
      break;
    case RnnPoolOptionsError::kIntOutOfRange:
      MicroPrintf("RNNPool: option '%s' is outside int32", data.error_key);
      break;
    case RnnPoolOptionsError::kUnsupportedVersion:
      MicroPrintf("RNNPool: options version %d not supported (this kernel: %d)",
                  static_cast<int>(data.error_value), kRnnPoolOptionsVersion);
      break;
  }
  return kTfLiteError;
}

// Checks that every key of `required` is present and none of `forbidden`.
TfLiteStatus CheckKeys(const OpDataRnnPool& data, uint32_t required,
                       uint32_t forbidden, const char* model) {
  for (int i = 0; i < kRnnPoolNumKeys; ++i) {
    if ((required & Bit(i)) && !(data.present & Bit(i))) {
      MicroPrintf("RNNPool: missing option '%s' (required for %s model)",
                  kKeys[i].name, model);
      return kTfLiteError;
    }
    if ((forbidden & Bit(i)) && (data.present & Bit(i))) {
      MicroPrintf("RNNPool: option '%s' is not defined for %s model",
                  kKeys[i].name, model);
      return kTfLiteError;
    }
  }
  return kTfLiteOk;
}

// The core's enum is the contract's numbering (docs/rnnpool_custom_op.md).
static_assert(static_cast<int>(rnnpool::Activation::kSigmoid) == 0 &&
                  static_cast<int>(rnnpool::Activation::kTanh) == 1 &&
                  static_cast<int>(rnnpool::Activation::kRelu) == 2 &&
                  static_cast<int>(rnnpool::Activation::kQuantSigm) == 3 &&
                  static_cast<int>(rnnpool::Activation::kQuantTanh) == 4,
              "rnnpool::Activation must use the contract's activation codes");

// A contract activation code as the core enum; false for an unknown code.
bool ContractActivation(int32_t code, rnnpool::Activation* out) {
  if (code < 0 || code > static_cast<int32_t>(rnnpool::Activation::kQuantTanh)) return false;
  *out = static_cast<rnnpool::Activation>(code);
  return true;
}

// The ten temp tensors of Prepare, deallocated on every return path.
class TempTensors {
 public:
  explicit TempTensors(MicroContext* micro_context)
      : micro_context_(micro_context) {
    for (TfLiteTensor*& t : tensors_) t = nullptr;
  }
  ~TempTensors() {
    for (TfLiteTensor* t : tensors_) {
      if (t != nullptr) micro_context_->DeallocateTempTfLiteTensor(t);
    }
  }
  TempTensors(const TempTensors&) = delete;
  TempTensors& operator=(const TempTensors&) = delete;

  // Index 0..8 inputs, 9 the output.
  TfLiteStatus Allocate(TfLiteNode* node) {
    for (int i = 0; i < kNumInputs; ++i) {
      tensors_[i] = micro_context_->AllocateTempInputTensor(node, i);
      if (tensors_[i] == nullptr) {
        MicroPrintf("RNNPool: input %d is missing", i);
        return kTfLiteError;
      }
    }
    tensors_[kNumInputs] =
        micro_context_->AllocateTempOutputTensor(node, kOutputTensor);
    if (tensors_[kNumInputs] == nullptr) {
      MicroPrintf("RNNPool: output is missing");
      return kTfLiteError;
    }
    return kTfLiteOk;
  }
  const TfLiteTensor* input(int i) const { return tensors_[i]; }
  const TfLiteTensor* output() const { return tensors_[kNumInputs]; }

 private:
  MicroContext* micro_context_;
  TfLiteTensor* tensors_[kNumInputs + 1];
};

const char* const kInputNames[kNumInputs] = {
    "input",           "rnn1_kernel",         "rnn1_recurrent_kernel",
    "rnn1_gate_bias",  "rnn1_update_bias",    "rnn2_kernel",
    "rnn2_recurrent_kernel", "rnn2_gate_bias", "rnn2_update_bias"};

TfLiteStatus CheckType(const TfLiteTensor* t, TfLiteType expected,
                       const char* name) {
  if (t->type != expected) {
    MicroPrintf("RNNPool: %s has type %s, expected %s", name,
                TfLiteTypeGetName(t->type), TfLiteTypeGetName(expected));
    return kTfLiteError;
  }
  return kTfLiteOk;
}

// Checks rank and every dim; expected[i] < 0 means "any positive".
TfLiteStatus CheckDims(const TfLiteTensor* t, const char* name, int rank,
                       const int32_t* expected) {
  if (t->dims == nullptr || t->dims->size != rank) {
    MicroPrintf("RNNPool: %s must have rank %d, got %d", name, rank,
                t->dims == nullptr ? -1 : t->dims->size);
    return kTfLiteError;
  }
  for (int i = 0; i < rank; ++i) {
    const int d = t->dims->data[i];
    if ((expected[i] >= 0 && d != expected[i]) || (expected[i] < 0 && d < 1)) {
      if (expected[i] >= 0) {
        MicroPrintf("RNNPool: %s dim %d is %d, expected %d", name, i, d,
                    static_cast<int>(expected[i]));
      } else {
        MicroPrintf("RNNPool: %s dim %d is %d, expected >= 1", name, i, d);
      }
      return kTfLiteError;
    }
  }
  return kTfLiteOk;
}

// Per-tensor affine quantization: scale > 0 and finite, returns zero point.
TfLiteStatus PerTensorQuantization(const TfLiteTensor* t, const char* name,
                                   float* scale, int32_t* zero_point) {
  if (t->quantization.type != kTfLiteAffineQuantization) {
    MicroPrintf("RNNPool: %s must be affine quantized", name);
    return kTfLiteError;
  }
  const auto* affine =
      static_cast<const TfLiteAffineQuantization*>(t->quantization.params);
  if (affine != nullptr) {
    if (affine->scale == nullptr || affine->scale->size != 1 ||
        (affine->zero_point != nullptr && affine->zero_point->size != 1)) {
      MicroPrintf("RNNPool: %s must be per-tensor quantized", name);
      return kTfLiteError;
    }
    *scale = affine->scale->data[0];
    *zero_point = affine->zero_point != nullptr ? affine->zero_point->data[0] : 0;
  } else {
    *scale = t->params.scale;
    *zero_point = t->params.zero_point;
  }
  if (!(*scale > 0.0f) || !std::isfinite(*scale)) {
    MicroPrintf("RNNPool: %s scale must be positive and finite", name);
    return kTfLiteError;
  }
  return kTfLiteOk;
}

TfLiteStatus CheckStatus(rnnpool::Status status) {
  if (status != rnnpool::Status::kOk) {
    MicroPrintf("RNNPool: %s", rnnpool::StatusMessage(status));
    return kTfLiteError;
  }
  return kTfLiteOk;
}

float Sigmoid(double raw) {
  return static_cast<float>(1.0 / (1.0 + std::exp(-raw)));
}

TfLiteStatus PrepareFloat(OpDataRnnPool* data) {
  rnnpool::RnnPoolFloatParams& p = data->float_params;
  p = rnnpool::RnnPoolFloatParams();
  p.shape = data->shape;
  const double* f = data->float_options;
  p.rnn1.zeta_sigmoid = Sigmoid(f[kRnnPoolKeyRnn1Zeta]);
  p.rnn1.nu_sigmoid = Sigmoid(f[kRnnPoolKeyRnn1Nu]);
  p.rnn2.zeta_sigmoid = Sigmoid(f[kRnnPoolKeyRnn2Zeta]);
  p.rnn2.nu_sigmoid = Sigmoid(f[kRnnPoolKeyRnn2Nu]);
  // The weight pointers are set in Eval; validate the rest with stand-ins.
  static const float kStandIn = 0.0f;
  rnnpool::RnnPoolFloatParams check = p;
  for (rnnpool::FloatCell* cell : {&check.rnn1, &check.rnn2}) {
    cell->kernel = cell->recurrent_kernel = &kStandIn;
    cell->gate_bias = cell->update_bias = &kStandIn;
  }
  return CheckStatus(rnnpool::ValidateFloatParams(check));
}

TfLiteStatus PrepareInt8(OpDataRnnPool* data, const TempTensors& t) {
  rnnpool::RnnPoolInt8Params& p = data->int8_params;
  p = rnnpool::RnnPoolInt8Params();
  p.shape = data->shape;
  float scales[kNumInputs] = {};
  int32_t zero_points[kNumInputs] = {};
  for (int i = 0; i < kNumInputs; ++i) {
    RNNPOOL_RETURN_IF_ERROR(PerTensorQuantization(
        t.input(i), kInputNames[i], &scales[i], &zero_points[i]));
    if (i != kInputTensor && zero_points[i] != 0) {
      MicroPrintf("RNNPool: %s zero point must be 0, got %d", kInputNames[i],
                  static_cast<int>(zero_points[i]));
      return kTfLiteError;
    }
  }
  float output_scale = 0.0f;
  int32_t output_zero_point = 0;
  RNNPOOL_RETURN_IF_ERROR(PerTensorQuantization(t.output(), "output",
                                                &output_scale, &output_zero_point));
  const double* f = data->float_options;
  const double pre[2] = {f[kRnnPoolKeyRnn1PreactivationScale],
                         f[kRnnPoolKeyRnn2PreactivationScale]};
  const double state[2] = {f[kRnnPoolKeyRnn1StateScale],
                           f[kRnnPoolKeyRnn2StateScale]};
  for (int c = 0; c < 2; ++c) {
    if (!(pre[c] > 0.0) || !std::isfinite(pre[c]) || !(state[c] > 0.0) ||
        !std::isfinite(state[c])) {
      MicroPrintf("RNNPool: rnn%d preactivation / state scales must be "
                  "positive and finite", c + 1);
      return kTfLiteError;
    }
    // The int32 biases carry s_pre (contract); allow float32 rounding.
    const int bias_tensors[2] = {c == 0 ? kRnn1GateBiasTensor : kRnn2GateBiasTensor,
                                 c == 0 ? kRnn1UpdateBiasTensor : kRnn2UpdateBiasTensor};
    for (int b : bias_tensors) {
      if (std::fabs(static_cast<double>(scales[b]) - pre[c]) > 1e-6 * pre[c]) {
        MicroPrintf("RNNPool: %s scale %f differs from rnn%d_preactivation_scale",
                    kInputNames[b], static_cast<double>(scales[b]), c + 1);
        return kTfLiteError;
      }
    }
  }
  const int32_t* iopt = data->int_options;
  p.rnn1.zeta_q14 = iopt[kRnnPoolKeyRnn1ZetaQ14];
  p.rnn1.nu_q14 = iopt[kRnnPoolKeyRnn1NuQ14];
  p.rnn2.zeta_q14 = iopt[kRnnPoolKeyRnn2ZetaQ14];
  p.rnn2.nu_q14 = iopt[kRnnPoolKeyRnn2NuQ14];
  const rnnpool::Activation gate = data->shape.gate_activation;
  const rnnpool::Activation update = data->shape.update_activation;
  for (rnnpool::Int8Cell* cell : {&p.rnn1, &p.rnn2}) {
    cell->gate_table = rnnpool::BuiltinTable(static_cast<int32_t>(gate));
    cell->update_table = rnnpool::BuiltinTable(static_cast<int32_t>(update));
  }
  // Spec 3: RNN1's input scale is s_x, RNN2's is RNN1's state scale.
  // The same double expressions as int8_params.cell_constants (float32
  // tensor scales widened exactly to double).
  const auto d = [](float v) { return static_cast<double>(v); };
  RNNPOOL_RETURN_IF_ERROR(CheckStatus(rnnpool::ComputeCellMultipliers(
      d(scales[kInputTensor]), d(scales[kRnn1KernelTensor]),
      d(scales[kRnn1RecurrentTensor]), pre[0], state[0], gate, update, &p.rnn1)));
  RNNPOOL_RETURN_IF_ERROR(CheckStatus(rnnpool::ComputeCellMultipliers(
      state[0], d(scales[kRnn2KernelTensor]), d(scales[kRnn2RecurrentTensor]),
      pre[1], state[1], gate, update, &p.rnn2)));
  // M_y = s_h(RNN2) / s_y.
  int shift = 0;
  RNNPOOL_RETURN_IF_ERROR(CheckStatus(rnnpool::QuantizeMultiplier(
      state[1] / d(output_scale), &p.output_multiplier.q, &shift)));
  p.output_multiplier.shift = shift;
  p.input_zero_point = zero_points[kInputTensor];
  p.output_zero_point = output_zero_point;
  // The weight pointers are set in Eval; validate the rest with stand-ins.
  static const int8_t kStandIn8 = 0;
  static const int32_t kStandIn32 = 0;
  rnnpool::RnnPoolInt8Params check = p;
  for (rnnpool::Int8Cell* cell : {&check.rnn1, &check.rnn2}) {
    cell->kernel = cell->recurrent_kernel = &kStandIn8;
    cell->gate_bias = cell->update_bias = &kStandIn32;
  }
  return CheckStatus(rnnpool::ValidateInt8Params(check));
}

TfLiteStatus PrepareImpl(TfLiteContext* context, OpDataRnnPool* data,
                         const TempTensors& t) {
  // Types.
  const TfLiteType input_type = t.input(kInputTensor)->type;
  if (input_type != kTfLiteFloat32 && input_type != kTfLiteInt8) {
    MicroPrintf("RNNPool: input type %s not supported (float32 or int8)",
                TfLiteTypeGetName(input_type));
    return kTfLiteError;
  }
  data->is_int8 = input_type == kTfLiteInt8;
  for (int i = 0; i < kNumInputs; ++i) {
    TfLiteType expected = kTfLiteFloat32;
    if (data->is_int8) {
      const bool bias = i == kRnn1GateBiasTensor || i == kRnn1UpdateBiasTensor ||
                        i == kRnn2GateBiasTensor || i == kRnn2UpdateBiasTensor;
      expected = bias ? kTfLiteInt32 : kTfLiteInt8;
    }
    TF_LITE_ENSURE_OK(context, CheckType(t.input(i), expected, kInputNames[i]));
  }
  TF_LITE_ENSURE_OK(context, CheckType(t.output(), input_type, "output"));

  // Option keys of this model type.
  if (data->is_int8) {
    TF_LITE_ENSURE_OK(context, CheckKeys(*data, kCommonKeys | kInt8Keys,
                                         kFloatKeys, "an int8"));
  } else {
    TF_LITE_ENSURE_OK(context, CheckKeys(*data, kCommonKeys | kFloatKeys,
                                         kInt8Keys, "a float"));
  }

  // Shapes: input [B, H, W, k]; k, h1, h2 from the weights.
  const int32_t any4[4] = {-1, -1, -1, -1};
  TF_LITE_ENSURE_OK(context, CheckDims(t.input(kInputTensor), "input", 4, any4));
  const TfLiteIntArray* in_dims = t.input(kInputTensor)->dims;
  const int32_t batch = in_dims->data[0];
  const int32_t height = in_dims->data[1];
  const int32_t width = in_dims->data[2];
  const int32_t k = in_dims->data[3];
  const TfLiteTensor* w1 = t.input(kRnn1KernelTensor);
  const TfLiteTensor* w2 = t.input(kRnn2KernelTensor);
  const int32_t w1_dims[2] = {k, -1};
  TF_LITE_ENSURE_OK(context, CheckDims(w1, kInputNames[kRnn1KernelTensor], 2, w1_dims));
  const int32_t h1 = w1->dims->data[1];
  const int32_t w2_dims[2] = {h1, -1};
  TF_LITE_ENSURE_OK(context, CheckDims(w2, kInputNames[kRnn2KernelTensor], 2, w2_dims));
  const int32_t h2 = w2->dims->data[1];
  const int32_t u1_dims[2] = {h1, h1};
  const int32_t u2_dims[2] = {h2, h2};
  TF_LITE_ENSURE_OK(context, CheckDims(t.input(kRnn1RecurrentTensor),
                                       kInputNames[kRnn1RecurrentTensor], 2, u1_dims));
  TF_LITE_ENSURE_OK(context, CheckDims(t.input(kRnn2RecurrentTensor),
                                       kInputNames[kRnn2RecurrentTensor], 2, u2_dims));
  for (int i : {kRnn1GateBiasTensor, kRnn1UpdateBiasTensor}) {
    TF_LITE_ENSURE_OK(context, CheckDims(t.input(i), kInputNames[i], 1, &h1));
  }
  for (int i : {kRnn2GateBiasTensor, kRnn2UpdateBiasTensor}) {
    TF_LITE_ENSURE_OK(context, CheckDims(t.input(i), kInputNames[i], 1, &h2));
  }

  // Option values -> core shape; ValidateShape before any geometry.
  const int32_t* iopt = data->int_options;
  rnnpool::RnnPoolShape& shape = data->shape;
  shape.in_channels = k;
  shape.rnn1_units = h1;
  shape.rnn2_units = h2;
  shape.pool_h = iopt[kRnnPoolKeyPoolH];
  shape.pool_w = iopt[kRnnPoolKeyPoolW];
  shape.stride_h = iopt[kRnnPoolKeyStrideH];
  shape.stride_w = iopt[kRnnPoolKeyStrideW];
  const int32_t padding = iopt[kRnnPoolKeyPadding];
  if (padding != 0 && padding != 1) {
    MicroPrintf("RNNPool: padding %d unknown (0 valid, 1 same)",
                static_cast<int>(padding));
    return kTfLiteError;
  }
  shape.padding = padding == 0 ? rnnpool::Padding::kValid : rnnpool::Padding::kSame;
  if (!ContractActivation(iopt[kRnnPoolKeyGateActivation], &shape.gate_activation) ||
      !ContractActivation(iopt[kRnnPoolKeyUpdateActivation],
                          &shape.update_activation)) {
    MicroPrintf("RNNPool: activation codes %d / %d unknown (0 sigmoid, 1 tanh, "
                "2 relu, 3 quantSigm, 4 quantTanh)",
                static_cast<int>(iopt[kRnnPoolKeyGateActivation]),
                static_cast<int>(iopt[kRnnPoolKeyUpdateActivation]));
    return kTfLiteError;
  }
  TF_LITE_ENSURE_OK(context, CheckStatus(rnnpool::ValidateShape(shape)));

  // Output [B, H', W', 4 h2].
  const int32_t out_dims[4] = {
      batch,
      rnnpool::OutputSize(height, shape.pool_h, shape.stride_h, shape.padding),
      rnnpool::OutputSize(width, shape.pool_w, shape.stride_w, shape.padding),
      4 * h2};
  TF_LITE_ENSURE_OK(context, CheckDims(t.output(), "output", 4, out_dims));

  if (data->is_int8) {
    TF_LITE_ENSURE_OK(context, PrepareInt8(data, t));
  } else {
    TF_LITE_ENSURE_OK(context, PrepareFloat(data));
  }

  const size_t scratch_bytes = data->is_int8
                                   ? rnnpool::RnnPoolInt8ScratchBytes(shape)
                                   : rnnpool::RnnPoolFloatScratchBytes(shape);
  TF_LITE_ENSURE_OK(context, context->RequestScratchBufferInArena(
                                 context, scratch_bytes, &data->scratch_index));
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  if (node->user_data == nullptr) {
    MicroPrintf("RNNPool: Init failed (persistent allocation)");
    return kTfLiteError;
  }
  OpDataRnnPool* data = static_cast<OpDataRnnPool*>(node->user_data);
  TF_LITE_ENSURE_OK(context, ReportOptionsError(*data));
  if (NumInputs(node) != kNumInputs || NumOutputs(node) != 1) {
    MicroPrintf("RNNPool: expected %d inputs and 1 output, got %d and %d",
                kNumInputs, NumInputs(node), NumOutputs(node));
    return kTfLiteError;
  }
  TempTensors tensors(GetMicroContext(context));
  TF_LITE_ENSURE_OK(context, tensors.Allocate(node));
  return PrepareImpl(context, data, tensors);  // ~TempTensors deallocates
}

// Points one cell's weight pointers at its four constant inputs, which follow
// each other from `kernel_index` on: kernel, recurrent kernel, gate and update bias.
static_assert(kRnn1RecurrentTensor == kRnn1KernelTensor + 1 &&
                  kRnn1GateBiasTensor == kRnn1KernelTensor + 2 &&
                  kRnn1UpdateBiasTensor == kRnn1KernelTensor + 3 &&
                  kRnn2RecurrentTensor == kRnn2KernelTensor + 1 &&
                  kRnn2GateBiasTensor == kRnn2KernelTensor + 2 &&
                  kRnn2UpdateBiasTensor == kRnn2KernelTensor + 3,
              "BindCellWeights reads a cell's four inputs in contract order");

template <typename W, typename B, typename Cell>
void BindCellWeights(TfLiteContext* context, TfLiteNode* node, int kernel_index,
                     Cell* cell) {
  cell->kernel = micro::GetTensorData<W>(micro::GetEvalInput(context, node, kernel_index));
  cell->recurrent_kernel =
      micro::GetTensorData<W>(micro::GetEvalInput(context, node, kernel_index + 1));
  cell->gate_bias =
      micro::GetTensorData<B>(micro::GetEvalInput(context, node, kernel_index + 2));
  cell->update_bias =
      micro::GetTensorData<B>(micro::GetEvalInput(context, node, kernel_index + 3));
}

// One Eval for both types: T is the input / output / weight type, B the bias
// type; `params` is Prepare's precomputed copy, completed with the weights.
template <typename T, typename B, typename Params>
void EvalTyped(TfLiteContext* context, TfLiteNode* node, Params params, void* scratch,
               void (*run)(const Params&, const T*, int32_t, int32_t, int32_t, T*,
                           void*)) {
  BindCellWeights<T, B>(context, node, kRnn1KernelTensor, &params.rnn1);
  BindCellWeights<T, B>(context, node, kRnn2KernelTensor, &params.rnn2);
  const TfLiteEvalTensor* input = micro::GetEvalInput(context, node, kInputTensor);
  TfLiteEvalTensor* output = micro::GetEvalOutput(context, node, kOutputTensor);
  run(params, micro::GetTensorData<T>(input), input->dims->data[0],
      input->dims->data[1], input->dims->data[2], micro::GetTensorData<T>(output),
      scratch);
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const OpDataRnnPool& data = *static_cast<const OpDataRnnPool*>(node->user_data);
  void* scratch = context->GetScratchBuffer(context, data.scratch_index);
  TFLITE_DCHECK(scratch != nullptr);
  if (data.is_int8) {
    EvalTyped<int8_t, int32_t>(context, node, data.int8_params, scratch,
                               rnnpool::RnnPoolInt8);
  } else {
    EvalTyped<float, float>(context, node, data.float_params, scratch,
                            rnnpool::RnnPoolFloat);
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_RNNPOOL() {
  static TFLMRegistration registration = micro::RegisterOp(Init, Prepare, Eval);
  return &registration;
}

}  // namespace tflite
