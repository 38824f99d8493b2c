/* RNNPool kernel core: framework-free float and int8 maths of one RNNPool op.
 *
 * Float operator: docs/rnnpool_float.md. Integer operator: docs/int8_rnnpool.md
 * ("the spec"; section numbers below cite it). The int8 path is bit-exact with
 * the NumPy oracle rnnpool_keras/spec/int8_reference.py.
 *
 * Plain C++17 in the style of TFLM's signal library: no TFLM / TF include, no
 * heap, no exceptions, no RTTI, no floating point in the int8 Eval path
 * (QuantizeMultiplier uses double, but only at Prepare time). Nothing is
 * validated in the hot path: call ValidateFloatParams / ValidateInt8Params
 * once (TFLM Prepare) and only run the kernels on parameters that passed.
 *
 * Layouts
 *   - Feature maps are NHWC [batch, height, width, channels], contiguous.
 *   - Matrices are row-major [in][out]: W1 [k][h1], U1 [h1][h1],
 *     W2 [h1][h2], U2 [h2][h2] (EdgeML's W / U, Keras' kernel layout).
 *   - A patch summary is 4*h2 values: RNN2 final states of the row sweep
 *     forward, rows backward, columns forward, columns backward.
 *
 * Patches. The per-patch entry points take a pointer to ONE image
 * [height][width][k] (one batch element of the NHWC map, row stride
 * width*k) and the patch's top-left corner (top, left) in that image, which
 * may be negative or make the patch run past the border: pixels outside the
 * image are padding (0.0 for float, zp_x, i.e. real zero, for int8; spec
 * 4.1). A gathered patch [r][c][k] is the case height=r, width=c, top=left=0.
 * Padded pixels are never read: their input projection is exactly 0 in both
 * paths, so they cost no multiply-adds.
 *
 * Scratch. Every kernel takes caller-supplied scratch of
 * RnnPool{Float,Int8}ScratchBytes(shape) bytes, aligned to at least 4 bytes
 * (16 recommended). Its contents need not be initialised and are garbage
 * afterwards. Layout (each buffer rounded up to 16 bytes), T = float or
 * int32_t (projections / accumulators), S = float or int16_t (states):
 *   T proj1[r*c*h1]      RNN1 input projection of every pixel, computed ONCE
 *                        and read by the row sweep and by the column sweep
 *   T proj2[max(r,c)*h2] RNN2 input projections of the row (then column)
 *                        summaries, read by the forward and backward sweeps
 *   T acc[max(h1,h2)]    h @ U of one step
 *   S states1[(r+c)*h1]  RNN1 running / final states of every row and column
 *   S state2[h2]         RNN2 running state
 *   float only: S gate[max(h1,h2)], update[max(h1,h2)], one step's activations
 *   (the int8 step is fused per unit and keeps them in registers).
 * (Sizes for the paper's configurations: bench/RESULTS.md.)
 *
 * int8 speed (rnnpool_int8.cc; the plan: rnnpool_prepare.cc). PrepareInt8Plan derives, once,
 * from the parameters alone, a plan (RnnPoolInt8Plan, kept by the caller,
 * e.g. in an op data): the multipliers in 32-bit one-multiply forms with the
 * activations' offsets folded in, interpolation tables for the builtin
 * sigmoid / tanh numbers (found by content, so a model's copy of the tables
 * qualifies; 8 KB of compile-time constants next to the 2 KB tables), the
 * step functions for the cells' activation families, and, on ARMv7E-M and
 * later, the matrices widened to int16. Eval only reads it. The TFLM glue
 * builds it in Prepare and keeps it (persistent buffer); the RnnPoolInt8
 * overload taking parameters is for callers that cannot keep one (a plan per
 * call, on the stack, without the pair storage: on DSP targets it runs the
 * spec transcription).
 * On cores with the DSP extension (Cortex-M4, M7, M33 with DSP, M55) the
 * fast path is the "DSP path" of rnnpool_int8.cc (forms (5)-(7) of
 * rnnpool_core_internal.h): U1, U2, and where they fit W1 (k a multiple of 4)
 * and W2, are kept in the plan by columns as int16 pairs times the
 * requantisation's 2^(left+1), so that h @ U is SMLAD on pairs of inputs held
 * in registers; MBQM of a sum is SMMLAR (rounding constant in its
 * accumulator), one add and one shift, the activations' MBQM is SMLAWB /
 * SMLAWT on the int16 pre-activation lanes, the interpolation one LDRD and
 * one MLA, saturation SSAT / USAT; a step is three passes over the units
 * (pre-activations with h @ U fused for cells of 6 or 8 units, activations,
 * update), each function picked at Prepare for the cell (its families, sizes
 * and which rounding corrections its multipliers need), and the sequences of
 * a cell that can run together do (RNN1's rows, its columns; RNN2's forward
 * and backward sweeps), one call per pass and step for all of them. ACLE
 * intrinsics (arm_acle.h) where it has them, one-instruction inline asm for
 * the rest (SMMLAR, PKHBT, LDRD, SXTB16 with rotation). It needs U1, U2 and
 * the bias pairs in the plan's 2 KiB (cells up to about 20 units); larger
 * cells take the spec transcription there. Other cores run the portable fast
 * path (one pass over the units per step, 64-bit one-rounding
 * requantisation): x86 and the Python extension. On x86-64 hosts whose CPU
 * has AVX2 (checked at Prepare), the plan instead runs AVX2 versions
 * (rnnpool_int8_x86.cc, eight units per register: VPMADDWD products,
 * VPMULDQ requantisation, gathered table pairs) of the fast path's sweeps for
 * cells of a multiple of 8 units (8-unit cells: a patch's rows, then its
 * columns, then RNN2's two directions swept together, so their dependency
 * chains overlap) and of the projections onto a multiple of 8 units, with the
 * same bits; other targets compile none of it
 * (Int8PlanOptions, Int8PlanSimdStages). Parameters outside the fast path's
 * preconditions (other tables, multipliers or biases near the ends of their
 * ranges: see Int8FastPathApplies) run a direct transcription of the spec;
 * every path gives the same bits.
 *
 * Stack. No arrays on the stack, no alloca, no recursion; the int8 call chain
 * is RnnPoolInt8 -> the per-patch body -> Sweep -> SweepInt8 (portable,
 * products inlined) or SweepDsp -> one pass of a step (DSP path) (float:
 * RnnPoolFloat -> RnnPoolPatchFloat -> SweepFloat -> ActivationFloat).
 * bench/bench_kernel.py prints the -fstack-usage chains (x86-64, and
 * Cortex-M with --target) and the stack measured on the emulated cores. The
 * RnnPoolInt8 overload taking parameters builds a plan (without the pair
 * storage) on its stack, about 1 KiB more.
 *
 * Arithmetic bounds (spec 5): with sizes inside the limits below and
 * |weights| <= 127 (-128 is also safe), no int32 intermediate can overflow.
 * int64 appears only in the two exact sums of spec 4.3 and inside MBQM in the
 * spec transcription; the fast path forms both sums in int32 after Prepare
 * has bounded their terms (the projections' and h @ U's requantised bounds,
 * the largest |bias|), and its only 64-bit values are 32x32 products (the
 * high words of SMMLAR / SMLAWB on the DSP path).
 *
 * Tested by tests/kernels/test_kernel_core_{int8,float,fuzz}.py (bit-exact with the
 * oracle; primitives against fixed_point.py; ASan/UBSan fuzzing with
 * tflm_kernels/fuzz/rnnpool_fuzz.cc).
 */
