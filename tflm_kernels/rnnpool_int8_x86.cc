/* RNNPool kernel core, int8 Eval on x86-64 with AVX2: the fast path's
 * sweeps (SweepInt8 of rnnpool_int8.cc) and the input projections, eight
 * units per register, and the fused stem convolution (StemRowInt8 of
 * rnnpool_stem.cc), eight output channels per register. Compiled for every
 * x86-64 host with the functions marked target("avx2") (no global -mavx2: the
 * library still runs on any x86-64); PrepareInt8Plan picks them when the CPU
 * has AVX2 (CpuHasAvx2) and a cell has a multiple of 8 units. Other targets
 * (Cortex-M, TFLM) compile nothing of it (RNNPOOL_X86_SIMD,
 * rnnpool_core_internal.h).
 *
 * Same arithmetic as the portable fast path, lane by lane, so the same bits
 * (tests/kernels/test_kernel_core_int8.py runs both against the oracle):
 * - units are independent within a step: unit o of a block is lane o % 8;
 * - h @ U and the projections: VPMADDWD on int16 pairs (two rows' products
 *   per instruction, each < 2^23: no overflow; integer sums are exact in any
 *   order, spec 5 bounds every partial sum);
 * - MBQM in the 32-bit form of FastRequant (the derivation next to it in
 *   rnnpool_core_internal.h, the form Cortex-M runs with SMMULR): narrow
 *   inputs t = (x 2^pre_shift q + 2^31) >> 32, wide ones (x q + 2^30) >> 31,
 *   from VPMULDQ's 64-bit products of the even and the odd lanes; then
 *   (t + round + [t < 0] sign_mask) >> n;
 * - table activations: spec 4.4 as written, T[i] + RDBPOT((T[i+1] - T[i]) f, 7),
 *   with T[i] and T[i+1] gathered as one 32-bit word (i <= 511: in the table);
 * - sat16 and the activations' clamps: VPMINSD / VPMAXSD.
 * Integer arithmetic only; no heap. Host-only code: the grouped sweeps keep
 * up to 6 sequences' vectors in registers and spill slots (about 1.7 KB of
 * stack, -fstack-usage). */
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rnnpool_core.h"
#include "rnnpool_core_internal.h"
#include "rnnpool_stem.h"

#if RNNPOOL_X86_SIMD

#include <immintrin.h>

#define RNNPOOL_AVX2 __attribute__((target("avx2")))
#define RNNPOOL_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline

namespace rnnpool {
namespace internal {
namespace {

// A FastRequant in registers.
struct VecRequant {
  __m256i q;
  __m256i round;
  __m256i sign_mask;
  __m128i pre_shift;  // shift counts as VPSLLD / VPSRAD take them
  __m128i n;
};

RNNPOOL_AVX2_INLINE VecRequant Broadcast(const FastRequant& m) {
  VecRequant v;
  v.q = _mm256_set1_epi32(m.q);
  v.round = _mm256_set1_epi32(m.round);
  v.sign_mask = _mm256_set1_epi32(m.sign_mask);
  v.pre_shift = _mm_cvtsi32_si128(m.pre_shift);
  v.n = _mm_cvtsi32_si128(m.n);
  return v;
}

// (t + round + [t < 0] sign_mask) >> n.
RNNPOOL_AVX2_INLINE __m256i RoundTail(__m256i t, const VecRequant& m) {
  const __m256i sign = _mm256_and_si256(_mm256_srai_epi32(t, 31), m.sign_mask);
  return _mm256_sra_epi32(_mm256_add_epi32(_mm256_add_epi32(t, m.round), sign), m.n);
}

// ApplyNarrow: t = (x' q + 2^31) >> 32 with x' = x 2^pre_shift (fits int32:
// Prepare's bound), |x' q| < 2^62.
RNNPOOL_AVX2_INLINE __m256i ApplyNarrow(__m256i x, const VecRequant& m) {
  const __m256i half = _mm256_set1_epi64x(int64_t{1} << 31);
  const __m256i shifted = _mm256_sll_epi32(x, m.pre_shift);
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(shifted, m.q), half);
  const __m256i odd =
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(shifted, 32), m.q), half);
  // The high words: the even lanes' moved down, the odd lanes' in place.
  const __m256i t = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  return RoundTail(t, m);
}

