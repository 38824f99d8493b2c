/* Validation of one RNNPool op: see rnnpool_validate.h and
 * docs/rnnpool_custom_op.md (the contract), docs/int8_rnnpool.md (the spec). */
#include "rnnpool_validate.h"

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <type_traits>

namespace rnnpool {
namespace {

enum class KeyKind { kInt, kFloat };

struct KeyInfo {
  const char* name;
  KeyKind kind;
};

enum Key : int {
  kVersion = 0, kPoolH, kPoolW, kStrideH, kStrideW, kPadding, kGateActivation,
  kUpdateActivation, kRnn1Zeta, kRnn1Nu, kRnn2Zeta, kRnn2Nu, kRnn1ZetaQ14, kRnn1NuQ14,
  kRnn2ZetaQ14, kRnn2NuQ14, kRnn1PreScale, kRnn1StateScale, kRnn2PreScale,
  kRnn2StateScale, kStemStrideH, kStemStrideW, kStemPadding, kStemActivation,
  kStemOutputScale, kStemOutputZeroPoint, kNumKeys,
};
static_assert(kNumKeys == kMaxOptionKeys, "kMaxOptionKeys is the contract's key count");

// Indexed by Key.
constexpr KeyInfo kKeys[kNumKeys] = {
    {"version", KeyKind::kInt},         {"pool_h", KeyKind::kInt},
    {"pool_w", KeyKind::kInt},          {"stride_h", KeyKind::kInt},
    {"stride_w", KeyKind::kInt},        {"padding", KeyKind::kInt},
    {"gate_activation", KeyKind::kInt}, {"update_activation", KeyKind::kInt},
    {"rnn1_zeta", KeyKind::kFloat},     {"rnn1_nu", KeyKind::kFloat},
    {"rnn2_zeta", KeyKind::kFloat},     {"rnn2_nu", KeyKind::kFloat},
    {"rnn1_zeta_q14", KeyKind::kInt},   {"rnn1_nu_q14", KeyKind::kInt},
    {"rnn2_zeta_q14", KeyKind::kInt},   {"rnn2_nu_q14", KeyKind::kInt},
    {"rnn1_preactivation_scale", KeyKind::kFloat},
    {"rnn1_state_scale", KeyKind::kFloat},
    {"rnn2_preactivation_scale", KeyKind::kFloat},
    {"rnn2_state_scale", KeyKind::kFloat},
    {"stem_stride_h", KeyKind::kInt},   {"stem_stride_w", KeyKind::kInt},
    {"stem_padding", KeyKind::kInt},    {"stem_activation", KeyKind::kInt},
    {"stem_output_scale", KeyKind::kFloat},
    {"stem_output_zero_point", KeyKind::kInt},
};

constexpr uint32_t Bit(int key) { return uint32_t{1} << key; }
constexpr uint32_t kCommonKeys = Bit(kVersion) | Bit(kPoolH) | Bit(kPoolW) |
                                 Bit(kStrideH) | Bit(kStrideW) | Bit(kPadding) |
                                 Bit(kGateActivation) | Bit(kUpdateActivation);
constexpr uint32_t kFloatKeys = Bit(kRnn1Zeta) | Bit(kRnn1Nu) | Bit(kRnn2Zeta) | Bit(kRnn2Nu);
constexpr uint32_t kInt8Keys = Bit(kRnn1ZetaQ14) | Bit(kRnn1NuQ14) | Bit(kRnn2ZetaQ14) |
                               Bit(kRnn2NuQ14) | Bit(kRnn1PreScale) | Bit(kRnn1StateScale) |
                               Bit(kRnn2PreScale) | Bit(kRnn2StateScale);
// Version 2 (fused convolution): geometry keys, and its output quantization
// for int8 (the stem map's scale / zero point, RNNPool's s_x / zp_x).
constexpr uint32_t kStemKeys = Bit(kStemStrideH) | Bit(kStemStrideW) | Bit(kStemPadding) |
                               Bit(kStemActivation);
constexpr uint32_t kStemInt8Keys = Bit(kStemOutputScale) | Bit(kStemOutputZeroPoint);

// Tensor order of the contract.
enum Input : int {
  kInput = 0, kRnn1Kernel, kRnn1Recurrent, kRnn1GateBias, kRnn1UpdateBias, kRnn2Kernel,
  kRnn2Recurrent, kRnn2GateBias, kRnn2UpdateBias, kStemFilter, kStemBias,
};
const char* const kInputNames[kFusedStemOpInputs] = {
    "input",          "rnn1_kernel",           "rnn1_recurrent_kernel",
    "rnn1_gate_bias", "rnn1_update_bias",      "rnn2_kernel",
    "rnn2_recurrent_kernel", "rnn2_gate_bias", "rnn2_update_bias",
    "stem_filter",    "stem_bias"};

bool IsBias(int i) {
  return i == kRnn1GateBias || i == kRnn1UpdateBias || i == kRnn2GateBias ||
         i == kRnn2UpdateBias || i == kStemBias;
}

const char* TypeName(TensorType type, const char* given) {
  switch (type) {
    case TensorType::kFloat32: return "float32";
    case TensorType::kInt8: return "int8";
    case TensorType::kInt32: return "int32";
    case TensorType::kOther: break;
  }
  return given != nullptr ? given : "an unsupported type";
}

const char* OptionTypeName(OptionType type) {
  switch (type) {
    case OptionType::kInt: return "an int";
    case OptionType::kUInt: return "an unsigned int";
    case OptionType::kFloat: return "a float";
    case OptionType::kBool: return "a bool";
    case OptionType::kString: return "a string";
    case OptionType::kOther: break;
  }
  return "a vector, map or null";
}

// Builds the error message without stdio (no heap on a microcontroller).
class Message {
 public:
  Message(char* buffer, size_t bytes) : buffer_(buffer), bytes_(bytes) {
    if (bytes_ > 0) buffer_[0] = '\0';
  }
  Message& operator<<(const char* text) {
    for (; text != nullptr && *text != '\0'; ++text) Put(*text);
    return *this;
  }
  Message& operator<<(int64_t value) {
    char digits[24];
    int n = 0;
    // Negate digit by digit: -INT64_MIN does not exist.
    const bool negative = value < 0;
    do {
      const int64_t digit = value % 10;
      digits[n++] = static_cast<char>('0' + (negative ? -digit : digit));
      value /= 10;
    } while (value != 0);
    if (negative) Put('-');
    while (n > 0) Put(digits[--n]);
    return *this;
  }
  // Every other integer type: int and int32_t differ on arm-none-eabi (long).
  template <typename T, typename = std::enable_if_t<std::is_integral<T>::value>>
  Message& operator<<(T value) {
    return *this << static_cast<int64_t>(value);
  }

