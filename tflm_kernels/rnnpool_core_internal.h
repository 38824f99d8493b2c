/* RNNPool kernel core, internal: what the core's files share (not part of
 * the API; include rnnpool_core.h instead). The core is split by role, as
 * TFLM splits its kernels:
 *   rnnpool_prepare.cc    Prepare time: validation, geometry, scratch sizes,
 *                         multipliers, the int8 plan (MakeInt8Plan)
 *   rnnpool_int8_spec.cc  the int8 spec transcribed operation by operation
 *                         (the generic path; ActivationInt16)
 *   rnnpool_int8.cc       the optimised int8 Eval (fast path: portable, or
 *                         the DSP path on ARMv7E-M and later; patches, maps)
 *   rnnpool_int8_x86.cc   the fast path's sweeps and projections and the
 *                         fused stem convolution in AVX2 (x86-64 hosts only;
 *                         empty elsewhere)
 *   rnnpool_float.cc      the float Eval
 * Spec = docs/int8_rnnpool.md.
 */
#ifndef TFLM_KERNELS_RNNPOOL_CORE_INTERNAL_H_
#define TFLM_KERNELS_RNNPOOL_CORE_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rnnpool_core.h"

namespace rnnpool {

struct StemShape;  // rnnpool_stem.h
struct StemInt8Params;

namespace internal {

using detail::Requant;
using detail::MakeRequant;
using detail::Requantize;
using detail::Requantize16;

// ---------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------
inline int32_t Max32(int32_t a, int32_t b) { return a > b ? a : b; }

// Code-placement hints (no effect on results). Saturation is the rare case in
// the hot loops: UNLIKELY keeps it off the straight-line path, COLD moves it
// out of line (g++ otherwise turns some clamps into longer branch-free code);
// ALWAYS_INLINE / NOINLINE where the measured instruction counts said so.
#if defined(__GNUC__)
#define RNNPOOL_UNLIKELY(condition) __builtin_expect(!!(condition), 0)
#define RNNPOOL_COLD __attribute__((noinline, cold))
#define RNNPOOL_NOINLINE __attribute__((noinline))
#define RNNPOOL_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define RNNPOOL_UNLIKELY(condition) (condition)
#define RNNPOOL_COLD
#define RNNPOOL_NOINLINE
#define RNNPOOL_ALWAYS_INLINE inline
#endif

// x86-64 hosts built by GCC or Clang: rnnpool_int8_x86.cc defines AVX2
// versions of the fast path's sweeps and projections (function attributes,
// no global -mavx2), which PrepareInt8Plan picks when the CPU has AVX2. Every
// other target (Cortex-M, TFLM) compiles none of it. -DRNNPOOL_NO_X86_SIMD
// leaves it out of an x86 build too.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RNNPOOL_NO_X86_SIMD)
#define RNNPOOL_X86_SIMD 1
#else
#define RNNPOOL_X86_SIMD 0
#endif

// ARMv7E-M and later (Cortex-M4, M7, M33 with DSP, M55): the fast path runs
// the forms of rnnpool_int8.cc's "DSP path" (SMLAD products with matrices
// widened to int16 in the plan, SMMLAR / SMLAWB requantisation, SSAT), and
// the portable step below is not compiled.
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__ARM_FEATURE_SIMD32) && \
    __ARM_FEATURE_SIMD32 && defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#define RNNPOOL_ARM_DSP 1
#else
#define RNNPOOL_ARM_DSP 0
#endif

// sat16 (spec 2.4). One compare in the common, unsaturated case.
// (The offset is added in unsigned arithmetic, which wraps instead of overflowing.)
inline int32_t Sat16(int64_t x) {
  if (RNNPOOL_UNLIKELY(static_cast<uint64_t>(x) + 32768u > 65535u)) {
    return x < 0 ? INT16_MIN : INT16_MAX;
  }
  return static_cast<int32_t>(x);
}
inline int32_t Sat16(int32_t x) {
  if (RNNPOOL_UNLIKELY(static_cast<uint32_t>(x) + 32768u > 65535u)) {
    return x < 0 ? INT16_MIN : INT16_MAX;
  }
  return x;
}
inline int32_t Clamp32(int32_t x, int32_t lo, int32_t hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

inline size_t RoundUp16(size_t bytes) { return (bytes + 15) & ~static_cast<size_t>(15); }

// Scratch layout of the header comment, in elements of T (projections,
// accumulators) and S (states, activations). `activation_buffers`: the float
// path keeps one step's gate and update values; the int8 path fuses them.
template <typename T, typename S>
struct Workspace {
  T* proj1;     // [r*c*h1]
  T* proj2;     // [max(r,c)*h2]
  T* acc;       // [max(h1,h2)]
  S* states1;   // [(r+c)*h1]
  S* state2;    // [h2]
  S* gate;      // [max(h1,h2)] (float only)
  S* update;    // [max(h1,h2)] (float only)
};

// Byte offsets of the buffers; the last one is the total size.
template <typename T, typename S>
void WorkspaceOffsets(const RnnPoolShape& s, bool activation_buffers, size_t offsets[8]) {
  const size_t r = static_cast<size_t>(s.pool_h), c = static_cast<size_t>(s.pool_w);
  const size_t h1 = static_cast<size_t>(s.rnn1_units), h2 = static_cast<size_t>(s.rnn2_units);
  const size_t rc_max = r > c ? r : c;
  const size_t h_max = h1 > h2 ? h1 : h2;
  const size_t sizes[7] = {
      r * c * h1 * sizeof(T), rc_max * h2 * sizeof(T), h_max * sizeof(T),
      (r + c) * h1 * sizeof(S), h2 * sizeof(S),
      activation_buffers ? h_max * sizeof(S) : 0, activation_buffers ? h_max * sizeof(S) : 0};
  offsets[0] = 0;
  for (int i = 0; i < 7; ++i) offsets[i + 1] = offsets[i] + RoundUp16(sizes[i]);
}

template <typename T, typename S>
size_t WorkspaceBytes(const RnnPoolShape& s, bool activation_buffers) {
  size_t offsets[8];
  WorkspaceOffsets<T, S>(s, activation_buffers, offsets);
  return offsets[7];
}

template <typename T, typename S>
Workspace<T, S> CarveWorkspace(const RnnPoolShape& s, void* scratch, bool activation_buffers) {
  size_t offsets[8];
  WorkspaceOffsets<T, S>(s, activation_buffers, offsets);
  char* p = static_cast<char*>(scratch);
  Workspace<T, S> w;
  w.proj1 = reinterpret_cast<T*>(p + offsets[0]);
  w.proj2 = reinterpret_cast<T*>(p + offsets[1]);
  w.acc = reinterpret_cast<T*>(p + offsets[2]);
  w.states1 = reinterpret_cast<S*>(p + offsets[3]);
  w.state2 = reinterpret_cast<S*>(p + offsets[4]);
  w.gate = activation_buffers ? reinterpret_cast<S*>(p + offsets[5]) : nullptr;
  w.update = activation_buffers ? reinterpret_cast<S*>(p + offsets[6]) : nullptr;
  return w;
}

// ===========================================================================
// Shared: blocked vector-matrix products, out[o] = sum_j (v[j] + offset) * M[j][o].
// M is row-major [in][units]. Eight (then four, then one) outputs are
// accumulated in named registers while j runs (written out by hand: a generic
// template with an accumulator array measured 22% more int8 instructions per
// VWW patch), so each multiply-add is one load of
// M, one multiply and one add; the summation order over j is the plain one.
// The epilogue maps each finished sum to the value stored (the int8
// projections requantise their sums while they are still in registers).
// ===========================================================================
struct StoreSum {
  template <typename Acc>
  Acc operator()(Acc a) const { return a; }
};

template <typename Acc, typename In, typename W>
inline void MatVecBlock8(const In* v, int32_t in, Acc offset, const W* m, int32_t units,
                         Acc* out) {
  Acc a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  for (int32_t j = 0; j < in; ++j, m += units) {
    const Acc vj = static_cast<Acc>(v[j]) + offset;
    a0 += vj * m[0];
    a1 += vj * m[1];
    a2 += vj * m[2];
    a3 += vj * m[3];
    a4 += vj * m[4];
    a5 += vj * m[5];
    a6 += vj * m[6];
    a7 += vj * m[7];
  }
  out[0] = a0;
  out[1] = a1;
  out[2] = a2;
  out[3] = a3;
  out[4] = a4;
  out[5] = a5;
  out[6] = a6;
  out[7] = a7;
}

// The int32 version of MatVecBlock8 (in >= 1): the accumulators start from
// the first row's products instead of from zero (integer sums are exact in
// any order), and an epilogue.
template <typename In, typename W, typename Epilogue>
inline void MatVecBlock8Int(const In* v, int32_t in, int32_t offset, const W* m, int32_t units,
                            int32_t* out, const Epilogue& epilogue) {
  int32_t vj = static_cast<int32_t>(v[0]) + offset;
  int32_t a0 = vj * m[0], a1 = vj * m[1], a2 = vj * m[2], a3 = vj * m[3];
  int32_t a4 = vj * m[4], a5 = vj * m[5], a6 = vj * m[6], a7 = vj * m[7];
  for (int32_t j = 1; j < in; ++j) {
    m += units;
    vj = static_cast<int32_t>(v[j]) + offset;
    a0 += vj * m[0];
    a1 += vj * m[1];
    a2 += vj * m[2];
    a3 += vj * m[3];
    a4 += vj * m[4];
    a5 += vj * m[5];
    a6 += vj * m[6];
    a7 += vj * m[7];
  }
  out[0] = epilogue(a0);
  out[1] = epilogue(a1);
  out[2] = epilogue(a2);
  out[3] = epilogue(a3);
  out[4] = epilogue(a4);
  out[5] = epilogue(a5);
  out[6] = epilogue(a6);
  out[7] = epilogue(a7);
}

template <typename Acc, typename In, typename W, typename Epilogue>
inline void MatVecBlock4(const In* v, int32_t in, Acc offset, const W* m, int32_t units,
                         Acc* out, const Epilogue& epilogue) {
  Acc a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (int32_t j = 0; j < in; ++j, m += units) {
    const Acc vj = static_cast<Acc>(v[j]) + offset;
    a0 += vj * m[0];
    a1 += vj * m[1];
    a2 += vj * m[2];
    a3 += vj * m[3];
  }
  out[0] = epilogue(a0);
  out[1] = epilogue(a1);
  out[2] = epilogue(a2);
  out[3] = epilogue(a3);
}

// MatVec's body, always inlined: the int8 sweeps run it once per step, where
// a call would also make the compiler reload the step's constants after it.
template <typename Acc, typename In, typename W, typename Epilogue>
RNNPOOL_ALWAYS_INLINE void MatVecInline(const In* v, int32_t in, Acc offset, const W* matrix,
                                        int32_t units, Acc* out, const Epilogue& epilogue) {
  int32_t o = 0;
  for (; o + 8 <= units; o += 8) {
    if constexpr (std::is_integral<Acc>::value) {
      MatVecBlock8Int(v, in, offset, matrix + o, units, out + o, epilogue);
    } else {
      MatVecBlock8(v, in, offset, matrix + o, units, out + o);
    }
  }
  if (o + 4 <= units) {
    MatVecBlock4(v, in, offset, matrix + o, units, out + o, epilogue);
    o += 4;
  }
  for (; o < units; ++o) {
    Acc a = 0;
    const W* m = matrix + o;
    for (int32_t j = 0; j < in; ++j, m += units) a += (static_cast<Acc>(v[j]) + offset) * *m;
    out[o] = epilogue(a);
  }
}

template <typename Acc, typename In, typename W, typename Epilogue = StoreSum>
void MatVec(const In* v, int32_t in, Acc offset, const W* matrix, int32_t units, Acc* out,
            const Epilogue& epilogue = Epilogue()) {
  MatVecInline(v, in, offset, matrix, units, out, epilogue);
}

// ===========================================================================
// int8 path (spec 4). Integer arithmetic only.
//
// Two implementations of the same arithmetic, both bit-exact (the derivation
// of each rewrite is next to it):
// - the fast path (FastCell, SweepInt8<FastCell, gate, update>), taken when
//   both cells meet its preconditions (MakeFastCell), which calibrated models
//   do in practice: table activations use the builtin sigmoid / tanh numbers
//   (compared by content, so a model's copy qualifies); no multiplier's
//   saturating left shift can saturate on the values it sees and its input
//   fits the 32-bit form it is given (M_h < 16 for h = 8, < 8 for h = 16;
//   M_c < 1; M_a < 2^15); the activations' offsets fit their rounding
//   constants; spec 4.3's two exact sums fit int32 (bounded at Prepare from
//   the sizes, the multipliers and the largest |bias|); and a gate and an
//   update of the same family share one M_a (spec 3 makes them equal). On
//   DSP targets (RNNPOOL_ARM_DSP) it runs in the forms (5)-(7) below
//   (DspCell, SweepDsp), which add their own preconditions (MakeDspCell);
// - the generic path (Int8CellCtx, SweepInt8<Int8CellCtx>), the spec's
//   operations one by one, for everything else (other tables, multipliers
//   near the ends of their ranges).
// The projections choose the fast form of M_x on their own (Project).
// Int8FastPathApplies tells which path parameters take.
// ===========================================================================

// RDBPOT by a constant exponent n >= 1 (spec 2.3): (x + 2^(n-1) - [x < 0]) >> n,
// the same rounding as the mask form. Callers guarantee x + 2^(n-1) <= INT32_MAX.
template <int kExponent>
inline int32_t RoundingDivideByPOTConst(int32_t x) {
  return (x + (1 << (kExponent - 1)) + (x >> 31)) >> kExponent;
}

// The activation families of spec 4.4 (sigmoid and tanh differ only by table).
enum class Kind { kTable, kQuantSigm, kQuantTanh, kRelu };

// The offsets [begin, end) within 0..window-1 of a patch starting at `start`
// that fall inside 0..size-1; in int64 so that any int32 start is safe.
struct InsideSpan {
  int32_t begin;
  int32_t end;
};
inline InsideSpan SpanInside(int32_t start, int32_t window, int32_t size) {
  const int64_t first = -static_cast<int64_t>(start);
  const int64_t last = static_cast<int64_t>(size) - start;
  InsideSpan span;
  span.begin = static_cast<int32_t>(first < 0 ? 0 : (first > window ? window : first));
  span.end = static_cast<int32_t>(last < span.begin ? span.begin : (last > window ? window : last));
  return span;
}

// Validity of codes and multipliers (rnnpool_prepare.cc), shared by the
// parameter validation and ActivationInt16.
bool IsKnownActivation(Activation a);
bool IsTableActivation(Activation a);  // sigmoid / tanh: they read a table
bool MultiplierOk(const Multiplier& m);  // q in {0} or [2^30, 2^31), shift in [-31, 30]

inline Kind KindOf(Activation a) {
  switch (a) {
    case Activation::kSigmoid:
    case Activation::kTanh:
      return Kind::kTable;
    case Activation::kQuantSigm:
      return Kind::kQuantSigm;
    case Activation::kQuantTanh:
      return Kind::kQuantTanh;
    case Activation::kRelu:
      return Kind::kRelu;
  }
  return Kind::kTable;
}

// One cell, with its multipliers in Requant form.
struct Int8CellCtx {
  const int8_t* recurrent_kernel;
  const int32_t* gate_bias;
  const int32_t* update_bias;
  const int16_t* gate_table;
  const int16_t* update_table;
  int32_t zeta;
  int32_t nu;
  Requant recurrent;
  Requant update;
  Requant gate_activation;
  Requant update_activation;
};

// ---------------------------------------------------------------------------
// Fast path.
// ---------------------------------------------------------------------------
// (1) MBQM in 32-bit arithmetic: one multiply returning a rounded high word
// (SMMULR on ARMv7E-M and later) or one 32x32->64 multiply-add (SMLAL class),
// then RDBPOT as an add and a shift; no 64-bit shift, add or compare.
// With x' = x 2^left exact (no input the multiplier sees can saturate the
// left shift: checked at Prepare from the input's bound), spec 2.2 gives
//   t = SRDHM(x', q) = floor((x' q + 2^30) / 2^31)        (q >= 0)
//     = floor((2 x' q + 2^31) / 2^32) = SMMULR(x 2^(left+1), q)
// whenever x 2^(left+1) fits int32 ("narrow" inputs), else the 64-bit product
// of x' and q plus 2^30, shifted by 31 ("wide"). Then spec 2.3, n = max(-shift, 0):
//   RDBPOT(t, n) = floor((t + 2^(n-1) - [t < 0]) / 2^n)   (n >= 1), t (n = 0),
// and an integer added after the rounding folds into its constant:
//   RDBPOT(t, n) + offset = (t + round + ([t < 0] ? sign_mask : 0)) >> n,
// round = 2^(n-1) + offset 2^n, sign_mask = -1 (n >= 1); round = offset,
// sign_mask = 0 (n = 0). |t| <= |x'|, and Prepare checks |x'| + round < 2^31.
struct FastRequant {
  int32_t q;
  int32_t pre_shift;  // left + 1 (narrow) or left (wide)
  int32_t round;
  int32_t sign_mask;
  int32_t n;
#if !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
  // The one-rounding 64-bit form of the same value (hosts without SMMULR):
  int64_t multiplier;  // q 2^left
  int64_t nudge;       // 2^30 + round 2^31
  int64_t negative;    // -2^31 if n >= 1, else 0
  int32_t total;       // 31 + n
#endif
};


// (2) Spec 4.4's interpolation T[i] + RDBPOT((T[i+1] - T[i]) f, 7), where
// o = t + 32768 in [0, 65535], i = o >> 7, f = o & 127, as one multiply-add
// and one shift. With d = T[i+1] - T[i]:
// - RDBPOT(d f, 7) = floor((d f + 64 - [d f < 0]) / 128) (spec 2.3);
// - [d f < 0] may be replaced by [d < 0]: they differ only when f = 0 and
//   d < 0, and then floor((128 T + 63) / 128) = floor((128 T + 64) / 128) = T;
// - f = o - 128 i.
// So T[i] + RDBPOT(d f, 7) = (base[i] + d o) >> 7 with
//   base[i] = 128 T[i] + 64 - [d < 0] - 128 i d.
// Built at compile time from the two builtin tables (8 KB of constants).
// The DSP path indexes it by the saturated Q3.12 value r = o - 32768 itself:
// i' = r >> 7 in [-256, 255] and T[i] + RDBPOT(d f, 7) = (base' + d r) >> 7
// with base' = base + 32768 d, kept next to d for one LDRD.
#if RNNPOOL_ARM_DSP
struct InterpolationTable {
  int32_t entry[kTableSize - 1][2];  // {base', d}, entry i' + 256
};
#else
struct InterpolationTable {
  int32_t base[kTableSize - 1];
  int32_t slope[kTableSize - 1];  // d
};
#endif

// One cell in fast form.
struct FastCell {
  const int8_t* recurrent_kernel;
  const int32_t* gate_bias;
  const int32_t* update_bias;
  const InterpolationTable* gate_table;    // table gate only
  const InterpolationTable* update_table;  // table update only
#if RNNPOOL_X86_SIMD
  // The builtin int16 tables the interpolation tables were made from (the
  // AVX2 sweep gathers T[i], T[i+1] as one word); table activations only.
  const int16_t* gate_values;
  const int16_t* update_values;
#endif
  int32_t zeta;
  // (3) coef = RDBPOT(zeta (2^15 - z), 15) + nu = (coef_bias - zeta z) >> 15
  // with coef_bias = 2^15 zeta + 2^14 + 2^15 nu: the product is >= 0
  // (zeta >= 0, z <= 2^15 - 1), where RDBPOT is (x + 2^14) >> 15, and nu folds
  // in as a multiple of 2^15. coef_bias <= 2^30 + 2^14, |zeta z| <= 2^29.
  int32_t coef_bias;
  FastRequant recurrent;          // M_h, on h @ U (narrow)
  FastRequant update;             // M_c, on coef * c (wide)
  FastRequant gate_activation;    // M_a, with the activation's offset folded in (narrow)
  FastRequant update_activation;  // (unused for relu, and when the gate's is shared)
};

#if RNNPOOL_ARM_DSP
// ---------------------------------------------------------------------------
// The DSP path's forms (ARMv7E-M and later), derived once by MakeInt8Plan.
// ---------------------------------------------------------------------------
// (5) MBQM of a 32-bit x whose factor 2^(left+1) is already applied (x' =
// x 2^(left+1): folded into the int16 weights of the products, or one shift),
// as SMMLAR (a b + c 2^32 + 2^31) >> 32, one add and one shift:
//   t = SRDHM(x 2^left, q) = floor((x' q + 2^31) / 2^32) = SMMLAR(x', q, 0),
//   RDBPOT(t, n) = (t + 2^(n-1) - [t < 0]) >> n  (n >= 1; t for n = 0),
//   so MBQM = (SMMLAR(x', q, round) + ((x' >> 31) & sign_mask)) >> n with
//   round = 2^(n-1) (0 if n = 0), sign_mask = -1 (0 if n = 0),
// because [t < 0] = [x' q < -2^31] = [x' < 0]: x' is even and, for n >= 1,
// q is in (2^30, 2^31) (MakeInt8Plan refuses q = 2^30 there; q = 0 gives
// t = 0, where the correction leaves (round - 1) >> n = 0 unchanged).
// Prepare checks |x'| < 2^31 and |t| + round < 2^31.
struct DspRequant {
  int32_t q;
  int32_t round;
  int32_t sign_mask;
  int32_t n;
};

// (6) An activation's M_a on an int16 x as SMLAWB, a + (b * x) >> 16 (the
// 48-bit product's top 32 bits, i.e. floor(b x / 2^16)), one add and one
// shift. With left = max(shift, 0) <= 14 and n = max(-shift, 0), spec 2.2-2.3
// compose to MBQM = floor((x q + K) / 2^(31 + n - left)), K = (2^30 +
// (2^(n-1) - [t < 0]) 2^31 [n >= 1]) / 2^left, a multiple of 2^16, so
//   MBQM = (SMLAWB(q, x, bias) - (x < 0 ? sign_mask : 0)) >> shift,
//   bias = K / 2^16 without its [t < 0] term, sign_mask = 2^15 (0 if n = 0),
//   shift = 15 + n - left in [1, 30],
// where [t < 0] = [x q < -2^30] = [x < 0] (q in (2^30, 2^31) for n >= 1, as
// in (5)). |floor(q x / 2^16)| <= 2^30 and bias < 2^30: no overflow. The
// activation's offset (spec 4.4: +32768 for a table, +2^14 for quantSigm) is
// applied after the shift (it would not fit before it).
struct DspActivation {
  int32_t q;
  int32_t bias;
  int32_t sign_mask;
  int32_t shift;
};

// A matrix of the DSP path by columns (rnnpool_int8.cc, DotStates): per
// output, its weights as int16 pairs matching pairs of inputs, in chunks of
// four pairs (eight inputs), then a half chunk of two pairs if any.
struct ChunkShape {
  int32_t full;  // chunks of four pairs
  bool half;     // and a half chunk of two
  int32_t Words() const { return 4 * full + (half ? 2 : 0); }  // per output
};

struct DspCell;
// The activations of one step, (g, u) lanes -> (z, c) lanes in place.
using DspActivateFn = void (*)(const DspCell&, int32_t units, int32_t* gu);

// Sequences of one cell run together (rnnpool_int8.cc SweepDsp).
struct DspSequences {
  const int32_t* gx;    // the step's projected inputs of sequence 0
  ptrdiff_t gx_stride;  // to sequence s: gx + s * gx_stride
  int32_t count;
  int16_t* h;           // [count][units] states
  int32_t* gu;          // [count][units] lanes
};
// A step's pre-activations from h (the first step's, h = 0, apart).
using DspPreActivateFn = void (*)(const DspCell&, const int8_t* pairs, int32_t units,
                                  const DspSequences& seq);

// One cell of the DSP path. Offsets are into the plan's pair storage (bytes).
struct DspCell {
  DspPreActivateFn pre_activate;  // for the cell's size and M_h
  DspActivateFn activate;   // for the cell's families and roundings
  int32_t recurrent;        // U 2^(left(M_h)+1) by columns [units][shape words]
  ChunkShape recurrent_shape;
  int32_t biases;           // (gate, update) bias pairs [units], int32
  DspRequant recurrent_requant;  // M_h, (5), on h @ U 2^(left+1)
  DspActivation gate_activation;    // M_a of the gate, (6)
  DspActivation update_activation;  // and of the update
  const int32_t* gate_table;    // &InterpolationTable::entry[256][0] (table kinds)
  const int32_t* update_table;
  int32_t coef_bias;   // (3)
  int32_t zeta;
  DspRequant update;   // M_c, (5), on (coef c) 2^update_pre; n >= 1
  int32_t update_pre;  // left(M_c) + 1
};

// The projections of the DSP path: the pixels (RNN1, k a multiple of 4) or
// RNN1's final states (RNN2) @ W 2^(left(M_x)+1) by columns, and M_x in form
// (5). Pixels: each word of four channels makes the lanes (c, c+2) and
// (c+1, c+3), which W's pairs of rows match; their sums start from
// -zp_x colsum(W) 2^(left+1) (the zero point taken out of the products).
struct DspProjection {
  int32_t weights;      // offset of the int16 pairs, or -1: the portable MatVec
  ChunkShape shape;
  int32_t zero_point;   // offset of the per-unit starting sums (pixels only)
  DspRequant requant;
};
#endif  // RNNPOOL_ARM_DSP

using FastSweepFn = void (*)(const FastCell&, const int8_t*, int32_t, const int32_t*, int32_t,
                             ptrdiff_t, int16_t*, int32_t*);

// Runs `count` sequences of one cell from h = 0, together: sequence s reads
// step t's projected input at gx + s (gx_stride + t stride_step) +
// t step_stride (stride_step -2 step_stride runs sequence 1 backwards, as
// SweepDsp) and leaves its final state at h + s units. Same values as `count`
// FastSweepFn calls.
using SweepGroupFn = void (*)(const FastCell&, const int32_t* gx, ptrdiff_t gx_stride,
                              int32_t count, int32_t steps, ptrdiff_t step_stride,
                              ptrdiff_t stride_step, int16_t* h);

// SIMD forms of the input projections (spec 4.2) with a fast-form M_x, over
// `count` consecutive inputs: input p at v + p * in, its `units` outputs at
// g + p * units. Pixels: (x + offset) @ W, x int8; states: h @ W, h int16.
using PixelProjectionFn = void (*)(const int8_t* v, int32_t count, int32_t in, int32_t offset,
                                   const int8_t* matrix, int32_t units, const FastRequant& m,
                                   int32_t* g);
using StateProjectionFn = void (*)(const int16_t* v, int32_t count, int32_t in,
                                   const int8_t* matrix, int32_t units, const FastRequant& m,
                                   int32_t* g);

// MBQM of the input projections (spec 4.2), in fast form when it applies, as
// MatVec epilogues.
struct ProjectionRequant {
  bool fast;
  FastRequant fast_form;
  Requant generic;
};

// What does not depend on the patch, derived from the parameters once, by
// PrepareInt8Plan (the public RnnPoolInt8Plan holds it, then the reordered
// matrices); Eval only reads it.
struct Int8Plan {
  RnnPoolInt8Params params;
  bool fast;  // both cells in fast form
  union Cells {
    FastCell fast[2];        // fast path
    Int8CellCtx generic[2];  // generic path
  } cells;
  FastSweepFn fast_sweep[2];  // per cell: the portable SweepInt8 or an AVX2 one
  // Per cell: the AVX2 sweep of several sequences at once (8-unit cells), or
  // null: one fast_sweep call per sequence.
  SweepGroupFn simd_sweep_group[2];
  // AVX2 projections of RNN1 / RNN2 (rnnpool_int8_x86.cc), or null: MatVec.
  PixelProjectionFn simd_project1;
  StateProjectionFn simd_project2;
  uint32_t simd_stages;  // kInt8Simd* bits: the stages running SIMD code
  Kind gate, update;
  ProjectionRequant mx1, mx2;
  Requant my;
#if RNNPOOL_ARM_DSP
  DspCell dsp[2];             // the fast path's cells in DSP form (plan.fast)
  DspProjection dsp_proj[2];  // the projections onto RNN1 / RNN2
  bool dsp_output;            // M_y in form (5) (else `my`)
  int32_t output_pre;         // left(M_y) + 1
  DspRequant output;
  // (Offsets into the pair storage, not pointers: the plan may be copied.)
#endif
};

// RnnPoolInt8Plan's storage: an Int8Plan, then kInt8PlanPairBytes of pair
// storage (the DSP path's int16 matrices and bias pairs).
constexpr size_t kPairStorageOffset = kInt8PlanBytes - kInt8PlanPairBytes;
static_assert(sizeof(Int8Plan) <= kPairStorageOffset && alignof(Int8Plan) <= 8,
              "RnnPoolInt8Plan's storage is too small for Int8Plan");

inline const Int8Plan& PlanOf(const RnnPoolInt8Plan& plan) {
  return *reinterpret_cast<const Int8Plan*>(plan.storage);
}
inline const int8_t* PairsOf(const RnnPoolInt8Plan& plan) {
  return reinterpret_cast<const int8_t*>(plan.storage + kPairStorageOffset);
}

// Whole maps: runs `patch` (a per-patch function of `params`) over every
// output position of every batch element (the float and int8 Evals).
template <typename Elem, typename Params, typename PatchFn>
void WholeMap(const Params& params, const Elem* input, int32_t batch, int32_t height,
              int32_t width, Elem* output, void* scratch, PatchFn patch) {
  const RnnPoolShape& s = params.shape;
  const int32_t out_h = OutputSize(height, s.pool_h, s.stride_h, s.padding);
  const int32_t out_w = OutputSize(width, s.pool_w, s.stride_w, s.padding);
  const int32_t pad_top = PaddingBefore(height, s.pool_h, s.stride_h, s.padding);
  const int32_t pad_left = PaddingBefore(width, s.pool_w, s.stride_w, s.padding);
  const size_t out_channels = 4 * static_cast<size_t>(s.rnn2_units);
  const size_t image_size = static_cast<size_t>(height) * width * s.in_channels;
  for (int32_t b = 0; b < batch; ++b) {
    const Elem* image = input + static_cast<size_t>(b) * image_size;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      for (int32_t ox = 0; ox < out_w; ++ox) {
        Elem* out = output +
                    ((static_cast<size_t>(b) * out_h + oy) * out_w + ox) * out_channels;
        patch(params, image, height, width, oy * s.stride_h - pad_top,
              ox * s.stride_w - pad_left, out, scratch);
      }
    }
  }
}

// --- Defined in rnnpool_int8_spec.cc (the generic path) ---
// Fills the Requant form of one cell.
void MakeCellCtx(const Int8Cell& cell, Int8CellCtx* c);
// Runs a cell from h = 0 over `steps` projected inputs, the one of step t at
// gx + t * step_stride (a negative stride runs a sequence backwards); leaves
// the final state in h [units]. acc: `units` int32 of scratch. The activation
// families are run-time arguments (one function for all pairs; rarely used).
void SweepInt8Spec(const Int8CellCtx& c, Kind gate, Kind update, int32_t units,
                   const int32_t* gx, int32_t steps, ptrdiff_t step_stride, int16_t* h,
                   int32_t* acc);

// --- Defined in rnnpool_int8.cc (the fast path) ---
// The fast sweep instantiated for one (gate, update) family pair.
#if RNNPOOL_ARM_DSP
// rounds: n >= 1 in an activation's M_a (the corrections of (6) needed).
DspActivateFn SelectActivateDsp(Kind gate, Kind update, bool rounds);
// one_chunk: an even number of units <= 8; rounds: n >= 1 in M_h.
DspPreActivateFn SelectPreActivateDsp(bool one_chunk, bool rounds);
#else
FastSweepFn SelectSweep(Kind gate, Kind update);
#endif

#if RNNPOOL_X86_SIMD
// --- Defined in rnnpool_int8_x86.cc (x86-64 hosts) ---
// True if the CPU (and the OS) run AVX2 code.
bool CpuHasAvx2();
// The AVX2 fast sweep of one (gate, update) family pair; only for cells whose
// unit count is a multiple of 8, and only on CPUs with AVX2.
FastSweepFn SelectSweepAvx2(Kind gate, Kind update);
// The AVX2 sweep of sets of sequences of an 8-unit cell (SweepGroupFn).
SweepGroupFn SelectSweepGroupAvx2(Kind gate, Kind update);
// The AVX2 projections (PixelProjectionFn, StateProjectionFn); units a
// multiple of 8. (Declared with their target attribute: GCC would otherwise
// take the definitions for other versions of these functions.)
__attribute__((target("avx2"))) void ProjectPixelsAvx2(const int8_t* v, int32_t count, int32_t in, int32_t offset,
                       const int8_t* matrix, int32_t units, const FastRequant& m, int32_t* g);
// The fused stem convolution's AVX2 form (rnnpool_stem.h): its storage size,
// its Prepare (false: the form does not apply, keep the portable row) and one
// output row, as StemRowInt8 (same bits).
size_t StemSimdBytesAvx2(const StemShape& stem);
bool PrepareStemSimdAvx2(const StemInt8Params& stem, void* storage);
__attribute__((target("avx2"))) void StemRowInt8Avx2(const StemInt8Params& stem,
                                                     const int8_t* image, int32_t row,
                                                     int8_t* out, void* scratch);
__attribute__((target("avx2"))) void ProjectStatesAvx2(const int16_t* v, int32_t count, int32_t in, const int8_t* matrix,
                       int32_t units, const FastRequant& m, int32_t* g);
#endif

// --- Defined in rnnpool_prepare.cc ---
// The fast form of m for inputs |x| <= max_abs_input with `offset` added
// after the rounding (narrow: ApplyNarrow's, else ApplyWide's); false when it
// does not apply (an input could saturate the left shift or overflow).
bool MakeFastRequant(const Multiplier& m, int64_t max_abs_input, int32_t offset, bool narrow,
                     FastRequant* out);
// Builds `plan` from validated params; `pairs`: kInt8PlanPairBytes for the
// reordered matrices, or null (none). allow_simd: false keeps every stage on
// the portable code (tests compare the two).
void MakeInt8Plan(const RnnPoolInt8Params& params, Int8Plan* plan, int8_t* pairs,
                  bool allow_simd = true);

}  // namespace internal
}  // namespace rnnpool

#endif  // TFLM_KERNELS_RNNPOOL_CORE_INTERNAL_H_