// ApplyWide (left = pre_shift = 0): t = (x q + 2^30) >> 31, bits 31..62 of
// the 64-bit sum (|x q| < 2^62, so t fits int32).
RNNPOOL_AVX2_INLINE __m256i ApplyWide(__m256i x, const VecRequant& m) {
  const __m256i quarter = _mm256_set1_epi64x(int64_t{1} << 30);
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m.q), quarter);
  const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m.q), quarter);
  const __m256i t =
      _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
  return RoundTail(t, m);
}

RNNPOOL_AVX2_INLINE __m256i Clamp(__m256i x, int32_t lo, int32_t hi) {
  return _mm256_min_epi32(_mm256_max_epi32(x, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
}
RNNPOOL_AVX2_INLINE __m256i Sat16(__m256i x) { return Clamp(x, INT16_MIN, INT16_MAX); }

// Spec 4.4 on the sat16 pre-activation x (ActivateFast of rnnpool_int8.cc).
template <Kind kKind>
RNNPOOL_AVX2_INLINE __m256i Activate(__m256i x, const int16_t* table, const VecRequant& m) {
  if constexpr (kKind == Kind::kTable) {
    // o = sat16(MBQM(x, M_a)) + 32768 in [0, 65535] (the offset is in m).
    const __m256i o = Clamp(ApplyNarrow(x, m), 0, 65535);
    const __m256i index = _mm256_srli_epi32(o, kTableStepBits);  // 0..511
    // One word per lane: T[i] (low half), T[i+1] (high half).
    const __m256i pair =
        _mm256_i32gather_epi32(reinterpret_cast<const int*>(table), index, 2);
    const __m256i low = _mm256_srai_epi32(_mm256_slli_epi32(pair, 16), 16);
    const __m256i d = _mm256_sub_epi32(_mm256_srai_epi32(pair, 16), low);
    const __m256i df =
        _mm256_mullo_epi32(d, _mm256_and_si256(o, _mm256_set1_epi32((1 << kTableStepBits) - 1)));
    // RDBPOT(d f, 7) = (d f + 64 + [d f < 0] (-1)) >> 7; |d f| < 2^23.
    const __m256i rounded = _mm256_srai_epi32(
        _mm256_add_epi32(_mm256_add_epi32(df, _mm256_set1_epi32(1 << (kTableStepBits - 1))),
                         _mm256_srai_epi32(df, 31)),
        kTableStepBits);
    return _mm256_add_epi32(low, rounded);
  } else if constexpr (kKind == Kind::kQuantTanh) {
    return Sat16(ApplyNarrow(x, m));
  } else if constexpr (kKind == Kind::kQuantSigm) {
    return Clamp(ApplyNarrow(x, m), 0, INT16_MAX);  // the 2^14 is in m
  } else {
    return _mm256_max_epi32(x, _mm256_setzero_si256());  // relu
  }
}

// A cell's constants in registers, for one sweep.
struct VecCell {
  VecRequant recurrent;
  VecRequant gate;
  VecRequant update;  // the update activation's (the gate's for the same family)
  VecRequant mc;      // M_c, wide
  __m256i zeta;
  __m256i coef_bias;
  const int16_t* gate_values;
  const int16_t* update_values;
};

template <Kind kGate, Kind kUpdate>
RNNPOOL_AVX2_INLINE VecCell MakeVecCell(const FastCell& c) {
  VecCell v;
  v.recurrent = Broadcast(c.recurrent);
  v.gate = Broadcast(c.gate_activation);
  v.update = Broadcast(kGate == kUpdate ? c.gate_activation : c.update_activation);
  v.mc = Broadcast(c.update);
  v.zeta = _mm256_set1_epi32(c.zeta);
  v.coef_bias = _mm256_set1_epi32(c.coef_bias);
  v.gate_values = c.gate_values;
  v.update_values = c.update_values;
  return v;
}

// Spec 4.3 for K blocks of 8 units (StepUnitsOnePass of rnnpool_int8.cc),
// one block per independent sequence: gx, acc = h @ U (unused when kFirst),
// h the states (int32 lanes; 0 when kFirst), the biases; h becomes the next
// states, sat16, in int32 lanes. Each stage runs over the K blocks before the
// next starts, so the K chains of dependent instructions (a step is one long
// chain: requantise, gather, multiply) overlap in the pipeline.
#define RNNPOOL_EACH(s, K) _Pragma("GCC unroll 8") for (int s = 0; s < (K); ++s)
template <Kind kGate, Kind kUpdate, bool kFirst, int K>
RNNPOOL_AVX2_INLINE void StepGroup(const VecCell& v, const __m256i* gx, const __m256i* acc,
                                   __m256i* h, __m256i gate_bias, __m256i update_bias) {
  __m256i p[K], z[K], u[K];
  RNNPOOL_EACH(s, K) {
    p[s] = kFirst ? gx[s] : _mm256_add_epi32(gx[s], ApplyNarrow(acc[s], v.recurrent));
  }
  RNNPOOL_EACH(s, K) {
    z[s] = Activate<kGate>(Sat16(_mm256_add_epi32(p[s], gate_bias)), v.gate_values, v.gate);
  }
  RNNPOOL_EACH(s, K) {
    u[s] = Activate<kUpdate>(Sat16(_mm256_add_epi32(p[s], update_bias)), v.update_values,
                             v.update);
  }
  RNNPOOL_EACH(s, K) {
    // (3): coef = (coef_bias - zeta z) >> 15, in [0, 3 * 2^14].
    const __m256i coef =
        _mm256_srai_epi32(_mm256_sub_epi32(v.coef_bias, _mm256_mullo_epi32(v.zeta, z[s])), 15);
    __m256i next = ApplyWide(_mm256_mullo_epi32(coef, u[s]), v.mc);  // |coef u| < 2^31
    if (!kFirst) {
      const __m256i zh = _mm256_mullo_epi32(z[s], h[s]);  // |z h| <= 2^30
      // RDBPOT(z h, 15) = (z h + 2^14 + [z h < 0] (-1)) >> 15.
      next = _mm256_add_epi32(
          next,
          _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(zh, _mm256_set1_epi32(1 << 14)),
                                             _mm256_srai_epi32(zh, 31)),
                            15));
    }
    h[s] = Sat16(next);
  }
}

