/* RNNPool kernel core: see rnnpool_core.h. Spec = docs/int8_rnnpool.md. */
#include "rnnpool_core.h"

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <new>
#include <type_traits>

#if (defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT) || \
    (defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32)
#include <arm_acle.h>
#endif

namespace rnnpool {
namespace {

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

bool IsKnownActivation(Activation a) {
  switch (a) {
    case Activation::kSigmoid:
    case Activation::kTanh:
    case Activation::kQuantSigm:
    case Activation::kQuantTanh:
    case Activation::kRelu:
      return true;
  }
  return false;
}

bool IsTableActivation(Activation a) {
  return a == Activation::kSigmoid || a == Activation::kTanh;
}

// Activations that requantise their input by an activation multiplier M_a:
// all but relu (sigmoid / tanh to the table's Q3.12, quantSigm / quantTanh to
// Q14 / Q15).
bool HasActivationMultiplier(Activation a) { return a != Activation::kRelu; }

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
//   update of the same family share one M_a (spec 3 makes them equal);
// - the generic path (Int8CellCtx, SweepInt8<Int8CellCtx>), the spec's
//   operations one by one, for everything else (other tables, multipliers
//   near the ends of their ranges).
// The projections choose the fast form of M_x on their own (Project).
// Int8FastPathApplies tells which path parameters take.
// ===========================================================================
#include "rnnpool_tables.inc"

// RDBPOT by a constant exponent n >= 1 (spec 2.3): (x + 2^(n-1) - [x < 0]) >> n,
// the same rounding as the mask form. Callers guarantee x + 2^(n-1) <= INT32_MAX.
template <int kExponent>
inline int32_t RoundingDivideByPOTConst(int32_t x) {
  return (x + (1 << (kExponent - 1)) + (x >> 31)) >> kExponent;
}

// The activation families of spec 4.4 (sigmoid and tanh differ only by table).
enum class Kind { kTable, kQuantSigm, kQuantTanh, kRelu };

Kind KindOf(Activation a) {
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

// ---------------------------------------------------------------------------
// Generic path.
// ---------------------------------------------------------------------------
template <Kind kKind>
inline int32_t Activate(int32_t x, const int16_t* table, const Requant& m) {
  if (kKind == Kind::kTable) {
    // The input requantised to the table's Q3.12 (s_pre * 2^12), saturated.
    const int32_t q3_12 = Sat16(Requantize16(x, m));
    const int32_t offset = q3_12 + 32768;               // 0..65535
    const int32_t index = offset >> kTableStepBits;     // 0..511
    const int32_t fraction = offset & ((1 << kTableStepBits) - 1);
    const int32_t low = table[index];
    // |T[i+1] - T[i]| <= 65535, fraction <= 127: < 2^23.
    return low + RoundingDivideByPOTConst<kTableStepBits>((table[index + 1] - low) * fraction);
  } else if (kKind == Kind::kQuantTanh) {
    return Sat16(Requantize16(x, m));
  } else if (kKind == Kind::kQuantSigm) {
    // clamp(v + 2^14, 0, 32767); pre-clamping v keeps the sum in int32 and
    // does not change the result.
    return Clamp32(Clamp32(Requantize16(x, m), -65536, 65536) + kOneQ14, 0, INT16_MAX);
  } else {
    return x > 0 ? x : 0;  // relu: keeps the scale s_pre
  }
}

inline int32_t ActivateAny(Kind kind, int32_t x, const int16_t* table, const Requant& m) {
  switch (kind) {
    case Kind::kTable:
      return Activate<Kind::kTable>(x, table, m);
    case Kind::kQuantSigm:
      return Activate<Kind::kQuantSigm>(x, table, m);
    case Kind::kQuantTanh:
      return Activate<Kind::kQuantTanh>(x, table, m);
    case Kind::kRelu:
      break;
  }
  return Activate<Kind::kRelu>(x, table, m);
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

void MakeCellCtx(const Int8Cell& cell, Int8CellCtx* c) {
  c->recurrent_kernel = cell.recurrent_kernel;
  c->gate_bias = cell.gate_bias;
  c->update_bias = cell.update_bias;
  c->gate_table = cell.gate_table;
  c->update_table = cell.update_table;
  c->zeta = cell.zeta_q14;
  c->nu = cell.nu_q14;
  c->recurrent = MakeRequant(cell.recurrent_multiplier);
  c->update = MakeRequant(cell.update_multiplier);
  c->gate_activation = MakeRequant(cell.gate_activation_multiplier);
  c->update_activation = MakeRequant(cell.update_activation_multiplier);
}

// Spec 4.3 for unit o from state h, with acc = (h @ U)[o]. At t = 0 the
// caller passes acc = h = 0: MBQM(0) = 0 and RDBPOT(z * 0) = 0.
inline int16_t StepUnit(const Int8CellCtx& c, Kind gate, Kind update, int32_t o, int32_t gx,
                        int32_t acc, int32_t h) {
  const int32_t gh = Requantize(acc, c.recurrent);
  // The first exact 64-bit sum: |gx + gh + b| < 3 * 2^31, saturated to int16.
  const int64_t pre = static_cast<int64_t>(gx) + gh;
  const int32_t z =
      ActivateAny(gate, Sat16(pre + c.gate_bias[o]), c.gate_table, c.gate_activation);
  const int32_t u =
      ActivateAny(update, Sat16(pre + c.update_bias[o]), c.update_table, c.update_activation);
  // Q14 coefficient in [0, 3 * 2^14]; zeta * (2^15 - z) <= 2^30, |coef * u| < 2^31.
  const int32_t coef = RoundingDivideByPOTConst<15>(c.zeta * (kOneQ15 - z)) + c.nu;
  const int32_t kept = RoundingDivideByPOTConst<15>(z * h);  // |z h| <= 2^30
  const int32_t updated = Requantize(coef * u, c.update);
  // The second exact 64-bit sum, saturated to int16.
  return static_cast<int16_t>(Sat16(static_cast<int64_t>(kept) + updated));
}

// Runs a cell from h = 0 over `steps` projected inputs, the one of step t at
// gx + t * step_stride (a negative stride runs a sequence backwards); leaves
// the final state in h. acc: `units` int32 of scratch. Generic path: the
// activation families are run-time arguments (one function for all pairs;
// kept out of line, it is rarely used and small that way).
template <typename Cell>
RNNPOOL_NOINLINE void SweepInt8(const Cell& c, Kind gate, Kind update, int32_t units,
                                const int32_t* gx, int32_t steps, ptrdiff_t step_stride,
                                int16_t* h, int32_t* acc) {
  for (int32_t t = 0; t < steps; ++t, gx += step_stride) {
    if (t > 0) MatVec<int32_t>(h, units, 0, c.recurrent_kernel, units, acc);  // |acc| <= 2^30
    for (int32_t o = 0; o < units; ++o) {
      h[o] = StepUnit(c, gate, update, o, gx[o], t == 0 ? 0 : acc[o], t == 0 ? 0 : h[o]);
    }
  }
}

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

// (a b + 2^31) >> 32: one SMMULR where the core has the DSP extension.
inline int32_t RoundedHighMul(int32_t a, int32_t b) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  int32_t result;
  __asm__("smmulr %0, %1, %2" : "=r"(result) : "r"(a), "r"(b));  // no ACLE intrinsic
  return result;
#else
  return static_cast<int32_t>((static_cast<int64_t>(a) * b + (int64_t{1} << 31)) >> 32);
#endif
}

// Largest |MBQM(x, m)| over |x| <= max_abs_input (an upper bound), Prepare time.
int64_t RequantBound(int64_t max_abs_input, const Multiplier& m) {
  const int32_t left = m.shift > 0 ? m.shift : 0;
  const int32_t n = m.shift > 0 ? 0 : -m.shift;
  const int64_t shifted = max_abs_input > (int64_t{1} << 31) >> left ? int64_t{1} << 31
                                                                      : max_abs_input << left;
  return ((((shifted * m.q) >> 31) + 1) >> n) + 1;
}

// False when the fast form does not apply: an input up to max_abs_input could
// saturate the left shift, does not fit the form asked for, or the rounding
// constant with the offset would overflow.
bool MakeFastRequant(const Multiplier& m, int64_t max_abs_input, int32_t offset, bool narrow,
                     FastRequant* out) {
  const int32_t left = m.shift > 0 ? m.shift : 0;
  const int32_t n = m.shift > 0 ? 0 : -m.shift;
  const int32_t pre_shift = narrow ? left + 1 : left;
  if (pre_shift > 30 || max_abs_input > (int64_t{INT32_MAX} >> pre_shift)) return false;
  if (!narrow && left != 0) return false;  // ApplyWide does not shift
  const int64_t round =
      n > 0 ? (int64_t{1} << (n - 1)) + (static_cast<int64_t>(offset) << n) : offset;
  if (n > 30 || (max_abs_input << left) + round + 1 > INT32_MAX) return false;
  out->q = m.q;
  out->pre_shift = pre_shift;
  out->round = static_cast<int32_t>(round);
  out->sign_mask = n > 0 ? -1 : 0;
  out->n = n;
#if !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
  out->multiplier = static_cast<int64_t>(m.q) << left;
  out->nudge = (int64_t{1} << 30) + (round << 31);
  out->negative = n > 0 ? -(int64_t{1} << 31) : 0;
  out->total = 31 + n;
#endif
  return true;
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
inline int32_t RoundTail(int32_t t, const FastRequant& m) {
  return (t + m.round + ((t >> 31) & m.sign_mask)) >> m.n;
}

inline int32_t ApplyNarrow(int32_t x, const FastRequant& m) {
  return RoundTail(RoundedHighMul(static_cast<int32_t>(static_cast<uint32_t>(x) << m.pre_shift),
                                  m.q),
                   m);
}

// Wide inputs have left = 0 (pre_shift 0): MakeFastRequant accepts no left
// shift for them, as x 2^left would not fit.
inline int32_t ApplyWide(int32_t x, const FastRequant& m) {
  const int64_t p = static_cast<int64_t>(x) * m.q;
  // (p + 2^30) >> 31 of |p| < 2^62: the high word's 31 bits and the low word's top bit.
  const uint64_t sum = static_cast<uint64_t>(p + (int64_t{1} << 30));
  const int32_t t = static_cast<int32_t>((static_cast<uint32_t>(sum >> 32) << 1) |
                                         (static_cast<uint32_t>(sum) >> 31));
  return RoundTail(t, m);
}
#else
// Hosts with a native 64-bit datapath (x86-64): the same value in one
// rounding step (detail::Requant's derivation). With P = x' q = x (q 2^left):
// RDBPOT(SRDHM, n) + offset = (P + 2^30 + round 2^31 - [P < -2^30] 2^31 [n >= 1])
// >> (31 + n), as round 2^31 = 2^(30+n) + offset 2^(31+n) (n >= 1) or
// offset 2^31 (n = 0). Prepare's bound |x'| + round < 2^31 keeps the sum
// below 2^62.
inline int32_t ApplyNarrow(int32_t x, const FastRequant& m) {
  const int64_t p = x * m.multiplier;
  return static_cast<int32_t>((p + m.nudge + (p < -(int64_t{1} << 30) ? m.negative : 0)) >>
                              m.total);
}

inline int32_t ApplyWide(int32_t x, const FastRequant& m) { return ApplyNarrow(x, m); }
#endif

// Saturation (spec 2.4) and the activations' clamps: SSAT / USAT through ACLE
// where the core has them.
inline int32_t SaturateInt16(int32_t x) {
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  return __ssat(x, 16);
#else
  return Sat16(x);  // one unsigned compare in the common case
#endif
}
inline int32_t ClampUnsigned16(int32_t x) {  // [0, 65535]
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  return static_cast<int32_t>(__usat(x, 16));
#else
  if (RNNPOOL_UNLIKELY(static_cast<uint32_t>(x) > 65535u)) return x < 0 ? 0 : 65535;
  return x;
#endif
}
inline int32_t ClampUnsigned15(int32_t x) {  // [0, 32767]
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  return static_cast<int32_t>(__usat(x, 15));
#else
  if (RNNPOOL_UNLIKELY(static_cast<uint32_t>(x) > 32767u)) return x < 0 ? 0 : 32767;
  return x;
#endif
}

// (4) Two multiply-adds per instruction (SMLAD) for the int16-by-int8
// products h @ U and the RNN2 projection, with the matrix reordered once at
// Prepare into 2x2 blocks: for rows j, j+1 (j even) and columns o, o+1 (o even)
// the four bytes M[j][o], M[j][o+1], M[j+1][o], M[j+1][o+1]. One word load
// then feeds two SMLADs: SXTB16 of the word gives the int16 lanes
// (M[j][o], M[j+1][o]), SXTB16 of the word rotated by 8 gives
// (M[j][o+1], M[j+1][o+1]), each multiplied lane by lane with the state pair
// (v[j], v[j+1]) read as one word. Integer sums are exact in any order, so
// the results equal MatVec's; spec 5 bounds every partial sum below 2^31.
// ACLE intrinsics where the core has the SIMD32 extension, plain C elsewhere.
inline int32_t Sxtb16(uint32_t w) {  // bytes 0, 2 sign-extended to two int16 lanes
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
  return static_cast<int32_t>(__sxtb16(w));
#else
  const uint32_t low = static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(w)));
  const uint32_t high = static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(w >> 16)));
  return static_cast<int32_t>((low & 0xFFFFu) | (high << 16));
#endif
}
// Bytes 1, 3 sign-extended to two int16 lanes (SXTB16 with its rotation).
inline int32_t Sxtb16High(uint32_t w) {
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
  int32_t result;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(w));  // ACLE has no rotate form
  return result;
