/* KernelRunner tests of the RNNPool TFLM kernel (micro_test_v2.h style).
 *
 * Golden data: rnnpool_test_vectors.h, written by make_test_vectors.py
 * (float: tests/numpy_reference.py; int8: rnnpool_keras int8_reference,
 * bit-exact). Options are built here with flexbuffers::Builder (host only).
 * Build / run: tflm_kernels/tflm/README.md, or tests/test_tflm_kernel.py. */
#include <cstdint>
#include <cstring>

#include "flatbuffers/flexbuffers.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/kernels/kernel_runner.h"
#include "tensorflow/lite/micro/test_helpers.h"
#include "tensorflow/lite/micro/testing/micro_test_v2.h"
#include "tflm_kernels/tflm/rnnpool.h"
#include "tflm_kernels/tflm/rnnpool_test_vectors.h"

namespace {

namespace tv = rnnpool_test_vectors;

constexpr int kNumTensors = 10;  // 9 inputs + output
constexpr int kOutputIndex = 9;
constexpr int kMaxOutput = 128;

// The option values of one model (contract keys and codes).
struct Options {
  bool int8 = false;
  int version = 1;
  int pool_h = 0, pool_w = 0, stride_h = 0, stride_w = 0, padding = 0;
  int gate = 0, update = 1;
  float zeta[2] = {}, nu[2] = {};                // float model
  int zeta_q14[2] = {}, nu_q14[2] = {};          // int8 model
  float pre_scale[2] = {}, state_scale[2] = {};  // int8 model
  const char* omit = nullptr;       // leave this key out
  const char* extra_int = nullptr;  // add this key with value 1
};

void BuildOptions(const Options& o, flexbuffers::Builder* fbb) {
  fbb->Clear();
  const size_t map = fbb->StartMap();
  auto add_int = [&](const char* key, int value) {
    if (o.omit == nullptr || std::strcmp(key, o.omit) != 0) fbb->Int(key, value);
  };
  auto add_float = [&](const char* key, float value) {
    if (o.omit == nullptr || std::strcmp(key, o.omit) != 0) fbb->Float(key, value);
  };
  add_int("version", o.version);
  add_int("pool_h", o.pool_h);
  add_int("pool_w", o.pool_w);
  add_int("stride_h", o.stride_h);
  add_int("stride_w", o.stride_w);
  add_int("padding", o.padding);
  add_int("gate_activation", o.gate);
  add_int("update_activation", o.update);
  if (o.int8) {
    add_int("rnn1_zeta_q14", o.zeta_q14[0]);
    add_int("rnn1_nu_q14", o.nu_q14[0]);
    add_int("rnn2_zeta_q14", o.zeta_q14[1]);
    add_int("rnn2_nu_q14", o.nu_q14[1]);
    add_float("rnn1_preactivation_scale", o.pre_scale[0]);
    add_float("rnn1_state_scale", o.state_scale[0]);
    add_float("rnn2_preactivation_scale", o.pre_scale[1]);
    add_float("rnn2_state_scale", o.state_scale[1]);
  } else {
    add_float("rnn1_zeta", o.zeta[0]);
    add_float("rnn1_nu", o.nu[0]);
    add_float("rnn2_zeta", o.zeta[1]);
    add_float("rnn2_nu", o.nu[1]);
  }
  if (o.extra_int != nullptr) fbb->Int(o.extra_int, 1);
  fbb->EndMap(map);
  fbb->Finish();
}

// One op invocation: tensors (0..8 inputs, 9 output) with mutable dims, and
// options. Tests change fields, then call Prepare() / Run().
struct Harness {
  int dims[kNumTensors][5] = {};
  TfLiteTensor tensors[kNumTensors] = {};
  int inputs[kNumTensors] = {9, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  int outputs[2] = {1, kOutputIndex};
  float output_float[kMaxOutput] = {};
  int8_t output_int8[kMaxOutput] = {};
  Options options;
  bool pass_options = true;
  flexbuffers::Builder fbb;
  bool temp_deallocated = false;

  TfLiteIntArray* Dims(int i, const int* src) {
    std::memcpy(dims[i], src, sizeof(int) * (src[0] + 1));
    return tflite::testing::IntArrayFromInts(dims[i]);
  }

  void SetUpFloat() {
    namespace c = tv::float_case;
    const float* data[9] = {c::kInput,         c::kRnn1Kernel,    c::kRnn1Recurrent,
                            c::kRnn1GateBias,  c::kRnn1UpdateBias, c::kRnn2Kernel,
                            c::kRnn2Recurrent, c::kRnn2GateBias,  c::kRnn2UpdateBias};
    const int* d[9] = {c::kInputDims,        c::kRnn1KernelDims,    c::kRnn1RecurrentDims,
                       c::kRnn1GateBiasDims, c::kRnn1UpdateBiasDims, c::kRnn2KernelDims,
                       c::kRnn2RecurrentDims, c::kRnn2GateBiasDims,  c::kRnn2UpdateBiasDims};
    for (int i = 0; i < 9; ++i) {
      tensors[i] = tflite::testing::CreateTensor(data[i], Dims(i, d[i]));
    }
    MarkWeightsConstant();
    tensors[kOutputIndex] =
        tflite::testing::CreateTensor(output_float, Dims(kOutputIndex, c::kOutputDims));
    options = Options();
    options.pool_h = c::kPoolH;
    options.pool_w = c::kPoolW;
    options.stride_h = c::kStrideH;
    options.stride_w = c::kStrideW;
    options.padding = c::kPadding;
    options.gate = c::kGate;
    options.update = c::kUpdate;
    options.zeta[0] = c::kRnn1Zeta;
    options.nu[0] = c::kRnn1Nu;
    options.zeta[1] = c::kRnn2Zeta;
    options.nu[1] = c::kRnn2Nu;
  }

  // The contract's inputs 1-8 are constants (in a model: kTfLiteMmapRo).
  void MarkWeightsConstant() {
    for (int i = 1; i < 9; ++i) tensors[i].allocation_type = kTfLiteMmapRo;
  }

  TfLiteStatus Prepare() {
    BuildOptions(options, &fbb);
    tflite::micro::KernelRunner runner(
        *tflite::Register_RNNPOOL(), tensors, kNumTensors,
        tflite::testing::IntArrayFromInts(inputs),
        tflite::testing::IntArrayFromInts(outputs), nullptr);
    const std::vector<uint8_t>& buffer = fbb.GetBuffer();
    const TfLiteStatus status = runner.InitAndPrepare(
        pass_options ? reinterpret_cast<const char*>(buffer.data()) : nullptr,
        pass_options ? buffer.size() : 0);
    temp_deallocated = runner.ValidateTempBufferDeallocated();
    return status;
  }

  // InitAndPrepare + `invokes` Invoke calls; every status must be ok.
  bool Run(int invokes = 1) {
    BuildOptions(options, &fbb);
    tflite::micro::KernelRunner runner(
        *tflite::Register_RNNPOOL(), tensors, kNumTensors,
        tflite::testing::IntArrayFromInts(inputs),
        tflite::testing::IntArrayFromInts(outputs), nullptr);
    const std::vector<uint8_t>& buffer = fbb.GetBuffer();
    if (runner.InitAndPrepare(reinterpret_cast<const char*>(buffer.data()),
                              buffer.size()) != kTfLiteOk) {
      return false;
    }
    temp_deallocated = runner.ValidateTempBufferDeallocated();
    for (int i = 0; i < invokes; ++i) {
      if (runner.Invoke() != kTfLiteOk) return false;
    }
    return true;
  }
};

// The arrays of one int8 case namespace (the two share member names).
struct Int8Case {
  const int* dims[10];
  const void* data[9];
  float scales[10];  // per tensor; biases: the cell's s_pre
  int input_zero_point, output_zero_point;
  const int8_t* expected;
  int pool_h, pool_w, stride_h, stride_w, padding, gate, update;
  int zeta_q14[2], nu_q14[2];
  float pre_scale[2], state_scale[2];
};

#define RNNPOOL_INT8_CASE(ns)                                                     \
  Int8Case {                                                                     \
    {ns::kInputDims, ns::kRnn1KernelDims, ns::kRnn1RecurrentDims,                \
     ns::kRnn1GateBiasDims, ns::kRnn1UpdateBiasDims, ns::kRnn2KernelDims,        \
     ns::kRnn2RecurrentDims, ns::kRnn2GateBiasDims, ns::kRnn2UpdateBiasDims,     \
     ns::kOutputDims},                                                           \
    {ns::kInput, ns::kRnn1Kernel, ns::kRnn1Recurrent, ns::kRnn1GateBias,         \
     ns::kRnn1UpdateBias, ns::kRnn2Kernel, ns::kRnn2Recurrent,                   \
     ns::kRnn2GateBias, ns::kRnn2UpdateBias},                                    \
    {ns::kInputScale, ns::kRnn1KernelScale, ns::kRnn1RecurrentScale,             \
     ns::kRnn1PreScale, ns::kRnn1PreScale, ns::kRnn2KernelScale,                 \
     ns::kRnn2RecurrentScale, ns::kRnn2PreScale, ns::kRnn2PreScale,              \
     ns::kOutputScale},                                                          \
    ns::kInputZeroPoint, ns::kOutputZeroPoint, ns::kExpected, ns::kPoolH,        \
    ns::kPoolW, ns::kStrideH, ns::kStrideW, ns::kPadding, ns::kGate,             \
    ns::kUpdate, {ns::kRnn1ZetaQ14, ns::kRnn2ZetaQ14},                           \
    {ns::kRnn1NuQ14, ns::kRnn2NuQ14}, {ns::kRnn1PreScale, ns::kRnn2PreScale},    \
    {ns::kRnn1StateScale, ns::kRnn2StateScale},                                  \
  }

void SetUpInt8(Harness* h, const Int8Case& c) {
  using tflite::testing::CreateQuantizedTensor;
  for (int i = 0; i < 9; ++i) {
    const bool bias = i == 3 || i == 4 || i == 7 || i == 8;
    const int zero_point = i == 0 ? c.input_zero_point : 0;
    TfLiteIntArray* dims = h->Dims(i, c.dims[i]);
    if (bias) {
      h->tensors[i] = CreateQuantizedTensor(static_cast<const int32_t*>(c.data[i]),
                                            dims, c.scales[i], 0);
    } else {
      h->tensors[i] = CreateQuantizedTensor(static_cast<const int8_t*>(c.data[i]),
                                            dims, c.scales[i], zero_point);
    }
  }
  h->tensors[kOutputIndex] = CreateQuantizedTensor(
      h->output_int8, h->Dims(kOutputIndex, c.dims[9]), c.scales[9],
      c.output_zero_point);
  h->MarkWeightsConstant();
  Options& o = h->options;
  o = Options();
  o.int8 = true;
  o.pool_h = c.pool_h;
  o.pool_w = c.pool_w;
  o.stride_h = c.stride_h;
  o.stride_w = c.stride_w;
  o.padding = c.padding;
  o.gate = c.gate;
  o.update = c.update;
  for (int i = 0; i < 2; ++i) {
    o.zeta_q14[i] = c.zeta_q14[i];
    o.nu_q14[i] = c.nu_q14[i];
    o.pre_scale[i] = c.pre_scale[i];
    o.state_scale[i] = c.state_scale[i];
  }
}

int OutputCount(const Harness& h) {
  int n = 1;
  for (int i = 1; i <= h.dims[kOutputIndex][0]; ++i) n *= h.dims[kOutputIndex][i];
  return n;
}

void ExpectRejected(Harness* h) {
  EXPECT_EQ(kTfLiteError, h->Prepare());
  EXPECT_TRUE(h->temp_deallocated);
}

}  // namespace

// ---------------------------------------------------------------------------
// Golden outputs.
// ---------------------------------------------------------------------------
TEST(RnnPool, FloatMatchesReference) {
  Harness h;
  h.SetUpFloat();
  ASSERT_TRUE(h.Run(/*invokes=*/2));  // a second Invoke must not change anything
  EXPECT_TRUE(h.temp_deallocated);
  const int n = OutputCount(h);
  EXPECT_EQ(n, static_cast<int>(sizeof(tv::float_case::kExpected) / sizeof(float)));
  for (int i = 0; i < n; ++i) {
    EXPECT_NEAR(tv::float_case::kExpected[i], h.output_float[i], 2e-5f);
  }
}

TEST(RnnPool, Int8SameSigmoidTanhBitExact) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  ASSERT_TRUE(h.Run(2));
  EXPECT_TRUE(h.temp_deallocated);
  const int n = OutputCount(h);
  EXPECT_EQ(n, static_cast<int>(sizeof(tv::int8_case::kExpected)));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(static_cast<int>(tv::int8_case::kExpected[i]),
              static_cast<int>(h.output_int8[i]));
  }
}