// One block of 8 units alone (the sweeps of wider cells).
template <Kind kGate, Kind kUpdate, bool kFirst>
RNNPOOL_AVX2_INLINE __m256i StepBlock(const VecCell& v, __m256i gx, __m256i acc, __m256i h,
                                      __m256i gate_bias, __m256i update_bias) {
  StepGroup<kGate, kUpdate, kFirst, 1>(v, &gx, &acc, &h, gate_bias, update_bias);
  return h;
}

RNNPOOL_AVX2_INLINE __m256i Load8(const int32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
RNNPOOL_AVX2_INLINE void Store8(int32_t* p, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}
// 8 int16 -> 8 int32 lanes.
RNNPOOL_AVX2_INLINE __m256i Load8FromInt16(const int16_t* p) {
  return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// 8 int32 lanes (each within int16) -> [x0..x7] as int16 in both 128-bit halves.
RNNPOOL_AVX2_INLINE __m256i PackInt16Twice(__m256i x) {
  // PACKSSDW per half gives qwords (x0..3, x0..3, x4..7, x4..7); keep 0, 2, 0, 2.
  return _mm256_permute4x64_epi64(_mm256_packs_epi32(x, x), 0x88);
}
RNNPOOL_AVX2_INLINE void Store8AsInt16(int16_t* p, __m256i x) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(PackInt16Twice(x)));
}

// The int16 pairs (M[j][o], M[j+1][o]) of 8 columns o, from 8 bytes of row j
// and 8 bytes of row j+1: VPMADDWD's right operand.
RNNPOOL_AVX2_INLINE __m256i RowPairs(const int8_t* row, const int8_t* next_row) {
  const __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row));
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(next_row));
  return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));
}

// (v[j], v[j+1]) as one int32 word in every lane.
RNNPOOL_AVX2_INLINE __m256i BroadcastPair(const int16_t* v) {
  int32_t word;
  std::memcpy(&word, v, sizeof(word));
  return _mm256_set1_epi32(word);
}

