/* Host program: runs a .tflite made by `converters.convert` (builtins plus
 * CUSTOM "RNNPool" ops) through MicroInterpreter and checks its output.
 *
 *   rnnpool_run_model MODEL.tflite INPUT.bin EXPECTED.bin [TOLERANCE]
 *
 * INPUT.bin holds the raw bytes of the model's input tensors (their own
 * dtype: int8 for a full-int8 model), EXPECTED.bin those of its outputs, each
 * concatenated in tensor order, batch 1. Integer outputs must match bit for
 * bit, float32 outputs within TOLERANCE (max abs diff, default 1e-5).
 * Prints the operator count and codes, the arena used by MicroInterpreter and
 * by RecordingMicroInterpreter with its allocation breakdown, then
 * ~~~MODEL PASSED~~~ (exit 0) or ~~~MODEL FAILED~~~ (exit 1). Bad arguments,
 * unreadable files or a file that is not a valid model (flatbuffer verifier,
 * then indices, dims and buffer sizes): a message, exit 2.
 * Ops are registered by example_resolver.cc.
 *
 * Built with -DRNNPOOL_RUN_MODEL_ON_BOARD it runs on an emulated Cortex-M
 * board (tflm_kernels/cortex_m: start-up, mps2_4m.ld, argv and files through
 * semihosting, newlib's rdimon stdio; bench/bench_model_m4.py builds it
 * against TFLM's cortex_m_generic library): the log goes to the host's stdout,
 * and markers for tflm_kernels/cortex_m/insn_count_plugin.c enclose the one
 * measured Invoke (CountBegin / CountEnd) and each RNNPool op inside it
 * (RnnPoolOpBegin / RnnPoolOpEnd).
 */
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "flatbuffers/flatbuffers.h"
#include "tensorflow/lite/micro/tflite_bridge/flatbuffer_conversions_bridge.h"
#include "tensorflow/lite/core/c/common.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_utils.h"
#include "tensorflow/lite/micro/recording_micro_interpreter.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tensorflow/lite/schema/schema_utils.h"
#include "tflm_kernels/tflm/example_resolver.h"

#if defined(RNNPOOL_RUN_MODEL_ON_BOARD)
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tflm_kernels/tflm/rnnpool.h"

// Markers for insn_count_plugin.c (it counts from one call of its begin
// address to the next of its end address): never inlined, never merged.
extern "C" __attribute__((noinline, used)) void CountBegin() { __asm__ volatile(""); }
extern "C" __attribute__((noinline, used)) void CountEnd() { __asm__ volatile("nop"); }
extern "C" __attribute__((noinline, used)) void RnnPoolOpBegin() { __asm__ volatile("nop\n\tnop"); }
extern "C" __attribute__((noinline, used)) void RnnPoolOpEnd() { __asm__ volatile("nop\n\tnop\n\tnop"); }

namespace {

// The interpreter's profiler hook: RnnPoolOpBegin / RnnPoolOpEnd around each
// RNNPool op's Invoke, so that a second run can count that op alone.
class RnnPoolOpMarkers : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
    const bool rnnpool = std::strcmp(tag, tflite::kRnnPoolCustomName) == 0;
    if (rnnpool) RnnPoolOpBegin();
    return rnnpool ? 1 : 0;
  }
  void EndEvent(uint32_t event_handle) override {
    if (event_handle == 1) RnnPoolOpEnd();
  }
};

void WriteLog(const char* text) { std::fputs(text, stdout); }

}  // namespace
#endif