#else
  return Sxtb16((w >> 8) | (w << 24));
#endif
}
inline int32_t Smlad(int32_t a, int32_t b, int32_t acc) {  // acc + a.lo * b.lo + a.hi * b.hi
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
  return static_cast<int32_t>(__smlad(a, b, acc));
#else
  const int32_t products = static_cast<int16_t>(a) * static_cast<int16_t>(b) +
                           (a >> 16) * (b >> 16);
  return static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(products));
#endif
}
inline uint32_t LoadWord(const void* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}

// Only where SMLAD exists: emulated in C (x86), the reordered products cost
// more than MatVec's plain multiply-adds, so the plan keeps the matrices as
// they are there (the results are the same either way).
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
constexpr bool kTwoMacProducts = true;
#else
constexpr bool kTwoMacProducts = false;
#endif

// Bytes of a [in][units] matrix in 2x2 blocks (in and units even).
inline size_t PairBytes(int32_t in, int32_t units) {
  return static_cast<size_t>(in) * static_cast<size_t>(units);
}

void ReorderPairs(const int8_t* m, int32_t in, int32_t units, int8_t* pairs) {
  for (int32_t j = 0; j < in; j += 2) {
    for (int32_t o = 0; o < units; o += 2) {
      *pairs++ = m[j * units + o];
      *pairs++ = m[j * units + o + 1];
      *pairs++ = m[(j + 1) * units + o];
      *pairs++ = m[(j + 1) * units + o + 1];
    }
  }
}

