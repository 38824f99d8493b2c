/* TFLM kernel of the RNNPool custom op: see rnnpool.h and
 * docs/rnnpool_custom_op.md. The maths is rnnpool_core.{h,cc}. */
#include "tflm_kernels/tflm/rnnpool.h"

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
#include "tflm_kernels/rnnpool_validate.h"

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
constexpr int kStemFilterTensor = 9;  // version 2 only
constexpr int kStemBiasTensor = 10;
constexpr int kOutputTensor = 0;

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  TFLITE_DCHECK(context->AllocatePersistentBuffer != nullptr);
  void* raw = context->AllocatePersistentBuffer(context, sizeof(OpDataRnnPool));
  if (raw == nullptr) return nullptr;
  OpDataRnnPool* data = static_cast<OpDataRnnPool*>(raw);
  std::memset(data, 0, sizeof(*data));
  data->options = buffer;
  data->options_length = length;
  data->scratch_index = -1;
  return data;
}

// The flexbuffer map as typed values, nothing converted (the validator
// rejects a value of the wrong type). Keys point into the model.
rnnpool::OpOptions DecodeOptions(const OpDataRnnPool& data,
                                 rnnpool::OptionValue* values) {
  rnnpool::OpOptions options{rnnpool::OptionsStatus::kOk, values, 0};
  if (data.options == nullptr || data.options_length == 0) {
    options.status = rnnpool::OptionsStatus::kMissing;
    return options;
  }
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(data.options);
  if (!flexbuffers::VerifyBuffer(bytes, data.options_length) ||
      !flexbuffers::GetRoot(bytes, data.options_length).IsMap()) {
    options.status = rnnpool::OptionsStatus::kMalformed;
    return options;
  }
  const flexbuffers::Map map = flexbuffers::GetRoot(bytes, data.options_length).AsMap();
  const flexbuffers::TypedVector keys = map.Keys();
  const flexbuffers::Vector entries = map.Values();
  options.count = static_cast<int32_t>(keys.size());
  if (options.count > rnnpool::kMaxOptionKeys) return options;  // rejected unread
  for (int32_t i = 0; i < options.count; ++i) {
    const flexbuffers::Reference value = entries[static_cast<size_t>(i)];
    rnnpool::OptionValue& out = values[i];
    out = rnnpool::OptionValue();
    out.key = keys[static_cast<size_t>(i)].AsKey();
    if (value.IsBool()) {
      out.type = rnnpool::OptionType::kBool;
    } else if (value.IsInt()) {
      out.type = rnnpool::OptionType::kInt;
      out.int_value = value.AsInt64();
    } else if (value.IsUInt()) {
      out.type = rnnpool::OptionType::kUInt;
      out.uint_value = value.AsUInt64();
    } else if (value.IsFloat()) {
      out.type = rnnpool::OptionType::kFloat;
      out.float_value = value.AsDouble();
    } else if (value.IsString() || value.IsKey()) {
      out.type = rnnpool::OptionType::kString;
    } else {
      out.type = rnnpool::OptionType::kOther;
    }
  }
  return options;
}

static_assert(kTfLiteFloat32 == rnnpool::kTfLiteFloat32Code &&
                  kTfLiteInt32 == rnnpool::kTfLiteInt32Code &&
                  kTfLiteInt8 == rnnpool::kTfLiteInt8Code,
              "TfLiteType codes differ from rnnpool_validate.h's");

// What the validator needs to know of one tensor (null: not present).
rnnpool::TensorDesc Describe(const TfLiteTensor* t) {
  rnnpool::TensorDesc d{};
  if (t == nullptr) return d;
  d.present = true;
  d.type = rnnpool::TensorTypeOfTfLiteType(t->type);
  d.type_name = TfLiteTypeGetName(t->type);
  d.rank = t->dims != nullptr ? t->dims->size : 0;
  d.dims = t->dims != nullptr ? t->dims->data : nullptr;
  d.is_constant = IsConstantTensor(t);
  d.quantization = rnnpool::Quantization::kNone;
  if (t->quantization.type == kTfLiteAffineQuantization) {
    const auto* affine =
        static_cast<const TfLiteAffineQuantization*>(t->quantization.params);
    if (affine == nullptr) {
      d.quantization = rnnpool::Quantization::kPerTensor;
      d.scale = t->params.scale;
      d.zero_point = t->params.zero_point;
    } else if (affine->scale == nullptr || affine->scale->size != 1 ||
               (affine->zero_point != nullptr && affine->zero_point->size > 1)) {
      d.quantization = rnnpool::Quantization::kPerChannel;
      // The scales are read in Prepare, before the temp tensors go.
      rnnpool::DescribeChannels(*affine, &d);
    } else {
      d.quantization = rnnpool::Quantization::kPerTensor;
      d.scale = affine->scale->data[0];
      d.zero_point = affine->zero_point != nullptr && affine->zero_point->size == 1
                         ? affine->zero_point->data[0]
                         : 0;
    }
  }
  return d;
}

