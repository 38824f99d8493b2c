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

#if RNNPOOL_ARM_DSP
// Two-lane primitives of the DSP path (SXTB16, SMLAD), through ACLE.
inline int32_t Sxtb16(uint32_t w) {  // bytes 0, 2 sign-extended to two int16 lanes
  return static_cast<int32_t>(__sxtb16(w));
}
// Bytes 1, 3 sign-extended to two int16 lanes (SXTB16 with its rotation).
inline int32_t Sxtb16High(uint32_t w) {
  int32_t result;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(w));  // ACLE has no rotate form
  return result;
}
inline int32_t Smlad(uint32_t a, int32_t b, int32_t acc) {  // acc + a.lo * b.lo + a.hi * b.hi
  return static_cast<int32_t>(__smlad(static_cast<int32_t>(a), b, acc));
}
// An unaligned word (LDR allows it on ARMv7-M and later).
inline uint32_t LoadWord(const void* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}
// Two aligned words (one LDRD).
struct WordPair {
  int32_t first, second;
};
// p[kIndex], p[kIndex + 1]. g++ splits an 8-byte memcpy into two LDRs. (The
// arrays read are not written while the loops read them: no memory operand.)
template <int kIndex = 0>
inline WordPair LoadPair(const int32_t* p) {
  int32_t first, second;
  __asm__("ldrd %0, %1, [%2, %3]" : "=r"(first), "=r"(second) : "r"(p), "i"(4 * kIndex));
  return {first, second};
}
template <int kIndex = 0>
inline WordPair LoadPair(const uint32_t* p) {
  return LoadPair<kIndex>(reinterpret_cast<const int32_t*>(p));
}
// a's high lane times b's low lane (SMULTB; GCC's ACLE lacks it).
inline int32_t Smultb(int32_t a, int32_t b) {
  int32_t result;
  __asm__("smultb %0, %1, %2" : "=r"(result) : "r"(a), "r"(b));
  return result;
}
// (low, high) as int16 lanes (PKHBT).
inline int32_t PackLanes(int32_t low, int32_t high) {
  int32_t result;
  __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(result) : "r"(low), "r"(high));
  return result;
}

// SMMLAR: (a b + c 2^32 + 2^31) >> 32 (no ACLE intrinsic).
inline int32_t Smmlar(int32_t a, int32_t b, int32_t c) {
  int32_t result;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(result) : "r"(a), "r"(b), "r"(c));
  return result;
}

// (5): MBQM of x / 2^(left+1), x the input with that factor applied.
inline int32_t ApplyDsp(int32_t x, const DspRequant& m) {
  return (Smmlar(x, m.q, m.round) + ((x >> 31) & m.sign_mask)) >> m.n;
}
// The same for a multiplier known to have n >= 1 (sign_mask = -1).
inline int32_t ApplyDspRounding(int32_t x, const DspRequant& m) {
  return (Smmlar(x, m.q, m.round) + (x >> 31)) >> m.n;
}

// (6): MBQM(x, M_a) of the int16 x in the low (kHigh: high) lane of `lanes`,
// without the activation's offset. SMLAWB / SMLAWT read the lane itself; its
// sign bit, masked by sign_mask (2^15 or 0), is the 2^15 [x < 0] subtracted.
// kRounds false: n = 0 in both activations (sign_mask 0), the usual case
// (M_a >= 1/2: m_pre of 4 or more for a table, 1/2 for quantTanh).
template <bool kHigh, bool kRounds>
inline int32_t ActivationInput(int32_t lanes, const DspActivation& a) {
  if (kHigh) {
    const int32_t sum = __smlawt(a.q, lanes, a.bias);
    if (!kRounds) return sum >> a.shift;
    const uint32_t sign = static_cast<uint32_t>(lanes) & (static_cast<uint32_t>(a.sign_mask) << 16);
    return (sum - static_cast<int32_t>(sign >> 16)) >> a.shift;
  }
  const int32_t sum = __smlawb(a.q, lanes, a.bias);
  return (kRounds ? sum - (lanes & a.sign_mask) : sum) >> a.shift;
}

// A table activation times 2^7 (its last shift not done).
template <bool kHigh, bool kRounds>
RNNPOOL_ALWAYS_INLINE int32_t TableTimes128(int32_t lanes, const int32_t* table,
                                            const DspActivation& a) {
  // r = sat16(MBQM(x, M_a)); (7) reads {base', d} at r >> 7.
  const int32_t r = __ssat((ActivationInput<kHigh, kRounds>(lanes, a)), 16);
  const WordPair entry = LoadPair(table + 2 * (r >> kTableStepBits));
  return entry.first + entry.second * r;
}