// out[o] = epilogue(sum_j v[j] M[j][o], o): v int16 [in], 4-byte aligned; `pairs`
// from ReorderPairs; in, units even. Four outputs per pass (four accumulators
// and two weight words stay in registers on a Cortex-M), then two.
template <typename Epilogue>
RNNPOOL_ALWAYS_INLINE void MatVecPairs(const int16_t* v, int32_t in, const int8_t* pairs,
                                       int32_t units, int32_t* out, const Epilogue& epilogue) {
  const size_t row_bytes = 2 * static_cast<size_t>(units);  // one pair of rows
  const int16_t* const v_end = v + in;
  int32_t o = 0;
  for (; o + 4 <= units; o += 4) {
    const int8_t* m = pairs + 2 * o;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (const int16_t* vj = v; vj < v_end; vj += 2, m += row_bytes) {
      const int32_t vv = static_cast<int32_t>(LoadWord(vj));
      const uint32_t w0 = LoadWord(m), w1 = LoadWord(m + 4);
      a0 = Smlad(Sxtb16(w0), vv, a0);
      a1 = Smlad(Sxtb16High(w0), vv, a1);
      a2 = Smlad(Sxtb16(w1), vv, a2);
      a3 = Smlad(Sxtb16High(w1), vv, a3);
    }
    out[o] = epilogue(a0, o);
    out[o + 1] = epilogue(a1, o + 1);
    out[o + 2] = epilogue(a2, o + 2);
    out[o + 3] = epilogue(a3, o + 3);
  }
  if (o < units) {  // units = 4 q + 2
    const int8_t* m = pairs + 2 * o;
    int32_t a0 = 0, a1 = 0;
    for (const int16_t* vj = v; vj < v_end; vj += 2, m += row_bytes) {
      const int32_t vv = static_cast<int32_t>(LoadWord(vj));
      const uint32_t w = LoadWord(m);
      a0 = Smlad(Sxtb16(w), vv, a0);
      a1 = Smlad(Sxtb16High(w), vv, a1);
    }
    out[o] = epilogue(a0, o);
    out[o + 1] = epilogue(a1, o + 1);
  }
}

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
struct InterpolationTable {
  int32_t base[kTableSize - 1];
  int32_t slope[kTableSize - 1];  // d
};

constexpr InterpolationTable MakeInterpolationTable(const int16_t (&t)[kTableSize]) {
  InterpolationTable table{};
  for (int32_t i = 0; i + 1 < kTableSize; ++i) {
    const int32_t d = t[i + 1] - t[i];
    table.slope[i] = d;
    table.base[i] = 128 * t[i] + 64 - (d < 0 ? 1 : 0) - 128 * i * d;
  }
  return table;
}

// True if base + d o stays in int32 for every o of its interval (checked at
// compile time for the builtin tables; an overflow in MakeInterpolationTable
// itself would not compile either).
constexpr bool InterpolationFitsInt32(const InterpolationTable& table) {
  for (int32_t i = 0; i + 1 < kTableSize; ++i) {
    for (const int64_t o : {int64_t{128} * i, int64_t{128} * i + 127}) {
      const int64_t v = table.base[i] + table.slope[i] * o;
      if (v < INT32_MIN || v > INT32_MAX) return false;
    }
  }
  return true;
}

constexpr InterpolationTable kSigmoidInterpolation = MakeInterpolationTable(kSigmoidTable);
constexpr InterpolationTable kTanhInterpolation = MakeInterpolationTable(kTanhTable);
static_assert(InterpolationFitsInt32(kSigmoidInterpolation) &&
                  InterpolationFitsInt32(kTanhInterpolation),
              "builtin interpolation tables overflow int32");

// The interpolation table of `table` if it holds the builtin numbers (the
// TFLM glue points at the builtin arrays; models carry copies of them).
const InterpolationTable* FindInterpolationTable(const int16_t* table) {
  if (table == nullptr) return nullptr;
  if (table == kSigmoidTable || std::memcmp(table, kSigmoidTable, sizeof(kSigmoidTable)) == 0) {
    return &kSigmoidInterpolation;
  }
  if (table == kTanhTable || std::memcmp(table, kTanhTable, sizeof(kTanhTable)) == 0) {
    return &kTanhInterpolation;
  }
  return nullptr;
}