#ifndef TFLM_KERNELS_RNNPOOL_CORE_H_
#define TFLM_KERNELS_RNNPOOL_CORE_H_

#include <cstddef>
#include <cstdint>

namespace rnnpool {

// Spec 5: the largest sizes supported (no int32 overflow within them).
constexpr int32_t kMaxInputChannels = 1024;
constexpr int32_t kMaxUnits = 256;
constexpr int32_t kMaxPool = 64;
// Spec 3 / 4.4: sigmoid / tanh read a 513-entry int16 table over the Q3.12
// input range [-8, 8): T[i] = sat16(round(f((-32768 + 128 i) / 2^12) * 2^15)),
// the same numbers for every model (integer_activations.make_table).
constexpr int32_t kTableSize = 513;
constexpr int32_t kTableStepBits = 7;
constexpr int32_t kTableInputFractionBits = 12;
constexpr int32_t kOneQ14 = 1 << 14;

// The spec's two tables, built into the core (rnnpool_tables.inc, generated
// by make_tables.py from integer_activations.make_table): a Prepare may point
// Int8Cell::gate_table / update_table here instead of at the model's copy.
// `activation` kSigmoid or kTanh; nullptr for the others.
const int16_t* BuiltinTable(int32_t activation);
constexpr int32_t kOneQ15 = 1 << 15;

enum class Padding : int32_t { kValid = 0, kSame = 1 };

// The activation codes of the op contract (docs/rnnpool_custom_op.md,
// `gate_activation` / `update_activation`): one numbering from the .tflite
// options to the kernel (the TFLM glue static_asserts it).
enum class Activation : int32_t {
  kSigmoid = 0,
  kTanh = 1,
  kRelu = 2,
  kQuantSigm = 3,
  kQuantTanh = 4,
};

// Sizes and hyper-parameters of one op, shared by the float and int8 paths.
struct RnnPoolShape {
  int32_t in_channels;  // k
  int32_t rnn1_units;   // h1
  int32_t rnn2_units;   // h2; the output has 4*h2 channels
  int32_t pool_h;       // r, patch rows
  int32_t pool_w;       // c, patch columns
  int32_t stride_h;     // sr
  int32_t stride_w;     // sc
  Padding padding;
  Activation gate_activation;    // z
  Activation update_activation;  // c
};

// ---------------------------------------------------------------------------
// Float parameters. zeta and nu are given AFTER the sigmoid (the cell uses
// only sigmoid(zeta), sigmoid(nu)); compute them once, at Prepare time.
// ---------------------------------------------------------------------------
struct FloatCell {
  const float* kernel;            // W [in][units]
  const float* recurrent_kernel;  // U [units][units]
  const float* gate_bias;         // [units]
  const float* update_bias;       // [units]
  float zeta_sigmoid;             // sigmoid(zeta)
  float nu_sigmoid;               // sigmoid(nu)
};

struct RnnPoolFloatParams {
  RnnPoolShape shape;
  FloatCell rnn1;  // k -> h1
  FloatCell rnn2;  // h1 -> h2
};

// ---------------------------------------------------------------------------
// int8 parameters (spec 1 and 3).
// ---------------------------------------------------------------------------
// A real multiplier M ~= q * 2^(shift - 31); q in [2^30, 2^31) or (0, 0).
struct Multiplier {
  int32_t q;
  int32_t shift;  // in [-31, 30]
};

struct Int8Cell {
  const int8_t* kernel;            // W_q [in][units], symmetric, zero point 0
  const int8_t* recurrent_kernel;  // U_q [units][units]
  const int32_t* gate_bias;        // [units], scale s_pre
  const int32_t* update_bias;      // [units], scale s_pre
  int32_t zeta_q14;                // round(sigmoid(zeta) * 2^14), in [0, 2^14]
  int32_t nu_q14;                  // round(sigmoid(nu) * 2^14), in [0, 2^14]
  const int16_t* gate_table;       // [513] if the gate is sigmoid/tanh, else unused
  const int16_t* update_table;     // [513] if the update is sigmoid/tanh, else unused
  Multiplier input_multiplier;     // M_x = s_in * s_W / s_pre
  Multiplier recurrent_multiplier; // M_h = s_h * s_U / s_pre
  Multiplier update_multiplier;    // M_c = s_c * 2^-14 / s_h (s_c = 2^-15, s_pre for relu)
  // M_a of the gate / update activation: s_pre * 2^12 (sigmoid, tanh: to the
  // table's Q3.12 input), s_pre * 2^15 (quantTanh), s_pre * 2^14 (quantSigm);
  // unused for relu.
  Multiplier gate_activation_multiplier;
  Multiplier update_activation_multiplier;
};

struct RnnPoolInt8Params {
  RnnPoolShape shape;
  Int8Cell rnn1;  // input scale s_x
  Int8Cell rnn2;  // input scale s_h of RNN1
  int32_t input_zero_point;      // zp_x, in [-128, 127]
  int32_t output_zero_point;     // zp_y, in [-128, 127]
  Multiplier output_multiplier;  // M_y = s_h(RNN2) / s_y
};

// ---------------------------------------------------------------------------
// Validation (Prepare time; never called by the kernels).
// ---------------------------------------------------------------------------
enum class Status : int32_t {
  kOk = 0,
  kBadInputChannels,   // k not in [1, 1024]
  kBadUnits,           // h1 or h2 not in [1, 256]
  kBadPool,            // r or c not in [1, 64]
  kBadStride,          // a stride < 1
  kBadPadding,         // not kValid / kSame
  kBadActivation,      // not a known Activation
  kReluGate,           // int8 gate may not be relu (spec 4.4)
  kNullPointer,        // a weight, bias or needed table pointer is null
  kBadZetaNu,          // zeta_q14 / nu_q14 not in [0, 2^14]
  kBadMultiplier,      // a needed multiplier not (0, 0) or q in [2^30, 2^31), shift in [-31, 30]
  kBadZeroPoint,       // zero point not in [-128, 127]
  kBadMultiplierValue, // QuantizeMultiplier: not positive and finite, or >= 2^30
};

// A constant English sentence for a status (never null).
const char* StatusMessage(Status status);

Status ValidateShape(const RnnPoolShape& shape);
Status ValidateFloatParams(const RnnPoolFloatParams& params);
Status ValidateInt8Params(const RnnPoolInt8Params& params);

// ---------------------------------------------------------------------------
// Output geometry (same rule as rnnpool_keras.patch_geometry / Keras pooling).
// ---------------------------------------------------------------------------
// valid: n < window ? 0 : (n - window) / stride + 1;  same: ceil(n / stride).
int32_t OutputSize(int32_t n, int32_t window, int32_t stride, Padding padding);
// Rows / columns of padding before the first pixel: total // 2 for same,
// with total = max((out - 1) * stride + window - n, 0); 0 for valid.
int32_t PaddingBefore(int32_t n, int32_t window, int32_t stride, Padding padding);

// ---------------------------------------------------------------------------
// Scratch sizes, in bytes (layout in the file comment). Depend only on shape.
// ---------------------------------------------------------------------------
size_t RnnPoolFloatScratchBytes(const RnnPoolShape& shape);
size_t RnnPoolInt8ScratchBytes(const RnnPoolShape& shape);

// ---------------------------------------------------------------------------
// Fixed-point primitives (spec 2). Exposed for tests; the kernels inline them.
// ---------------------------------------------------------------------------
// Spec 2.1; Prepare time only (uses double). Returns kBadMultiplierValue for a
// multiplier that is not positive and finite or is >= 2^30 (q, shift untouched).
Status QuantizeMultiplier(double real_multiplier, int32_t* q, int* shift);

// Spec 2.2: (a*b + nudge) / 2^31 truncated; INT32_MIN * INT32_MIN -> INT32_MAX.
// With nudge = 2^30 for a*b >= 0 and 1 - 2^30 otherwise, the truncated
// quotient equals floor((a*b + 2^30) / 2^31) for every a*b, which is what is
// computed (tests check both forms against fixed_point.py).
inline int32_t SaturatingRoundingDoublingHighMul(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = static_cast<int64_t>(a) * b;
  return static_cast<int32_t>((ab + (int64_t{1} << 30)) >> 31);
}

// Spec 2.3: x / 2^n, round to nearest, halves away from zero; n in [0, 31].
inline int32_t RoundingDivideByPOT(int32_t x, int n) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << n) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> n) + (remainder > threshold ? 1 : 0);
}

