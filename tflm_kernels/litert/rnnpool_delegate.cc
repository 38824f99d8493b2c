/* A TFLite / LiteRT delegate that runs the CUSTOM "RNNPool" nodes of a model
 * on the package's C++ core (rnnpool_op.h), loaded as an external delegate:
 *   Python: tf.lite.experimental.load_delegate(path) or
 *           ai_edge_litert.interpreter.load_delegate(path)
 *           (converters.tflite_interpreter does it for you).
 * Every other node stays with the runtime (its builtin kernels / XNNPACK).
 *
 * Without it such a model does not run: the op has no kernel in the stock
 * runtimes, and LiteRT's Python package offers no way to register one.
 *
 * ABI guard. The struct layouts come from tflite_abi.h (declared, not
 * included) and the runtime exposes no version to a delegate, so before
 * claiming anything Prepare checks the runtime against them: every tensor of
 * the model, read with the declared TfLiteTensor layout, must be
 * self-consistent (CheckAbi), and the execution plan and every node must name
 * existing tensors. Otherwise it reports why and returns
 * kTfLiteDelegateError: the interpreter refuses to build rather than run on
 * a mismatched runtime.
 *
 * Options (load_delegate's `options` dict):
 *   abi_check_tensor_bytes=N  read the tensors N bytes apart in the ABI check,
 *                             as a runtime with an N-byte TfLiteTensor would
 *                             lay them out (tests use it to exercise the guard).
 *   min_madds_per_thread=N    the least work per thread of an op (default
 *                             kMinMaddsPerThread; tests use 1 to split small
 *                             maps over the interpreter's threads).
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "rnnpool_op.h"
#include "tflite_abi.h"

namespace rnnpool_litert {
namespace {

struct DelegateData {
  size_t tensor_stride = sizeof(TfLiteTensor);  // what CheckAbi reads with
  int64_t min_madds_per_thread = kMinMaddsPerThread;
};

// `text` as a whole positive decimal integer into *value; false otherwise.
bool ParsePositive(const char* text, int64_t* value) {
  char* end = nullptr;
  const long long parsed = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || parsed < 1) return false;
  *value = parsed;
  return true;
}

TfLiteStatus AbiError(TfLiteContext* context, const char* what) {
  context->ReportError(context,
                       "RNNPool delegate: this TFLite runtime does not match the ABI "
                       "the delegate was built for (%s); refusing to run. Use TF 2.16+ / "
                       "LiteRT, or build the op into the app (tflm_kernels/litert/README.md).",
                       what);
  return kTfLiteDelegateError;
}

// Bytes per element of the fixed-size types (0: not checked).
size_t ElementBytes(int type) {
  switch (type) {
    case kTfLiteFloat32: case kTfLiteInt32: return 4;
    case kTfLiteInt64: return 8;
    case kTfLiteInt16: return 2;
    case kTfLiteInt8: case kTfLiteUInt8: case kTfLiteBool: return 1;
    default: return 0;
  }
}

// Reads every tensor of the runtime's array as a TfLiteTensor `stride` bytes
// apart and checks that what it finds is self-consistent: known type and
// allocation type, a plausible shape (and signature of the same rank), and
// `bytes` equal to the shape's size for every allocated fixed-size tensor.
// A runtime whose TfLiteTensor differs in size or field order fails this.
TfLiteStatus CheckAbi(TfLiteContext* context, const DelegateData& data) {
  const size_t stride = data.tensor_stride;
  const size_t count = context->tensors_size;
  if (context->tensors == nullptr || count == 0 || count > (size_t{1} << 28)) {
    return AbiError(context, "no tensor array");
  }
  // A stride above the declared size may only read inside the array.
  const size_t array_bytes = count * sizeof(TfLiteTensor);
  size_t sized = 0;
  for (size_t i = 0; i < count && i * stride + sizeof(TfLiteTensor) <= array_bytes; ++i) {
    const auto* t = reinterpret_cast<const TfLiteTensor*>(
        reinterpret_cast<const char*>(context->tensors) + i * stride);
    char what[160];
    bool ok = t->type >= 0 && t->type <= 32 && t->allocation_type >= 0 &&
              t->allocation_type <= kTfLiteNonCpu;
    if (ok && t->dims != nullptr) {
      ok = t->dims->size >= 0 && t->dims->size <= 16;
      size_t values = 1;
      for (int d = 0; ok && d < t->dims->size; ++d) {
        ok = t->dims->data[d] >= 0;
        values *= static_cast<size_t>(t->dims->data[d]);
      }
      if (ok && t->dims_signature != nullptr && t->dims_signature->size != 0) {
        ok = t->dims_signature->size == t->dims->size;
      }
      if (ok && t->data.raw != nullptr && ElementBytes(t->type) != 0) {
        ok = t->bytes == values * ElementBytes(t->type);
        ++sized;
      }
    }
    if (!ok) {
      std::snprintf(what, sizeof(what),
                    "tensor %zu read as a %zu-byte TfLiteTensor is inconsistent", i, stride);
      return AbiError(context, what);
    }
  }
  if (sized == 0) return AbiError(context, "no allocated tensor to check the layout on");
  if (context->recommended_num_threads < -1 || context->recommended_num_threads > 4096) {
    return AbiError(context, "implausible recommended_num_threads");
  }
  return kTfLiteOk;
}

// One delegate kernel: the RNNPool nodes of one partition, in execution order.
struct Partition {
  std::vector<std::unique_ptr<RnnPoolOp>> ops;
  std::vector<TfLiteIntArray*> inputs, outputs;  // the runtime's, per op
  // Tensors passed between two ops of the partition: the interpreter does not
  // allocate them, so the partition does (index, bytes).
  std::vector<int> internal;
  std::vector<std::vector<unsigned char>> internal_data;
  std::vector<int> partition_outputs;

  void* DataOf(int tensor) {
    for (size_t i = 0; i < internal.size(); ++i) {
      if (internal[i] == tensor) return internal_data[i].data();
    }
    return nullptr;
  }
};

void* PartitionInit(TfLiteContext* context, const char* buffer, size_t) {
  const auto* params = reinterpret_cast<const TfLiteDelegateParams*>(buffer);
  auto* partition = new (std::nothrow) Partition;
  if (partition == nullptr) return nullptr;
  for (int i = 0; i < params->output_tensors->size; ++i) {
    partition->partition_outputs.push_back(params->output_tensors->data[i]);
  }
  for (int i = 0; i < params->nodes_to_replace->size; ++i) {
    TfLiteNode* node = nullptr;
    TfLiteRegistration* registration = nullptr;
    if (context->GetNodeAndRegistration(context, params->nodes_to_replace->data[i], &node,
                                        &registration) != kTfLiteOk) {
      delete partition;
      return nullptr;
    }
    partition->ops.emplace_back(new RnnPoolOp(
        node->custom_initial_data, static_cast<size_t>(node->custom_initial_data_size),
        static_cast<const DelegateData*>(params->delegate->data_)->min_madds_per_thread));
    partition->inputs.push_back(node->inputs);
    partition->outputs.push_back(node->outputs);
  }
  return partition;
}

void PartitionFree(TfLiteContext*, void* buffer) { delete static_cast<Partition*>(buffer); }

TfLiteStatus PartitionPrepare(TfLiteContext* context, TfLiteNode* node) {
  auto* partition = static_cast<Partition*>(node->user_data);
  if (partition == nullptr) {
    context->ReportError(context, "RNNPool delegate: kernel initialisation failed");
    return kTfLiteError;
  }
  partition->internal.clear();
  partition->internal_data.clear();
  for (size_t i = 0; i < partition->ops.size(); ++i) {
    RnnPoolOp& op = *partition->ops[i];
    if (op.Prepare(context, partition->inputs[i], partition->outputs[i]) != kTfLiteOk) {
      return kTfLiteError;
    }
    bool leaves = false;
    for (int t : partition->partition_outputs) leaves |= t == op.output_tensor();
    if (!leaves) {
      partition->internal.push_back(op.output_tensor());
      partition->internal_data.emplace_back(op.output_bytes());
    }
  }
  return kTfLiteOk;
}

TfLiteStatus PartitionInvoke(TfLiteContext* context, TfLiteNode* node) {
  auto* partition = static_cast<Partition*>(node->user_data);
  for (auto& op : partition->ops) {
    const TfLiteStatus status =
        op->Eval(context, partition->DataOf(op->input_tensor()),
                 partition->DataOf(op->output_tensor()));
    if (status != kTfLiteOk) return status;
  }
  return kTfLiteOk;
}

bool IsRnnPool(const TfLiteRegistration* registration) {
  return registration != nullptr && registration->builtin_code == kTfLiteBuiltinCustom &&
         registration->custom_name != nullptr &&
         std::strcmp(registration->custom_name, kRnnPoolCustomName) == 0;
}

TfLiteStatus DelegatePrepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  const auto& data = *static_cast<const DelegateData*>(delegate->data_);
  if (CheckAbi(context, data) != kTfLiteOk) return kTfLiteDelegateError;
  TfLiteIntArray* plan = nullptr;
  if (context->GetExecutionPlan(context, &plan) != kTfLiteOk || plan == nullptr ||
      plan->size < 0) {
    return AbiError(context, "no execution plan");
  }
  std::vector<int> claimed;
  for (int i = 0; i < plan->size; ++i) {
    TfLiteNode* node = nullptr;
    TfLiteRegistration* registration = nullptr;
    if (context->GetNodeAndRegistration(context, plan->data[i], &node, &registration) !=
            kTfLiteOk ||
        node == nullptr || node->inputs == nullptr || node->outputs == nullptr) {
      return AbiError(context, "GetNodeAndRegistration gave no node");
    }
    for (const TfLiteIntArray* list : {node->inputs, node->outputs}) {
      for (int j = 0; j < list->size; ++j) {
        if (list->data[j] < -1 || list->data[j] >= static_cast<int>(context->tensors_size)) {
          return AbiError(context, "a node names a tensor that does not exist");
        }
      }
    }
    if (IsRnnPool(registration)) claimed.push_back(plan->data[i]);
  }
  if (claimed.empty()) return kTfLiteOk;
  std::vector<int> list(claimed.size() + 1);
  list[0] = static_cast<int>(claimed.size());
  std::memcpy(list.data() + 1, claimed.data(), claimed.size() * sizeof(int));
  TfLiteRegistration kernel{};
  kernel.init = PartitionInit;
  kernel.free = PartitionFree;
  kernel.prepare = PartitionPrepare;
  kernel.invoke = PartitionInvoke;
  kernel.builtin_code = kTfLiteBuiltinCustom;  // what TFLite's own delegates set
  kernel.custom_name = "RNNPoolDelegate";
  kernel.version = 1;
  return context->ReplaceNodeSubsetsWithDelegateKernels(
      context, kernel, reinterpret_cast<const TfLiteIntArray*>(list.data()), delegate);
}

}  // namespace
}  // namespace rnnpool_litert

extern "C" {

// The external-delegate entry points TFLite's load_delegate looks up.
__attribute__((visibility("default"))) TfLiteDelegate* tflite_plugin_create_delegate(
    char** keys, char** values, size_t num_options, void (*report_error)(const char*)) {
  using rnnpool_litert::DelegateData;
  auto* data = new (std::nothrow) DelegateData;
  auto* delegate = new (std::nothrow) TfLiteDelegate{};
  if (data == nullptr || delegate == nullptr) {
    delete data;
    delete delegate;
    return nullptr;
  }
  for (size_t i = 0; i < num_options; ++i) {
    if (std::strcmp(keys[i], "abi_check_tensor_bytes") == 0) {
      data->tensor_stride = std::strtoul(values[i], nullptr, 10);
    } else if (std::strcmp(keys[i], "min_madds_per_thread") != 0 ||
               !rnnpool_litert::ParsePositive(values[i], &data->min_madds_per_thread)) {
      if (report_error != nullptr) {
        const std::string message =
            std::string("RNNPool delegate: unknown option '") + keys[i] + "' or bad value '" +
            values[i] + "' (known: abi_check_tensor_bytes=N, min_madds_per_thread=N >= 1)";
        report_error(message.c_str());
      }
      delete data;
      delete delegate;
      return nullptr;
    }
  }
  delegate->data_ = data;
  delegate->Prepare = rnnpool_litert::DelegatePrepare;
  // Output shapes follow the input batch (resize_tensor_input): the runtime
  // must let this delegate's kernels resize their outputs in Prepare.
  delegate->flags = kTfLiteDelegateFlagsAllowDynamicTensors;
  return delegate;
}

__attribute__((visibility("default"))) void tflite_plugin_destroy_delegate(
    TfLiteDelegate* delegate) {
  if (delegate == nullptr) return;
  delete static_cast<rnnpool_litert::DelegateData*>(delegate->data_);
  delete delegate;
}

}  // extern "C"
