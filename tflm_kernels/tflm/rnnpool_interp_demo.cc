/* End-to-end host check: a .tflite with one CUSTOM "RNNPool" operator, built
 * in memory with the host flatbuffers library (the contract of
 * docs/rnnpool_custom_op.md: 9 inputs, weights as constant buffers,
 * flexbuffer custom_options), run through MicroInterpreter and
 * RecordingMicroInterpreter with the resolver of example_resolver.cc.
 * Uses the golden data of rnnpool_test_vectors.h (a float model and an int8
 * model), checks the outputs (float: 2e-5, int8: bit-exact), prints arena
 * usage and the recording allocator's breakdown. Prints ~~~DEMO PASSED~~~
 * and returns 0 on success. Host only (std::vector, flatbuffers builder). */
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "flatbuffers/flatbuffers.h"
#include "flatbuffers/flexbuffers.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/recording_micro_interpreter.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tflm_kernels/tflm/example_resolver.h"
#include "tflm_kernels/tflm/rnnpool.h"
#include "tflm_kernels/tflm/rnnpool_test_vectors.h"

namespace {

namespace tv = rnnpool_test_vectors;

struct TensorSpec {
  const int* dims;   // {rank, d0, ...}
  const void* data;  // nullptr: activation tensor
  size_t element_bytes;
  tflite::TensorType type;
  bool quantized;
  float scale;
  int zero_point;
};

int Elements(const int* dims) {
  int n = 1;
  for (int i = 1; i <= dims[0]; ++i) n *= dims[i];
  return n;
}

std::vector<uint8_t> BuildModel(const TensorSpec (&specs)[10],
                                const std::vector<uint8_t>& options) {
  static flatbuffers::DefaultAllocator allocator;  // TFLM's patch needs one
  flatbuffers::FlatBufferBuilder fbb(4096, &allocator);
  std::vector<flatbuffers::Offset<tflite::Buffer>> buffers = {
      tflite::CreateBuffer(fbb)};  // buffer 0: empty (activations)
  std::vector<flatbuffers::Offset<tflite::Tensor>> tensors;
  for (int i = 0; i < 10; ++i) {
    const TensorSpec& s = specs[i];
    uint32_t buffer_index = 0;
    if (s.data != nullptr) {
      const size_t bytes = Elements(s.dims) * s.element_bytes;
      fbb.ForceVectorAlignment(bytes, 1, 16);
      auto data = fbb.CreateVector(static_cast<const uint8_t*>(s.data), bytes);
      buffer_index = static_cast<uint32_t>(buffers.size());
      buffers.push_back(tflite::CreateBuffer(fbb, data));
    }
    flatbuffers::Offset<tflite::QuantizationParameters> quant = 0;
    if (s.quantized) {
      const float scale[] = {s.scale};
      const int64_t zero_point[] = {s.zero_point};
      quant = tflite::CreateQuantizationParameters(
          fbb, 0, 0, fbb.CreateVector(scale, 1), fbb.CreateVector(zero_point, 1));
    }
    char name[16];
    std::snprintf(name, sizeof(name), "t%d", i);
    // The schema's shape is int32; `int` is not int32_t on every target (arm-none-eabi).
    const std::vector<int32_t> shape(s.dims + 1, s.dims + 1 + s.dims[0]);
    tensors.push_back(tflite::CreateTensor(
        fbb, fbb.CreateVector(shape), s.type, buffer_index,
        fbb.CreateString(name), quant));
  }
  const int32_t op_inputs[] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  const int32_t graph_inputs[] = {0}, outputs[] = {9};
  auto op = tflite::CreateOperator(
      fbb, 0, fbb.CreateVector(op_inputs, 9), fbb.CreateVector(outputs, 1),
      tflite::BuiltinOptions_NONE, 0, fbb.CreateVector(options),
      tflite::CustomOptionsFormat_FLEXBUFFERS);
  auto subgraph = tflite::CreateSubGraph(
      fbb, fbb.CreateVector(tensors), fbb.CreateVector(graph_inputs, 1),
      fbb.CreateVector(outputs, 1),
      fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::Operator>>{op}),
      fbb.CreateString("main"));
  auto opcode = tflite::CreateOperatorCode(
      fbb, tflite::BuiltinOperator_CUSTOM, fbb.CreateString(tflite::kRnnPoolCustomName),
      1, tflite::BuiltinOperator_CUSTOM);
  auto model = tflite::CreateModel(
      fbb, 3,
      fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::OperatorCode>>{opcode}),
      fbb.CreateVector(std::vector<flatbuffers::Offset<tflite::SubGraph>>{subgraph}),
      fbb.CreateString("rnnpool demo"), fbb.CreateVector(buffers));
  tflite::FinishModelBuffer(fbb, model);
  return std::vector<uint8_t>(fbb.GetBufferPointer(),
                              fbb.GetBufferPointer() + fbb.GetSize());
}