// One cell in fast form.
struct FastCell {
  const int8_t* recurrent_kernel;
  int32_t recurrent_pairs;  // offset of U in 2x2 blocks in the plan's pairs, or -1
  const int32_t* gate_bias;
  const int32_t* update_bias;
  const InterpolationTable* gate_table;    // table gate only
  const InterpolationTable* update_table;  // table update only
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

// The offset folded into an activation's M_a: table activations index with
// t + 32768, quantSigm adds 2^14 (spec 4.4); quantTanh, relu: none.
int32_t ActivationOffset(Kind kind) {
  return kind == Kind::kTable ? 32768 : (kind == Kind::kQuantSigm ? kOneQ14 : 0);
}

bool MakeFastActivation(Kind kind, const int16_t* table, const Multiplier& m,
                        const InterpolationTable** interpolation, FastRequant* requant) {
  *interpolation = nullptr;
  *requant = FastRequant{};
  if (kind == Kind::kRelu) return true;
  if (kind == Kind::kTable) {
    *interpolation = FindInterpolationTable(table);
    if (*interpolation == nullptr) return false;
  }
  return MakeFastRequant(m, 32768, ActivationOffset(kind), true, requant);  // int16 input
}

int64_t MaxAbs(const int32_t* values, int32_t n) {
  int64_t largest = 0;
  for (int32_t i = 0; i < n; ++i) {
    const int64_t v = values[i] < 0 ? -int64_t{values[i]} : values[i];
    largest = v > largest ? v : largest;
  }
  return largest;
}

// False if the cell needs the generic path. max_abs_gx bounds the cell's
// projected inputs (RequantBound of the projection's accumulator bound).
bool MakeFastCell(const Int8Cell& cell, Kind gate, Kind update, int32_t units,
                  int64_t max_abs_gx, FastCell* c) {
  c->recurrent_kernel = cell.recurrent_kernel;
  c->recurrent_pairs = -1;  // set by MakeInt8Plan when U fits the plan
  c->gate_bias = cell.gate_bias;
  c->update_bias = cell.update_bias;
  c->zeta = cell.zeta_q14;
  c->coef_bias = kOneQ15 * cell.zeta_q14 + kOneQ14 + kOneQ15 * cell.nu_q14;
  // Spec 3 gives a gate and an update of the same family the same M_a (it
  // depends only on s_pre and the family): the fast step then takes the
  // gate's constants for both, which keeps one set fewer in registers.
  if (gate == update &&
      (cell.gate_activation_multiplier.q != cell.update_activation_multiplier.q ||
       cell.gate_activation_multiplier.shift != cell.update_activation_multiplier.shift)) {
    return false;
  }
  // Spec 4.3's exact sums in int32: gx + gh + b (pre-activations) and
  // RDBPOT(z h, 15) + MBQM(coef c, M_c) (the next state) must not overflow.
  // |h @ U| <= units * 2^15 * 2^7 (|h| <= 2^15, |U| <= 2^7);
  // |coef * c| <= 3 * 2^14 * 2^15 (spec 5).
  const int64_t max_acc = int64_t{units} << 22, max_coef_c = int64_t{3} << 29;
  const int64_t max_bias = MaxAbs(cell.gate_bias, units) > MaxAbs(cell.update_bias, units)
                               ? MaxAbs(cell.gate_bias, units)
                               : MaxAbs(cell.update_bias, units);
  if (max_abs_gx + RequantBound(max_acc, cell.recurrent_multiplier) + max_bias > INT32_MAX ||
      RequantBound(max_coef_c, cell.update_multiplier) + kOneQ15 > INT32_MAX) {
    return false;
  }
  return MakeFastRequant(cell.recurrent_multiplier, max_acc, 0, true, &c->recurrent) &&
         MakeFastRequant(cell.update_multiplier, max_coef_c, 0, false, &c->update) &&
         MakeFastActivation(gate, cell.gate_table, cell.gate_activation_multiplier,
                            &c->gate_table, &c->gate_activation) &&
         MakeFastActivation(update, cell.update_table, cell.update_activation_multiplier,
                            &c->update_table, &c->update_activation);
}

// Spec 4.4 on an int16 pre-activation x, fast form.
template <Kind kKind>
inline int32_t ActivateFast(int32_t x, const InterpolationTable* table, const FastRequant& m) {
  if (kKind == Kind::kTable) {
    // o = sat16(MBQM(x, M_a)) + 32768 (the offset is folded into m), clamped
    // to [0, 65535] by one USAT.
    const int32_t o = ClampUnsigned16(ApplyNarrow(x, m));
    const int32_t index = o >> kTableStepBits;  // 0..511
    return (table->base[index] + table->slope[index] * o) >> kTableStepBits;
  } else if (kKind == Kind::kQuantTanh) {
    return SaturateInt16(ApplyNarrow(x, m));
  } else if (kKind == Kind::kQuantSigm) {
    // clamp(MBQM(x, M_a) + 2^14, 0, 32767), the 2^14 folded into m.
    return ClampUnsigned15(ApplyNarrow(x, m));
  } else {
    return x > 0 ? x : 0;  // relu: keeps the scale s_pre
  }
}

// Spec 4.3 for one step of a cell, fast form, all in int32 (Prepare checked
// the sums' bounds), in two passes over the units so that each pass keeps its
// constants in registers (a Cortex-M has 13): ActivateUnits turns the
// pre-activations gx + gh into z and c, packed as two int16 lanes in place;
// UpdateUnits makes the next state from them.
inline int32_t PackLanes(int32_t low, int32_t high) {  // (low, high) as int16 lanes
  return static_cast<int32_t>((static_cast<uint32_t>(low) & 0xFFFFu) |
                              (static_cast<uint32_t>(high) << 16));
}

// pre[o] (gx + gh) -> (z, c) lanes, in place.
// The constants are copied to locals: the stores to pre[] (int32) could
// otherwise alias the cell's fields and force reloads every unit.
template <Kind kGate, Kind kUpdate>
RNNPOOL_ALWAYS_INLINE void ActivateUnits(const FastCell& c, int32_t units, int32_t* pre) {
  const FastRequant mz = c.gate_activation;
  const FastRequant mu = kGate == kUpdate ? c.gate_activation : c.update_activation;
  const int32_t* const gate_bias = c.gate_bias;
  const int32_t* const update_bias = c.update_bias;
  const InterpolationTable* const gate_table = c.gate_table;
  const InterpolationTable* const update_table = c.update_table;
  for (int32_t o = 0; o < units; ++o) {
    const int32_t p = pre[o];
    const int32_t z = ActivateFast<kGate>(SaturateInt16(p + gate_bias[o]), gate_table, mz);
    const int32_t u = ActivateFast<kUpdate>(SaturateInt16(p + update_bias[o]), update_table, mu);
    pre[o] = PackLanes(z, u);
  }
}

// h' = sat16(RDBPOT(z h, 15) + MBQM(coef c, M_c)), coef = (3); kFirst: h = 0.
template <bool kFirst>
RNNPOOL_ALWAYS_INLINE void UpdateUnits(const FastCell& c, int32_t units, const int32_t* zu,
                                       int16_t* h) {
  const FastRequant mc = c.update;
  const int32_t coef_bias = c.coef_bias, zeta = c.zeta;
  for (int32_t o = 0; o < units; ++o) {
    const int32_t z = static_cast<int16_t>(zu[o]), u = zu[o] >> 16;
    const int32_t coef = (coef_bias - zeta * z) >> 15;  // (3), in [0, 3 * 2^14]
    int32_t next = ApplyWide(coef * u, mc);               // |coef * u| < 2^31
    if (!kFirst) next += RoundingDivideByPOTConst<15>(z * h[o]);  // |z h| <= 2^30
    h[o] = static_cast<int16_t>(SaturateInt16(next));
  }
}

// gx + MBQM(h @ U, M_h) of unit o, as the epilogue of the SMLAD products.
struct PreActivationEpilogue {
  const int32_t* gx;
  FastRequant m;  // a copy: the stores to out[] could alias a reference
  int32_t operator()(int32_t acc, int32_t o) const { return gx[o] + ApplyNarrow(acc, m); }
};

// As the generic SweepInt8, fast form, the activation families fixed at
// compile time. `acc` holds a step's pre-activations, then its (z, c) lanes.
template <typename Cell, Kind kGate, Kind kUpdate>
void SweepInt8(const Cell& c, const int8_t* plan_pairs, int32_t units, const int32_t* gx,
               int32_t steps, ptrdiff_t step_stride, int16_t* h, int32_t* acc) {
  for (int32_t o = 0; o < units; ++o) acc[o] = gx[o];  // h = 0: gh = MBQM(0) = 0
  ActivateUnits<kGate, kUpdate>(c, units, acc);
  UpdateUnits<true>(c, units, acc, h);
  for (int32_t t = 1; t < steps; ++t) {
    gx += step_stride;
    // |h @ U| <= 2^30 (spec 5).
    if (c.recurrent_pairs >= 0) {
      MatVecPairs(h, units, plan_pairs + c.recurrent_pairs, units, acc,
                  PreActivationEpilogue{gx, c.recurrent});
    } else {
      MatVecInline<int32_t>(h, units, 0, c.recurrent_kernel, units, acc, StoreSum());
      for (int32_t o = 0; o < units; ++o) acc[o] = gx[o] + ApplyNarrow(acc[o], c.recurrent);
    }
    ActivateUnits<kGate, kUpdate>(c, units, acc);
    UpdateUnits<false>(c, units, acc, h);
  }
}

using FastSweepFn = void (*)(const FastCell&, const int8_t*, int32_t, const int32_t*, int32_t,
                             ptrdiff_t, int16_t*, int32_t*);

template <Kind kGate>
FastSweepFn SelectSweep(Kind update) {
  switch (update) {
    case Kind::kTable:
      return SweepInt8<FastCell, kGate, Kind::kTable>;
    case Kind::kQuantSigm:
      return SweepInt8<FastCell, kGate, Kind::kQuantSigm>;
    case Kind::kQuantTanh:
      return SweepInt8<FastCell, kGate, Kind::kQuantTanh>;
    case Kind::kRelu:
      break;
  }
  return SweepInt8<FastCell, kGate, Kind::kRelu>;
}

// One instantiation per (gate, update) family pair: 3 x 4 = 12 (a relu gate
// is rejected by ValidateInt8Params; it would run as a table gate here).
FastSweepFn SelectSweep(Kind gate, Kind update) {
  switch (gate) {
    case Kind::kQuantSigm:
      return SelectSweep<Kind::kQuantSigm>(update);
    case Kind::kQuantTanh:
      return SelectSweep<Kind::kQuantTanh>(update);
    default:
      return SelectSweep<Kind::kTable>(update);
  }
}

// ---------------------------------------------------------------------------
// Projections, output, one patch.
// ---------------------------------------------------------------------------
// MBQM of the input projections (spec 4.2), in fast form when it applies, as
// MatVec epilogues.
struct ProjectionRequant {
  bool fast;
  FastRequant fast_form;
  Requant generic;
};

void MakeProjectionRequant(const Multiplier& m, int64_t max_abs_input, ProjectionRequant* r) {
  r->fast = MakeFastRequant(m, max_abs_input, 0, true, &r->fast_form);
  r->generic = MakeRequant(m);
}

struct FastEpilogue {
  FastRequant m;  // a copy: the stores to out[] could alias a reference
  int32_t operator()(int32_t a) const { return ApplyNarrow(a, m); }
  int32_t operator()(int32_t a, int32_t) const { return ApplyNarrow(a, m); }
};
struct GenericEpilogue {
  const Requant& m;
  int32_t operator()(int32_t a) const { return Requantize(a, m); }
};

// g = MBQM((v + offset) @ W, M_x).
template <typename In>
void Project(const In* v, int32_t in, int32_t offset, const int8_t* matrix, int32_t units,
             const ProjectionRequant& m, int32_t* g) {
  if (m.fast) {
    MatVec<int32_t>(v, in, offset, matrix, units, g, FastEpilogue{m.fast_form});
  } else {
    MatVec<int32_t>(v, in, offset, matrix, units, g, GenericEpilogue{m.generic});
  }
}

// Spec 4.5 for one RNN2 final state: sat8(MBQM(h, M_y) + zp_y). Pre-clamping
// keeps the sum in int32 without changing the result.
void WriteOutputInt8(const Requant& my, int32_t zp, const int16_t* h, int32_t n, int8_t* out) {
  for (int32_t o = 0; o < n; ++o) {
    const int32_t v = Clamp32(Requantize16(h[o], my), -65536, 65536);
    out[o] = static_cast<int8_t>(Clamp32(v + zp, -128, 127));
  }
}

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
  FastSweepFn fast_sweep;
  Kind gate, update;
  ProjectionRequant mx1, mx2;
  Requant my;
  int32_t w2_pairs;  // offset of RNN2's W in 2x2 blocks in the pair storage, or -1
  // (Offsets, not pointers: the plan may be copied.)
};