// Spec 4.4 for the int16 pre-activation in one lane of `lanes`.
template <Kind kKind, bool kHigh, bool kRounds>
RNNPOOL_ALWAYS_INLINE int32_t ActivateDsp(int32_t lanes, const int32_t* table,
                                          const DspActivation& a) {
  if (kKind == Kind::kTable) {
    return TableTimes128<kHigh, kRounds>(lanes, table, a) >> kTableStepBits;
  } else if (kKind == Kind::kQuantTanh) {
    return __ssat((ActivationInput<kHigh, kRounds>(lanes, a)), 16);
  } else if (kKind == Kind::kQuantSigm) {
    // clamp(MBQM + 2^14, 0, 32767): without the rounding corrections the
    // plan folds the 2^14 into the bias of (6) (2^14 2^shift, exact), one
    // USAT; else sat15(MBQM) + 2^14.
    if (!kRounds) {
      return static_cast<int32_t>(__usat((ActivationInput<kHigh, false>(lanes, a)), 15));
    }
    return __ssat((ActivationInput<kHigh, kRounds>(lanes, a)), 15) + kOneQ14;
  } else {  // relu of an int16: max(x, 0)
    return static_cast<int32_t>(__usat(kHigh ? lanes >> 16 : static_cast<int16_t>(lanes), 15));
  }
}

// Spec 4.2's products on the DSP path, v @ M for `units` outputs. The plan
// keeps M by columns: for output o, its weights 2^(left+1) as int16 pairs
// matching pairs of inputs, eight inputs (four pairs) per chunk and, where
// the inputs end with four more, a half chunk of two pairs (MakeInt8Plan).
// A chunk's four input pairs stay in registers while the outputs run: per
// output, two LDRDs and four SMLADs (SMUAD first). Integer sums are exact in
// any order; spec 5 bounds every partial sum (times 2^(left+1), checked at
// Prepare) below 2^31.
//
// The four (or two) input pairs of one chunk in registers.
struct InputPairs {
  int32_t p0, p1, p2, p3;
};

// One chunk for every output: out[o] = init + pairs . M[o], init = 0
// (kInit = kZero), out[o] (kOut) or from[o] (kFrom).
enum class Init { kZero, kOut, kFrom };
template <Init kInit, bool kHalf>
RNNPOOL_ALWAYS_INLINE void ChunkOverOutputs(const InputPairs& x, const uint32_t* w,
                                            int32_t stride, int32_t units, int32_t* out,
                                            const int32_t* from = nullptr) {
  for (int32_t* const end = out + units; out != end; ++out, w += stride) {
    const WordPair w01 = LoadPair(reinterpret_cast<const int32_t*>(w));
    int32_t a = kInit == Init::kZero ? static_cast<int32_t>(__smuad(w01.first, x.p0))
                                     : Smlad(w01.first, x.p0, kInit == Init::kOut ? *out : *from++);
    a = Smlad(w01.second, x.p1, a);
    if (!kHalf) {
      const WordPair w23 = LoadPair<2>(reinterpret_cast<const int32_t*>(w));
      a = Smlad(w23.first, x.p2, a);
      a = Smlad(w23.second, x.p3, a);
    }
    *out = a;
  }
}

// out = v @ M for int16 inputs v (read as pairs, up to the shape's end: the
// callers' buffers leave room for the inputs past `in`, which meet zero
// weights).
RNNPOOL_NOINLINE void DotStates(const int16_t* v, const ChunkShape& shape, const uint32_t* m,
                                int32_t units, int32_t* out) {
  const int32_t stride = shape.Words();
  for (int32_t c = 0; c < shape.full; ++c, v += 8, m += 4) {
    const InputPairs x = {static_cast<int32_t>(LoadWord(v)), static_cast<int32_t>(LoadWord(v + 2)),
                          static_cast<int32_t>(LoadWord(v + 4)),
                          static_cast<int32_t>(LoadWord(v + 6))};
    if (c == 0) {
      ChunkOverOutputs<Init::kZero, false>(x, m, stride, units, out);
    } else {
      ChunkOverOutputs<Init::kOut, false>(x, m, stride, units, out);
    }
  }
  if (shape.half) {
    const InputPairs x = {static_cast<int32_t>(LoadWord(v)), static_cast<int32_t>(LoadWord(v + 2)),
                          0, 0};
    if (shape.full == 0) {
      ChunkOverOutputs<Init::kZero, true>(x, m, stride, units, out);
    } else {
      ChunkOverOutputs<Init::kOut, true>(x, m, stride, units, out);
    }
  }
}

