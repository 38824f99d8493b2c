/* See rnnpool_op.h. The checks follow docs/rnnpool_custom_op.md one for one
 * (the TFLM glue tflm_kernels/tflm/rnnpool.cc makes the same ones). */
#include "rnnpool_op.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "flexbuffer_map.h"

namespace rnnpool_litert {
namespace {

// Option keys of the contract; bit i of `present_` is kKeyNames[i].
enum Key {
  kVersion, kPoolH, kPoolW, kStrideH, kStrideW, kPadding, kGateActivation,
  kUpdateActivation,
  kRnn1Zeta, kRnn1Nu, kRnn2Zeta, kRnn2Nu,  // float model
  kRnn1ZetaQ14, kRnn1NuQ14, kRnn2ZetaQ14, kRnn2NuQ14,  // int8 model
  kRnn1PreactivationScale, kRnn1StateScale, kRnn2PreactivationScale,
  kRnn2StateScale, kKeyCount,
};
constexpr const char* kKeyNames[kKeyCount] = {
    "version", "pool_h", "pool_w", "stride_h", "stride_w", "padding",
    "gate_activation", "update_activation",
    "rnn1_zeta", "rnn1_nu", "rnn2_zeta", "rnn2_nu",
    "rnn1_zeta_q14", "rnn1_nu_q14", "rnn2_zeta_q14", "rnn2_nu_q14",
    "rnn1_preactivation_scale", "rnn1_state_scale", "rnn2_preactivation_scale",
    "rnn2_state_scale"};
constexpr bool IsFloatKey(int key) {
  return (key >= kRnn1Zeta && key <= kRnn2Nu) || key >= kRnn1PreactivationScale;
}
constexpr uint32_t Bits(int first, int last) {
  return ((uint32_t{1} << (last + 1)) - 1) & ~((uint32_t{1} << first) - 1);
}
constexpr uint32_t kCommonKeys = Bits(kVersion, kUpdateActivation);
constexpr uint32_t kFloatKeys = Bits(kRnn1Zeta, kRnn2Nu);
constexpr uint32_t kInt8Keys = Bits(kRnn1ZetaQ14, kRnn2StateScale);

const char* const kInputNames[9] = {
    "input", "rnn1_kernel", "rnn1_recurrent_kernel", "rnn1_gate_bias",
    "rnn1_update_bias", "rnn2_kernel", "rnn2_recurrent_kernel",
    "rnn2_gate_bias", "rnn2_update_bias"};
constexpr int kRnn1Kernel = 1;
constexpr int kRnn2Kernel = 5;

// Contract activation codes (0 sigmoid, 1 tanh, 2 relu, 3 quantSigm,
// 4 quantTanh) -> core enum.
bool ContractActivation(int64_t code, rnnpool::Activation* out) {
  static const rnnpool::Activation kByCode[5] = {
      rnnpool::Activation::kSigmoid, rnnpool::Activation::kTanh,
      rnnpool::Activation::kRelu, rnnpool::Activation::kQuantSigm,
      rnnpool::Activation::kQuantTanh};
  if (code < 0 || code > 4) return false;
  *out = kByCode[code];
  return true;
}

const char* TypeName(TfLiteType type) {
  switch (type) {
    case kTfLiteFloat32: return "FLOAT32";
    case kTfLiteInt32: return "INT32";
    case kTfLiteInt8: return "INT8";
    case kTfLiteUInt8: return "UINT8";
    case kTfLiteInt16: return "INT16";
    default: return "another type";
  }
}

// A key for a message: at most 40 printable ASCII characters ('?' for any
// other byte), so a damaged options blob still gives a readable error.
struct PrintableKey {
  explicit PrintableKey(const char* key) {
    size_t n = 0;
    for (; key[n] != '\0' && n + 1 < sizeof(text); ++n) {
      const unsigned char c = static_cast<unsigned char>(key[n]);
      text[n] = c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
    }
    text[n] = '\0';
  }
  char text[41];
};

// The per-patch core kernels behind one signature, for RunPatches.
void Int8Patch(const void* params, const int8_t* image, int32_t height,
               int32_t width, int32_t top, int32_t left, int8_t* output,
               void* scratch) {
  rnnpool::RnnPoolPatchInt8(*static_cast<const rnnpool::RnnPoolInt8Params*>(params),
                            image, height, width, top, left, output, scratch);
}
void FloatPatch(const void* params, const float* image, int32_t height,
                int32_t width, int32_t top, int32_t left, float* output,
                void* scratch) {
  rnnpool::RnnPoolPatchFloat(*static_cast<const rnnpool::RnnPoolFloatParams*>(params),
                             image, height, width, top, left, output, scratch);
}

template <typename W, typename B, typename Cell>
void BindCell(const TfLiteContext* context, const int* tensors, int first,
              Cell* cell) {
  cell->kernel = reinterpret_cast<const W*>(context->tensors[tensors[first]].data.raw);
  cell->recurrent_kernel =
      reinterpret_cast<const W*>(context->tensors[tensors[first + 1]].data.raw);
  cell->gate_bias = reinterpret_cast<const B*>(context->tensors[tensors[first + 2]].data.raw);
  cell->update_bias =
      reinterpret_cast<const B*>(context->tensors[tensors[first + 3]].data.raw);
}

}  // namespace

RnnPoolOp::RnnPoolOp(const void* options, size_t length) {
  options_error_[0] = '\0';
  ParseOptions(options, length);
}

void RnnPoolOp::ParseOptions(const void* options, size_t length) {
  FlexNumber entries[2 * kNumKeys];
  int count = 0;
  const FlexStatus status = ReadFlexNumberMap(static_cast<const uint8_t*>(options),
                                              length, entries, 2 * kNumKeys, &count);
  if (options == nullptr || length == 0) {
    std::snprintf(options_error_, sizeof(options_error_),
                  "no custom options (a flexbuffer map is required)");
    return;
  }
  if (status == FlexStatus::kNotANumber) {
    std::snprintf(options_error_, sizeof(options_error_),
                  "option '%s' has the wrong value type", PrintableKey(entries[count].key).text);
    return;
  }
  if (status != FlexStatus::kOk) {
    std::snprintf(options_error_, sizeof(options_error_), "%s",
                  status == FlexStatus::kTooMany ? "too many custom options"
                                                 : "custom options are not a valid flexbuffer map");
    return;
  }
  for (int i = 0; i < count; ++i) {
    const FlexNumber& e = entries[i];
    int key = 0;
    while (key < kKeyCount && std::strcmp(e.key, kKeyNames[key]) != 0) ++key;
    const char* problem = nullptr;
    if (key == kKeyCount) {
      problem = "unknown option key";
    } else if (present_ & (uint32_t{1} << key)) {
      problem = "option key given twice:";
    } else if (!IsFloatKey(key) && !e.is_int) {
      problem = "option has the wrong value type (int expected):";
    } else if (!IsFloatKey(key) &&
               (e.int_overflow || e.int_value < INT32_MIN || e.int_value > INT32_MAX)) {
      problem = "option is outside int32:";
    }
    if (problem != nullptr) {
      std::snprintf(options_error_, sizeof(options_error_), "%s '%s'", problem,
                    PrintableKey(e.key).text);
      return;
    }
    present_ |= uint32_t{1} << key;
    int_options_[key] = e.int_value;
    float_options_[key] = e.float_value;
  }
  if ((present_ & 1u) && int_options_[kVersion] != kRnnPoolOptionsVersion) {
    std::snprintf(options_error_, sizeof(options_error_),
                  "options version %lld not supported (this kernel: %d)",
                  static_cast<long long>(int_options_[kVersion]), kRnnPoolOptionsVersion);
  }
}

TfLiteStatus RnnPoolOp::Fail(TfLiteContext* context, const char* format, ...) const {
  char message[256];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof(message), format, args);
  va_end(args);
  context->ReportError(context, "RNNPool: %s", message);
  return kTfLiteError;
}

