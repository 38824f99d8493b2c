/* RNNPool kernel core, int8 Eval on x86-64 with AVX2: the fast path's
 * sweeps (SweepInt8 of rnnpool_int8.cc) and the input projections, eight
 * units per register. Compiled for every x86-64 host with the functions
 * marked target("avx2") (no global -mavx2: the library still runs on any
 * x86-64); PrepareInt8Plan picks them when the CPU has AVX2 (CpuHasAvx2) and a
 * cell has a multiple of 8 units. Other targets (Cortex-M, TFLM) compile
 * nothing of it (RNNPOOL_X86_SIMD, rnnpool_core_internal.h).
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
 * Integer arithmetic only; no heap, no stack arrays. */
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rnnpool_core.h"
#include "rnnpool_core_internal.h"

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

// Spec 4.3 for 8 units (StepUnitsOnePass of rnnpool_int8.cc): gx, acc = h @ U
// (unused when kFirst), h the state (int32 lanes; 0 when kFirst), the biases;
// returns the next state, sat16, in int32 lanes.
template <Kind kGate, Kind kUpdate, bool kFirst>
RNNPOOL_AVX2_INLINE __m256i StepBlock(const VecCell& v, __m256i gx, __m256i acc, __m256i h,
                                      __m256i gate_bias, __m256i update_bias) {
  const __m256i p = kFirst ? gx : _mm256_add_epi32(gx, ApplyNarrow(acc, v.recurrent));
  const __m256i z =
      Activate<kGate>(Sat16(_mm256_add_epi32(p, gate_bias)), v.gate_values, v.gate);
  const __m256i u =
      Activate<kUpdate>(Sat16(_mm256_add_epi32(p, update_bias)), v.update_values, v.update);
  // (3): coef = (coef_bias - zeta z) >> 15, in [0, 3 * 2^14].
  const __m256i coef =
      _mm256_srai_epi32(_mm256_sub_epi32(v.coef_bias, _mm256_mullo_epi32(v.zeta, z)), 15);
  __m256i next = ApplyWide(_mm256_mullo_epi32(coef, u), v.mc);  // |coef u| < 2^31
  if (!kFirst) {
    const __m256i zh = _mm256_mullo_epi32(z, h);  // |z h| <= 2^30
    // RDBPOT(z h, 15) = (z h + 2^14 + [z h < 0] (-1)) >> 15.
    next = _mm256_add_epi32(
        next, _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(zh, _mm256_set1_epi32(1 << 14)),
                                                 _mm256_srai_epi32(zh, 31)),
                                15));
  }
  return Sat16(next);
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

// One cell of 8 units: U (4 row pairs), the biases and the state stay in
// registers for the whole sequence; h @ U is 4 VPMADDWD on the state's pairs.
template <Kind kGate, Kind kUpdate>
RNNPOOL_AVX2 void SweepBlock8(const FastCell& c, const int32_t* gx, int32_t steps,
                              ptrdiff_t step_stride, int16_t* h_out) {
  const VecCell v = MakeVecCell<kGate, kUpdate>(c);
  const __m256i gate_bias = Load8(c.gate_bias), update_bias = Load8(c.update_bias);
  const int8_t* u = c.recurrent_kernel;
  const __m256i u01 = RowPairs(u, u + 8), u23 = RowPairs(u + 16, u + 24);
  const __m256i u45 = RowPairs(u + 32, u + 40), u67 = RowPairs(u + 48, u + 56);
  const __m256i zero = _mm256_setzero_si256();
  __m256i h = StepBlock<kGate, kUpdate, true>(v, Load8(gx), zero, zero, gate_bias, update_bias);
  for (int32_t t = 1; t < steps; ++t) {
    gx += step_stride;
    const __m256i pairs = PackInt16Twice(h);  // (h0, h1), (h2, h3), ... per half
    const __m256i acc = _mm256_add_epi32(
        _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0x00), u01),
                         _mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0x55), u23)),
        _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0xAA), u45),
                         _mm256_madd_epi16(_mm256_shuffle_epi32(pairs, 0xFF), u67)));
    h = StepBlock<kGate, kUpdate, false>(v, Load8(gx), acc, h, gate_bias, update_bias);
  }
  Store8AsInt16(h_out, h);
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
    SweepBlock8<kGate, kUpdate>(c, gx, steps, step_stride, h);
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

}  // namespace internal
}  // namespace rnnpool

#endif  // RNNPOOL_X86_SIMD