// Spec 2.2: RDBPOT(SRDHM(sat32(x * 2^max(shift, 0)), q), max(-shift, 0)).
// The left shift saturates (TFLite leaves that overflow undefined).
inline int32_t MultiplyByQuantizedMultiplier(int32_t x, int32_t q, int shift) {
  if (shift > 0) {
    const int32_t limit = INT32_MAX >> shift;
    if (x > limit) {
      x = INT32_MAX;
    } else if (x < -limit - 1) {
      x = INT32_MIN;
    } else {
      x = static_cast<int32_t>(static_cast<uint32_t>(x) << shift);
    }
    return SaturatingRoundingDoublingHighMul(x, q);
  }
  return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, q), -shift);
}

inline int32_t MultiplyByQuantizedMultiplier(int32_t x, const Multiplier& m) {
  return MultiplyByQuantizedMultiplier(x, m.q, m.shift);
}

namespace detail {

// A validated Multiplier (q >= 0, shift in [-31, 30]) in the form the inner
// loops use: Requantize(x, MakeRequant(m)) == MultiplyByQuantizedMultiplier(x, m)
// for every int32 x, with one rounding step instead of two. Derivation (spec
// 2.2, 2.3), with P = x' q (x' the saturated left shift) and n = max(-shift, 0):
// - q >= 0 rules out SRDHM's one overflow, and SRDHM = (P + nudge) / 2^31
//   truncated equals t = floor((P + 2^30) / 2^31) for every P;
// - RDBPOT(t, n) = floor((t + 2^(n-1) - [t < 0]) / 2^n) for n >= 1, and
//   t < 0 exactly when P < -2^30;
// - floor((floor(A / 2^31) + c) / 2^n) = floor((A + c 2^31) / 2^(31+n)), so
//   MBQM = (P + 2^30 + 2^(30+n) - [P < -2^30] 2^31) >> (31 + n) (n >= 1),
//   (P + 2^30) >> 31 (n = 0). |P| <= 2^62, so the sum stays within int64.
// tests/test_kernel_core_int8.py checks it against fixed_point.py. Internal to
// the kernels (exposed for tests); only for multipliers ValidateInt8Params accepts.
struct Requant {
  int32_t q;
  int32_t left;       // max(shift, 0)
  int32_t limit;      // INT32_MAX >> left: larger |x| saturate the left shift
  int32_t total;      // 31 + max(-shift, 0)
  int64_t nudge;      // 2^30 (+ 2^(30+n) if n >= 1)
  int64_t negative;   // 2^31 if n >= 1, else 0
  int64_t q_shifted;  // q * 2^left, for int16 inputs (left <= 16: no saturation)
};

inline Requant MakeRequant(const Multiplier& m) {
  Requant r;
  const int32_t n = m.shift > 0 ? 0 : -m.shift;
  r.q = m.q;
  r.left = m.shift > 0 ? m.shift : 0;
  r.limit = INT32_MAX >> r.left;
  r.total = 31 + n;
  r.nudge = (int64_t{1} << 30) + (n > 0 ? (int64_t{1} << (30 + n)) : 0);
  r.negative = n > 0 ? (int64_t{1} << 31) : 0;
  r.q_shifted = static_cast<int64_t>(m.q) << (r.left < 16 ? r.left : 16);
  return r;
}

inline int32_t Requantize(int32_t x, const Requant& m) {
  if (m.left > 0) {
    if (x > m.limit) {
      x = INT32_MAX;
    } else if (x < -m.limit - 1) {
      x = INT32_MIN;
    } else {
      x = static_cast<int32_t>(static_cast<uint32_t>(x) << m.left);
    }
  }
  const int64_t p = static_cast<int64_t>(x) * m.q;
  const int64_t sum = p + m.nudge - (p < -(int64_t{1} << 30) ? m.negative : 0);
  return static_cast<int32_t>(sum >> m.total);
}

// Requantize for an int16 input. With left <= 16, x * 2^left fits int32
// (|x| <= 2^15), so the left shift never saturates and folds into the
// multiplier: P = x * (q 2^left), |P| < 2^62. A larger left shift (an absurd
// M >= 2^16, still within the spec) takes the general path.
inline int32_t Requantize16(int32_t x, const Requant& m) {
  if (m.left > 16) return Requantize(x, m);
  const int64_t p = static_cast<int64_t>(x) * m.q_shifted;
  const int64_t sum = p + m.nudge - (p < -(int64_t{1} << 30) ? m.negative : 0);
  return static_cast<int32_t>(sum >> m.total);
}

}  // namespace detail