namespace {

constexpr int kExitPassed = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Generous; arena_used_bytes() reports what a device needs. The board's
// data RAM (4 MB) also holds the model and the stack.
#if defined(RNNPOOL_RUN_MODEL_ON_BOARD)
constexpr size_t kArenaBytes = 1536 * 1024;
#else
constexpr size_t kArenaBytes = 4 * 1024 * 1024;
#endif
alignas(16) uint8_t g_arena[kArenaBytes];

void PrintUsage() {
  MicroPrintf(
      "usage: rnnpool_run_model MODEL.tflite INPUT.bin EXPECTED.bin [TOLERANCE]\n"
      "  INPUT.bin / EXPECTED.bin: raw bytes of the model's input / output tensors\n"
      "  in their own dtype, concatenated in tensor order. Integer outputs must\n"
      "  match exactly, float32 ones within TOLERANCE (default 1e-5).");
}

// A whole file in 16-byte aligned storage: TFLM reads model buffers in place.
class FileBytes {
 public:
  bool Load(const char* path) {
    FILE* file = std::fopen(path, "rb");
    if (file == nullptr) return false;
    bool ok = std::fseek(file, 0, SEEK_END) == 0;
    const long size = ok ? std::ftell(file) : -1;
    ok = ok && size >= 0 && std::fseek(file, 0, SEEK_SET) == 0;
    if (ok) {
      size_ = static_cast<size_t>(size);
      blocks_.resize((size_ + sizeof(Block) - 1) / sizeof(Block));
      ok = std::fread(blocks_.data(), 1, size_, file) == size_;
    }
    std::fclose(file);
    return ok;
  }
  const uint8_t* data() const {
    return reinterpret_cast<const uint8_t*>(blocks_.data());
  }
  size_t size() const { return size_; }

 private:
  struct alignas(16) Block {
    uint8_t bytes[16];
  };
  std::vector<Block> blocks_;
  size_t size_ = 0;
};

bool ParseTolerance(const char* text, double* tolerance) {
  char* end = nullptr;
  *tolerance = std::strtod(text, &end);
  return end != text && *end == '\0' && std::isfinite(*tolerance) && *tolerance >= 0;
}

// "INT8 [1 8 8 2]"
void Describe(const TfLiteTensor& tensor, char* text, size_t size) {
  int used = std::snprintf(text, size, "%s [", TfLiteTypeGetName(tensor.type));
  for (int i = 0; i < tensor.dims->size && used > 0 && static_cast<size_t>(used) < size;
       ++i) {
    used += std::snprintf(text + used, size - used, i == 0 ? "%d" : " %d",
                          tensor.dims->data[i]);
  }
  if (used > 0 && static_cast<size_t>(used) < size) {
    std::snprintf(text + used, size - used, "]");
  }
}

// The operator count and each operator code in use (what the resolver needs;
// a converted model may also list codes no operator uses).
void PrintOperators(const tflite::Model* model) {
  const tflite::SubGraph* subgraph = model->subgraphs()->Get(0);
  const int op_count = subgraph->operators() ? subgraph->operators()->size() : 0;
  MicroPrintf("subgraphs: %d, operators: %d, by operator code:",
              static_cast<int>(model->subgraphs()->size()), op_count);
  const auto* codes = model->operator_codes();
  if (op_count == 0 || codes == nullptr) return;
  std::vector<int> uses(codes->size(), 0);
  std::vector<uint32_t> first_use_order;
  for (const tflite::Operator* op : *subgraph->operators()) {
    const uint32_t index = op->opcode_index();
    if (index >= uses.size()) continue;  // AllocateTensors reports it
    if (uses[index]++ == 0) first_use_order.push_back(index);
  }
  for (uint32_t index : first_use_order) {
    const tflite::OperatorCode* code = codes->Get(index);
    const tflite::BuiltinOperator builtin = tflite::GetBuiltinCode(code);
    if (builtin == tflite::BuiltinOperator_CUSTOM) {
      const flatbuffers::String* name = code->custom_code();
      MicroPrintf("  CUSTOM \"%s\" x%d", name ? name->c_str() : "", uses[index]);
    } else {
      MicroPrintf("  %s x%d", tflite::EnumNameBuiltinOperator(builtin), uses[index]);
    }
  }
}

struct Comparison {
  int mismatches = 0;
  double max_abs_diff = 0;
};

// Element-wise |got - expected|; memcpy because EXPECTED.bin packs tensors of
// any type back to back.
template <typename T>
Comparison Compare(const uint8_t* got, const uint8_t* expected, int count,
                   double tolerance) {
  Comparison result;
  for (int i = 0; i < count; ++i) {
    T a, b;
    std::memcpy(&a, got + i * sizeof(T), sizeof(T));
    std::memcpy(&b, expected + i * sizeof(T), sizeof(T));
    const double diff = std::fabs(static_cast<double>(a) - static_cast<double>(b));
    if (!(diff <= tolerance)) ++result.mismatches;  // NaN is a mismatch
    if (diff > result.max_abs_diff || std::isnan(diff)) result.max_abs_diff = diff;
  }
  return result;
}

// Compares one output tensor; returns false if it does not match or its type
// is not one this program compares.
bool CheckOutput(int index, const TfLiteTensor& tensor, const uint8_t* expected,
                 double float_tolerance) {
  char shape[96];
  Describe(tensor, shape, sizeof(shape));
  const int count = tflite::ElementCount(*tensor.dims);
  const uint8_t* got = tensor.data.uint8;
  Comparison c;
  switch (tensor.type) {
    case kTfLiteFloat32:
      c = Compare<float>(got, expected, count, float_tolerance);
      MicroPrintf("output %d: %s, %d values, max abs diff %.3g, %d mismatches "
                  "(tolerance %g)",
                  index, shape, count, c.max_abs_diff, c.mismatches, float_tolerance);
      return c.mismatches == 0;
    case kTfLiteInt8:
      c = Compare<int8_t>(got, expected, count, 0);
      break;
    case kTfLiteUInt8:
      c = Compare<uint8_t>(got, expected, count, 0);
      break;
    case kTfLiteInt16:
      c = Compare<int16_t>(got, expected, count, 0);
      break;
    case kTfLiteInt32:
      c = Compare<int32_t>(got, expected, count, 0);
      break;
    default:
      MicroPrintf("output %d: %s: this program does not compare that type", index,
                  shape);
      return false;
  }
  MicroPrintf("output %d: %s, %d values, max abs diff %g, %d mismatches (bit-exact)",
              index, shape, count, c.max_abs_diff, c.mismatches);
  return c.mismatches == 0;
}

size_t TotalBytes(tflite::MicroInterpreter& interpreter, bool inputs) {
  const size_t n = inputs ? interpreter.inputs_size() : interpreter.outputs_size();
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    total += (inputs ? interpreter.input(i) : interpreter.output(i))->bytes;
  }
  return total;
}