// sum_j v[j] M[j][o] for the 8 columns o of block `column` (units a multiple
// of 8; any in >= 1).
RNNPOOL_AVX2_INLINE __m256i MatVecBlock(const int16_t* v, int32_t in, const int8_t* m,
                                        int32_t units, int32_t column) {
  const size_t stride = static_cast<size_t>(units);
  const int8_t* row = m + column;
  __m256i a = _mm256_setzero_si256();
  int32_t j = 0;
  for (; j + 2 <= in; j += 2, row += 2 * stride) {
    a = _mm256_add_epi32(a, _mm256_madd_epi16(BroadcastPair(v + j), RowPairs(row, row + stride)));
  }
  if (j < in) {  // odd in: the last row alone
    const __m256i w = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row)));
    a = _mm256_add_epi32(a, _mm256_mullo_epi32(_mm256_set1_epi32(v[j]), w));
  }
  return a;
}

// K sequences of one 8-unit cell together (SweepGroupFn's layout: sequence
// s reads step t at gx + s (gx_stride + t stride_step) + t step_stride, and
// leaves its final state at h_out + 8 s). U (4 row pairs), the biases and the
// states stay in registers for the whole sweep; h @ U is 4 VPMADDWD on a
// state's pairs.
// Sequences first .. first + K - 1 of such a set.
template <Kind kGate, Kind kUpdate, int K>
RNNPOOL_AVX2_INLINE void SweepGroup8(const VecCell& v, const FastCell& c, const int32_t* gx,
                                     ptrdiff_t gx_stride, int32_t first, int32_t steps,
                                     ptrdiff_t step_stride, ptrdiff_t stride_step,
                                     int16_t* h_out) {
  const __m256i gate_bias = Load8(c.gate_bias), update_bias = Load8(c.update_bias);
  const int8_t* u = c.recurrent_kernel;
  const __m256i u01 = RowPairs(u, u + 8), u23 = RowPairs(u + 16, u + 24);
  const __m256i u45 = RowPairs(u + 32, u + 40), u67 = RowPairs(u + 48, u + 56);
  __m256i x[K], acc[K], h[K];
  RNNPOOL_EACH(s, K) x[s] = Load8(gx + (first + s) * gx_stride);
  StepGroup<kGate, kUpdate, true, K>(v, x, acc, h, gate_bias, update_bias);
  for (int32_t t = 1; t < steps; ++t) {
    gx += step_stride;
    gx_stride += stride_step;
    RNNPOOL_EACH(s, K) {
      x[s] = Load8(gx + (first + s) * gx_stride);
      const __m256i pairs = PackInt16Twice(h[s]);  // (h0, h1), (h2, h3), ... per half
      acc[s] = _mm256_add_epi32(
          _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0x00), u01),
                           _mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0x55), u23)),
          _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0xAA), u45),
                           _mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0xFF), u67)));
    }
    StepGroup<kGate, kUpdate, false, K>(v, x, acc, h, gate_bias, update_bias);
  }
  RNNPOOL_EACH(s, K) Store8AsInt16(h_out + 8 * (first + s), h[s]);
}

// SweepGroupFn for an 8-unit cell: groups of up to kMaxGroup sequences.
constexpr int32_t kMaxGroup = 6;
template <Kind kGate, Kind kUpdate>
RNNPOOL_AVX2 void SweepSequencesAvx2(const FastCell& c, const int32_t* gx, ptrdiff_t gx_stride,
                                  int32_t count, int32_t steps, ptrdiff_t step_stride,
                                  ptrdiff_t stride_step, int16_t* h) {
  const VecCell v = MakeVecCell<kGate, kUpdate>(c);
  for (int32_t first = 0; first < count;) {
    // 6, 4, 3, 2 or 1 at a time (5 = 3 + 2).
    const int32_t left = count - first;
    const int32_t group = left >= kMaxGroup ? kMaxGroup : left == 5 ? 3 : left;
    switch (group) {
      case 6:
        SweepGroup8<kGate, kUpdate, 6>(v, c, gx, gx_stride, first, steps, step_stride,
                                       stride_step, h);
        break;
      case 4:
        SweepGroup8<kGate, kUpdate, 4>(v, c, gx, gx_stride, first, steps, step_stride,
                                       stride_step, h);
        break;
      case 3:
        SweepGroup8<kGate, kUpdate, 3>(v, c, gx, gx_stride, first, steps, step_stride,
                                       stride_step, h);
        break;
      case 2:
        SweepGroup8<kGate, kUpdate, 2>(v, c, gx, gx_stride, first, steps, step_stride,
                                       stride_step, h);
        break;
      default:
        SweepGroup8<kGate, kUpdate, 1>(v, c, gx, gx_stride, first, steps, step_stride,
                                       stride_step, h);
        break;
    }
    first += group;
  }
}