TfLiteStatus RnnPoolOp::CheckKeys(TfLiteContext* context, bool is_int8) const {
  const uint32_t required = kCommonKeys | (is_int8 ? kInt8Keys : kFloatKeys);
  const uint32_t forbidden = is_int8 ? kFloatKeys : kInt8Keys;
  const char* model = is_int8 ? "an int8" : "a float";
  for (int i = 0; i < kKeyCount; ++i) {
    const bool given = present_ & (uint32_t{1} << i);
    if ((required >> i & 1) && !given) {
      return Fail(context, "missing option '%s' (required for %s model)", kKeyNames[i], model);
    }
    if ((forbidden >> i & 1) && given) {
      return Fail(context, "option '%s' is not defined for %s model", kKeyNames[i], model);
    }
  }
  return kTfLiteOk;
}

size_t RnnPoolOp::output_bytes() const {
  const size_t values = static_cast<size_t>(batch_) * out_h_ * out_w_ *
                        4 * float_params_.shape.rnn2_units;
  return values * (is_int8_ ? 1 : sizeof(float));
}

TfLiteStatus RnnPoolOp::Prepare(TfLiteContext* context, const TfLiteIntArray* inputs,
                                const TfLiteIntArray* outputs) {
  if (options_error_[0] != '\0') return Fail(context, "%s", options_error_);
  if (inputs->size != kNumInputs || outputs->size != 1) {
    return Fail(context, "expected %d inputs and 1 output, got %d and %d", kNumInputs,
                inputs->size, outputs->size);
  }
  for (int i = 0; i < kNumInputs; ++i) tensor_index_[i] = inputs->data[i];
  tensor_index_[kNumInputs] = outputs->data[0];
  for (int i = 0; i <= kNumInputs; ++i) {
    if (tensor_index_[i] < 0 ||
        static_cast<size_t>(tensor_index_[i]) >= context->tensors_size) {
      return Fail(context, "%s is missing", i < kNumInputs ? kInputNames[i] : "output");
    }
  }
  const TfLiteTensor* t[kNumInputs];
  for (int i = 0; i < kNumInputs; ++i) t[i] = &context->tensors[tensor_index_[i]];
  TfLiteTensor* output = &context->tensors[tensor_index_[kNumInputs]];

  // Types.
  const TfLiteType type = t[0]->type;
  if (type != kTfLiteFloat32 && type != kTfLiteInt8) {
    return Fail(context, "input type %s not supported (float32 or int8)", TypeName(type));
  }
  is_int8_ = type == kTfLiteInt8;
  for (int i = 0; i < kNumInputs; ++i) {
    const bool bias = i == 3 || i == 4 || i == 7 || i == 8;
    const TfLiteType expected = !is_int8_ ? kTfLiteFloat32 : bias ? kTfLiteInt32 : kTfLiteInt8;
    if (t[i]->type != expected) {
      return Fail(context, "%s has type %s, expected %s", kInputNames[i],
                  TypeName(t[i]->type), TypeName(expected));
    }
    if (i > 0 && t[i]->data.raw == nullptr) {
      return Fail(context, "%s must be a constant tensor", kInputNames[i]);
    }
  }
  if (output->type != type) {
    return Fail(context, "output has type %s, expected %s", TypeName(output->type),
                TypeName(type));
  }
  if (CheckKeys(context, is_int8_) != kTfLiteOk) return kTfLiteError;

  // Shapes: input [B, H, W, k]; k, h1, h2 from the weights.
  const TfLiteIntArray* in = t[0]->dims;
  if (in == nullptr || in->size != 4) {
    return Fail(context, "input must have rank 4 (NHWC), got %d", in == nullptr ? -1 : in->size);
  }
  for (int i = 0; i < 4; ++i) {
    if (in->data[i] < 1) return Fail(context, "input dim %d is %d, expected >= 1", i, in->data[i]);
  }
  batch_ = in->data[0];
  height_ = in->data[1];
  width_ = in->data[2];
  const int32_t k = in->data[3];
  const TfLiteIntArray* w1 = t[kRnn1Kernel]->dims;
  const TfLiteIntArray* w2 = t[kRnn2Kernel]->dims;
  if (w1 == nullptr || w1->size != 2 || w1->data[0] != k || w1->data[1] < 1) {
    return Fail(context, "rnn1_kernel must be [%d, h1]", k);
  }
  const int32_t h1 = w1->data[1];
  if (w2 == nullptr || w2->size != 2 || w2->data[0] != h1 || w2->data[1] < 1) {
    return Fail(context, "rnn2_kernel must be [%d, h2]", h1);
  }
  const int32_t h2 = w2->data[1];
  for (int i = 2; i < kNumInputs; ++i) {
    if (i == kRnn2Kernel) continue;
    const int32_t units = i < kRnn2Kernel ? h1 : h2;
    const bool matrix = i == 2 || i == 6;
    const TfLiteIntArray* d = t[i]->dims;
    const bool ok = d != nullptr && d->size == (matrix ? 2 : 1) && d->data[0] == units &&
                    (!matrix || d->data[1] == units);
    if (!ok) {
      return Fail(context, matrix ? "%s must be [%d, %d]" : "%s must be [%d]",
                  kInputNames[i], units, units);
    }
  }

  // Option values -> core shape.
  rnnpool::RnnPoolShape shape{};
  shape.in_channels = k;
  shape.rnn1_units = h1;
  shape.rnn2_units = h2;
  shape.pool_h = static_cast<int32_t>(int_options_[kPoolH]);
  shape.pool_w = static_cast<int32_t>(int_options_[kPoolW]);
  shape.stride_h = static_cast<int32_t>(int_options_[kStrideH]);
  shape.stride_w = static_cast<int32_t>(int_options_[kStrideW]);
  if (int_options_[kPadding] != 0 && int_options_[kPadding] != 1) {
    return Fail(context, "padding %d unknown (0 valid, 1 same)",
                static_cast<int>(int_options_[kPadding]));
  }
  shape.padding = int_options_[kPadding] == 0 ? rnnpool::Padding::kValid : rnnpool::Padding::kSame;
  if (!ContractActivation(int_options_[kGateActivation], &shape.gate_activation) ||
      !ContractActivation(int_options_[kUpdateActivation], &shape.update_activation)) {
    return Fail(context, "activation codes %d / %d unknown (0 sigmoid, 1 tanh, 2 relu, "
                "3 quantSigm, 4 quantTanh)", static_cast<int>(int_options_[kGateActivation]),
                static_cast<int>(int_options_[kUpdateActivation]));
  }
  rnnpool::Status status = rnnpool::ValidateShape(shape);
  if (status != rnnpool::Status::kOk) return Fail(context, "%s", rnnpool::StatusMessage(status));
  out_h_ = rnnpool::OutputSize(height_, shape.pool_h, shape.stride_h, shape.padding);
  out_w_ = rnnpool::OutputSize(width_, shape.pool_w, shape.stride_w, shape.padding);
  // Threads: the interpreter's num_threads (-1, its default, means one), at
  // most one per 4 patches; each gets its own scratch, allocated here.
  const int64_t patches = static_cast<int64_t>(batch_) * out_h_ * out_w_;
  threads_ = context->recommended_num_threads < 1 ? 1 : context->recommended_num_threads;
  if (threads_ > patches / 4) threads_ = patches / 4 > 1 ? static_cast<int>(patches / 4) : 1;
  if (out_h_ < 1 || out_w_ < 1) {
    return Fail(context, "a %dx%d input is smaller than the %dx%d patch ('valid' padding)",
                height_, width_, shape.pool_h, shape.pool_w);
  }
  float_params_ = rnnpool::RnnPoolFloatParams{};
  float_params_.shape = shape;
  int8_params_ = rnnpool::RnnPoolInt8Params{};
  int8_params_.shape = shape;

  // Weights are constant tensors: bind them once, then validate everything.
  if (is_int8_) {
    if (PrepareInt8(context) != kTfLiteOk) return kTfLiteError;
    BindCell<int8_t, int32_t>(context, tensor_index_, kRnn1Kernel, &int8_params_.rnn1);
    BindCell<int8_t, int32_t>(context, tensor_index_, kRnn2Kernel, &int8_params_.rnn2);
    status = rnnpool::ValidateInt8Params(int8_params_);
    scratch_bytes_ = rnnpool::RnnPoolInt8ScratchBytes(shape);
  } else {
    const auto sigmoid = [](double raw) { return static_cast<float>(1.0 / (1.0 + std::exp(-raw))); };
    float_params_.rnn1.zeta_sigmoid = sigmoid(float_options_[kRnn1Zeta]);
    float_params_.rnn1.nu_sigmoid = sigmoid(float_options_[kRnn1Nu]);
    float_params_.rnn2.zeta_sigmoid = sigmoid(float_options_[kRnn2Zeta]);
    float_params_.rnn2.nu_sigmoid = sigmoid(float_options_[kRnn2Nu]);
    BindCell<float, float>(context, tensor_index_, kRnn1Kernel, &float_params_.rnn1);
    BindCell<float, float>(context, tensor_index_, kRnn2Kernel, &float_params_.rnn2);
    status = rnnpool::ValidateFloatParams(float_params_);
    scratch_bytes_ = rnnpool::RnnPoolFloatScratchBytes(shape);
  }
  if (status != rnnpool::Status::kOk) return Fail(context, "%s", rnnpool::StatusMessage(status));
  scratch_.assign(threads_, std::vector<Block>((scratch_bytes_ + 15) / 16));

  // Output [B, H', W', 4 h2]: resize if the model's shape is not that.
  const int out_dims[4] = {batch_, out_h_, out_w_, 4 * h2};
  const TfLiteIntArray* od = output->dims;
  bool same = od != nullptr && od->size == 4;
  for (int i = 0; same && i < 4; ++i) same = od->data[i] == out_dims[i];
  if (!same) {
    TfLiteStatus resized = kTfLiteError;
    if (context->ResizeTensorExplicit != nullptr) {
      resized = context->ResizeTensorExplicit(context, output, 4, out_dims);
    } else {
      // ResizeTensor takes ownership and frees with free() (TfLiteIntArrayFree).
      TfLiteIntArray* dims = static_cast<TfLiteIntArray*>(
          std::malloc(sizeof(TfLiteIntArray) + 4 * sizeof(int)));
      if (dims != nullptr) {
        dims->size = 4;
        std::memcpy(dims->data, out_dims, sizeof(out_dims));
        resized = context->ResizeTensor(context, output, dims);
      }
    }
    if (resized != kTfLiteOk) return Fail(context, "could not resize the output");
  }
  return kTfLiteOk;
}