// What the flatbuffer verifier does not check and the interpreter trusts
// (converters/tflite_io/model_checks.py checks the same on the host): operator code and
// tensor indices in range, dims >= 0, constant buffers at least as long as
// their shape. Prints the first problem and returns false.
bool CheckModelStructure(const tflite::Model* model) {
  const auto* subgraph = model->subgraphs()->Get(0);
  const auto* tensors = subgraph->tensors();
  const int64_t count = tensors != nullptr ? tensors->size() : 0;
  const int64_t codes = model->operator_codes() != nullptr ? model->operator_codes()->size() : 0;
  const int64_t buffers = model->buffers() != nullptr ? model->buffers()->size() : 0;
  auto in_range = [&](const flatbuffers::Vector<int32_t>* indices, bool allow_absent) {
    if (indices == nullptr) return true;
    for (int32_t index : *indices) {
      if (!((index == -1 && allow_absent) || (index >= 0 && index < count))) return false;
    }
    return true;
  };
  if (!in_range(subgraph->inputs(), false) || !in_range(subgraph->outputs(), false)) {
    MicroPrintf("a subgraph input or output index is out of range");
    return false;
  }
  for (int64_t i = 0; i < count; ++i) {
    const tflite::Tensor* tensor = tensors->Get(static_cast<flatbuffers::uoffset_t>(i));
    int64_t elements = 1;
    if (tensor->shape() != nullptr) {
      for (int32_t d : *tensor->shape()) {
        if (d < 0) {
          MicroPrintf("tensor %d has a negative dimension", static_cast<int>(i));
          return false;
        }
        elements *= d;
      }
    }
    if (tensor->buffer() >= buffers) {
      MicroPrintf("tensor %d refers to buffer %d of %d", static_cast<int>(i),
                  static_cast<int>(tensor->buffer()), static_cast<int>(buffers));
      return false;
    }
    const auto* data = model->buffers()->Get(tensor->buffer())->data();
    if (data == nullptr || data->size() == 0) continue;  // not a constant
    TfLiteType type;
    size_t item = 0;
    if (tflite::ConvertTensorType(tensor->type(), &type) != kTfLiteOk ||
        tflite::TfLiteTypeSizeOf(type, &item) != kTfLiteOk) {
      continue;  // a type the interpreter rejects itself
    }
    if (static_cast<uint64_t>(data->size()) < static_cast<uint64_t>(elements) * item) {
      MicroPrintf("tensor %d: its buffer holds %d bytes, its shape needs %d",
                  static_cast<int>(i), static_cast<int>(data->size()),
                  static_cast<int>(elements * static_cast<int64_t>(item)));
      return false;
    }
  }
  const auto* operators = subgraph->operators();
  for (flatbuffers::uoffset_t i = 0; operators != nullptr && i < operators->size(); ++i) {
    const tflite::Operator* op = operators->Get(i);
    if (op->opcode_index() >= codes || !in_range(op->inputs(), true) ||
        !in_range(op->outputs(), false) || !in_range(op->intermediates(), false)) {
      MicroPrintf("operator %d has an operator code or tensor index out of range",
                  static_cast<int>(i));
      return false;
    }
  }
  return true;
}