inline const uint32_t* WordsAt(const int8_t* pairs, int32_t offset) {
  return reinterpret_cast<const uint32_t*>(pairs + offset);
}

// A step's pre-activations (spec 4.3): p = gx + MBQM(h @ U, M_h), then
// gu[o] = (sat16(p + b_gate), sat16(p + b_update)) as int16 lanes; for every
// sequence of a DspSequences.
//
// h @ U of one chunk (units 6 or 8) fused with the rest: the sum of unit o
// is requantised while in a register, h's pairs (two LDRDs: h is 4-byte
// aligned for an even `units`) stay in registers. (With more chunks the
// sums, then the rest, measured fewer instructions.)
template <bool kRounds>
RNNPOOL_ALWAYS_INLINE void OneChunkPreActivations(const int16_t* h, const uint32_t* w,
                                                  const DspRequant& m, int32_t units,
                                                  const int32_t* gx, const int32_t* bias,
                                                  int32_t* gu) {
  const int32_t* const h_words = reinterpret_cast<const int32_t*>(h);
  const WordPair h01 = LoadPair(h_words), h23 = LoadPair<2>(h_words);
  for (int32_t* const end = gu + units; gu != end; ++gu, ++gx, bias += 2, w += 4) {
    const WordPair w01 = LoadPair(reinterpret_cast<const int32_t*>(w));
    const WordPair w23 = LoadPair<2>(reinterpret_cast<const int32_t*>(w));
    int32_t a = static_cast<int32_t>(__smuad(w01.first, h01.first));
    a = Smlad(w01.second, h01.second, a);
    a = Smlad(w23.first, h23.first, a);
    a = Smlad(w23.second, h23.second, a);
    const int32_t p = *gx + (kRounds ? ApplyDspRounding(a, m) : ApplyDsp(a, m));
    const WordPair b = LoadPair(bias);
    *gu = PackLanes(__ssat(p + b.first, 16), __ssat(p + b.second, 16));
  }
}

// The first step's pre-activations (h = 0: MBQM(0) = 0, p = gx).
RNNPOOL_NOINLINE void FirstPreActivationsDsp(const DspCell& c, const int8_t* pairs,
                                             int32_t units, const DspSequences& seq) {
  const int32_t* const biases = reinterpret_cast<const int32_t*>(pairs + c.biases);
  int32_t* gu = seq.gu;
  for (int32_t s = 0; s < seq.count; ++s) {
    const int32_t* gx = seq.gx + s * seq.gx_stride;
    const int32_t* bias = biases;
    for (int32_t* const end = gu + units; gu != end; ++gu, ++gx, bias += 2) {
      const WordPair b = LoadPair(bias);
      *gu = PackLanes(__ssat(*gx + b.first, 16), __ssat(*gx + b.second, 16));
    }
  }
}

// Cells of 6 or 8 units: one chunk, fused (kRounds: n >= 1 in M_h).
template <bool kRounds>
RNNPOOL_NOINLINE void OneChunkPreActivationsDsp(const DspCell& c, const int8_t* pairs,
                                                int32_t units, const DspSequences& seq) {
  const DspRequant m = c.recurrent_requant;  // a copy: the stores to gu could alias
  const uint32_t* const u = WordsAt(pairs, c.recurrent);
  const int32_t* const bias = reinterpret_cast<const int32_t*>(pairs + c.biases);
  for (int32_t s = 0; s < seq.count; ++s) {
    OneChunkPreActivations<kRounds>(seq.h + s * units, u, m, units, seq.gx + s * seq.gx_stride,
                                    bias, seq.gu + s * units);
  }
}

// Other cells: the sums, then the rest.
RNNPOOL_NOINLINE void ChunkedPreActivationsDsp(const DspCell& c, const int8_t* pairs,
                                               int32_t units, const DspSequences& seq) {
  const int32_t* bias = reinterpret_cast<const int32_t*>(pairs + c.biases);
  const ChunkShape shape = c.recurrent_shape;
  const DspRequant m = c.recurrent_requant;
  for (int32_t s = 0; s < seq.count; ++s) {
    const int32_t* gx = seq.gx + s * seq.gx_stride;
    int32_t* gu = seq.gu + s * units;
    DotStates(seq.h + s * units, shape, WordsAt(pairs, c.recurrent), units, gu);
    for (int32_t o = 0; o < units; ++o) {
      const int32_t p = gx[o] + ApplyDsp(gu[o], m);
      const WordPair b = LoadPair(bias + 2 * o);
      gu[o] = PackLanes(__ssat(p + b.first, 16), __ssat(p + b.second, 16));
    }
  }
}

