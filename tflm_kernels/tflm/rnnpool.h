/* TensorFlow Lite Micro glue of the RNNPool custom op.
 *
 * Contract (inputs, flexbuffer options, version): docs/rnnpool_custom_op.md.
 * Integer maths: docs/int8_rnnpool.md, implemented by the framework-free core
 * tflm_kernels/rnnpool_core.{h,cc} (+ rnnpool_tables.inc), which this file
 * only wraps:
 *   Init     parses the flexbuffer options into OpData. Init cannot return an
 *            error status, so an options problem (no / malformed flexbuffer,
 *            missing / unknown / mistyped key, unsupported version) is RECORDED
 *            in OpData::options_error and reported by Prepare, which returns
 *            kTfLiteError. Init returns nullptr only if the persistent
 *            allocation fails (Prepare then fails too).
 *   Prepare  checks tensor count, types, ranks, dims, quantization and the
 *            option values (rnnpool::Validate*Params), computes sigmoid(zeta),
 *            sigmoid(nu) (float) or every fixed-point multiplier (int8), and
 *            requests the core's scratch buffer. Every failure prints a
 *            "RNNPool: ..." MicroPrintf line and returns kTfLiteError.
 *   Eval     fetches tensors and the scratch and calls RnnPoolFloat /
 *            RnnPoolInt8: no validation, no allocation, no float in the int8
 *            branch.
 *
 * Use:
 *   tflite::MicroMutableOpResolver<N> resolver;
 *   resolver.AddCustom("RNNPool", tflite::Register_RNNPOOL());
 */
#ifndef TFLM_KERNELS_TFLM_RNNPOOL_H_
#define TFLM_KERNELS_TFLM_RNNPOOL_H_

#include <cstdint>

#include "tensorflow/lite/micro/micro_common.h"
#include "tflm_kernels/rnnpool_core.h"

namespace tflite {

// The custom_code the converter writes and the resolver is keyed by.
constexpr char kRnnPoolCustomName[] = "RNNPool";
// The options version this kernel implements.
constexpr int kRnnPoolOptionsVersion = 1;

// Option keys (docs/rnnpool_custom_op.md), as bit positions in
// OpDataRnnPool::present.
enum RnnPoolOptionKey : int {
  kRnnPoolKeyVersion = 0,
  kRnnPoolKeyPoolH,
  kRnnPoolKeyPoolW,
  kRnnPoolKeyStrideH,
  kRnnPoolKeyStrideW,
  kRnnPoolKeyPadding,
  kRnnPoolKeyGateActivation,
  kRnnPoolKeyUpdateActivation,
  // float model
  kRnnPoolKeyRnn1Zeta,
  kRnnPoolKeyRnn1Nu,
  kRnnPoolKeyRnn2Zeta,
  kRnnPoolKeyRnn2Nu,
  // int8 model
  kRnnPoolKeyRnn1ZetaQ14,
  kRnnPoolKeyRnn1NuQ14,
  kRnnPoolKeyRnn2ZetaQ14,
  kRnnPoolKeyRnn2NuQ14,
  kRnnPoolKeyRnn1PreactivationScale,
  kRnnPoolKeyRnn1StateScale,
  kRnnPoolKeyRnn2PreactivationScale,
  kRnnPoolKeyRnn2StateScale,
  kRnnPoolNumKeys,
};

// Why Init could not accept the options (reported by Prepare).
enum class RnnPoolOptionsError : int32_t {
  kNone = 0,
  kNoOptions,         // null / empty custom_options
  kMalformed,         // not a verifiable flexbuffer, or its root is not a map
  kUnknownKey,        // a key the contract does not define
  kDuplicateKey,      // the same key twice
  kWrongValueType,    // e.g. a string where an int / float is expected
  kIntOutOfRange,     // an int option outside int32
  kUnsupportedVersion,
};

struct OpDataRnnPool {
  // --- Parsed options (Init) ---
  RnnPoolOptionsError options_error;
  char error_key[40];   // the offending key (truncated), for the message
  int64_t error_value;  // the offending version, for the message
  uint32_t present;     // bit i: option key i was given
  int32_t int_options[kRnnPoolNumKeys];     // int keys (contract codes as given)
  double float_options[kRnnPoolNumKeys];    // float keys (read as double)

  // --- Prepare results ---
  bool is_int8;
  rnnpool::RnnPoolShape shape;  // core enums (the contract's activation codes)
  // Float path: shape + sigmoid(zeta), sigmoid(nu); pointers set in Eval.
  rnnpool::RnnPoolFloatParams float_params;
  // int8 path: shape, zeta_q14 / nu_q14, built-in tables, all multipliers
  // (M_x, M_h, M_c, M_a per cell; M_y), zero points; pointers set in Eval.
  rnnpool::RnnPoolInt8Params int8_params;
  int scratch_index;
};

// Returns the registration; add it with AddCustom(kRnnPoolCustomName, ...).
TFLMRegistration* Register_RNNPOOL();

}  // namespace tflite

#endif  // TFLM_KERNELS_TFLM_RNNPOOL_H_