// Input / output temp tensors of Prepare, deallocated on every return path.
class TempTensors {
 public:
  TempTensors(MicroContext* micro_context, TfLiteNode* node)
      : micro_context_(micro_context) {
    num_inputs_ = NumInputs(node) < kMaxTensors ? NumInputs(node) : kMaxTensors;
    num_outputs_ = NumOutputs(node) < kMaxTensors ? NumOutputs(node) : kMaxTensors;
    for (int i = 0; i < num_inputs_; ++i) {
      inputs_[i] = micro_context_->AllocateTempInputTensor(node, i);
    }
    for (int i = 0; i < num_outputs_; ++i) {
      outputs_[i] = micro_context_->AllocateTempOutputTensor(node, i);
    }
  }
  ~TempTensors() {
    for (int i = 0; i < num_inputs_; ++i) Free(inputs_[i]);
    for (int i = 0; i < num_outputs_; ++i) Free(outputs_[i]);
  }
  TempTensors(const TempTensors&) = delete;
  TempTensors& operator=(const TempTensors&) = delete;

  // Descriptions of every input / output; returns their counts.
  void Describe(rnnpool::TensorDesc* inputs, int* num_inputs,
                rnnpool::TensorDesc* outputs, int* num_outputs) const {
    for (int i = 0; i < num_inputs_; ++i) inputs[i] = tflite::Describe(inputs_[i]);
    for (int i = 0; i < num_outputs_; ++i) outputs[i] = tflite::Describe(outputs_[i]);
    *num_inputs = num_inputs_;
    *num_outputs = num_outputs_;
  }

  // Points the int8 cells at their constant weights (Prepare, after the
  // validator accepted the op: nine inputs, the right types, constant).
  void BindInt8Weights(rnnpool::RnnPoolInt8Params* params) const {
    BindInt8Cell(kRnn1KernelTensor, &params->rnn1);
    BindInt8Cell(kRnn2KernelTensor, &params->rnn2);
  }

  // More than the contract's 11 inputs (version 2) are only counted (the
  // validator rejects the count before reading any description).
  static constexpr int kMaxTensors = rnnpool::kFusedStemOpInputs;

 private:
  // A cell's four inputs follow each other from `kernel_index` on (static_assert below).
  void BindInt8Cell(int kernel_index, rnnpool::Int8Cell* cell) const {
    cell->kernel = inputs_[kernel_index]->data.int8;
    cell->recurrent_kernel = inputs_[kernel_index + 1]->data.int8;
    cell->gate_bias = inputs_[kernel_index + 2]->data.i32;
    cell->update_bias = inputs_[kernel_index + 3]->data.i32;
  }
  void Free(TfLiteTensor* t) {
    if (t != nullptr) micro_context_->DeallocateTempTfLiteTensor(t);
  }
  MicroContext* micro_context_;
  TfLiteTensor* inputs_[kMaxTensors] = {};
  TfLiteTensor* outputs_[kMaxTensors] = {};
  int num_inputs_ = 0;
  int num_outputs_ = 0;
};