// RnnPoolInt8Plan's storage: an Int8Plan, then kInt8PlanPairBytes of pair
// storage (U1, U2, W2 in 2x2 blocks when h1, h2 are even and they fit).
constexpr size_t kPairStorageOffset = kInt8PlanBytes - kInt8PlanPairBytes;
static_assert(sizeof(Int8Plan) <= kPairStorageOffset && alignof(Int8Plan) <= 8,
              "RnnPoolInt8Plan's storage is too small for Int8Plan");

// `pairs`: kInt8PlanPairBytes for the reordered matrices, or null (none).
void MakeInt8Plan(const RnnPoolInt8Params& params, Int8Plan* plan, int8_t* pairs) {
  plan->params = params;
  const RnnPoolShape& s = params.shape;
  plan->gate = KindOf(s.gate_activation);
  plan->update = KindOf(s.update_activation);
  // Spec 5: |RNN1 acc| <= k * 255 * 128, |RNN2 acc| <= h1 * 2^15 * 2^7.
  const int64_t max_acc1 = int64_t{s.in_channels} * 255 * 128;
  const int64_t max_acc2 = int64_t{s.rnn1_units} << 22;
  plan->fast =
      MakeFastCell(params.rnn1, plan->gate, plan->update, s.rnn1_units,
                   RequantBound(max_acc1, params.rnn1.input_multiplier), &plan->cells.fast[0]) &&
      MakeFastCell(params.rnn2, plan->gate, plan->update, s.rnn2_units,
                   RequantBound(max_acc2, params.rnn2.input_multiplier), &plan->cells.fast[1]);
  if (plan->fast) {
    plan->fast_sweep = SelectSweep(plan->gate, plan->update);
  } else {
    plan->fast_sweep = nullptr;
    MakeCellCtx(params.rnn1, &plan->cells.generic[0]);
    MakeCellCtx(params.rnn2, &plan->cells.generic[1]);
  }
  MakeProjectionRequant(params.rnn1.input_multiplier, max_acc1, &plan->mx1);
  MakeProjectionRequant(params.rnn2.input_multiplier, max_acc2, &plan->mx2);
  plan->my = MakeRequant(params.output_multiplier);
  // The SMLAD layout (4) of U1, U2, and W2 (whose input, an RNN1 state, is
  // int16) when every size is even and the three fit the plan.
  const int32_t h1 = s.rnn1_units, h2 = s.rnn2_units;
  plan->w2_pairs = -1;
  if (kTwoMacProducts && pairs != nullptr && plan->fast && h1 % 2 == 0 && h2 % 2 == 0 &&
      PairBytes(h1, h1) + PairBytes(h2, h2) + PairBytes(h1, h2) <= kInt8PlanPairBytes) {
    const int32_t u2 = static_cast<int32_t>(PairBytes(h1, h1));
    const int32_t w2 = u2 + static_cast<int32_t>(PairBytes(h2, h2));
    ReorderPairs(params.rnn1.recurrent_kernel, h1, h1, pairs);
    ReorderPairs(params.rnn2.recurrent_kernel, h2, h2, pairs + u2);
    ReorderPairs(params.rnn2.kernel, h1, h2, pairs + w2);
    plan->cells.fast[0].recurrent_pairs = 0;
    plan->cells.fast[1].recurrent_pairs = u2;
    plan->w2_pairs = w2;
  }
}

// Runs cell 0 (RNN1) or 1 (RNN2) over one sequence (SweepInt8's arguments).
void Sweep(const Int8Plan& plan, const int8_t* pairs, int32_t cell, int32_t units, const int32_t* gx, int32_t steps,
           ptrdiff_t step_stride, int16_t* h, int32_t* acc) {
  if (plan.fast) {
    plan.fast_sweep(plan.cells.fast[cell], pairs, units, gx, steps, step_stride, h, acc);
  } else {
    SweepInt8(plan.cells.generic[cell], plan.gate, plan.update, units, gx, steps, step_stride,
              h, acc);
  }
}