// Any multiple of 8 units: each step forms h @ U for every block into acc
// (the old state is read whole before any block is updated), then updates
// the blocks in place.
template <Kind kGate, Kind kUpdate>
RNNPOOL_AVX2 void SweepBlocks(const FastCell& c, int32_t units, const int32_t* gx,
                              int32_t steps, ptrdiff_t step_stride, int16_t* h, int32_t* acc) {
  const VecCell v = MakeVecCell<kGate, kUpdate>(c);
  const __m256i zero = _mm256_setzero_si256();
  for (int32_t o = 0; o < units; o += 8) {
    Store8AsInt16(h + o, StepBlock<kGate, kUpdate, true>(v, Load8(gx + o), zero, zero,
                                                           Load8(c.gate_bias + o),
                                                           Load8(c.update_bias + o)));
  }
  for (int32_t t = 1; t < steps; ++t) {
    gx += step_stride;
    for (int32_t o = 0; o < units; o += 8) {
      Store8(acc + o, MatVecBlock(h, units, c.recurrent_kernel, units, o));
    }
    for (int32_t o = 0; o < units; o += 8) {
      Store8AsInt16(h + o, StepBlock<kGate, kUpdate, false>(
                               v, Load8(gx + o), Load8(acc + o), Load8FromInt16(h + o),
                               Load8(c.gate_bias + o), Load8(c.update_bias + o)));
    }
  }
}

// FastSweepFn (SweepInt8's arguments; the pair storage is not used here).
template <Kind kGate, Kind kUpdate>
RNNPOOL_AVX2 void SweepInt8Avx2(const FastCell& c, const int8_t*, int32_t units,
                                const int32_t* gx, int32_t steps, ptrdiff_t step_stride,
                                int16_t* h, int32_t* acc) {
  if (units == 8) {
    SweepSequencesAvx2<kGate, kUpdate>(c, gx, 0, 1, steps, step_stride, 0, h);
  } else {
    SweepBlocks<kGate, kUpdate>(c, units, gx, steps, step_stride, h, acc);
  }
}

template <Kind kGate>
FastSweepFn SelectSweepAvx2(Kind update) {
  switch (update) {
    case Kind::kTable:
      return SweepInt8Avx2<kGate, Kind::kTable>;
    case Kind::kQuantSigm:
      return SweepInt8Avx2<kGate, Kind::kQuantSigm>;
    case Kind::kQuantTanh:
      return SweepInt8Avx2<kGate, Kind::kQuantTanh>;
    case Kind::kRelu:
      break;
  }
  return SweepInt8Avx2<kGate, Kind::kRelu>;
}

template <Kind kGate>
SweepGroupFn SelectSweepGroupAvx2(Kind update) {
  switch (update) {
    case Kind::kTable:
      return SweepSequencesAvx2<kGate, Kind::kTable>;
    case Kind::kQuantSigm:
      return SweepSequencesAvx2<kGate, Kind::kQuantSigm>;
    case Kind::kQuantTanh:
      return SweepSequencesAvx2<kGate, Kind::kQuantTanh>;
    case Kind::kRelu:
      break;
  }
  return SweepSequencesAvx2<kGate, Kind::kRelu>;
}

}  // namespace

bool CpuHasAvx2() {
  // libgcc's check includes the OS's support for the YMM state (XGETBV).
  return __builtin_cpu_supports("avx2");
}

// As SelectSweep (rnnpool_int8.cc): a relu gate, which validation rejects,
// would run as a table gate.
FastSweepFn SelectSweepAvx2(Kind gate, Kind update) {
  switch (gate) {
    case Kind::kQuantSigm:
      return SelectSweepAvx2<Kind::kQuantSigm>(update);
    case Kind::kQuantTanh:
      return SelectSweepAvx2<Kind::kQuantTanh>(update);
    default:
      return SelectSweepAvx2<Kind::kTable>(update);
  }
}