TEST(RnnPool, Int8ValidQuantSigmReluBitExact) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_relu_case));
  ASSERT_TRUE(h.Run(1));
  const int n = OutputCount(h);
  EXPECT_EQ(n, static_cast<int>(sizeof(tv::int8_relu_case::kExpected)));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(static_cast<int>(tv::int8_relu_case::kExpected[i]),
              static_cast<int>(h.output_int8[i]));
  }
}

TEST(RnnPool, FloatPrepareOk) {
  Harness h;
  h.SetUpFloat();
  EXPECT_EQ(kTfLiteOk, h.Prepare());
  EXPECT_TRUE(h.temp_deallocated);
}

// ---------------------------------------------------------------------------
// Rejections (each must fail InitAndPrepare and free its temp tensors).
// ---------------------------------------------------------------------------
TEST(RnnPoolReject, WrongInputCount) {
  Harness h;
  h.SetUpFloat();
  h.inputs[0] = 8;  // inputs 0..7 only
  ExpectRejected(&h);
}

TEST(RnnPoolReject, WrongOutputCount) {
  Harness h;
  h.SetUpFloat();
  h.outputs[0] = 0;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, InputRank3) {
  Harness h;
  h.SetUpFloat();
  h.dims[0][0] = 3;  // [1, 5, 5]
  ExpectRejected(&h);
}