// MicroInterpreter run of the model on INPUT.bin, compared with EXPECTED.bin.
// Its own scope, so that it is gone before the recording run reuses the arena.
int RunAndCompare(const tflite::Model* model, const FileBytes& input,
                  const FileBytes& expected, double tolerance) {
  rnnpool_example::RnnPoolOpResolver resolver;
  if (rnnpool_example::RegisterRnnPoolModelOps(resolver) != kTfLiteOk) {
    MicroPrintf("registering the ops failed");
    return kExitFailed;
  }
#if defined(RNNPOOL_RUN_MODEL_ON_BOARD)
  RnnPoolOpMarkers op_markers;  // local: the board has no static destructors
  tflite::MicroInterpreter interpreter(model, resolver, g_arena, kArenaBytes,
                                       /*resource_variables=*/nullptr, &op_markers);
#else
  tflite::MicroInterpreter interpreter(model, resolver, g_arena, kArenaBytes);
#endif
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("AllocateTensors failed (an op missing from example_resolver.cc, "
                "a kernel's Prepare, or an arena above %d bytes)",
                static_cast<int>(kArenaBytes));
    return kExitFailed;
  }
  MicroPrintf("MicroInterpreter arena_used_bytes: %d",
              static_cast<int>(interpreter.arena_used_bytes()));

  if (input.size() != TotalBytes(interpreter, /*inputs=*/true)) {
    MicroPrintf("INPUT.bin has %d bytes; the model's %d input(s) take %d",
                static_cast<int>(input.size()),
                static_cast<int>(interpreter.inputs_size()),
                static_cast<int>(TotalBytes(interpreter, true)));
    return kExitUsage;
  }
  if (expected.size() != TotalBytes(interpreter, /*inputs=*/false)) {
    MicroPrintf("EXPECTED.bin has %d bytes; the model's %d output(s) take %d",
                static_cast<int>(expected.size()),
                static_cast<int>(interpreter.outputs_size()),
                static_cast<int>(TotalBytes(interpreter, false)));
    return kExitUsage;
  }
  size_t offset = 0;
  for (size_t i = 0; i < interpreter.inputs_size(); ++i) {
    TfLiteTensor* tensor = interpreter.input(i);
    char shape[96];
    Describe(*tensor, shape, sizeof(shape));
    MicroPrintf("input %d: %s", static_cast<int>(i), shape);
    std::memcpy(tensor->data.raw, input.data() + offset, tensor->bytes);
    offset += tensor->bytes;
  }