// (g, u) lanes -> (z, c) lanes, in place (spec 4.4). A gate and an update of
// one family share M_a (MakeFastCell), so one set of constants serves both.
template <Kind kGate, Kind kUpdate, bool kRounds>
RNNPOOL_NOINLINE void ActivateUnitsDsp(const DspCell& c, int32_t units, int32_t* gu) {
  const DspActivation ag = c.gate_activation;
  const DspActivation au = kGate == kUpdate ? c.gate_activation : c.update_activation;
  const int32_t* const gate_table = c.gate_table;
  const int32_t* const update_table = c.update_table;
  for (int32_t* const end = gu + units; gu != end; ++gu) {
    const int32_t w = *gu;
    if (kGate == Kind::kTable && kUpdate == Kind::kTable) {
      // Both >> 7 inside one PKHTB: (c 2^7) << 9 has c in its top half.
      const uint32_t high =
          static_cast<uint32_t>(TableTimes128<true, kRounds>(w, update_table, au)) << 9;
      const int32_t low = TableTimes128<false, kRounds>(w, gate_table, ag);
      __asm__("pkhtb %0, %1, %2, asr #7" : "=r"(*gu) : "r"(high), "r"(low));
    } else {
      *gu = PackLanes(ActivateDsp<kGate, false, kRounds>(w, gate_table, ag),
                      ActivateDsp<kUpdate, true, kRounds>(w, update_table, au));
    }
  }
}

// h' = sat16(RDBPOT(z h, 15) + MBQM(coef c, M_c)) (spec 4.3), coef = (3),
// MBQM in form (5) on (coef c) 2^update_pre (n >= 1: sign_mask = -1).
// kFirst: h = 0.
// coef c is one SMULTB of the lanes' c and coef: MakeDspCell's bound
// coef 2^(15 + update_pre) < 2^31 with update_pre >= 1 gives coef < 2^15.
template <bool kFirst>
RNNPOOL_NOINLINE void UpdateUnitsDsp(const DspCell& c, int32_t units, const int32_t* zc,
                                     int16_t* h) {
  const DspRequant m = c.update;
  const int32_t pre = c.update_pre, coef_bias = c.coef_bias, zeta = c.zeta;
  for (int16_t* const end = h + units; h != end; ++h) {
    const int32_t w = *zc++;
    const int32_t z = static_cast<int16_t>(w);  // c is w's high lane
    const int32_t coef = (coef_bias - zeta * z) >> 15;  // (3), in [0, 2^15) here
    const int32_t x = static_cast<int32_t>(static_cast<uint32_t>(Smultb(w, coef)) << pre);
    const int32_t update = ApplyDspRounding(x, m);
    if (kFirst) {
      *h = static_cast<int16_t>(__ssat(update, 16));
      continue;
    }
    const int32_t zh = z * *h;  // |z h| <= 2^30
    const int32_t kept = (zh + (1 << 14) + (zh >> 31)) >> 15;  // RDBPOT(z h, 15)
    *h = static_cast<int16_t>(__ssat(update + kept, 16));
  }
}

// As the generic SweepInt8Spec, DSP form, for `count` sequences of one cell
// run together (one call per stage and step for all of them): sequence s
// reads step t's input at gx + s * (gx_stride + t * stride_step) +
// t * step_stride (stride_step: -2 step_stride runs sequence 1 backwards) and
// keeps its state at h + s * units; acc: count * units int32. Per step, the
// pre-activations, the activations (c.activate, the only code instantiated
// per family pair), the update.
void SweepDsp(const DspCell& c, const int8_t* pairs, int32_t units, const int32_t* gx,
              ptrdiff_t gx_stride, int32_t count, int32_t steps, ptrdiff_t step_stride,
              ptrdiff_t stride_step, int16_t* h, int32_t* acc) {
  const DspActivateFn activate = c.activate;
  const DspPreActivateFn pre_activate = c.pre_activate;
  const int32_t total = count * units;
  DspSequences seq{gx, gx_stride, count, h, acc};
  FirstPreActivationsDsp(c, pairs, units, seq);
  activate(c, total, acc);
  UpdateUnitsDsp<true>(c, total, acc, h);
  for (int32_t t = 1; t < steps; ++t) {
    seq.gx += step_stride;
    seq.gx_stride += stride_step;
    pre_activate(c, pairs, units, seq);
    activate(c, total, acc);
    UpdateUnitsDsp<false>(c, total, acc, h);
  }
}

template <Kind kGate, Kind kUpdate>
DspActivateFn SelectActivateDsp(bool rounds) {
  return rounds ? ActivateUnitsDsp<kGate, kUpdate, true> : ActivateUnitsDsp<kGate, kUpdate, false>;
}