// One patch with a plan (see the public RnnPoolPatchInt8).
void PatchInt8(const Int8Plan& plan, const int8_t* pairs, const int8_t* image, int32_t height, int32_t width,
               int32_t top, int32_t left, int8_t* output, void* scratch) {
  const RnnPoolInt8Params& params = plan.params;
  const RnnPoolShape& s = params.shape;
  const int32_t k = s.in_channels, h1 = s.rnn1_units, h2 = s.rnn2_units;
  const int32_t r = s.pool_h, c = s.pool_w;
  const Workspace<int32_t, int16_t> w = CarveWorkspace<int32_t, int16_t>(s, scratch, false);
  const int32_t zp_x = params.input_zero_point;

  // 1. RNN1 input projection of every pixel, once (spec 4.2):
  //    MBQM(sum_j (X[j] - zp_x) W[j][o], M_x), |acc| <= 1024 * 255 * 127 < 2^25.
  //    Padded pixels hold zp_x: their projection is MBQM(0) = 0.
  for (int32_t i = 0; i < r; ++i) {
    const int32_t y = top + i;
    for (int32_t j = 0; j < c; ++j) {
      const int32_t x = left + j;
      int32_t* g = w.proj1 + (static_cast<size_t>(i) * c + j) * h1;
      if (y < 0 || y >= height || x < 0 || x >= width) {
        for (int32_t o = 0; o < h1; ++o) g[o] = 0;
        continue;
      }
      const int8_t* pixel = image + (static_cast<size_t>(y) * width + x) * k;
      Project(pixel, k, -zp_x, params.rnn1.kernel, h1, plan.mx1, g);
    }
  }
  // 2. RNN1 along every row (time = column), then every column (time = row),
  //    both reading the projections of step 1.
  for (int32_t i = 0; i < r; ++i) {
    Sweep(plan, pairs, 0, h1, w.proj1 + static_cast<size_t>(i) * c * h1, c, h1,
          w.states1 + static_cast<size_t>(i) * h1, w.acc);
  }
  for (int32_t j = 0; j < c; ++j) {
    Sweep(plan, pairs, 0, h1, w.proj1 + static_cast<size_t>(j) * h1, r, static_cast<ptrdiff_t>(c) * h1,
          w.states1 + static_cast<size_t>(r + j) * h1, w.acc);
  }
  // 3. RNN2 over the row summaries, forward and backward, then over the
  //    column summaries (spec 4.5 order). Each summary is projected once
  //    (spec 4.2, |acc| <= 256 * 32768 * 127 < 2^30) for both directions.
  const int32_t counts[2] = {r, c};
  for (int32_t pass = 0; pass < 2; ++pass) {
    const int32_t count = counts[pass];
    const int16_t* summaries = w.states1 + (pass == 0 ? 0 : static_cast<size_t>(r) * h1);
    for (int32_t t = 0; t < count; ++t) {
      const int16_t* v = summaries + static_cast<size_t>(t) * h1;
      int32_t* g = w.proj2 + static_cast<size_t>(t) * h2;
      if (plan.w2_pairs >= 0 && plan.mx2.fast) {
        MatVecPairs(v, h1, pairs + plan.w2_pairs, h2, g, FastEpilogue{plan.mx2.fast_form});
      } else {
        Project(v, h1, 0, params.rnn2.kernel, h2, plan.mx2, g);
      }
    }
    int8_t* out = output + static_cast<size_t>(pass) * 2 * h2;
    Sweep(plan, pairs, 1, h2, w.proj2, count, h2, w.state2, w.acc);
    WriteOutputInt8(plan.my, params.output_zero_point, w.state2, h2, out);
    Sweep(plan, pairs, 1, h2, w.proj2 + static_cast<size_t>(count - 1) * h2, count, -h2, w.state2,
          w.acc);
    WriteOutputInt8(plan.my, params.output_zero_point, w.state2, h2, out + h2);
  }
}

}  // namespace

// Spec 4.4, in place (the generic path's Activate<>).
void ActivationInt16(Activation activation, const int16_t* table,
                     const Multiplier& multiplier, int16_t* values, int32_t n) {
  const Requant m = MakeRequant(multiplier);
  const Kind kind = KindOf(activation);
  for (int32_t i = 0; i < n; ++i) {
    values[i] = static_cast<int16_t>(ActivateAny(kind, values[i], table, m));
  }
}

namespace {
const Int8Plan& PlanOf(const RnnPoolInt8Plan& plan) {
  return *reinterpret_cast<const Int8Plan*>(plan.storage);
}
const int8_t* PairsOf(const RnnPoolInt8Plan& plan) {
  return reinterpret_cast<const int8_t*>(plan.storage + kPairStorageOffset);
}
}  // namespace

bool Int8FastPathApplies(const RnnPoolInt8Params& params) {
  if (ValidateInt8Params(params) != Status::kOk) return false;
  Int8Plan plan;
  MakeInt8Plan(params, &plan, nullptr);
  return plan.fast;
}

Status PrepareInt8Plan(const RnnPoolInt8Params& params, RnnPoolInt8Plan* plan) {
  const Status status = ValidateInt8Params(params);
  if (status != Status::kOk) return status;
  MakeInt8Plan(params, new (plan->storage) Int8Plan,
               reinterpret_cast<int8_t*>(plan->storage + kPairStorageOffset));
  return Status::kOk;
}

bool Int8PlanIsFast(const RnnPoolInt8Plan& plan) { return PlanOf(plan).fast; }

void RnnPoolPatchInt8(const RnnPoolInt8Plan& plan, const int8_t* image, int32_t height,
                      int32_t width, int32_t top, int32_t left, int8_t* output, void* scratch) {
  PatchInt8(PlanOf(plan), PairsOf(plan), image, height, width, top, left, output, scratch);
}