void CommonOptions(flexbuffers::Builder& b, int pool_h, int pool_w, int stride_h,
                   int stride_w, int padding, int gate, int update) {
  b.Int("version", 1);
  b.Int("pool_h", pool_h);
  b.Int("pool_w", pool_w);
  b.Int("stride_h", stride_h);
  b.Int("stride_w", stride_w);
  b.Int("padding", padding);
  b.Int("gate_activation", gate);
  b.Int("update_activation", update);
}

alignas(16) uint8_t g_arena[16 * 1024];

// Runs the model with interpreter type Interp; returns 0 if the output matches.
template <typename Interp, typename T>
int RunModel(const std::vector<uint8_t>& model_data, const char* label,
             const T* input, const T* expected, int n_out, float tolerance) {
  const tflite::Model* model = tflite::GetModel(model_data.data());
  rnnpool_example::RnnPoolOpResolver resolver;
  if (rnnpool_example::RegisterRnnPoolModelOps(resolver) != kTfLiteOk) return 1;
  std::memset(g_arena, 0, sizeof(g_arena));
  Interp interpreter(model, resolver, g_arena, sizeof(g_arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("%s: AllocateTensors failed", label);
    return 1;
  }
  TfLiteTensor* in = interpreter.input(0);
  std::memcpy(in->data.raw, input, in->bytes);
  if (interpreter.Invoke() != kTfLiteOk) {
    MicroPrintf("%s: Invoke failed", label);
    return 1;
  }
  const TfLiteTensor* out = interpreter.output(0);
  if (static_cast<int>(out->bytes) != n_out * static_cast<int>(sizeof(T))) {
    MicroPrintf("%s: output has %d bytes", label, static_cast<int>(out->bytes));
    return 1;
  }
  const T* got = reinterpret_cast<const T*>(out->data.raw);
  int bad = 0;
  for (int i = 0; i < n_out; ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - static_cast<double>(expected[i]));
    if (diff > static_cast<double>(tolerance)) ++bad;
  }
  MicroPrintf("%s: %d outputs, %d mismatches, arena_used_bytes=%d", label, n_out,
              bad, static_cast<int>(interpreter.arena_used_bytes()));
  return bad == 0 ? 0 : 1;
}

template <typename T>
int RunBoth(const std::vector<uint8_t>& model, const char* name, const T* input,
            const T* expected, int n_out, float tolerance) {
  int rc = RunModel<tflite::MicroInterpreter>(model, name, input, expected, n_out,
                                              tolerance);
  const tflite::Model* m = tflite::GetModel(model.data());
  rnnpool_example::RnnPoolOpResolver resolver;
  if (rnnpool_example::RegisterRnnPoolModelOps(resolver) != kTfLiteOk) return 1;
  std::memset(g_arena, 0, sizeof(g_arena));
  tflite::RecordingMicroInterpreter recording(m, resolver, g_arena, sizeof(g_arena));
  if (recording.AllocateTensors() != kTfLiteOk) return 1;
  MicroPrintf("%s (RecordingMicroInterpreter): arena_used_bytes=%d", name,
              static_cast<int>(recording.arena_used_bytes()));
  recording.GetMicroAllocator().PrintAllocations();
  return rc;
}