// The fused convolution's per-channel multipliers, in persistent arrays of k
// entries (kept across a second Prepare), as TFLM's CONV_2D keeps them.
TfLiteStatus PrepareStemMultipliers(TfLiteContext* context, const rnnpool::ValidatedOp& op,
                                    const rnnpool::TensorDesc& filter, OpDataRnnPool* data) {
  const size_t bytes = static_cast<size_t>(op.shape.in_channels) * sizeof(int32_t);
  rnnpool::StemInt8Params& stem = data->stem_int8;
  if (stem.multiplier == nullptr || data->shape.in_channels != op.shape.in_channels) {
    stem.multiplier = static_cast<int32_t*>(context->AllocatePersistentBuffer(context, bytes));
    stem.shift = static_cast<int32_t*>(context->AllocatePersistentBuffer(context, bytes));
  }
  if (stem.multiplier == nullptr || stem.shift == nullptr) {
    MicroPrintf("RNNPool: no persistent memory for the stem multipliers (%d bytes)",
                static_cast<int>(2 * bytes));
    return kTfLiteError;
  }
  rnnpool::StemMultipliers(op, filter, const_cast<int32_t*>(stem.multiplier),
                           const_cast<int32_t*>(stem.shift));
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  if (node->user_data == nullptr) {
    MicroPrintf("RNNPool: Init failed (persistent allocation)");
    return kTfLiteError;
  }
  OpDataRnnPool* data = static_cast<OpDataRnnPool*>(node->user_data);
  rnnpool::OptionValue values[rnnpool::kMaxOptionKeys];
  const rnnpool::OpOptions options = DecodeOptions(*data, values);
  rnnpool::TensorDesc inputs[TempTensors::kMaxTensors];
  rnnpool::TensorDesc outputs[TempTensors::kMaxTensors];
  int num_inputs = 0, num_outputs = 0;
  rnnpool::ValidatedOp op;
  char message[rnnpool::kMessageBytes];
  bool ok = false;
  {
    TempTensors tensors(GetMicroContext(context), node);
    tensors.Describe(inputs, &num_inputs, outputs, &num_outputs);
    // The true counts, so a 10th input is reported as such.
    ok = rnnpool::ValidateRnnPoolOp(options, inputs, NumInputs(node), outputs,
                                    NumOutputs(node), &op, message, sizeof(message));
    if (ok && op.is_int8) {
      // The weights are constant (validated): their data stays in the model.
      tensors.BindInt8Weights(&op.int8_params);
    }
    if (ok && op.has_stem && op.is_int8 &&
        PrepareStemMultipliers(context, op, inputs[kStemFilterTensor], data) != kTfLiteOk) {
      return kTfLiteError;
    }
  }  // ~TempTensors deallocates
  if (!ok) {
    MicroPrintf("RNNPool: %s", message);
    return kTfLiteError;
  }
  data->has_stem = op.has_stem;
  if (op.has_stem) {
    const rnnpool::ValidatedStem& stem = op.stem;
    data->stem_int8.shape = data->stem_float.shape = stem.shape;
    data->stem_int8.input_offset = stem.input_offset;
    data->stem_int8.output_offset = stem.output_offset;
    data->stem_int8.activation_min = stem.activation_min_int8;
    data->stem_int8.activation_max = stem.activation_max_int8;
    data->stem_float.activation_min = stem.activation_min;
    data->stem_float.activation_max = stem.activation_max;
  }
  data->is_int8 = op.is_int8;
  data->shape = op.shape;
  data->float_params = op.float_params;
  if (op.is_int8) {
    // Prepare may run again (AllocateTensors twice): reuse the buffer.
    if (data->int8_plan == nullptr) {
      data->int8_plan = static_cast<rnnpool::RnnPoolInt8Plan*>(
          context->AllocatePersistentBuffer(context, sizeof(rnnpool::RnnPoolInt8Plan)));
    }
    if (data->int8_plan == nullptr) {
      MicroPrintf("RNNPool: no persistent memory for the int8 plan (%d bytes)",
                  static_cast<int>(sizeof(rnnpool::RnnPoolInt8Plan)));
      return kTfLiteError;
    }
    const rnnpool::Status status = rnnpool::PrepareInt8Plan(op.int8_params, data->int8_plan);
    if (status != rnnpool::Status::kOk) {
      MicroPrintf("RNNPool: %s", rnnpool::StatusMessage(status));
      return kTfLiteError;
    }
  }
  TF_LITE_ENSURE_OK(context, context->RequestScratchBufferInArena(
                                 context, op.scratch_bytes, &data->scratch_index));
  return kTfLiteOk;
}

// A float cell's weights at Eval: its four constant inputs follow each other
// from `kernel_index` on: kernel, recurrent kernel, gate and update bias.
static_assert(kRnn1RecurrentTensor == kRnn1KernelTensor + 1 &&
                  kRnn1GateBiasTensor == kRnn1KernelTensor + 2 &&
                  kRnn1UpdateBiasTensor == kRnn1KernelTensor + 3 &&
                  kRnn2RecurrentTensor == kRnn2KernelTensor + 1 &&
                  kRnn2GateBiasTensor == kRnn2KernelTensor + 2 &&
                  kRnn2UpdateBiasTensor == kRnn2KernelTensor + 3,
              "BindCellWeights / BindInt8Cell read a cell's four inputs in contract order");