template <Kind kGate>
DspActivateFn SelectActivateDsp(Kind update, bool rounds) {
  switch (update) {
    case Kind::kTable:
      return SelectActivateDsp<kGate, Kind::kTable>(rounds);
    case Kind::kQuantSigm:
      return SelectActivateDsp<kGate, Kind::kQuantSigm>(rounds);
    case Kind::kQuantTanh:
      return SelectActivateDsp<kGate, Kind::kQuantTanh>(rounds);
    case Kind::kRelu:
      break;
  }
  return SelectActivateDsp<kGate, Kind::kRelu>(rounds);
}

// Spec 4.2 for `count` pixels of k channels (k a multiple of 4), consecutive
// at `v`: per chunk of eight channels (or the last four), SXTB16 makes of
// each word the lanes (c, c+2) and (c+1, c+3) that the plan's pairs of W
// rows match; the sums start from -zp_x colsum(W) 2^(left+1) (`sums`).
// g: `units` int32 per pixel.
// One chunk (k = 8, or k = 4: kHalf) for every output, requantised in place.
template <bool kHalf, bool kRounds>
RNNPOOL_ALWAYS_INLINE void OneChunkPixel(const InputPairs& x, const uint32_t* w,
                                         const int32_t* sums, const DspRequant& m,
                                         int32_t units, int32_t* g) {
  for (int32_t* const end = g + units; g != end; ++g, ++sums, w += kHalf ? 2 : 4) {
    const WordPair w01 = LoadPair(w);
    int32_t a = Smlad(w01.first, x.p0, *sums);
    a = Smlad(w01.second, x.p1, a);
    if (!kHalf) {
      const WordPair w23 = LoadPair<2>(w);
      a = Smlad(w23.first, x.p2, a);
      a = Smlad(w23.second, x.p3, a);
    }
    *g = kRounds ? ApplyDspRounding(a, m) : ApplyDsp(a, m);
  }
}

RNNPOOL_NOINLINE void ProjectPixelsDsp(const int8_t* v, int32_t count, int32_t k,
                                       const int8_t* pairs, const DspProjection& proj,
                                       int32_t units, int32_t* g) {
  const uint32_t* const matrix = WordsAt(pairs, proj.weights);
  const int32_t* const sums = reinterpret_cast<const int32_t*>(pairs + proj.zero_point);
  const DspRequant m = proj.requant;
  const ChunkShape shape = proj.shape;
  const int32_t stride = shape.Words();
  if (k == 8 || k == 4) {  // one chunk (the paper's shapes): fused
    for (int32_t p = 0; p < count; ++p, v += k, g += units) {
      const uint32_t x0 = LoadWord(v);
      if (k == 8) {
        const uint32_t x1 = LoadWord(v + 4);
        const InputPairs lanes = {Sxtb16(x0), Sxtb16High(x0), Sxtb16(x1), Sxtb16High(x1)};
        if (m.n > 0) {
          OneChunkPixel<false, true>(lanes, matrix, sums, m, units, g);
        } else {
          OneChunkPixel<false, false>(lanes, matrix, sums, m, units, g);
        }
      } else {
        const InputPairs lanes = {Sxtb16(x0), Sxtb16High(x0), 0, 0};
        if (m.n > 0) {
          OneChunkPixel<true, true>(lanes, matrix, sums, m, units, g);
        } else {
          OneChunkPixel<true, false>(lanes, matrix, sums, m, units, g);
        }
      }
    }
    return;
  }
  for (int32_t p = 0; p < count; ++p, v += k, g += units) {
    const int8_t* x = v;
    const uint32_t* w = matrix;
    for (int32_t c = 0; c < shape.full; ++c, x += 8, w += 4) {
      const uint32_t x0 = LoadWord(x), x1 = LoadWord(x + 4);
      const InputPairs lanes = {Sxtb16(x0), Sxtb16High(x0), Sxtb16(x1), Sxtb16High(x1)};
      if (c == 0) {
        ChunkOverOutputs<Init::kFrom, false>(lanes, w, stride, units, g, sums);
      } else {
        ChunkOverOutputs<Init::kOut, false>(lanes, w, stride, units, g);
      }
    }
    if (shape.half) {
      const uint32_t x0 = LoadWord(x);
      const InputPairs lanes = {Sxtb16(x0), Sxtb16High(x0), 0, 0};
      if (shape.full == 0) {
        ChunkOverOutputs<Init::kFrom, true>(lanes, w, stride, units, g, sums);
      } else {
        ChunkOverOutputs<Init::kOut, true>(lanes, w, stride, units, g);
      }
    }
    for (int32_t o = 0; o < units; ++o) g[o] = ApplyDsp(g[o], m);
  }
}