TfLiteStatus RnnPoolOp::PrepareInt8(TfLiteContext* context) {
  double scales[kNumInputs];
  for (int i = 0; i < kNumInputs; ++i) {
    const TfLiteTensor* t = &context->tensors[tensor_index_[i]];
    scales[i] = t->params.scale;
    if (t->quantization.type != kTfLiteAffineQuantization || !(scales[i] > 0.0) ||
        !std::isfinite(scales[i])) {
      return Fail(context, "%s must be per-tensor affine quantized with a positive scale",
                  kInputNames[i]);
    }
    if (i > 0 && t->params.zero_point != 0) {
      return Fail(context, "%s zero point must be 0, got %d", kInputNames[i],
                  static_cast<int>(t->params.zero_point));
    }
  }
  const TfLiteTensor* output = &context->tensors[tensor_index_[kNumInputs]];
  const double output_scale = output->params.scale;
  if (output->quantization.type != kTfLiteAffineQuantization || !(output_scale > 0.0) ||
      !std::isfinite(output_scale)) {
    return Fail(context, "output must be per-tensor affine quantized with a positive scale");
  }
  const double pre[2] = {float_options_[kRnn1PreactivationScale],
                         float_options_[kRnn2PreactivationScale]};
  const double state[2] = {float_options_[kRnn1StateScale], float_options_[kRnn2StateScale]};
  for (int c = 0; c < 2; ++c) {
    if (!(pre[c] > 0.0) || !std::isfinite(pre[c]) || !(state[c] > 0.0) ||
        !std::isfinite(state[c])) {
      return Fail(context, "rnn%d preactivation / state scales must be positive and finite",
                  c + 1);
    }
    // The int32 biases carry s_pre (contract); allow float32 rounding.
    for (int b : {c == 0 ? 3 : 7, c == 0 ? 4 : 8}) {
      if (std::fabs(scales[b] - pre[c]) > 1e-6 * pre[c]) {
        return Fail(context, "%s scale %g differs from rnn%d_preactivation_scale %g",
                    kInputNames[b], scales[b], c + 1, pre[c]);
      }
    }
  }
  rnnpool::RnnPoolInt8Params& p = int8_params_;
  p.rnn1.zeta_q14 = static_cast<int32_t>(int_options_[kRnn1ZetaQ14]);
  p.rnn1.nu_q14 = static_cast<int32_t>(int_options_[kRnn1NuQ14]);
  p.rnn2.zeta_q14 = static_cast<int32_t>(int_options_[kRnn2ZetaQ14]);
  p.rnn2.nu_q14 = static_cast<int32_t>(int_options_[kRnn2NuQ14]);
  const rnnpool::Activation gate = p.shape.gate_activation;
  const rnnpool::Activation update = p.shape.update_activation;
  for (rnnpool::Int8Cell* cell : {&p.rnn1, &p.rnn2}) {
    cell->gate_table = rnnpool::BuiltinTable(static_cast<int32_t>(gate));
    cell->update_table = rnnpool::BuiltinTable(static_cast<int32_t>(update));
  }
  // Spec 3: RNN1's input scale is s_x, RNN2's is RNN1's state scale; float32
  // tensor scales widened exactly to double, as int8_params.cell_constants does.
  rnnpool::Status status = rnnpool::ComputeCellMultipliers(
      scales[0], scales[1], scales[2], pre[0], state[0], gate, update, &p.rnn1);
  if (status == rnnpool::Status::kOk) {
    status = rnnpool::ComputeCellMultipliers(state[0], scales[5], scales[6], pre[1],
                                             state[1], gate, update, &p.rnn2);
  }
  int shift = 0;
  if (status == rnnpool::Status::kOk) {
    // M_y = s_h(RNN2) / s_y.
    status = rnnpool::QuantizeMultiplier(state[1] / output_scale, &p.output_multiplier.q, &shift);
  }
  if (status != rnnpool::Status::kOk) return Fail(context, "%s", rnnpool::StatusMessage(status));
  p.output_multiplier.shift = shift;
  p.input_zero_point = context->tensors[tensor_index_[0]].params.zero_point;
  p.output_zero_point = output->params.zero_point;
  return kTfLiteOk;
}