// The int16 activations of spec 4.4 (as integer_activations.apply), in place
// on n pre-activations: sigmoid / tanh: q = sat16(MBQM(x, M_a)), then
// T[i] + RDBPOT((T[i+1] - T[i]) f, 7) with i = (q + 32768) >> 7,
// f = (q + 32768) & 127; quantTanh: sat16(MBQM(x, M_a)); quantSigm:
// clamp(MBQM(x, M_a) + 2^14, 0, 32767); relu: max(x, 0). `table` is used by
// sigmoid / tanh, `multiplier` (M_a) by all but relu. Checks its arguments
// (an unknown activation, a missing table, a multiplier ValidateInt8Params
// would refuse) and leaves `values` untouched unless it returns kOk.
Status ActivationInt16(Activation activation, const int16_t* table,
                       const Multiplier& multiplier, int16_t* values, int32_t n);

// Prepare-time helper: fills the five multipliers of `cell` from real scales
// exactly as rnnpool_keras int8_params.cell_constants does (spec 3).
// input_scale: s_x for RNN1, s_h of RNN1 for RNN2.
Status ComputeCellMultipliers(double input_scale, double kernel_scale,
                              double recurrent_scale, double preactivation_scale,
                              double state_scale, Activation gate_activation,
                              Activation update_activation, Int8Cell* cell);