 private:
  void Put(char c) {
    if (length_ + 1 < bytes_) {
      buffer_[length_++] = c;
      buffer_[length_] = '\0';
    }
  }
  char* buffer_;
  size_t bytes_;
  size_t length_ = 0;
};

// The option values after type checks (keys absent: `present` bit clear).
struct Options {
  uint32_t present = 0;
  int32_t ints[kNumKeys] = {};
  double floats[kNumKeys] = {};
};

int FindKey(const char* name) {
  for (int i = 0; i < kNumKeys; ++i) {
    if (std::strcmp(name, kKeys[i].name) == 0) return i;
  }
  return -1;
}

bool ReadOptions(const OpOptions& given, Options* options, Message* error) {
  if (given.status == OptionsStatus::kMissing) {
    *error << "no custom options (a flexbuffer map is required)";
    return false;
  }
  if (given.status != OptionsStatus::kOk) {
    *error << "custom options are not a valid flexbuffer map";
    return false;
  }
  if (given.count < 0 || given.count > kMaxOptionKeys) {
    *error << "custom options have " << given.count << " keys; the contract defines "
           << kMaxOptionKeys;
    return false;
  }
  for (int32_t i = 0; i < given.count; ++i) {
    const OptionValue& value = given.values[i];
    const char* name = value.key != nullptr ? value.key : "";
    const int key = FindKey(name);
    if (key < 0) {
      *error << "unknown option key '" << name << "'";
      return false;
    }
    if (options->present & Bit(key)) {
      *error << "option '" << name << "' is given twice";
      return false;
    }
    if (kKeys[key].kind == KeyKind::kInt) {
      int64_t v = 0;
      if (value.type == OptionType::kInt) {
        v = value.int_value;
      } else if (value.type == OptionType::kUInt && value.uint_value <= uint64_t{INT32_MAX}) {
        v = static_cast<int64_t>(value.uint_value);
      } else if (value.type == OptionType::kUInt) {
        v = int64_t{INT32_MAX} + 1;  // out of range below
      } else {
        *error << "option '" << name << "' is " << OptionTypeName(value.type)
               << "; expected an int";
        return false;
      }
      if (v < INT32_MIN || v > INT32_MAX) {
        *error << "option '" << name << "' is outside int32";
        return false;
      }
      options->ints[key] = static_cast<int32_t>(v);
    } else {
      if (value.type != OptionType::kFloat) {
        *error << "option '" << name << "' is " << OptionTypeName(value.type)
               << "; expected a float";
        return false;
      }
      if (!std::isfinite(value.float_value)) {
        *error << "option '" << name << "' is not finite";
        return false;
      }
      options->floats[key] = value.float_value;
    }
    options->present |= Bit(key);
  }
  if ((options->present & Bit(kVersion)) && options->ints[kVersion] != kOptionsVersion &&
      options->ints[kVersion] != kFusedStemVersion) {
    *error << "options version " << options->ints[kVersion] << " not supported (this kernel: "
           << kOptionsVersion << " or " << kFusedStemVersion << ")";
    return false;
  }
  return true;
}

bool CheckKeys(const Options& options, uint32_t required, uint32_t forbidden,
               const char* model, Message* error) {
  for (int i = 0; i < kNumKeys; ++i) {
    if ((required & Bit(i)) && !(options.present & Bit(i))) {
      *error << "missing option '" << kKeys[i].name << "' (required for " << model
             << " model)";
      return false;
    }
    if ((forbidden & Bit(i)) && (options.present & Bit(i))) {
      *error << "option '" << kKeys[i].name << "' is not defined for " << model << " model";
      return false;
    }
  }
  return true;
}

// Rank and every dim; expected[i] < 0 means "any value >= 1".
bool CheckDims(const TensorDesc& t, const char* name, int32_t rank, const int32_t* expected,
               Message* error) {
  if (t.rank != rank || (rank > 0 && t.dims == nullptr)) {
    *error << name << " must have rank " << rank << ", got " << t.rank;
    return false;
  }
  for (int32_t i = 0; i < rank; ++i) {
    const int32_t d = t.dims[i];
    if (expected[i] >= 0 && d != expected[i]) {
      *error << name << " dim " << i << " is " << d << ", expected " << expected[i];
      return false;
    }
    if (expected[i] < 0 && d < 1) {
      *error << name << " dim " << i << " is " << d << ", expected >= 1";
      return false;
    }
  }
  return true;
}

bool CheckType(const TensorDesc& t, TensorType expected, const char* name, Message* error) {
  if (t.type != expected) {
    *error << name << " has type " << TypeName(t.type, t.type_name) << ", expected "
           << TypeName(expected, nullptr);
    return false;
  }
  return true;
}

bool PerTensorScale(const TensorDesc& t, const char* name, Message* error) {
  if (t.quantization != Quantization::kPerTensor) {
    *error << name << (t.quantization == Quantization::kNone
                           ? " must be affine quantized (per tensor)"
                           : " must be quantized per tensor, not per channel");
    return false;
  }
  if (!(t.scale > 0.0f) || !std::isfinite(t.scale)) {
    *error << name << " scale must be positive and finite";
    return false;
  }
  if (t.zero_point < -128 || t.zero_point > 127) {
    *error << name << " zero point " << t.zero_point << " is outside [-128, 127]";
    return false;
  }
  return true;
}

bool CheckStatus(Status status, const char* what, Message* error) {
  if (status == Status::kOk) return true;
  *error << what << StatusMessage(status);
  return false;
}

// The core's Validate*Params on params whose weight pointers are bound only
// at Eval: stand-ins of weight type W and bias type B take their place.
template <typename W, typename B, typename Params>
Status ValidateWithoutWeights(Params check, Status (*validate)(const Params&)) {
  static const W kWeight = 0;
  static const B kBias = 0;
  for (auto* cell : {&check.rnn1, &check.rnn2}) {
    cell->kernel = cell->recurrent_kernel = &kWeight;
    cell->gate_bias = cell->update_bias = &kBias;
  }
  return validate(check);
}

float Sigmoid(double raw) { return static_cast<float>(1.0 / (1.0 + std::exp(-raw))); }

bool ValidateFloat(const Options& o, ValidatedOp* out, Message* error) {
  RnnPoolFloatParams& p = out->float_params;
  p = RnnPoolFloatParams();
  p.shape = out->shape;
  p.rnn1.zeta_sigmoid = Sigmoid(o.floats[kRnn1Zeta]);
  p.rnn1.nu_sigmoid = Sigmoid(o.floats[kRnn1Nu]);
  p.rnn2.zeta_sigmoid = Sigmoid(o.floats[kRnn2Zeta]);
  p.rnn2.nu_sigmoid = Sigmoid(o.floats[kRnn2Nu]);
  return CheckStatus(ValidateWithoutWeights<float, float>(p, ValidateFloatParams), "", error);
}

// x_scale / x_zero_point: RNNPool's input quantization (the input tensor's,
// or the fused convolution's output options).
bool ValidateInt8(const Options& o, const TensorDesc* in, const TensorDesc& output,
                  double x_scale, int32_t x_zero_point, ValidatedOp* out, Message* error) {
  RnnPoolInt8Params& p = out->int8_params;
  p = RnnPoolInt8Params();
  p.shape = out->shape;
  for (int i = kRnn1Kernel; i <= kRnn2UpdateBias; ++i) {
    if (!PerTensorScale(in[i], kInputNames[i], error)) return false;
    if (in[i].zero_point != 0) {
      *error << kInputNames[i] << " zero point must be 0, got " << in[i].zero_point;
      return false;
    }
  }
  if (!PerTensorScale(output, "output", error)) return false;
  const double pre[2] = {o.floats[kRnn1PreScale], o.floats[kRnn2PreScale]};
  const double state[2] = {o.floats[kRnn1StateScale], o.floats[kRnn2StateScale]};
  const int pre_keys[2] = {kRnn1PreScale, kRnn2PreScale};
  const int state_keys[2] = {kRnn1StateScale, kRnn2StateScale};
  for (int c = 0; c < 2; ++c) {
    for (int key : {pre_keys[c], state_keys[c]}) {
      if (!(o.floats[key] > 0.0)) {
        *error << "option '" << kKeys[key].name << "' must be positive";
        return false;
      }
    }
    // The int32 biases carry s_pre (contract); allow float32 rounding.
    const int biases[2] = {c == 0 ? kRnn1GateBias : kRnn2GateBias,
                           c == 0 ? kRnn1UpdateBias : kRnn2UpdateBias};
    for (int b : biases) {
      if (std::fabs(static_cast<double>(in[b].scale) - pre[c]) > 1e-6 * pre[c]) {
        *error << kInputNames[b] << " scale differs from option '"
               << kKeys[pre_keys[c]].name << "'";
        return false;
      }
    }
  }
  const int q14_keys[4] = {kRnn1ZetaQ14, kRnn1NuQ14, kRnn2ZetaQ14, kRnn2NuQ14};
  for (int key : q14_keys) {
    if (o.ints[key] < 0 || o.ints[key] > kOneQ14) {
      *error << "option '" << kKeys[key].name << "' is " << o.ints[key]
             << ", expected [0, 16384]";
      return false;
    }
  }
  p.rnn1.zeta_q14 = o.ints[kRnn1ZetaQ14];
  p.rnn1.nu_q14 = o.ints[kRnn1NuQ14];
  p.rnn2.zeta_q14 = o.ints[kRnn2ZetaQ14];
  p.rnn2.nu_q14 = o.ints[kRnn2NuQ14];
  const Activation gate = out->shape.gate_activation;
  const Activation update = out->shape.update_activation;
  if (gate == Activation::kRelu) {
    *error << "option 'gate_activation': relu is not an int8 gate (spec 4.4)";
    return false;
  }
  for (Int8Cell* cell : {&p.rnn1, &p.rnn2}) {
    cell->gate_table = BuiltinTable(static_cast<int32_t>(gate));
    cell->update_table = BuiltinTable(static_cast<int32_t>(update));
  }
  // Spec 3: RNN1's input scale is s_x, RNN2's is RNN1's state scale; the
  // float32 tensor scales are widened exactly to double.
  const auto d = [](float v) { return static_cast<double>(v); };
  if (!CheckStatus(ComputeCellMultipliers(x_scale, d(in[kRnn1Kernel].scale),
                                          d(in[kRnn1Recurrent].scale), pre[0], state[0],
                                          gate, update, &p.rnn1),
                   "rnn1 multipliers (scales of input, rnn1 weights and options): ",
                   error) ||
      !CheckStatus(ComputeCellMultipliers(state[0], d(in[kRnn2Kernel].scale),
                                          d(in[kRnn2Recurrent].scale), pre[1], state[1],
                                          gate, update, &p.rnn2),
                   "rnn2 multipliers (scales of rnn2 weights and options): ", error)) {
    return false;
  }
  // M_y = s_h(RNN2) / s_y.
  int shift = 0;
  if (!CheckStatus(QuantizeMultiplier(state[1] / d(output.scale), &p.output_multiplier.q,
                                      &shift),
                   "output multiplier (rnn2_state_scale / output scale): ", error)) {
    return false;
  }
  p.output_multiplier.shift = shift;
  p.input_zero_point = x_zero_point;
  p.output_zero_point = output.zero_point;
  return CheckStatus(ValidateWithoutWeights<int8_t, int32_t>(p, ValidateInt8Params), "",
                     error);
}

// M_c = s_x * s_w[c] / s_stem of output channel c, from the float32 scales
// in double, as TFLM's PopulateConvolutionQuantizationParams forms it.
Status StemChannelMultiplier(const ValidatedStem& stem, const TensorDesc& filter, int32_t c,
                             int32_t* q, int* shift) {
  const double s_w = filter.quantization == Quantization::kPerChannel
                         ? static_cast<double>(filter.channel_scales[c])
                         : static_cast<double>(filter.scale);
  return QuantizeMultiplier(stem.input_scale * s_w / stem.output_scale, q, shift);
}

// The stride keys of the op or of its fused convolution: >= 1.
bool CheckStrides(const Options& o, int key_h, int key_w, Message* error) {
  for (int key : {key_h, key_w}) {
    if (o.ints[key] < 1) {
      *error << "option '" << kKeys[key].name << "' is " << o.ints[key] << ", expected >= 1";
      return false;
    }
  }
  return true;
}

// A padding key: 0 valid, 1 same.
bool ReadPadding(const Options& o, int key, Padding* padding, Message* error) {
  const int32_t code = o.ints[key];
  if (code != 0 && code != 1) {
    *error << "option '" << kKeys[key].name << "' is " << code
           << ", expected 0 (valid) or 1 (same)";
    return false;
  }
  *padding = code == 0 ? Padding::kValid : Padding::kSame;
  return true;
}

// TFLM's Quantize of CalculateActivationRangeQuantized: zp + round(f / scale)
// in float32 (std::round: halves away from zero).
bool QuantizeReal(float scale, int32_t zero_point, float real, int32_t* q) {
  const float rounded = std::round(real / scale);
  if (!(rounded >= -2147483648.0f && rounded < 2147483648.0f)) return false;
  *q = zero_point + static_cast<int32_t>(rounded);
  return true;
}

// The fused convolution's activation range (TFLite ActivationFunctionType).
bool StemActivationRange(int32_t activation, ValidatedStem* stem, Message* error) {
  float low = -INFINITY, high = INFINITY;
  switch (activation) {
    case 0: break;
    case 1: low = 0.0f; break;
    case 2: low = -1.0f; high = 1.0f; break;
    case 3: low = 0.0f; high = 6.0f; break;
    default:
      *error << "option 'stem_activation' is " << activation
             << ", expected 0 none, 1 relu, 2 relu_n1_to_1 or 3 relu6";
      return false;
  }
  stem->activation = activation;
  stem->activation_min = low;
  stem->activation_max = high;
  stem->activation_min_int8 = -128;
  stem->activation_max_int8 = 127;
  return true;
}

// Input 9 / 10 and the stem keys of a version-2 op; fills out->stem and the
// stem's output dims (RNNPool's input) into out->height / width.
bool ValidateStem(const Options& o, const TensorDesc* in, int32_t k, ValidatedOp* out,
                  Message* error) {
  const TensorDesc& image = in[kInput];
  const int32_t channels = image.dims[3];
  const int32_t filter_dims[4] = {k, -1, -1, channels};
  if (!CheckDims(in[kStemFilter], kInputNames[kStemFilter], 4, filter_dims, error) ||
      !CheckDims(in[kStemBias], kInputNames[kStemBias], 1, &k, error)) {
    return false;
  }
  const int32_t kernel_h = in[kStemFilter].dims[1], kernel_w = in[kStemFilter].dims[2];
  if (kernel_h > kMaxStemKernel || kernel_w > kMaxStemKernel) {
    *error << "stem_filter is " << kernel_h << "x" << kernel_w << ", at most "
           << kMaxStemKernel << "x" << kMaxStemKernel << " is supported";
    return false;
  }
  if (static_cast<int64_t>(kernel_h) * kernel_w * channels > kMaxStemTaps) {
    *error << "stem_filter has " << static_cast<int64_t>(kernel_h) * kernel_w * channels
           << " taps per output (kh * kw * in), at most " << kMaxStemTaps;
    return false;
  }
  Padding padding;
  if (!CheckStrides(o, kStemStrideH, kStemStrideW, error) ||
      !ReadPadding(o, kStemPadding, &padding, error)) {
    return false;
  }
  ValidatedStem& stem = out->stem;
  stem.padding = o.ints[kStemPadding];
  stem.shape = StemShapeFor(image.dims[1], image.dims[2], channels, k, kernel_h, kernel_w,
                            o.ints[kStemStrideH], o.ints[kStemStrideW], padding);
  if (stem.shape.out_height < 1 || stem.shape.out_width < 1) {
    *error << "input " << image.dims[1] << "x" << image.dims[2] << " is smaller than the "
           << kernel_h << "x" << kernel_w << " stem_filter (valid padding)";
    return false;
  }
  if (!StemActivationRange(o.ints[kStemActivation], &stem, error)) return false;
  out->height = stem.shape.out_height;
  out->width = stem.shape.out_width;
  if (!out->is_int8) return true;
  // int8: the image per tensor; the filter per tensor or per output channel
  // (quantized_dimension 0), zero points 0, scales positive; the stem map's
  // quantization from the options.
  const TensorDesc& filter = in[kStemFilter];
  if (!PerTensorScale(image, "input", error)) return false;
  if (filter.quantization == Quantization::kPerChannel) {
    if (filter.num_channel_scales != k || filter.channel_scales == nullptr ||
        filter.quantized_dimension != 0) {
      *error << "stem_filter must have one scale per output channel (" << k
             << ", quantized_dimension 0), got " << filter.num_channel_scales
             << " along dimension " << filter.quantized_dimension;
      return false;
    }
    if (!filter.channel_zero_points_zero) {
      *error << "stem_filter zero points must be 0";
      return false;
    }
    for (int32_t c = 0; c < k; ++c) {
      if (!(filter.channel_scales[c] > 0.0f) || !std::isfinite(filter.channel_scales[c])) {
        *error << "stem_filter scale of channel " << c << " must be positive and finite";
        return false;
      }
    }
  } else {
    if (!PerTensorScale(filter, "stem_filter", error)) return false;
    if (filter.zero_point != 0) {
      *error << "stem_filter zero point must be 0, got " << filter.zero_point;
      return false;
    }
  }
  const double output_scale = static_cast<double>(static_cast<float>(o.floats[kStemOutputScale]));
  if (!(output_scale > 0.0) || !std::isfinite(output_scale)) {
    *error << "option 'stem_output_scale' must be a positive float32";
    return false;
  }
  const int32_t output_zero_point = o.ints[kStemOutputZeroPoint];
  if (output_zero_point < -128 || output_zero_point > 127) {
    *error << "option 'stem_output_zero_point' is " << output_zero_point
           << ", expected [-128, 127]";
    return false;
  }
  stem.input_scale = static_cast<double>(image.scale);
  stem.output_scale = output_scale;
  stem.input_offset = -image.zero_point;
  stem.output_offset = output_zero_point;
  const float scale = static_cast<float>(output_scale);
  int32_t q = 0;
  if (stem.activation == 1 || stem.activation == 3 || stem.activation == 2) {
    if (!QuantizeReal(scale, output_zero_point, stem.activation_min, &q)) {
      *error << "option 'stem_output_scale' puts the activation's low end outside int32";
      return false;
    }
    stem.activation_min_int8 = q > -128 ? q : -128;
  }
  if (stem.activation == 3 || stem.activation == 2) {
    if (!QuantizeReal(scale, output_zero_point, stem.activation_max, &q)) {
      *error << "option 'stem_output_scale' puts the activation's high end outside int32";
      return false;
    }
    stem.activation_max_int8 = q < 127 ? q : 127;
  }
  if (stem.activation_min_int8 > stem.activation_max_int8) {
    *error << "the stem activation's int8 range is empty (stem_output_scale / zero point)";
    return false;
  }
  // Every channel's multiplier must exist (the glue computes them again).
  for (int32_t c = 0; c < k; ++c) {
    int32_t mq = 0;
    int shift = 0;
    if (StemChannelMultiplier(stem, filter, c, &mq, &shift) != Status::kOk) {
      *error << "stem multiplier of channel " << c
             << " (input scale * stem_filter scale / stem_output_scale) must be in (0, 2^30)";
      return false;
    }
  }
  return true;
}

bool Validate(const OpOptions& given, const TensorDesc* in, int32_t num_inputs,
              const TensorDesc* outputs, int32_t num_outputs, ValidatedOp* out,
              Message* error) {
  Options o;
  if (!ReadOptions(given, &o, error)) return false;
  out->has_stem = (o.present & Bit(kVersion)) && o.ints[kVersion] == kFusedStemVersion;
  const int32_t expected_inputs = out->has_stem ? kFusedStemOpInputs : kOpInputs;
  if (num_inputs != expected_inputs || num_outputs != kOpOutputs) {
    *error << "expected " << expected_inputs << " inputs and " << kOpOutputs
           << " output (options version " << (out->has_stem ? kFusedStemVersion : kOptionsVersion)
           << "), got " << num_inputs << " and " << num_outputs;
    return false;
  }
  for (int i = 0; i < expected_inputs; ++i) {
    if (!in[i].present) {
      *error << "input " << i << " (" << kInputNames[i] << ") is missing";
      return false;
    }
  }
  const TensorDesc& output = outputs[0];
  if (!output.present) {
    *error << "output is missing";
    return false;
  }
  // Types.
  const TensorType input_type = in[kInput].type;
  if (input_type != TensorType::kFloat32 && input_type != TensorType::kInt8) {
    *error << "input has type " << TypeName(input_type, in[kInput].type_name)
           << ", expected float32 or int8";
    return false;
  }
  out->is_int8 = input_type == TensorType::kInt8;
  for (int i = 0; i < expected_inputs; ++i) {
    const TensorType expected = !out->is_int8 ? TensorType::kFloat32
                                : IsBias(i)   ? TensorType::kInt32
                                              : TensorType::kInt8;
    if (!CheckType(in[i], expected, kInputNames[i], error)) return false;
    if (i != kInput && !in[i].is_constant) {
      *error << kInputNames[i] << " must be a constant tensor (weights in the model)";
      return false;
    }
  }
  if (!CheckType(output, input_type, "output", error)) return false;
  // Option keys of this model type and version.
  const uint32_t stem_keys = out->has_stem ? kStemKeys : 0;
  const uint32_t stem_int8_keys = out->has_stem ? kStemInt8Keys : 0;
  const uint32_t not_stem = (kStemKeys | kStemInt8Keys) & ~(stem_keys | stem_int8_keys);
  if (!(out->is_int8
            ? CheckKeys(o, kCommonKeys | kInt8Keys | stem_keys | stem_int8_keys,
                        kFloatKeys | not_stem, "an int8", error)
            : CheckKeys(o, kCommonKeys | kFloatKeys | stem_keys,
                        kInt8Keys | kStemInt8Keys | (kStemKeys & ~stem_keys), "a float",
                        error))) {
    return false;
  }
  // Shapes: input [B, H, W, k] (the image [B, H0, W0, C0] of a fused op);
  // k, h1, h2 from the weights.
  const int32_t any4[4] = {-1, -1, -1, -1};
  if (!CheckDims(in[kInput], "input", 4, any4, error)) return false;
  const int32_t w1_dims[2] = {out->has_stem ? -1 : in[kInput].dims[3], -1};
  if (!CheckDims(in[kRnn1Kernel], kInputNames[kRnn1Kernel], 2, w1_dims, error)) return false;
  const int32_t k = in[kRnn1Kernel].dims[0];
  out->batch = in[kInput].dims[0];
  out->height = in[kInput].dims[1];
  out->width = in[kInput].dims[2];
  const int32_t h1 = in[kRnn1Kernel].dims[1];
  const int32_t w2_dims[2] = {h1, -1};
  if (!CheckDims(in[kRnn2Kernel], kInputNames[kRnn2Kernel], 2, w2_dims, error)) return false;
  const int32_t h2 = in[kRnn2Kernel].dims[1];
  const int32_t u1_dims[2] = {h1, h1};
  const int32_t u2_dims[2] = {h2, h2};
  if (!CheckDims(in[kRnn1Recurrent], kInputNames[kRnn1Recurrent], 2, u1_dims, error) ||
      !CheckDims(in[kRnn2Recurrent], kInputNames[kRnn2Recurrent], 2, u2_dims, error)) {
    return false;
  }
  for (int i : {kRnn1GateBias, kRnn1UpdateBias}) {
    if (!CheckDims(in[i], kInputNames[i], 1, &h1, error)) return false;
  }
  for (int i : {kRnn2GateBias, kRnn2UpdateBias}) {
    if (!CheckDims(in[i], kInputNames[i], 1, &h2, error)) return false;
  }
  // Option values -> core shape; ValidateShape before any geometry.
  RnnPoolShape& shape = out->shape;
  shape.in_channels = k;
  shape.rnn1_units = h1;
  shape.rnn2_units = h2;
  shape.pool_h = o.ints[kPoolH];
  shape.pool_w = o.ints[kPoolW];
  shape.stride_h = o.ints[kStrideH];
  shape.stride_w = o.ints[kStrideW];
  for (int key : {kPoolH, kPoolW}) {
    if (o.ints[key] < 1 || o.ints[key] > kMaxPool) {
      *error << "option '" << kKeys[key].name << "' is " << o.ints[key] << ", expected [1, "
             << kMaxPool << "]";
      return false;
    }
  }
  if (!CheckStrides(o, kStrideH, kStrideW, error) ||
      !ReadPadding(o, kPadding, &shape.padding, error)) {
    return false;
  }
  for (int key : {kGateActivation, kUpdateActivation}) {
    Activation* target =
        key == kGateActivation ? &shape.gate_activation : &shape.update_activation;
    if (!ActivationFromContract(o.ints[key], target)) {
      *error << "option '" << kKeys[key].name << "' is " << o.ints[key]
             << ", expected 0 sigmoid, 1 tanh, 2 relu, 3 quantSigm or 4 quantTanh";
      return false;
    }
  }
  if (!CheckStatus(ValidateShape(shape), "", error)) return false;
  if (out->has_stem && !ValidateStem(o, in, k, out, error)) return false;
  // Output [B, H', W', 4 h2].
  out->out_height = OutputSize(out->height, shape.pool_h, shape.stride_h, shape.padding);
  out->out_width = OutputSize(out->width, shape.pool_w, shape.stride_w, shape.padding);
  if (out->out_height < 1 || out->out_width < 1) {
    *error << (out->has_stem ? "stem output " : "input ") << out->height << "x" << out->width
           << " is smaller than the " << shape.pool_h << "x" << shape.pool_w
           << " pool (valid padding)";
    return false;
  }
  const int32_t out_dims[4] = {out->batch, out->out_height, out->out_width, 4 * h2};
  if (!CheckDims(output, "output", 4, out_dims, error)) return false;
  if (out->is_int8) {
    const double x_scale = out->has_stem ? out->stem.output_scale
                                         : static_cast<double>(in[kInput].scale);
    const int32_t x_zero_point =
        out->has_stem ? out->stem.output_offset : in[kInput].zero_point;
    // The plain op's input must be per tensor; a fused op's image was checked.
    if (!out->has_stem && !PerTensorScale(in[kInput], "input", error)) return false;
    if (!ValidateInt8(o, in, output, x_scale, x_zero_point, out, error)) return false;
  } else if (!ValidateFloat(o, out, error)) {
    return false;
  }
  if (out->has_stem) {
    out->scratch_bytes = out->is_int8 ? StemRnnPoolInt8ScratchBytes(out->stem.shape, shape)
                                      : StemRnnPoolFloatScratchBytes(out->stem.shape, shape);
  } else {
    out->scratch_bytes = out->is_int8 ? RnnPoolInt8ScratchBytes(shape)
                                      : RnnPoolFloatScratchBytes(shape);
  }
  return true;
}

}  // namespace

// The core's enum is the contract's numbering (docs/rnnpool_custom_op.md).
static_assert(static_cast<int>(Activation::kSigmoid) == 0 &&
                  static_cast<int>(Activation::kTanh) == 1 &&
                  static_cast<int>(Activation::kRelu) == 2 &&
                  static_cast<int>(Activation::kQuantSigm) == 3 &&
                  static_cast<int>(Activation::kQuantTanh) == 4,
              "rnnpool::Activation must use the contract's activation codes");

bool ActivationFromContract(int32_t code, Activation* out) {
  if (code < 0 || code > static_cast<int32_t>(Activation::kQuantTanh)) return false;
  *out = static_cast<Activation>(code);
  return true;
}

void StemMultipliers(const ValidatedOp& op, const TensorDesc& filter, int32_t* q,
                     int32_t* shift) {
  for (int32_t c = 0; c < op.shape.in_channels; ++c) {
    int channel_shift = 0;
    StemChannelMultiplier(op.stem, filter, c, &q[c], &channel_shift);
    shift[c] = channel_shift;
  }
}

bool ValidateRnnPoolOp(const OpOptions& options, const TensorDesc* inputs, int32_t num_inputs,
                       const TensorDesc* outputs, int32_t num_outputs, ValidatedOp* out,
                       char* message, size_t message_bytes) {
  Message error(message, message_bytes);
  *out = ValidatedOp();
  return Validate(options, inputs, num_inputs, outputs, num_outputs, out, &error);
}

}  // namespace rnnpool