// Spec 4.2 for RNN2: `count` RNN1 final states of `in` int16, consecutive at v.
RNNPOOL_NOINLINE void ProjectStatesDsp(const int16_t* v, int32_t count, int32_t in,
                                       const int8_t* pairs, const DspProjection& proj,
                                       int32_t units, int32_t* g) {
  const uint32_t* const matrix = WordsAt(pairs, proj.weights);
  const DspRequant m = proj.requant;
  if (proj.shape.full == 1 && !proj.shape.half) {  // in <= 8 (7 or 8 read as 8): fused
    for (int32_t p = 0; p < count; ++p, v += in, g += units) {
      const InputPairs x = {
          static_cast<int32_t>(LoadWord(v)), static_cast<int32_t>(LoadWord(v + 2)),
          static_cast<int32_t>(LoadWord(v + 4)), static_cast<int32_t>(LoadWord(v + 6))};
      const uint32_t* w = matrix;
      for (int32_t o = 0; o < units; ++o, w += 4) {
        const WordPair w01 = LoadPair(w), w23 = LoadPair<2>(w);
        int32_t a = static_cast<int32_t>(__smuad(w01.first, x.p0));
        a = Smlad(w01.second, x.p1, a);
        a = Smlad(w23.first, x.p2, a);
        a = Smlad(w23.second, x.p3, a);
        g[o] = ApplyDsp(a, m);
      }
    }
    return;
  }
  for (int32_t p = 0; p < count; ++p, v += in, g += units) {
    DotStates(v, proj.shape, matrix, units, g);
    for (int32_t o = 0; o < units; ++o) g[o] = ApplyDsp(g[o], m);
  }
}

#endif  // RNNPOOL_ARM_DSP