// True if the int8 kernels take their fast path for these (validated)
// parameters; the results are identical either way. They do when the sigmoid /
// tanh tables hold the builtin numbers (BuiltinTable), a gate and an update of
// the same family have the same M_a (spec 3 makes them equal), and, in both
// cells, h @ U * 2^(left(M_h) + 1) fits int32 (M_h < 16 for h = 8, < 8 for
// h = 16), M_c < 1, M_a < 2^15, the activations' rounding constants fit int32
// (M_a >= 2^-15 or so), and the bounds of gx + gh + b (from k, h, M_x, M_h and
// the largest |bias|) stay below 2^31, which calibrated scales meet unless a
// state range is thousands of times a pre-activation range. On DSP targets
// (ARMv7E-M and later) also: U1, U2 and the biases fit the plan (cells up to
// about 20 units), M_h < 64, M_a < 2^14, M_c < 1/2, coef c 2^(left(M_c)+1)
// fits int32 (sigmoid(zeta) (1 - z_min) + sigmoid(nu) < 2, z_min the gate's
// smallest value: EdgeML's initial zeta, nu give 1.48 with a tanh gate), and
// no multiplier with a right shift is a power of two (q = 2^30: its rounding
// correction would need the product's sign, not the input's). For
// tests and diagnostics; returns false for parameters ValidateInt8Params
// rejects.
bool Int8FastPathApplies(const RnnPoolInt8Params& params);