template <typename T>
void RnnPoolOp::RunPatches(const rnnpool::RnnPoolShape& shape, const T* input, T* output,
                           int num_threads,
                           void (*patch)(const void*, const T*, int32_t, int32_t, int32_t,
                                         int32_t, T*, void*),
                           const void* params) {
  const int64_t per_image = static_cast<int64_t>(out_h_) * out_w_;
  const int64_t total = per_image * batch_;
  const int32_t pad_top = rnnpool::PaddingBefore(height_, shape.pool_h, shape.stride_h, shape.padding);
  const int32_t pad_left = rnnpool::PaddingBefore(width_, shape.pool_w, shape.stride_w, shape.padding);
  const int64_t image_values = static_cast<int64_t>(height_) * width_ * shape.in_channels;
  const int32_t out_channels = 4 * shape.rnn2_units;
  // Patches [first, last) in output order, on one thread's scratch.
  const auto run = [&](int64_t first, int64_t last, void* scratch) {
    for (int64_t i = first; i < last; ++i) {
      const int64_t b = i / per_image;
      const int32_t oy = static_cast<int32_t>((i % per_image) / out_w_);
      const int32_t ox = static_cast<int32_t>(i % out_w_);
      patch(params, input + b * image_values, height_, width_,
            oy * shape.stride_h - pad_top, ox * shape.stride_w - pad_left,
            output + i * out_channels, scratch);
    }
  };
  std::vector<std::thread> workers;
  for (int w = 1; w < num_threads; ++w) {
    workers.emplace_back(run, total * w / num_threads, total * (w + 1) / num_threads,
                         scratch_[w].data());
  }
  run(0, total / num_threads, scratch_[0].data());
  for (std::thread& worker : workers) worker.join();
}