TEST(RnnPoolReject, BiasRank2) {
  Harness h;
  h.SetUpFloat();
  const int dims[] = {2, 1, 3};
  h.Dims(3, dims);
  ExpectRejected(&h);
}

TEST(RnnPoolReject, UnsupportedInputType) {
  Harness h;
  h.SetUpFloat();
  h.tensors[0].type = kTfLiteInt16;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, FloatModelWithInt8Weight) {
  Harness h;
  h.SetUpFloat();
  h.tensors[5].type = kTfLiteInt8;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8ModelWithInt8Bias) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  h.tensors[7].type = kTfLiteInt8;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8ModelWithFloatOutput) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  h.tensors[kOutputIndex].type = kTfLiteFloat32;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, KernelRowsNotInputChannels) {
  Harness h;
  h.SetUpFloat();
  h.dims[1][1] = 3;  // W1 [3, h1] but k = 2
  ExpectRejected(&h);
}

TEST(RnnPoolReject, RecurrentKernelNotSquare) {
  Harness h;
  h.SetUpFloat();
  h.dims[2][2] = 2;  // U1 [3, 2]
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Rnn2KernelRowsNotH1) {
  Harness h;
  h.SetUpFloat();
  h.dims[5][1] = 2;  // W2 [2, h2] but h1 = 3
  ExpectRejected(&h);
}