#if defined(RNNPOOL_RUN_MODEL_ON_BOARD)
  CountBegin();
  const TfLiteStatus invoked = interpreter.Invoke();
  CountEnd();
#else
  const TfLiteStatus invoked = interpreter.Invoke();
#endif
  if (invoked != kTfLiteOk) {
    MicroPrintf("Invoke failed");
    return kExitFailed;
  }
  bool all_match = true;
  offset = 0;
  for (size_t i = 0; i < interpreter.outputs_size(); ++i) {
    const TfLiteTensor* tensor = interpreter.output(i);
    all_match &= CheckOutput(static_cast<int>(i), *tensor, expected.data() + offset,
                             tolerance);
    offset += tensor->bytes;
  }
  return all_match ? kExitPassed : kExitFailed;
}

// The same model under RecordingMicroInterpreter: where the arena goes.
int RecordAllocations(const tflite::Model* model) {
  rnnpool_example::RnnPoolOpResolver resolver;
  if (rnnpool_example::RegisterRnnPoolModelOps(resolver) != kTfLiteOk) {
    return kExitFailed;
  }
  tflite::RecordingMicroInterpreter interpreter(model, resolver, g_arena, kArenaBytes);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("RecordingMicroInterpreter: AllocateTensors failed");
    return kExitFailed;
  }
  MicroPrintf("RecordingMicroInterpreter arena_used_bytes: %d",
              static_cast<int>(interpreter.arena_used_bytes()));
  interpreter.GetMicroAllocator().PrintAllocations();
  return kExitPassed;
}

}  // namespace

int main(int argc, char** argv) {
  tflite::InitializeTarget();
#if defined(RNNPOOL_RUN_MODEL_ON_BOARD)
  RegisterDebugLogCallback(WriteLog);
#endif
  if (argc < 4 || argc > 5) {
    PrintUsage();
    return kExitUsage;
  }
  double tolerance = 1e-5;
  if (argc == 5 && !ParseTolerance(argv[4], &tolerance)) {
    MicroPrintf("TOLERANCE must be a finite number >= 0, got '%s'", argv[4]);
    return kExitUsage;
  }
  FileBytes model_file, input, expected;
  const char* paths[] = {argv[1], argv[2], argv[3]};
  FileBytes* files[] = {&model_file, &input, &expected};
  for (int i = 0; i < 3; ++i) {
    if (!files[i]->Load(paths[i])) {
      MicroPrintf("cannot read %s", paths[i]);
      return kExitUsage;
    }
  }
  // The interpreter trusts the flatbuffer; an arbitrary file must be verified.
  flatbuffers::Verifier verifier(model_file.data(), model_file.size());
  if (!tflite::VerifyModelBuffer(verifier)) {
    MicroPrintf("%s is not a valid .tflite flatbuffer", argv[1]);
    return kExitUsage;
  }
  const tflite::Model* model = tflite::GetModel(model_file.data());
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("%s has schema version %d; this TFLM reads version %d", argv[1],
                static_cast<int>(model->version()), TFLITE_SCHEMA_VERSION);
    return kExitUsage;
  }
  if (model->subgraphs() == nullptr || model->subgraphs()->size() == 0) {
    MicroPrintf("%s has no subgraph", argv[1]);
    return kExitUsage;
  }
  if (!CheckModelStructure(model)) {
    MicroPrintf("%s is not a valid model (see above)", argv[1]);
    return kExitUsage;
  }
  MicroPrintf("model: %s, %d bytes", argv[1], static_cast<int>(model_file.size()));
  PrintOperators(model);

  const int rc = RunAndCompare(model, input, expected, tolerance);
  if (rc == kExitUsage) return rc;
  // Report the arena breakdown even when the outputs differ.
  const int recorded = RecordAllocations(model);
  if (rc == kExitPassed && recorded == kExitPassed) {
    MicroPrintf("~~~MODEL PASSED~~~");
    return kExitPassed;
  }
  MicroPrintf("~~~MODEL FAILED~~~");
  return kExitFailed;
}