#if !RNNPOOL_ARM_DSP
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
// the sums' bounds), in one pass over the units (kFirst: h = 0, no h @ U):
// the form for cores without the DSP path (x86-64 has 16 registers and takes
// the cell's fields as memory operands). acc holds h @ U (ignored when
// kFirst). Units run last to first: one register and compare fewer.
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
// compile time.
template <typename Cell, Kind kGate, Kind kUpdate>
void SweepInt8(const Cell& c, const int8_t*, int32_t units, const int32_t* gx, int32_t steps,
               ptrdiff_t step_stride, int16_t* h, int32_t* acc) {
  StepUnitsOnePass<kGate, kUpdate, true>(c, units, gx, acc, h);
  for (int32_t t = 1; t < steps; ++t) {
    gx += step_stride;
    // |h @ U| <= 2^30 (spec 5).
    MatVecInline<int32_t>(h, units, 0, c.recurrent_kernel, units, acc, StoreSum());
    StepUnitsOnePass<kGate, kUpdate, false>(c, units, gx, acc, h);
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
#else
}  // namespace

DspPreActivateFn SelectPreActivateDsp(bool one_chunk, bool rounds) {
  if (!one_chunk) return ChunkedPreActivationsDsp;
  return rounds ? OneChunkPreActivationsDsp<true> : OneChunkPreActivationsDsp<false>;
}

// One ActivateUnitsDsp per (gate, update) family pair, 3 x 4 = 12 (a relu
// gate is rejected by ValidateInt8Params; it would run as a table gate here),
// with and without the rounding corrections of (6).
DspActivateFn SelectActivateDsp(Kind gate, Kind update, bool rounds) {
  switch (gate) {
    case Kind::kQuantSigm:
      return SelectActivateDsp<Kind::kQuantSigm>(update, rounds);
    case Kind::kQuantTanh:
      return SelectActivateDsp<Kind::kQuantTanh>(update, rounds);
    default:
      return SelectActivateDsp<Kind::kTable>(update, rounds);
  }
}
#endif  // !RNNPOOL_ARM_DSP

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
#if RNNPOOL_ARM_DSP
// Where the DSP projections do not apply (k not a multiple of 4, matrices
// beyond the plan's storage, extreme multipliers): plain loops, one output at
// a time (small code for the rare case).
template <typename In>
RNNPOOL_NOINLINE void Project(const In* v, int32_t in, int32_t offset, const int8_t* matrix,
                              int32_t units, const ProjectionRequant& m, int32_t* g) {
  for (int32_t o = 0; o < units; ++o) {
    int32_t a = 0;
    const int8_t* w = matrix + o;
    for (int32_t j = 0; j < in; ++j, w += units) a += (static_cast<int32_t>(v[j]) + offset) * *w;
    g[o] = m.fast ? ApplyNarrow(a, m.fast_form) : Requantize(a, m.generic);
  }
}
#else
template <typename In>
void Project(const In* v, int32_t in, int32_t offset, const int8_t* matrix, int32_t units,
             const ProjectionRequant& m, int32_t* g) {
  if (m.fast) {
    MatVec<int32_t>(v, in, offset, matrix, units, g, FastEpilogue{m.fast_form});
  } else {
    MatVec<int32_t>(v, in, offset, matrix, units, g, GenericEpilogue{m.generic});
  }
}
#endif

// Spec 4.5 for one RNN2 final state: sat8(MBQM(h, M_y) + zp_y). Pre-clamping
// keeps the sum in int32 without changing the result.
void WriteOutputInt8(const Requant& my, int32_t zp, const int16_t* h, int32_t n, int8_t* out) {
  for (int32_t o = 0; o < n; ++o) {
    const int32_t v = Clamp32(Requantize16(h[o], my), -65536, 65536);
    out[o] = static_cast<int8_t>(Clamp32(v + zp, -128, 127));
  }
}

#if RNNPOOL_ARM_DSP
// Spec 4.5, M_y in form (5): sat8(MBQM(h, M_y) + zp_y), |MBQM| < 2^30.
RNNPOOL_NOINLINE void WriteOutputDsp(const Int8Plan& plan, const int16_t* h, int32_t n,
                                     int8_t* out) {
  if (!plan.dsp_output) {
    WriteOutputInt8(plan.my, plan.params.output_zero_point, h, n, out);
    return;
  }
  const DspRequant m = plan.output;
  const int32_t pre = plan.output_pre, zp = plan.params.output_zero_point;
  for (int32_t o = 0; o < n; ++o) {
    const int32_t x = static_cast<int32_t>(static_cast<uint32_t>(h[o]) << pre);
    out[o] = static_cast<int8_t>(__ssat(ApplyDsp(x, m) + zp, 8));
  }
}
#endif

// Runs cell 0 (RNN1) or 1 (RNN2) over one sequence (SweepInt8's arguments).
void Sweep(const Int8Plan& plan, const int8_t* pairs, int32_t cell, int32_t units, const int32_t* gx, int32_t steps,
           ptrdiff_t step_stride, int16_t* h, int32_t* acc) {
  if (plan.fast) {
#if RNNPOOL_ARM_DSP
    SweepDsp(plan.dsp[cell], pairs, units, gx, 0, 1, steps, step_stride, 0, h, acc);
#else
    plan.fast_sweep[cell](plan.cells.fast[cell], pairs, units, gx, steps, step_stride, h, acc);
#endif
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
#if RNNPOOL_ARM_DSP
  const bool row_calls = plan.dsp_proj[0].weights >= 0;
#else
  const bool row_calls = plan.simd_project1 != nullptr;
#endif
  for (int32_t i = 0; i < r; ++i) {
    if (row_calls && i >= rows.begin && i < rows.end && cols.begin < cols.end) {
      // The row's inside pixels are consecutive in the image: one call.
      int32_t* g = w.proj1 + static_cast<size_t>(i) * c * h1;
      for (size_t o = 0; o < static_cast<size_t>(cols.begin) * h1; ++o) g[o] = 0;
      for (size_t o = static_cast<size_t>(cols.end) * h1; o < static_cast<size_t>(c) * h1; ++o) {
        g[o] = 0;
      }
      const int32_t y = top + i, x = left + cols.begin;  // inside the image: no overflow
      const int8_t* pixels = image + (static_cast<size_t>(y) * width + x) * k;
#if RNNPOOL_ARM_DSP
      ProjectPixelsDsp(pixels, cols.end - cols.begin, k, pairs, plan.dsp_proj[0], h1,
                       g + static_cast<size_t>(cols.begin) * h1);
#else
      plan.simd_project1(pixels, cols.end - cols.begin, k, -zp_x, params.rnn1.kernel, h1,
                         plan.mx1.fast_form, g + static_cast<size_t>(cols.begin) * h1);
#endif
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
#if RNNPOOL_ARM_DSP
  if (plan.fast) {
    // All rows together (then all columns), their lanes in proj2, which is
    // free until step 3 (as many sequences as it holds at a time).
    const int32_t room = Max32(r, c) * h2 / h1;
    const int32_t batch = room > 0 ? room : 1;
    int32_t* const lanes = room > 0 ? w.proj2 : w.acc;
    const DspCell& cell = plan.dsp[0];
    for (int32_t i = 0; i < r; i += batch) {
      SweepDsp(cell, pairs, h1, w.proj1 + static_cast<size_t>(i) * c * h1,
               static_cast<ptrdiff_t>(c) * h1, r - i < batch ? r - i : batch, c, h1, 0,
               w.states1 + static_cast<size_t>(i) * h1, lanes);
    }
    for (int32_t j = 0; j < c; j += batch) {
      SweepDsp(cell, pairs, h1, w.proj1 + static_cast<size_t>(j) * h1, h1,
               c - j < batch ? c - j : batch, r, static_cast<ptrdiff_t>(c) * h1, 0,
               w.states1 + static_cast<size_t>(r + j) * h1, lanes);
    }
  } else  // NOLINT: the loops below are the other branch
#endif
  if (plan.simd_sweep_group[0] != nullptr) {
    // All rows together, then all columns (AVX2: their chains overlap).
    const FastCell& cell = plan.cells.fast[0];
    plan.simd_sweep_group[0](cell, w.proj1, static_cast<ptrdiff_t>(c) * h1, r, c, h1, 0,
                             w.states1);
    plan.simd_sweep_group[0](cell, w.proj1, h1, c, r, static_cast<ptrdiff_t>(c) * h1, 0,
                             w.states1 + static_cast<size_t>(r) * h1);
  } else {
    for (int32_t i = 0; i < r; ++i) {
      Sweep(plan, pairs, 0, h1, w.proj1 + static_cast<size_t>(i) * c * h1, c, h1,
            w.states1 + static_cast<size_t>(i) * h1, w.acc);
    }
    for (int32_t j = 0; j < c; ++j) {
      Sweep(plan, pairs, 0, h1, w.proj1 + static_cast<size_t>(j) * h1, r,
            static_cast<ptrdiff_t>(c) * h1, w.states1 + static_cast<size_t>(r + j) * h1, w.acc);
    }
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
#if RNNPOOL_ARM_DSP
    } else if (plan.dsp_proj[1].weights >= 0) {
      ProjectStatesDsp(summaries, count, h1, pairs, plan.dsp_proj[1], h2, w.proj2);
#endif
    } else {
      for (int32_t t = 0; t < count; ++t) {
        Project(summaries + static_cast<size_t>(t) * h1, h1, 0, params.rnn2.kernel, h2,
                plan.mx2, w.proj2 + static_cast<size_t>(t) * h2);
      }
    }
    int8_t* out = output + static_cast<size_t>(pass) * 2 * h2;
#if RNNPOOL_ARM_DSP
    auto write = [&plan](const int16_t* h, int32_t n, int8_t* o) { WriteOutputDsp(plan, h, n, o); };
#else
    auto write = [&plan](const int16_t* h, int32_t n, int8_t* o) {
      WriteOutputInt8(plan.my, plan.params.output_zero_point, h, n, o);
    };
#endif
#if RNNPOOL_ARM_DSP
    // Forward and backward together: their states where the row summaries
    // were (projected already), their lanes in proj1 (free after step 2).
    if (plan.fast && 2 * h2 <= r * h1) {
      SweepDsp(plan.dsp[1], pairs, h2, w.proj2, static_cast<ptrdiff_t>(count - 1) * h2, 2, count,
               h2, -2 * static_cast<ptrdiff_t>(h2), w.states1, w.proj1);
      write(w.states1, h2, out);
      write(w.states1 + h2, h2, out + h2);
      continue;
    }
#endif
    if (plan.simd_sweep_group[1] != nullptr && 2 * h2 <= r * h1) {
      // Forward and backward together (states where the row summaries were,
      // as the DSP form).
      plan.simd_sweep_group[1](plan.cells.fast[1], w.proj2,
                               static_cast<ptrdiff_t>(count - 1) * h2, 2, count, h2,
                               -2 * static_cast<ptrdiff_t>(h2), w.states1);
      write(w.states1, h2, out);
      write(w.states1 + h2, h2, out + h2);
      continue;
    }
    Sweep(plan, pairs, 1, h2, w.proj2, count, h2, w.state2, w.acc);
    write(w.state2, h2, out);
    Sweep(plan, pairs, 1, h2, w.proj2 + static_cast<size_t>(count - 1) * h2, count, -h2, w.state2,
          w.acc);
    write(w.state2, h2, out + h2);
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
  // Without the pair storage (2 KiB less stack): on DSP targets, whose fast
  // path needs it, this runs the spec transcription (same bits, slower).
  Int8Plan plan;
  internal::MakeInt8Plan(params, &plan, nullptr);
  internal::RunWholeMapInt8(plan, nullptr, input, batch, height, width, output, scratch);
}

}  // namespace rnnpool