// ---------------------------------------------------------------------------
// int8 plan (Prepare time). Everything the int8 kernels derive from the
// parameters alone: the multipliers in their 32-bit fast forms with the
// activations' offsets folded in, the interpolation tables of the builtin
// sigmoid / tanh numbers (found by content), the path (fast or generic) and
// its sweep function. Built once by PrepareInt8Plan; Eval only reads it.
// Opaque and of fixed size, so a TFLM op data can hold it by value. It keeps
// a copy of the parameters, whose arrays must outlive it.
// ---------------------------------------------------------------------------
// 1.25 KiB of constants and, on cores with SMLAD (ARMv7E-M and later), 2 KiB
// for the DSP path's int16 matrices (U1, U2 by columns; W1, W2 where they
// fit) and bias pairs; elsewhere none.
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
constexpr size_t kInt8PlanPairBytes = 2048;
#else
constexpr size_t kInt8PlanPairBytes = 0;
#endif
constexpr size_t kInt8PlanBytes = 1280 + kInt8PlanPairBytes;
struct RnnPoolInt8Plan {
  alignas(8) unsigned char storage[kInt8PlanBytes];
};

// Validates `params` (ValidateInt8Params; the weight and bias arrays must be
// set: the fast path's bounds read the biases) and builds `plan`.
Status PrepareInt8Plan(const RnnPoolInt8Params& params, RnnPoolInt8Plan* plan);