int FloatModel() {
  namespace c = tv::float_case;
  const TensorSpec specs[10] = {
      {c::kInputDims, nullptr, 4, tflite::TensorType_FLOAT32, false, 0, 0},
      {c::kRnn1KernelDims, c::kRnn1Kernel, 4, tflite::TensorType_FLOAT32, false, 0, 0},
      {c::kRnn1RecurrentDims, c::kRnn1Recurrent, 4, tflite::TensorType_FLOAT32, false, 0, 0},
      {c::kRnn1GateBiasDims, c::kRnn1GateBias, 4, tflite::TensorType_FLOAT32, false, 0, 0},
      {c::kRnn1UpdateBiasDims, c::kRnn1UpdateBias, 4, tflite::TensorType_FLOAT32, false, 0, 0},
      {c::kRnn2KernelDims, c::kRnn2Kernel, 4, tflite::TensorType_FLOAT32, false, 0, 0},
      {c::kRnn2RecurrentDims, c::kRnn2Recurrent, 4, tflite::TensorType_FLOAT32, false, 0, 0},
      {c::kRnn2GateBiasDims, c::kRnn2GateBias, 4, tflite::TensorType_FLOAT32, false, 0, 0},
      {c::kRnn2UpdateBiasDims, c::kRnn2UpdateBias, 4, tflite::TensorType_FLOAT32, false, 0, 0},
      {c::kOutputDims, nullptr, 4, tflite::TensorType_FLOAT32, false, 0, 0},
  };
  flexbuffers::Builder b;
  b.Map([&]() {
    CommonOptions(b, c::kPoolH, c::kPoolW, c::kStrideH, c::kStrideW, c::kPadding,
                  c::kGate, c::kUpdate);
    b.Float("rnn1_zeta", c::kRnn1Zeta);
    b.Float("rnn1_nu", c::kRnn1Nu);
    b.Float("rnn2_zeta", c::kRnn2Zeta);
    b.Float("rnn2_nu", c::kRnn2Nu);
  });
  b.Finish();
  const std::vector<uint8_t> model = BuildModel(specs, b.GetBuffer());
  MicroPrintf("float model: %d bytes", static_cast<int>(model.size()));
  return RunBoth(model, "float", c::kInput, c::kExpected, Elements(c::kOutputDims),
                 2e-5f);
}

int Int8Model() {
  namespace c = tv::int8_case;
  using tflite::TensorType_INT32;
  using tflite::TensorType_INT8;
  const TensorSpec specs[10] = {
      {c::kInputDims, nullptr, 1, TensorType_INT8, true, c::kInputScale, c::kInputZeroPoint},
      {c::kRnn1KernelDims, c::kRnn1Kernel, 1, TensorType_INT8, true, c::kRnn1KernelScale, 0},
      {c::kRnn1RecurrentDims, c::kRnn1Recurrent, 1, TensorType_INT8, true, c::kRnn1RecurrentScale, 0},
      {c::kRnn1GateBiasDims, c::kRnn1GateBias, 4, TensorType_INT32, true, c::kRnn1PreScale, 0},
      {c::kRnn1UpdateBiasDims, c::kRnn1UpdateBias, 4, TensorType_INT32, true, c::kRnn1PreScale, 0},
      {c::kRnn2KernelDims, c::kRnn2Kernel, 1, TensorType_INT8, true, c::kRnn2KernelScale, 0},
      {c::kRnn2RecurrentDims, c::kRnn2Recurrent, 1, TensorType_INT8, true, c::kRnn2RecurrentScale, 0},
      {c::kRnn2GateBiasDims, c::kRnn2GateBias, 4, TensorType_INT32, true, c::kRnn2PreScale, 0},
      {c::kRnn2UpdateBiasDims, c::kRnn2UpdateBias, 4, TensorType_INT32, true, c::kRnn2PreScale, 0},
      {c::kOutputDims, nullptr, 1, TensorType_INT8, true, c::kOutputScale, c::kOutputZeroPoint},
  };
  flexbuffers::Builder b;
  b.Map([&]() {
    CommonOptions(b, c::kPoolH, c::kPoolW, c::kStrideH, c::kStrideW, c::kPadding,
                  c::kGate, c::kUpdate);
    b.Int("rnn1_zeta_q14", c::kRnn1ZetaQ14);
    b.Int("rnn1_nu_q14", c::kRnn1NuQ14);
    b.Int("rnn2_zeta_q14", c::kRnn2ZetaQ14);
    b.Int("rnn2_nu_q14", c::kRnn2NuQ14);
    b.Float("rnn1_preactivation_scale", c::kRnn1PreScale);
    b.Float("rnn1_state_scale", c::kRnn1StateScale);
    b.Float("rnn2_preactivation_scale", c::kRnn2PreScale);
    b.Float("rnn2_state_scale", c::kRnn2StateScale);
  });
  b.Finish();
  const std::vector<uint8_t> model = BuildModel(specs, b.GetBuffer());
  MicroPrintf("int8 model: %d bytes", static_cast<int>(model.size()));
  return RunBoth(model, "int8", c::kInput, c::kExpected, Elements(c::kOutputDims),
                 0.0f);
}

}  // namespace

int main() {
  tflite::InitializeTarget();
  int rc = FloatModel();
  rc |= Int8Model();
  MicroPrintf(rc == 0 ? "~~~DEMO PASSED~~~" : "~~~DEMO FAILED~~~");
  return rc;
}