TfLiteStatus RnnPoolOp::Eval(TfLiteContext* context, const void* input_data,
                             void* output_data) {
  const TfLiteTensor* input = &context->tensors[tensor_index_[0]];
  TfLiteTensor* output = &context->tensors[tensor_index_[kNumInputs]];
  const void* in = input_data != nullptr ? input_data : input->data.raw_const;
  void* out = output_data != nullptr ? output_data : output->data.data;
  if (in == nullptr || out == nullptr) return Fail(context, "input or output has no data");
  if (threads_ == 1) {
    // The whole-map entry point (one int8 plan per call instead of per patch).
    if (is_int8_) {
      rnnpool::RnnPoolInt8(int8_params_, static_cast<const int8_t*>(in), batch_, height_,
                           width_, static_cast<int8_t*>(out), scratch_[0].data());
    } else {
      rnnpool::RnnPoolFloat(float_params_, static_cast<const float*>(in), batch_, height_,
                            width_, static_cast<float*>(out), scratch_[0].data());
    }
  } else if (is_int8_) {
    RunPatches<int8_t>(int8_params_.shape, static_cast<const int8_t*>(in),
                       static_cast<int8_t*>(out), threads_, Int8Patch, &int8_params_);
  } else {
    RunPatches<float>(float_params_.shape, static_cast<const float*>(in),
                      static_cast<float*>(out), threads_, FloatPatch, &float_params_);
  }
  return kTfLiteOk;
}

}  // namespace rnnpool_litert
