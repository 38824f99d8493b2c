/* See rnnpool_op.h. Every check of docs/rnnpool_custom_op.md and the int8
 * multipliers come from rnnpool::ValidateRnnPoolOp (tflm_kernels/rnnpool_validate.h),
 * the validator of TFLM's Prepare and the host tools; this file only describes
 * the runtime's tensors to it and runs the core. */
#include "rnnpool_op.h"

#include <cstdlib>
#include <cstring>
#include <thread>

#include "flexbuffer_map.h"

namespace rnnpool_litert {
namespace {

constexpr int kRnn1Kernel = 1;
constexpr int kRnn2Kernel = 5;
constexpr int kStemFilter = 9;  // version 2 (fused convolution) only
constexpr int kStemBias = 10;
constexpr int kOutput = rnnpool::kFusedStemOpInputs;  // in tensor_index_

// The runtime's name of a type the contract does not use (for messages).
const char* TypeName(TfLiteType type) {
  switch (type) {
    case kTfLiteUInt8: return "uint8";
    case kTfLiteInt16: return "int16";
    case kTfLiteInt64: return "int64";
    case kTfLiteBool: return "bool";
    case kTfLiteString: return "string";
    default: return "an unsupported type";
  }
}

static_assert(kTfLiteFloat32 == rnnpool::kTfLiteFloat32Code &&
                  kTfLiteInt32 == rnnpool::kTfLiteInt32Code &&
                  kTfLiteInt8 == rnnpool::kTfLiteInt8Code,
              "TfLiteType codes differ from rnnpool_validate.h's");

// What the validator needs to know of tensor `index` (absent: out of range).
rnnpool::TensorDesc Describe(const TfLiteContext* context, int index) {
  rnnpool::TensorDesc d{};
  if (index < 0 || static_cast<size_t>(index) >= context->tensors_size) return d;
  const TfLiteTensor& t = context->tensors[index];
  d.present = true;
  d.type = rnnpool::TensorTypeOfTfLiteType(t.type);
  d.type_name = TypeName(t.type);
  d.rank = t.dims != nullptr ? t.dims->size : 0;
  d.dims = t.dims != nullptr ? t.dims->data : nullptr;
  // TFLite's IsConstantTensor, and data to bind at Eval.
  d.is_constant = (t.allocation_type == kTfLiteMmapRo ||
                   t.allocation_type == kTfLitePersistentRo) &&
                  t.data.raw != nullptr;
  d.quantization = rnnpool::Quantization::kNone;
  if (t.quantization.type == kTfLiteAffineQuantization) {
    const auto* affine = static_cast<const TfLiteAffineQuantization*>(t.quantization.params);
    const bool per_channel =
        affine != nullptr &&
        ((affine->scale != nullptr && affine->scale->size > 1) ||
         (affine->zero_point != nullptr && affine->zero_point->size > 1));
    d.quantization = per_channel ? rnnpool::Quantization::kPerChannel
                                 : rnnpool::Quantization::kPerTensor;
    d.scale = t.params.scale;
    d.zero_point = t.params.zero_point;
    if (per_channel) rnnpool::DescribeChannels(*affine, &d);  // scales live with the tensor
  }
  return d;
}

// The per-patch core kernels behind one signature, for RunPatches.
void Int8Patch(const void* plan, const int8_t* image, int32_t height, int32_t width,
               int32_t top, int32_t left, int8_t* output, void* scratch) {
  rnnpool::RnnPoolPatchInt8(*static_cast<const rnnpool::RnnPoolInt8Plan*>(plan), image,
                            height, width, top, left, output, scratch);
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

RnnPoolOp::RnnPoolOp(const void* options, size_t length, int64_t min_madds_per_thread)
    : min_madds_per_thread_(min_madds_per_thread < 1 ? 1 : min_madds_per_thread) {
  options_ = ReadFlexOptions(static_cast<const uint8_t*>(options), length, option_values_,
                             rnnpool::kMaxOptionKeys);
}

TfLiteStatus RnnPoolOp::Fail(TfLiteContext* context, const char* message) const {
  // Printable ASCII only: a damaged blob's key must not break the caller's
  // (Python's) decoding of the message.
  char text[rnnpool::kMessageBytes];
  size_t n = 0;
  for (; message[n] != '\0' && n + 1 < sizeof(text); ++n) {
    const unsigned char c = static_cast<unsigned char>(message[n]);
    text[n] = c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  text[n] = '\0';
  context->ReportError(context, "RNNPool: %s", text);
  return kTfLiteError;
}

size_t RnnPoolOp::output_bytes() const {
  const size_t values = static_cast<size_t>(op_.batch) * op_.out_height * op_.out_width *
                        4 * op_.shape.rnn2_units;
  return values * (op_.is_int8 ? 1 : sizeof(float));
}

void RnnPoolOp::PrepareStem(const TfLiteContext* context, const rnnpool::TensorDesc& filter) {
  const rnnpool::ValidatedStem& stem = op_.stem;
  const void* filter_data = context->tensors[tensor_index_[kStemFilter]].data.raw;
  const void* bias_data = context->tensors[tensor_index_[kStemBias]].data.raw;
  if (op_.is_int8) {
    const size_t k = static_cast<size_t>(op_.shape.in_channels);
    stem_multiplier_.assign(k, 0);
    stem_shift_.assign(k, 0);
    rnnpool::StemMultipliers(op_, filter, stem_multiplier_.data(), stem_shift_.data());
    stem_int8_.shape = stem.shape;
    stem_int8_.filter = static_cast<const int8_t*>(filter_data);
    stem_int8_.bias = static_cast<const int32_t*>(bias_data);
    stem_int8_.multiplier = stem_multiplier_.data();
    stem_int8_.shift = stem_shift_.data();
    stem_int8_.input_offset = stem.input_offset;
    stem_int8_.output_offset = stem.output_offset;
    stem_int8_.activation_min = stem.activation_min_int8;
    stem_int8_.activation_max = stem.activation_max_int8;
    // The host form (AVX2) where the CPU has it and the bounds allow.
    stem_simd_.assign((rnnpool::StemInt8SimdBytes(stem.shape) + 15) / 16, Block{});
    rnnpool::PrepareStemInt8Simd(&stem_int8_, stem_simd_.empty() ? nullptr : stem_simd_.data());
  } else {
    stem_float_.shape = stem.shape;
    stem_float_.filter = static_cast<const float*>(filter_data);
    stem_float_.bias = static_cast<const float*>(bias_data);
    stem_float_.activation_min = stem.activation_min;
    stem_float_.activation_max = stem.activation_max;
  }
}

TfLiteStatus RnnPoolOp::Prepare(TfLiteContext* context, const TfLiteIntArray* inputs,
                                const TfLiteIntArray* outputs) {
  rnnpool::TensorDesc in[rnnpool::kFusedStemOpInputs] = {};
  rnnpool::TensorDesc out{};
  for (int i = 0; i < rnnpool::kFusedStemOpInputs && i < inputs->size; ++i) {
    tensor_index_[i] = inputs->data[i];
    in[i] = Describe(context, inputs->data[i]);
  }
  if (outputs->size >= 1) {
    tensor_index_[kOutput] = outputs->data[0];
    out = Describe(context, outputs->data[0]);
  }
  // The model's output shape is checked once; after an input resize the op
  // sets it: the last validated geometry applied to the new input.
  int resized[4];  // TensorDesc::dims's type
  if (validated_once_ && in[0].present && in[0].rank == 4 && in[0].dims != nullptr) {
    const rnnpool::RnnPoolShape& s = op_.shape;
    int32_t height = in[0].dims[1], width = in[0].dims[2];
    if (op_.has_stem) {  // RNNPool reads the convolution's map
      const rnnpool::StemShape& g = op_.stem.shape;
      const rnnpool::Padding padding =
          op_.stem.padding == 0 ? rnnpool::Padding::kValid : rnnpool::Padding::kSame;
      height = rnnpool::OutputSize(height, g.kernel_h, g.stride_h, padding);
      width = rnnpool::OutputSize(width, g.kernel_w, g.stride_w, padding);
    }
    resized[0] = in[0].dims[0];
    resized[1] = rnnpool::OutputSize(height, s.pool_h, s.stride_h, s.padding);
    resized[2] = rnnpool::OutputSize(width, s.pool_w, s.stride_w, s.padding);
    resized[3] = 4 * s.rnn2_units;
    out.rank = 4;
    out.dims = resized;
  }
  char message[rnnpool::kMessageBytes];
  if (!rnnpool::ValidateRnnPoolOp(options_, in, inputs->size, &out, outputs->size, &op_,
                                  message, sizeof(message))) {
    return Fail(context, message);
  }
  validated_once_ = true;

  // Weights are constant tensors: bind them once.
  if (op_.is_int8) {
    rnnpool::RnnPoolInt8Params& p = op_.int8_params;
    BindCell<int8_t, int32_t>(context, tensor_index_, kRnn1Kernel, &p.rnn1);
    BindCell<int8_t, int32_t>(context, tensor_index_, kRnn2Kernel, &p.rnn2);
    const rnnpool::Status status = rnnpool::PrepareInt8Plan(p, &int8_plan_);
    if (status != rnnpool::Status::kOk) {
      return Fail(context, rnnpool::StatusMessage(status));
    }
  } else {
    BindCell<float, float>(context, tensor_index_, kRnn1Kernel, &op_.float_params.rnn1);
    BindCell<float, float>(context, tensor_index_, kRnn2Kernel, &op_.float_params.rnn2);
  }
  if (op_.has_stem) PrepareStem(context, in[kStemFilter]);
  // Threads: the interpreter's num_threads (-1, its default, means one), but
  // each thread must get at least min_madds_per_thread_ of work: a thread is
  // started and joined per invoke (tens of microseconds, far more when the
  // cores are busy), which would cost more than it saves on a small map
  // (VWW at 96x96: 121 patches, 1.2M, about half a millisecond on one core).
  // Each thread gets its own scratch, allocated here.
  const int64_t patches = static_cast<int64_t>(op_.batch) * op_.out_height * op_.out_width;
  const rnnpool::RnnPoolShape& s = op_.shape;
  const int64_t h1 = s.rnn1_units, h2 = s.rnn2_units, pixels = int64_t{s.pool_h} * s.pool_w;
  const int64_t summaries = 2 * (int64_t{s.pool_h} + s.pool_w);  // RNN2 steps, both ways
  const int64_t patch_madds = pixels * (s.in_channels * h1 + 2 * h1 * h1) +
                              summaries * (h1 * h2 + h2 * h2);
  int64_t stem_madds = 0;  // the fused convolution's, every stem pixel once
  if (op_.has_stem) {
    const rnnpool::StemShape& g = op_.stem.shape;
    stem_madds = int64_t{op_.batch} * g.out_height * g.out_width * g.out_channels *
                 g.kernel_h * g.kernel_w * g.in_channels;
  }
  const int64_t most = (patches * patch_madds + stem_madds) / min_madds_per_thread_;
  threads_ = context->recommended_num_threads < 1 ? 1 : context->recommended_num_threads;
  if (threads_ > most) threads_ = most > 1 ? static_cast<int>(most) : 1;
  scratch_.assign(threads_, std::vector<Block>((op_.scratch_bytes + 15) / 16));

  // Output [B, H', W', 4 h2]: resize if the tensor's shape is not that.
  TfLiteTensor* output = &context->tensors[tensor_index_[kOutput]];
  const int out_dims[4] = {op_.batch, op_.out_height, op_.out_width,
                           4 * op_.shape.rnn2_units};
  const TfLiteIntArray* od = output->dims;
  bool same = od != nullptr && od->size == 4;
  for (int i = 0; same && i < 4; ++i) same = od->data[i] == out_dims[i];
  if (!same) {
    TfLiteStatus resized_ok = kTfLiteError;
    if (context->ResizeTensorExplicit != nullptr) {
      resized_ok = context->ResizeTensorExplicit(context, output, 4, out_dims);
    } else {
      // ResizeTensor takes ownership and frees with free() (TfLiteIntArrayFree).
      TfLiteIntArray* dims = static_cast<TfLiteIntArray*>(
          std::malloc(sizeof(TfLiteIntArray) + 4 * sizeof(int)));
      if (dims != nullptr) {
        dims->size = 4;
        std::memcpy(dims->data, out_dims, sizeof(out_dims));
        resized_ok = context->ResizeTensor(context, output, dims);
      }
    }
    if (resized_ok != kTfLiteOk) return Fail(context, "could not resize the output");
  }
  return kTfLiteOk;
}

template <typename Fn>
void RnnPoolOp::SplitOverThreads(int64_t total, int threads, const Fn& run) {
  std::vector<std::thread> workers;
  for (int w = 1; w < threads; ++w) {
    workers.emplace_back(run, total * w / threads, total * (w + 1) / threads,
                         scratch_[w].data());
  }
  run(0, total / threads, scratch_[0].data());
  for (std::thread& worker : workers) worker.join();
}

template <typename T>
void RnnPoolOp::RunPatches(const T* input, T* output,
                           void (*patch)(const void*, const T*, int32_t, int32_t, int32_t,
                                         int32_t, T*, void*),
                           const void* params) {
  const rnnpool::RnnPoolShape& shape = op_.shape;
  const int32_t height = op_.height, width = op_.width, out_w = op_.out_width;
  const int64_t per_image = static_cast<int64_t>(op_.out_height) * out_w;
  const int64_t total = per_image * op_.batch;
  const int32_t pad_top = rnnpool::PaddingBefore(height, shape.pool_h, shape.stride_h, shape.padding);
  const int32_t pad_left = rnnpool::PaddingBefore(width, shape.pool_w, shape.stride_w, shape.padding);
  const int64_t image_values = static_cast<int64_t>(height) * width * shape.in_channels;
  const int32_t out_channels = 4 * shape.rnn2_units;
  // Patches [first, last) in output order, on one thread's scratch.
  const auto run = [&](int64_t first, int64_t last, void* scratch) {
    for (int64_t i = first; i < last; ++i) {
      const int64_t b = i / per_image;
      const int32_t oy = static_cast<int32_t>((i % per_image) / out_w);
      const int32_t ox = static_cast<int32_t>(i % out_w);
      patch(params, input + b * image_values, height, width,
            oy * shape.stride_h - pad_top, ox * shape.stride_w - pad_left,
            output + i * out_channels, scratch);
    }
  };
  SplitOverThreads(total, threads_, run);
}

void RnnPoolOp::RunStemRows(const void* input, void* output) {
  // Rows of patches split evenly over the threads; each range computes the
  // stem rows it reads in its own scratch (a shared row is computed twice).
  const int32_t rows = rnnpool::StemRnnPoolRows(op_.stem.shape, op_.shape, op_.batch);
  const auto run = [&](int64_t begin, int64_t end, void* scratch) {
    if (op_.is_int8) {
      rnnpool::StemRnnPoolInt8Rows(stem_int8_, int8_plan_, static_cast<const int8_t*>(input),
                                   static_cast<int32_t>(begin), static_cast<int32_t>(end),
                                   static_cast<int8_t*>(output), scratch);
    } else {
      rnnpool::StemRnnPoolFloatRows(stem_float_, op_.float_params,
                                    static_cast<const float*>(input), static_cast<int32_t>(begin),
                                    static_cast<int32_t>(end), static_cast<float*>(output),
                                    scratch);
    }
  };
  SplitOverThreads(rows, threads_ < rows ? threads_ : (rows > 1 ? rows : 1), run);
}

TfLiteStatus RnnPoolOp::Eval(TfLiteContext* context, const void* input_data,
                             void* output_data) {
  const TfLiteTensor* input = &context->tensors[tensor_index_[0]];
  TfLiteTensor* output = &context->tensors[tensor_index_[kOutput]];
  const void* in = input_data != nullptr ? input_data : input->data.raw_const;
  void* out = output_data != nullptr ? output_data : output->data.data;
  if (in == nullptr || out == nullptr) return Fail(context, "input or output has no data");
  if (op_.has_stem) {
    RunStemRows(in, out);
  } else if (threads_ == 1) {
    // The whole-map entry point.
    if (op_.is_int8) {
      rnnpool::RnnPoolInt8(int8_plan_, static_cast<const int8_t*>(in), op_.batch, op_.height,
                           op_.width, static_cast<int8_t*>(out), scratch_[0].data());
    } else {
      rnnpool::RnnPoolFloat(op_.float_params, static_cast<const float*>(in), op_.batch,
                            op_.height, op_.width, static_cast<float*>(out),
                            scratch_[0].data());
    }
  } else if (op_.is_int8) {
    RunPatches<int8_t>(static_cast<const int8_t*>(in), static_cast<int8_t*>(out), Int8Patch,
                       &int8_plan_);
  } else {
    RunPatches<float>(static_cast<const float*>(in), static_cast<float*>(out), FloatPatch,
                      &op_.float_params);
  }
  return kTfLiteOk;
}

}  // namespace rnnpool_litert