void BindCellWeights(TfLiteContext* context, TfLiteNode* node, int kernel_index,
                     rnnpool::FloatCell* cell) {
  cell->kernel = micro::GetTensorData<float>(micro::GetEvalInput(context, node, kernel_index));
  cell->recurrent_kernel =
      micro::GetTensorData<float>(micro::GetEvalInput(context, node, kernel_index + 1));
  cell->gate_bias =
      micro::GetTensorData<float>(micro::GetEvalInput(context, node, kernel_index + 2));
  cell->update_bias =
      micro::GetTensorData<float>(micro::GetEvalInput(context, node, kernel_index + 3));
}

// Float Eval: `params` is Prepare's precomputed copy, completed with the weights.
void EvalFloat(TfLiteContext* context, TfLiteNode* node, rnnpool::RnnPoolFloatParams params,
               void* scratch) {
  BindCellWeights(context, node, kRnn1KernelTensor, &params.rnn1);
  BindCellWeights(context, node, kRnn2KernelTensor, &params.rnn2);
  const TfLiteEvalTensor* input = micro::GetEvalInput(context, node, kInputTensor);
  TfLiteEvalTensor* output = micro::GetEvalOutput(context, node, kOutputTensor);
  rnnpool::RnnPoolFloat(params, micro::GetTensorData<float>(input), input->dims->data[0],
                        input->dims->data[1], input->dims->data[2],
                        micro::GetTensorData<float>(output), scratch);
}

// int8 Eval: the plan holds everything else.
void EvalInt8(TfLiteContext* context, TfLiteNode* node, const rnnpool::RnnPoolInt8Plan& plan,
              void* scratch) {
  const TfLiteEvalTensor* input = micro::GetEvalInput(context, node, kInputTensor);
  TfLiteEvalTensor* output = micro::GetEvalOutput(context, node, kOutputTensor);
  rnnpool::RnnPoolInt8(plan, micro::GetTensorData<int8_t>(input), input->dims->data[0],
                       input->dims->data[1], input->dims->data[2],
                       micro::GetTensorData<int8_t>(output), scratch);
}

// Fused form: Prepare's convolution parameters completed with its weights.
template <typename T, typename B, typename Stem>
Stem WithStemWeights(TfLiteContext* context, TfLiteNode* node, Stem stem) {
  stem.filter = micro::GetTensorData<T>(micro::GetEvalInput(context, node, kStemFilterTensor));
  stem.bias = micro::GetTensorData<B>(micro::GetEvalInput(context, node, kStemBiasTensor));
  return stem;
}

void EvalStem(TfLiteContext* context, TfLiteNode* node, const OpDataRnnPool& data,
              void* scratch) {
  const TfLiteEvalTensor* input = micro::GetEvalInput(context, node, kInputTensor);
  TfLiteEvalTensor* output = micro::GetEvalOutput(context, node, kOutputTensor);
  const int32_t batch = input->dims->data[0];
  if (data.is_int8) {
    rnnpool::StemRnnPoolInt8(WithStemWeights<int8_t, int32_t>(context, node, data.stem_int8),
                             *data.int8_plan, micro::GetTensorData<int8_t>(input), batch,
                             micro::GetTensorData<int8_t>(output), scratch);
    return;
  }
  rnnpool::RnnPoolFloatParams params = data.float_params;
  BindCellWeights(context, node, kRnn1KernelTensor, &params.rnn1);
  BindCellWeights(context, node, kRnn2KernelTensor, &params.rnn2);
  rnnpool::StemRnnPoolFloat(WithStemWeights<float, float>(context, node, data.stem_float),
                            params, micro::GetTensorData<float>(input), batch,
                            micro::GetTensorData<float>(output), scratch);
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const OpDataRnnPool& data = *static_cast<const OpDataRnnPool*>(node->user_data);
  void* scratch = context->GetScratchBuffer(context, data.scratch_index);
  TFLITE_DCHECK(scratch != nullptr);
  if (data.has_stem) {
    EvalStem(context, node, data, scratch);
  } else if (data.is_int8) {
    TFLITE_DCHECK(data.int8_plan != nullptr);
    EvalInt8(context, node, *data.int8_plan, scratch);
  } else {
    EvalFloat(context, node, data.float_params, scratch);
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_RNNPOOL() {
  static TFLMRegistration registration = micro::RegisterOp(Init, Prepare, Eval);
  return &registration;
}

}  // namespace tflite