// As SelectSweepAvx2, for sets of sequences of an 8-unit cell.
SweepGroupFn SelectSweepGroupAvx2(Kind gate, Kind update) {
  switch (gate) {
    case Kind::kQuantSigm:
      return SelectSweepGroupAvx2<Kind::kQuantSigm>(update);
    case Kind::kQuantTanh:
      return SelectSweepGroupAvx2<Kind::kQuantTanh>(update);
    default:
      return SelectSweepGroupAvx2<Kind::kTable>(update);
  }
}

// g = MBQM((x + offset) @ W, M_x) per pixel; x + offset in [-255, 255] is
// int16. Eight channels at a time: one load, their four pairs by VPSHUFD.
RNNPOOL_AVX2 void ProjectPixelsAvx2(const int8_t* v, int32_t count, int32_t in, int32_t offset,
                                    const int8_t* matrix, int32_t units, const FastRequant& m,
                                    int32_t* g) {
  const VecRequant vm = Broadcast(m);
  const size_t stride = static_cast<size_t>(units);
  const __m128i offset16 = _mm_set1_epi16(static_cast<int16_t>(offset));
  for (int32_t p = 0; p < count; ++p, v += in, g += units) {
    for (int32_t o = 0; o < units; o += 8) {
      const int8_t* row = matrix + o;
      __m256i a = _mm256_setzero_si256();
      int32_t j = 0;
      for (; j + 8 <= in; j += 8, row += 8 * stride) {
        const __m128i x = _mm_add_epi16(
            _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v + j))),
            offset16);
        const __m256i pairs = _mm256_broadcastsi128_si256(x);
        const __m256i s01 = _mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0x00),
                                              RowPairs(row, row + stride));
        const __m256i s23 = _mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0x55),
                                              RowPairs(row + 2 * stride, row + 3 * stride));
        const __m256i s45 = _mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0xAA),
                                              RowPairs(row + 4 * stride, row + 5 * stride));
        const __m256i s67 = _mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0xFF),
                                              RowPairs(row + 6 * stride, row + 7 * stride));
        a = _mm256_add_epi32(a, _mm256_add_epi32(_mm256_add_epi32(s01, s23),
                                                 _mm256_add_epi32(s45, s67)));
      }
      for (; j + 2 <= in; j += 2, row += 2 * stride) {
        const uint32_t low = static_cast<uint32_t>(v[j] + offset) & 0xFFFFu;
        const uint32_t high = static_cast<uint32_t>(v[j + 1] + offset) << 16;
        a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_set1_epi32(static_cast<int32_t>(low | high)),
                                                  RowPairs(row, row + stride)));
      }
      if (j < in) {
        const __m256i w =
            _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row)));
        a = _mm256_add_epi32(a, _mm256_mullo_epi32(_mm256_set1_epi32(v[j] + offset), w));
      }
      Store8(g + o, ApplyNarrow(a, vm));
    }
  }
}

// g = MBQM(h @ W, M_x) per RNN1 state.
RNNPOOL_AVX2 void ProjectStatesAvx2(const int16_t* v, int32_t count, int32_t in,
                                    const int8_t* matrix, int32_t units, const FastRequant& m,
                                    int32_t* g) {
  const VecRequant vm = Broadcast(m);
  for (int32_t p = 0; p < count; ++p, v += in, g += units) {
    for (int32_t o = 0; o < units; o += 8) {
      Store8(g + o, ApplyNarrow(MatVecBlock(v, in, matrix, units, o), vm));
    }
  }
}

