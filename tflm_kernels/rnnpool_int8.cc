/* RNNPool kernel core, int8 Eval: the optimised path (32-bit
 * requantisation, SSAT / USAT, SMLAD products on ARMv7E-M and later, portable
 * C++ elsewhere), one patch, whole maps. Bit-exact with the spec
 * transcription (rnnpool_int8_spec.cc); integer arithmetic only. */
#include <cstddef>
#include <cstdint>
#include <cstring>

#if (defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT) || \
    (defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32)
#include <arm_acle.h>
#endif

#include "rnnpool_core.h"
#include "rnnpool_core_internal.h"

namespace rnnpool {
namespace internal {
namespace {

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

template <Kind kKind>
inline int32_t ActivateFast(int32_t x, const InterpolationTable* table, const FastRequant& m) {
  if (kKind == Kind::kTable) {
    // o = sat16(MBQM(x, M_a)) + 32768 (the offset is folded into m), clamped
    // to [0, 65535] by one USAT.
    const int32_t o = ClampUnsigned16(ApplyNarrow(x, m));
    const uint32_t index = static_cast<uint32_t>(o) >> kTableStepBits;  // 0..511
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

// One step in one pass over the units (kFirst: h = 0, no h @ U): the form
// for cores with enough registers to keep every constant of the step in them
// (x86-64: 16), where the two passes' packing and stores cost more than they
// save (x86 callgrind, VWW int8 patch: 118,942 instructions in two passes,
// 107,089 in one). acc holds h @ U (ignored when kFirst); the same arithmetic
// as the two passes. Units run last to first: one register and compare fewer.
template <Kind kGate, Kind kUpdate, bool kFirst>
RNNPOOL_ALWAYS_INLINE void StepUnitsOnePass(const FastCell& c, int32_t units, const int32_t* gx,
                                            const int32_t* acc, int16_t* h) {
  // The cell's fields are read in place (x86 takes them as memory operands;
  // the int16 stores to h cannot alias them).
  const FastRequant& mu = kGate == kUpdate ? c.gate_activation : c.update_activation;
  for (ptrdiff_t o = units - 1; o >= 0; --o) {
    const int32_t p = kFirst ? gx[o] : gx[o] + ApplyNarrow(acc[o], c.recurrent);
    const int32_t z = ActivateFast<kGate>(SaturateInt16(p + c.gate_bias[o]), c.gate_table,
                                          c.gate_activation);
    const int32_t u = ActivateFast<kUpdate>(SaturateInt16(p + c.update_bias[o]),
                                            c.update_table, mu);
    const int32_t coef = (c.coef_bias - c.zeta * z) >> 15;  // (3), in [0, 3 * 2^14]
    int32_t next = ApplyWide(coef * u, c.update);             // |coef * u| < 2^31
    if (!kFirst) next += RoundingDivideByPOTConst<15>(z * h[o]);  // |z h| <= 2^30
    h[o] = static_cast<int16_t>(SaturateInt16(next));
  }
}

// As the generic SweepInt8Spec, fast form, the activation families fixed at
// compile time. Where SMLAD exists (a Cortex-M's 13 registers), h @ U comes
// from the two-MAC products and a step runs in two passes (ActivateUnits,
// UpdateUnits; `acc` holds the pre-activations, then the (z, c) lanes);
// elsewhere in one pass (StepUnitsOnePass).
template <typename Cell, Kind kGate, Kind kUpdate>
void SweepInt8(const Cell& c, const int8_t* plan_pairs, int32_t units, const int32_t* gx,
               int32_t steps, ptrdiff_t step_stride, int16_t* h, int32_t* acc) {
  if constexpr (!kTwoMacProducts) {
    StepUnitsOnePass<kGate, kUpdate, true>(c, units, gx, acc, h);
    for (int32_t t = 1; t < steps; ++t) {
      gx += step_stride;
      // |h @ U| <= 2^30 (spec 5).
      MatVecInline<int32_t>(h, units, 0, c.recurrent_kernel, units, acc, StoreSum());
      StepUnitsOnePass<kGate, kUpdate, false>(c, units, gx, acc, h);
    }
    return;
  }
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

}  // namespace

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

namespace {

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

// Runs cell 0 (RNN1) or 1 (RNN2) over one sequence (SweepInt8's arguments).
void Sweep(const Int8Plan& plan, const int8_t* pairs, int32_t cell, int32_t units, const int32_t* gx, int32_t steps,
           ptrdiff_t step_stride, int16_t* h, int32_t* acc) {
  if (plan.fast) {
    plan.fast_sweep[cell](plan.cells.fast[cell], pairs, units, gx, steps, step_stride, h, acc);
  } else {
    SweepInt8Spec(plan.cells.generic[cell], plan.gate, plan.update, units, gx, steps,
                  step_stride, h, acc);
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
  const InsideSpan rows = SpanInside(top, r, height), cols = SpanInside(left, c, width);
  for (int32_t i = 0; i < r; ++i) {
    if (plan.simd_project1 != nullptr && i >= rows.begin && i < rows.end &&
        cols.begin < cols.end) {
      // The row's inside pixels are consecutive in the image: one call.
      int32_t* g = w.proj1 + static_cast<size_t>(i) * c * h1;
      for (size_t o = 0; o < static_cast<size_t>(cols.begin) * h1; ++o) g[o] = 0;
      for (size_t o = static_cast<size_t>(cols.end) * h1; o < static_cast<size_t>(c) * h1; ++o) {
        g[o] = 0;
      }
      const int32_t y = top + i, x = left + cols.begin;  // inside the image: no overflow
      plan.simd_project1(image + (static_cast<size_t>(y) * width + x) * k, cols.end - cols.begin,
                         k, -zp_x, params.rnn1.kernel, h1, plan.mx1.fast_form,
                         g + static_cast<size_t>(cols.begin) * h1);
      continue;
    }
    for (int32_t j = 0; j < c; ++j) {
      int32_t* g = w.proj1 + (static_cast<size_t>(i) * c + j) * h1;
      if (i < rows.begin || i >= rows.end || j < cols.begin || j >= cols.end) {
        for (int32_t o = 0; o < h1; ++o) g[o] = 0;
        continue;
      }
      const int32_t y = top + i, x = left + j;  // inside the image: no overflow
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
    if (plan.simd_project2 != nullptr) {
      plan.simd_project2(summaries, count, h1, params.rnn2.kernel, h2, plan.mx2.fast_form,
                         w.proj2);
    } else {
      for (int32_t t = 0; t < count; ++t) {
        const int16_t* v = summaries + static_cast<size_t>(t) * h1;
        int32_t* g = w.proj2 + static_cast<size_t>(t) * h2;
        if (plan.w2_pairs >= 0 && plan.mx2.fast) {
          MatVecPairs(v, h1, pairs + plan.w2_pairs, h2, g, FastEpilogue{plan.mx2.fast_form});
        } else {
          Project(v, h1, 0, params.rnn2.kernel, h2, plan.mx2, g);
        }
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
}  // namespace internal

using internal::Int8Plan;

void RnnPoolPatchInt8(const RnnPoolInt8Plan& plan, const int8_t* image, int32_t height,
                      int32_t width, int32_t top, int32_t left, int8_t* output, void* scratch) {
  internal::PatchInt8(internal::PlanOf(plan), internal::PairsOf(plan), image, height, width, top, left, output, scratch);
}

void RnnPoolInt8(const RnnPoolInt8Plan& plan, const int8_t* input, int32_t batch,
                 int32_t height, int32_t width, int8_t* output, void* scratch) {
  internal::RunWholeMapInt8(internal::PlanOf(plan), internal::PairsOf(plan), input, batch, height, width, output, scratch);
}

void RnnPoolInt8(const RnnPoolInt8Params& params, const int8_t* input, int32_t batch,
                 int32_t height, int32_t width, int8_t* output, void* scratch) {
  Int8Plan plan;  // without the reordered matrices: 1 KiB less stack
  internal::MakeInt8Plan(params, &plan, nullptr);
  internal::RunWholeMapInt8(plan, nullptr, input, batch, height, width, output, scratch);
}

}  // namespace rnnpool