// ===========================================================================
// float path (docs/rnnpool_float.md): same structure, float32 arithmetic.
// ===========================================================================
namespace {

void ActivationFloat(Activation activation, float* values, int32_t n) {
  switch (activation) {
    case Activation::kSigmoid:
      for (int32_t i = 0; i < n; ++i) values[i] = 1.0f / (1.0f + std::exp(-values[i]));
      break;
    case Activation::kTanh:
      for (int32_t i = 0; i < n; ++i) values[i] = std::tanh(values[i]);
      break;
    case Activation::kQuantSigm:
      for (int32_t i = 0; i < n; ++i) {
        const float v = (values[i] + 1.0f) * 0.5f;
        values[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
      }
      break;
    case Activation::kQuantTanh:
      for (int32_t i = 0; i < n; ++i) {
        const float v = values[i];
        values[i] = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
      }
      break;
    case Activation::kRelu:
      for (int32_t i = 0; i < n; ++i) {
        if (values[i] < 0.0f) values[i] = 0.0f;
      }
      break;
  }
}

// Runs a float cell from h = 0 over `steps` projected inputs (layout as
// SweepInt8): h' = z h + (sigmoid(zeta) (1 - z) + sigmoid(nu)) c.
void SweepFloat(const FloatCell& cell, const RnnPoolShape& shape, int32_t units,
                const float* gx, int32_t steps, ptrdiff_t step_stride, float* h,
                const Workspace<float, float>& w) {
  float* gate = w.gate;
  float* update = w.update;
  const float zeta = cell.zeta_sigmoid, nu = cell.nu_sigmoid;
  for (int32_t t = 0; t < steps; ++t, gx += step_stride) {
    if (t == 0) {  // h = 0: h @ U = 0
      for (int32_t o = 0; o < units; ++o) {
        gate[o] = gx[o] + cell.gate_bias[o];
        update[o] = gx[o] + cell.update_bias[o];
      }
    } else {
      MatVec<float>(h, units, 0.0f, cell.recurrent_kernel, units, w.acc);
      for (int32_t o = 0; o < units; ++o) {
        const float pre = gx[o] + w.acc[o];
        gate[o] = pre + cell.gate_bias[o];
        update[o] = pre + cell.update_bias[o];
      }
    }
    ActivationFloat(shape.gate_activation, gate, units);
    ActivationFloat(shape.update_activation, update, units);
    for (int32_t o = 0; o < units; ++o) {
      const float z = gate[o];
      const float kept = t == 0 ? 0.0f : z * h[o];
      h[o] = kept + (zeta * (1.0f - z) + nu) * update[o];
    }
  }
}

}  // namespace

void RnnPoolPatchFloat(const RnnPoolFloatParams& params, const float* image,
                       int32_t height, int32_t width, int32_t top, int32_t left,
                       float* output, void* scratch) {
  const RnnPoolShape& s = params.shape;
  const int32_t k = s.in_channels, h1 = s.rnn1_units, h2 = s.rnn2_units;
  const int32_t r = s.pool_h, c = s.pool_w;
  const Workspace<float, float> w = CarveWorkspace<float, float>(s, scratch, true);

  // 1. x @ W of every pixel, once; padded pixels (0.0) project to 0.
  for (int32_t i = 0; i < r; ++i) {
    const int32_t y = top + i;
    for (int32_t j = 0; j < c; ++j) {
      const int32_t x = left + j;
      float* g = w.proj1 + (static_cast<size_t>(i) * c + j) * h1;
      if (y < 0 || y >= height || x < 0 || x >= width) {
        for (int32_t o = 0; o < h1; ++o) g[o] = 0.0f;
        continue;
      }
      MatVec<float>(image + (static_cast<size_t>(y) * width + x) * k, k, 0.0f,
                    params.rnn1.kernel, h1, g);
    }
  }
  // 2. RNN1 along rows, then columns.
  for (int32_t i = 0; i < r; ++i) {
    SweepFloat(params.rnn1, s, h1, w.proj1 + static_cast<size_t>(i) * c * h1, c, h1,
               w.states1 + static_cast<size_t>(i) * h1, w);
  }
  for (int32_t j = 0; j < c; ++j) {
    SweepFloat(params.rnn1, s, h1, w.proj1 + static_cast<size_t>(j) * h1, r,
               static_cast<ptrdiff_t>(c) * h1, w.states1 + static_cast<size_t>(r + j) * h1, w);
  }
  // 3. RNN2 forward / backward over rows, then columns; states go to the output.
  const int32_t counts[2] = {r, c};
  for (int32_t pass = 0; pass < 2; ++pass) {
    const int32_t count = counts[pass];
    const float* summaries = w.states1 + (pass == 0 ? 0 : static_cast<size_t>(r) * h1);
    for (int32_t t = 0; t < count; ++t) {
      MatVec<float>(summaries + static_cast<size_t>(t) * h1, h1, 0.0f, params.rnn2.kernel, h2,
                    w.proj2 + static_cast<size_t>(t) * h2);
    }
    float* out = output + static_cast<size_t>(pass) * 2 * h2;
    SweepFloat(params.rnn2, s, h2, w.proj2, count, h2, out, w);
    SweepFloat(params.rnn2, s, h2, w.proj2 + static_cast<size_t>(count - 1) * h2, count, -h2,
               out + h2, w);
  }
}

// ===========================================================================
// Whole maps, geometry, scratch, validation, Prepare-time helpers.
// ===========================================================================
const int16_t* BuiltinTable(int32_t activation) {
  if (activation == static_cast<int32_t>(Activation::kSigmoid)) return kSigmoidTable;
  if (activation == static_cast<int32_t>(Activation::kTanh)) return kTanhTable;
  return nullptr;
}

int32_t OutputSize(int32_t n, int32_t window, int32_t stride, Padding padding) {
  if (padding == Padding::kValid) return n < window ? 0 : (n - window) / stride + 1;
  return n <= 0 ? 0 : (n - 1) / stride + 1;  // ceil(n / stride)
}

int32_t PaddingBefore(int32_t n, int32_t window, int32_t stride, Padding padding) {
  if (padding == Padding::kValid) return 0;
  const int32_t out = OutputSize(n, window, stride, padding);
  const int32_t total = Max32((out - 1) * stride + window - n, 0);
  return total / 2;
}

namespace {

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

}  // namespace

namespace {

void RunWholeMapInt8(const Int8Plan& plan, const int8_t* pairs, const int8_t* input,
                     int32_t batch, int32_t height, int32_t width, int8_t* output,
                     void* scratch) {
  WholeMap(plan.params, input, batch, height, width, output, scratch,
           [&plan, pairs](const RnnPoolInt8Params&, const int8_t* image, int32_t h, int32_t w,
                          int32_t top, int32_t left, int8_t* out, void* s) {
             PatchInt8(plan, pairs, image, h, w, top, left, out, s);
           });
}

}  // namespace

void RnnPoolFloat(const RnnPoolFloatParams& params, const float* input, int32_t batch,
                  int32_t height, int32_t width, float* output, void* scratch) {
  WholeMap(params, input, batch, height, width, output, scratch, RnnPoolPatchFloat);
}

void RnnPoolInt8(const RnnPoolInt8Plan& plan, const int8_t* input, int32_t batch,
                 int32_t height, int32_t width, int8_t* output, void* scratch) {
  RunWholeMapInt8(PlanOf(plan), PairsOf(plan), input, batch, height, width, output, scratch);
}

void RnnPoolInt8(const RnnPoolInt8Params& params, const int8_t* input, int32_t batch,
                 int32_t height, int32_t width, int8_t* output, void* scratch) {
  Int8Plan plan;  // without the reordered matrices: 1 KiB less stack
  MakeInt8Plan(params, &plan, nullptr);
  RunWholeMapInt8(plan, nullptr, input, batch, height, width, output, scratch);
}

size_t RnnPoolFloatScratchBytes(const RnnPoolShape& shape) {
  return WorkspaceBytes<float, float>(shape, true);
}

size_t RnnPoolInt8ScratchBytes(const RnnPoolShape& shape) {
  return WorkspaceBytes<int32_t, int16_t>(shape, false);
}

const char* StatusMessage(Status status) {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kBadInputChannels:
      return "input channels k must be in [1, 1024]";
    case Status::kBadUnits:
      return "rnn1_units and rnn2_units must be in [1, 256]";
    case Status::kBadPool:
      return "pool rows and columns must be in [1, 64]";
    case Status::kBadStride:
      return "strides must be >= 1";
    case Status::kBadPadding:
      return "padding must be valid or same";
    case Status::kBadActivation:
      return "unknown gate or update activation";
    case Status::kReluGate:
      return "the int8 gate activation may not be relu";
    case Status::kNullPointer:
      return "a weight, bias or activation table pointer is null";
    case Status::kBadZetaNu:
      return "zeta_q14 and nu_q14 must be in [0, 16384]";
    case Status::kBadMultiplier:
      return "a quantized multiplier is out of range (q in {0} or [2^30, 2^31), "
             "shift in [-31, 30])";
    case Status::kBadZeroPoint:
      return "zero points must be in [-128, 127]";
    case Status::kBadMultiplierValue:
      return "a real multiplier must be positive, finite and below 2^30";
  }
  return "unknown status";
}