// ---------------------------------------------------------------------------
// The fused stem convolution (rnnpool_stem.h), int8, eight output channels
// per register. Per block of 8 channels the prepared storage holds their
// multipliers in fast form (narrow, with zp_stem folded into the rounding
// constant), their biases, then the filter as int16 pairs
// (W[c][t], W[c][t+1]) for VPMADDWD against the pixel's window broadcast a
// pair at a time (taps past the last have weight 0). MakeFastRequant checks
// |acc + bias| against each channel's bound, so neither the bias add nor the
// shift saturates and the fast form equals MultiplyByQuantizedMultiplier
// (rnnpool_core_internal.h, (1)); the clamp and the int8 store follow.
// ---------------------------------------------------------------------------
namespace {

struct StemBlock {  // 8 channels; int16 pairs [PairCount][8][2] follow
  int32_t q[8], pre_shift[8], round[8], sign_mask[8], n[8], bias[8];
};

int32_t StemTaps(const StemShape& g) { return g.kernel_h * g.kernel_w * g.in_channels; }
int32_t StemPairs(const StemShape& g) { return (StemTaps(g) + 1) / 2; }
size_t StemBlockBytes(const StemShape& g) {
  return sizeof(StemBlock) + static_cast<size_t>(StemPairs(g)) * 8 * 2 * sizeof(int16_t);
}
int32_t StemBlocks(const StemShape& g) { return (g.out_channels + 7) / 8; }

// Lanes with per-lane multipliers: MBQM in fast form, narrow (ApplyNarrow's
// arithmetic with VPSLLVD / VPSRAVD for the per-channel shifts).
RNNPOOL_AVX2_INLINE __m256i ApplyNarrowPerLane(__m256i x, const StemBlock& b) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q));
  const __m256i half = _mm256_set1_epi64x(int64_t{1} << 31);
  const __m256i shifted =
      _mm256_sllv_epi32(x, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.pre_shift)));
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(shifted, q), half);
  const __m256i odd = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(shifted, 32), _mm256_srli_epi64(q, 32)), half);
  const __m256i t = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  const __m256i sign = _mm256_and_si256(
      _mm256_srai_epi32(t, 31),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.sign_mask)));
  const __m256i rounded = _mm256_add_epi32(
      _mm256_add_epi32(t, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.round))), sign);
  return _mm256_srav_epi32(rounded, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.n)));
}

// Tap pair p's products for a block's 8 channels: the pair's window values
// against the block's 8 int16 weight pairs `w` of that pair.
RNNPOOL_AVX2_INLINE __m256i PairProducts(const int16_t* window, const int16_t* w, int32_t p) {
  return _mm256_madd_epi16(BroadcastPair(window + 2 * p),
                           Load8(reinterpret_cast<const int32_t*>(w + 16 * p)));
}

}  // namespace

size_t StemSimdBytesAvx2(const StemShape& stem) {
  return static_cast<size_t>(StemBlocks(stem)) * StemBlockBytes(stem);
}

bool PrepareStemSimdAvx2(const StemInt8Params& stem, void* storage) {
  const StemShape& g = stem.shape;
  const int32_t taps = StemTaps(g), pairs = StemPairs(g);
  // The largest |x - zp_x| over int8 x (input_offset = -zp_x).
  const int64_t lowest = -128 + int64_t{stem.input_offset};
  const int64_t highest = 127 + int64_t{stem.input_offset};
  const int64_t max_input = -lowest > highest ? -lowest : highest;
  char* base = static_cast<char*>(storage);
  for (int32_t b = 0; b < StemBlocks(g); ++b) {
    StemBlock* block = reinterpret_cast<StemBlock*>(base + b * StemBlockBytes(g));
    int16_t* weights = reinterpret_cast<int16_t*>(block + 1);
    for (int32_t lane = 0; lane < 8; ++lane) {
      const int32_t c = 8 * b + lane;
      FastRequant f{};
      int32_t bias = 0;
      if (c < g.out_channels) {
        const int8_t* w = stem.filter + static_cast<size_t>(c) * taps;
        int64_t weight_sum = 0;
        for (int32_t t = 0; t < taps; ++t) weight_sum += w[t] < 0 ? -w[t] : w[t];
        bias = stem.bias[c];
        const int64_t bound = weight_sum * max_input + (bias < 0 ? -int64_t{bias} : bias);
        if (!MakeFastRequant(Multiplier{stem.multiplier[c], stem.shift[c]}, bound,
                             stem.output_offset, true, &f)) {
          return false;
        }
      }
      block->q[lane] = f.q;
      block->pre_shift[lane] = f.pre_shift;
      block->round[lane] = f.round;
      block->sign_mask[lane] = f.sign_mask;
      block->n[lane] = f.n;
      block->bias[lane] = bias;
      for (int32_t p = 0; p < pairs; ++p) {
        for (int32_t half = 0; half < 2; ++half) {
          const int32_t t = 2 * p + half;
          weights[(p * 8 + lane) * 2 + half] =
              c < g.out_channels && t < taps ? stem.filter[static_cast<size_t>(c) * taps + t] : 0;
        }
      }
    }
  }
  return true;
}