// On x86-64 hosts whose CPU has AVX2 (checked here, at Prepare), the plan
// runs AVX2 versions of the fast path's stages whose unit count is a multiple
// of 8 (rnnpool_int8_x86.cc); same bits as the portable code. allow_simd =
// false keeps every stage on the portable code (tests compare the two). No
// effect on other targets.
struct Int8PlanOptions {
  bool allow_simd = true;
};
Status PrepareInt8Plan(const RnnPoolInt8Params& params, const Int8PlanOptions& options,
                       RnnPoolInt8Plan* plan);

// True if a plan runs the fast path (see Int8FastPathApplies).
bool Int8PlanIsFast(const RnnPoolInt8Plan& plan);

// The op's sizes and hyper-parameters the plan was built for.
const RnnPoolShape& Int8PlanShape(const RnnPoolInt8Plan& plan);

// The stages a plan runs as SIMD code (bits; 0: all portable).
constexpr uint32_t kInt8SimdRnn1Sweep = 1u << 0;       // RNN1 rows and columns
constexpr uint32_t kInt8SimdRnn2Sweep = 1u << 1;       // RNN2 over the summaries
constexpr uint32_t kInt8SimdRnn1Projection = 1u << 2;  // pixels @ W1
constexpr uint32_t kInt8SimdRnn2Projection = 1u << 3;  // summaries @ W2
uint32_t Int8PlanSimdStages(const RnnPoolInt8Plan& plan);

// ---------------------------------------------------------------------------
// Kernels.
// ---------------------------------------------------------------------------
// One patch: `image` is one [height][width][k] map, the patch covers rows
// top..top+r-1 and columns left..left+c-1 (outside = padding; any int32 top
// and left, a patch wholly outside gives the all-padding summary). Writes
// 4*h2 values to `output`.
void RnnPoolPatchFloat(const RnnPoolFloatParams& params, const float* image,
                       int32_t height, int32_t width, int32_t top, int32_t left,
                       float* output, void* scratch);
void RnnPoolPatchInt8(const RnnPoolInt8Plan& plan, const int8_t* image, int32_t height,
                      int32_t width, int32_t top, int32_t left, int8_t* output, void* scratch);

// Whole map: input NHWC [batch, height, width, k] -> output NHWC
// [batch, H', W', 4*h2] with H' = OutputSize(height, r, sr, padding), etc.
void RnnPoolFloat(const RnnPoolFloatParams& params, const float* input,
                  int32_t batch, int32_t height, int32_t width, float* output,
                  void* scratch);
void RnnPoolInt8(const RnnPoolInt8Plan& plan, const int8_t* input, int32_t batch,
                 int32_t height, int32_t width, int8_t* output, void* scratch);

// The whole map from parameters: builds a plan on the stack for this one call
// (about 1 KiB of stack and a few thousand instructions; without the pair
// storage, so on DSP targets it runs the spec transcription, several times
// slower). For callers that cannot keep a plan; Prepare-time callers use
// PrepareInt8Plan instead.
void RnnPoolInt8(const RnnPoolInt8Params& params, const int8_t* input, int32_t batch,
                 int32_t height, int32_t width, int8_t* output, void* scratch);

}  // namespace rnnpool

#endif  // TFLM_KERNELS_RNNPOOL_CORE_H_