TEST(RnnPoolReject, WrongOutputShape) {
  Harness h;
  h.SetUpFloat();
  h.dims[kOutputIndex][2] = 3;  // valid padding gives W' = 2
  ExpectRejected(&h);
}

TEST(RnnPoolReject, NoOptions) {
  Harness h;
  h.SetUpFloat();
  h.pass_options = false;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, MissingStrideKey) {
  Harness h;
  h.SetUpFloat();
  h.options.omit = "stride_w";
  ExpectRejected(&h);
}

TEST(RnnPoolReject, MissingVersionKey) {
  Harness h;
  h.SetUpFloat();
  h.options.omit = "version";
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8MissingStateScale) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  h.options.omit = "rnn2_state_scale";
  ExpectRejected(&h);
}

TEST(RnnPoolReject, UnknownKey) {
  Harness h;
  h.SetUpFloat();
  h.options.extra_int = "dilation";
  ExpectRejected(&h);
}

TEST(RnnPoolReject, FloatModelWithInt8Key) {
  Harness h;
  h.SetUpFloat();
  h.options.extra_int = "rnn1_zeta_q14";
  ExpectRejected(&h);
}

TEST(RnnPoolReject, FloatOptionWrittenAsInt) {
  Harness h;
  h.SetUpFloat();
  h.options.omit = "rnn1_zeta";
  h.options.extra_int = "rnn1_zeta";  // 1, not 1.0: nothing is coerced
  ExpectRejected(&h);
}

TEST(RnnPoolReject, NonConstantWeight) {
  Harness h;
  h.SetUpFloat();
  h.tensors[2].allocation_type = kTfLiteMemNone;  // U1 computed at run time
  ExpectRejected(&h);
}

TEST(RnnPoolReject, UnknownVersion) {
  Harness h;
  h.SetUpFloat();
  h.options.version = 2;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, ZeroPoolSize) {
  Harness h;
  h.SetUpFloat();
  h.options.pool_h = 0;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, ZeroStride) {
  Harness h;
  h.SetUpFloat();
  h.options.stride_w = 0;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, UnknownPadding) {
  Harness h;
  h.SetUpFloat();
  h.options.padding = 2;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, UnknownActivation) {
  Harness h;
  h.SetUpFloat();
  h.options.update = 5;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8ReluGate) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  h.options.gate = 2;  // relu (contract code)
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8ZetaQ14OutOfRange) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  h.options.zeta_q14[1] = (1 << 14) + 1;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8WeightZeroPointNonZero) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  h.tensors[2].params.zero_point = 1;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8ZeroWeightScale) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  h.tensors[1].params.scale = 0.0f;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8BiasScaleNotPreactivationScale) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  h.tensors[8].params.scale *= 2.0f;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8NonPositiveStateScaleOption) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  h.options.state_scale[0] = -1.0f;
  ExpectRejected(&h);
}

TEST(RnnPoolReject, Int8PerChannelWeights) {
  Harness h;
  SetUpInt8(&h, RNNPOOL_INT8_CASE(tv::int8_case));
  int zp_data[] = {3, 0, 0, 0};
  float scale_data[] = {3, 0.01f, 0.02f, 0.03f};
  TfLiteAffineQuantization affine = {
      tflite::testing::FloatArrayFromFloats(scale_data),
      tflite::testing::IntArrayFromInts(zp_data), 1};
  h.tensors[1].quantization.params = &affine;
  ExpectRejected(&h);
}

TF_LITE_MICRO_TESTS_MAIN