// StemRowInt8's AVX2 form. The window (x - zp_x as int16, 0 outside the
// image, plus one 0 past an odd tap count) is built 8 taps at a time.
RNNPOOL_AVX2 void StemRowInt8Avx2(const StemInt8Params& stem, const int8_t* image, int32_t row,
                                  int8_t* out, void* scratch) {
  const StemShape& g = stem.shape;
  const int32_t y0 = row * g.stride_h - g.pad_top;
  // The kernel rows / columns inside the image (the rest is padding).
  const InsideSpan rows = SpanInside(y0, g.kernel_h, g.in_height);
  const int32_t ky0 = rows.begin, ky1 = rows.end;
  const int32_t pairs = StemPairs(g), blocks = StemBlocks(g);
  const int32_t row_taps = g.kernel_w * g.in_channels;
  const size_t block_bytes = StemBlockBytes(g);
  const char* prepared = static_cast<const char*>(stem.simd);
  int16_t* window = static_cast<int16_t*>(scratch);
  const __m128i offset = _mm_set1_epi16(static_cast<int16_t>(stem.input_offset));
  const __m256i low = _mm256_set1_epi32(stem.activation_min);
  const __m256i high = _mm256_set1_epi32(stem.activation_max);
  window[2 * pairs - 1] = 0;  // the pad tap of an odd count (else rewritten below)
  for (int32_t ox = 0; ox < g.out_width; ++ox) {
    const int32_t x0 = ox * g.stride_w - g.pad_left;
    const InsideSpan cols = SpanInside(x0, g.kernel_w, g.in_width);
    const int32_t kx0 = cols.begin, kx1 = cols.end;
    if (ky0 > 0 || ky1 < g.kernel_h || kx0 > 0 || kx1 < g.kernel_w) {
      for (int32_t t = 0; t < 2 * pairs; ++t) window[t] = 0;
    }
    for (int32_t ky = ky0; ky < ky1; ++ky) {
      const int8_t* pixel =
          image + (static_cast<size_t>(y0 + ky) * g.in_width + x0 + kx0) * g.in_channels;
      int16_t* dst = window + ky * row_taps + kx0 * g.in_channels;
      const int32_t count = (kx1 - kx0) * g.in_channels;
      int32_t i = 0;
      for (; i + 8 <= count; i += 8) {
        const __m128i x =
            _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(pixel + i)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_add_epi16(x, offset));
      }
      for (; i < count; ++i) dst[i] = static_cast<int16_t>(pixel[i] + stem.input_offset);
    }
    int8_t* pixel_out = out + static_cast<size_t>(ox) * g.out_channels;
    for (int32_t b = 0; b < blocks; ++b) {
      const StemBlock& block = *reinterpret_cast<const StemBlock*>(prepared + b * block_bytes);
      const int16_t* w = reinterpret_cast<const int16_t*>(&block + 1);
      __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
      int32_t p = 0;
      for (; p + 2 <= pairs; p += 2) {  // two sums: half the add chain
        acc0 = _mm256_add_epi32(acc0, PairProducts(window, w, p));
        acc1 = _mm256_add_epi32(acc1, PairProducts(window, w, p + 1));
      }
      if (p < pairs) acc0 = _mm256_add_epi32(acc0, PairProducts(window, w, p));
      const __m256i biased = _mm256_add_epi32(_mm256_add_epi32(acc0, acc1), Load8(block.bias));
      const __m256i y = _mm256_min_epi32(_mm256_max_epi32(ApplyNarrowPerLane(biased, block), low),
                                         high);
      const __m128i words = _mm256_castsi256_si128(PackInt16Twice(y));
      const int64_t bytes = _mm_cvtsi128_si64(_mm_packs_epi16(words, words));
      const int32_t lanes = g.out_channels - 8 * b < 8 ? g.out_channels - 8 * b : 8;
      std::memcpy(pixel_out + 8 * b, &bytes, static_cast<size_t>(lanes));
    }
  }
}

}  // namespace internal
}  // namespace rnnpool

#endif  // RNNPOOL_X86_SIMD