Status ValidateShape(const RnnPoolShape& s) {
  if (s.in_channels < 1 || s.in_channels > kMaxInputChannels) return Status::kBadInputChannels;
  if (s.rnn1_units < 1 || s.rnn1_units > kMaxUnits || s.rnn2_units < 1 ||
      s.rnn2_units > kMaxUnits) {
    return Status::kBadUnits;
  }
  if (s.pool_h < 1 || s.pool_h > kMaxPool || s.pool_w < 1 || s.pool_w > kMaxPool) {
    return Status::kBadPool;
  }
  if (s.stride_h < 1 || s.stride_w < 1) return Status::kBadStride;
  if (s.padding != Padding::kValid && s.padding != Padding::kSame) return Status::kBadPadding;
  if (!IsKnownActivation(s.gate_activation) || !IsKnownActivation(s.update_activation)) {
    return Status::kBadActivation;
  }
  return Status::kOk;
}

Status ValidateFloatParams(const RnnPoolFloatParams& params) {
  const Status status = ValidateShape(params.shape);
  if (status != Status::kOk) return status;
  for (const FloatCell* cell : {&params.rnn1, &params.rnn2}) {
    if (cell->kernel == nullptr || cell->recurrent_kernel == nullptr ||
        cell->gate_bias == nullptr || cell->update_bias == nullptr) {
      return Status::kNullPointer;
    }
  }
  return Status::kOk;
}

namespace {

bool MultiplierOk(const Multiplier& m) {
  if (m.shift < -31 || m.shift > 30) return false;
  return m.q == 0 || m.q >= (int32_t{1} << 30);  // q < 2^31 by type
}

Status ValidateInt8Cell(const Int8Cell& cell, const RnnPoolShape& s) {
  if (cell.kernel == nullptr || cell.recurrent_kernel == nullptr ||
      cell.gate_bias == nullptr || cell.update_bias == nullptr) {
    return Status::kNullPointer;
  }
  if ((IsTableActivation(s.gate_activation) && cell.gate_table == nullptr) ||
      (IsTableActivation(s.update_activation) && cell.update_table == nullptr)) {
    return Status::kNullPointer;
  }
  if (cell.zeta_q14 < 0 || cell.zeta_q14 > kOneQ14 || cell.nu_q14 < 0 ||
      cell.nu_q14 > kOneQ14) {
    return Status::kBadZetaNu;
  }
  if (!MultiplierOk(cell.input_multiplier) || !MultiplierOk(cell.recurrent_multiplier) ||
      !MultiplierOk(cell.update_multiplier)) {
    return Status::kBadMultiplier;
  }
  if ((HasActivationMultiplier(s.gate_activation) &&
       !MultiplierOk(cell.gate_activation_multiplier)) ||
      (HasActivationMultiplier(s.update_activation) &&
       !MultiplierOk(cell.update_activation_multiplier))) {
    return Status::kBadMultiplier;
  }
  return Status::kOk;
}

}  // namespace

Status ValidateInt8Params(const RnnPoolInt8Params& params) {
  Status status = ValidateShape(params.shape);
  if (status != Status::kOk) return status;
  if (params.shape.gate_activation == Activation::kRelu) return Status::kReluGate;
  status = ValidateInt8Cell(params.rnn1, params.shape);
  if (status != Status::kOk) return status;
  status = ValidateInt8Cell(params.rnn2, params.shape);
  if (status != Status::kOk) return status;
  if (params.input_zero_point < -128 || params.input_zero_point > 127 ||
      params.output_zero_point < -128 || params.output_zero_point > 127) {
    return Status::kBadZeroPoint;
  }
  if (!MultiplierOk(params.output_multiplier)) return Status::kBadMultiplier;
  return Status::kOk;
}

Status QuantizeMultiplier(double real_multiplier, int32_t* q, int* shift) {
  if (!(real_multiplier > 0.0) || !std::isfinite(real_multiplier)) {
    return Status::kBadMultiplierValue;
  }
  int exponent = 0;
  const double fraction = std::frexp(real_multiplier, &exponent);  // [0.5, 1)
  int64_t q_fixed = static_cast<int64_t>(std::round(fraction * static_cast<double>(int64_t{1} << 31)));
  if (q_fixed == (int64_t{1} << 31)) {
    q_fixed /= 2;
    ++exponent;
  }
  if (exponent < -31) {  // below 2^-32: flushes to zero, as in TFLite
    *q = 0;
    *shift = 0;
    return Status::kOk;
  }
  if (exponent > 30) return Status::kBadMultiplierValue;
  *q = static_cast<int32_t>(q_fixed);
  *shift = exponent;
  return Status::kOk;
}

Status ComputeCellMultipliers(double input_scale, double kernel_scale, double recurrent_scale,
                              double preactivation_scale, double state_scale,
                              Activation gate_activation, Activation update_activation,
                              Int8Cell* cell) {
  // Same expressions, in the same order, as int8_params.cell_constants, so the
  // doubles (and hence the multipliers) are identical.
  const double pre = preactivation_scale;
  const double c_scale = update_activation == Activation::kRelu ? pre : 1.0 / kOneQ15;
  struct Item {
    double value;
    Multiplier* out;
  };
  const Item items[3] = {
      {input_scale * kernel_scale / pre, &cell->input_multiplier},
      {state_scale * recurrent_scale / pre, &cell->recurrent_multiplier},
      {c_scale / kOneQ14 / state_scale, &cell->update_multiplier},
  };
  for (const Item& item : items) {
    int shift = 0;
    const Status status = QuantizeMultiplier(item.value, &item.out->q, &shift);
    if (status != Status::kOk) return status;
    item.out->shift = shift;
  }
  const Activation acts[2] = {gate_activation, update_activation};
  Multiplier* outs[2] = {&cell->gate_activation_multiplier,
                         &cell->update_activation_multiplier};
  for (int i = 0; i < 2; ++i) {
    outs[i]->q = 0;
    outs[i]->shift = 0;
    if (!HasActivationMultiplier(acts[i])) continue;
    // integer_activations.activation_multiplier: s_pre * 2^12 (table input
    // Q3.12), 2^15 (quantTanh) or 2^14 (quantSigm).
    const double factor = IsTableActivation(acts[i])
                              ? static_cast<double>(1 << kTableInputFractionBits)
                              : (acts[i] == Activation::kQuantTanh ? kOneQ15 : kOneQ14);
    const double value = pre * factor;
    int shift = 0;
    const Status status = QuantizeMultiplier(value, &outs[i]->q, &shift);
    if (status != Status::kOk) return status;
    outs[i]->shift = shift;
  }
  return Status::kOk;
}

}  // namespace rnnpool
