/* RNNPool kernel core, Prepare time: validation, output geometry, scratch
 * sizes, multipliers and the int8 plan (see rnnpool_core_internal.h). The
 * only file of the core with floating point (QuantizeMultiplier, double). */
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <new>

#include "rnnpool_core.h"
#include "rnnpool_core_internal.h"

namespace rnnpool {
namespace internal {

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

bool MultiplierOk(const Multiplier& m) {
  if (m.shift < -31 || m.shift > 30) return false;
  return m.q == 0 || m.q >= (int32_t{1} << 30);  // q < 2^31 by type
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
  if (n > 30) return false;
  // (Products, not shifts: the offset may be negative.)
  const int64_t round =
      n > 0 ? (int64_t{1} << (n - 1)) + int64_t{offset} * (int64_t{1} << n) : offset;
  const int64_t largest = max_abs_input << left;  // |t| <= largest
  if (largest + round + 1 > INT32_MAX || -largest + round - 1 < INT32_MIN) return false;
  out->q = m.q;
  out->pre_shift = pre_shift;
  out->round = static_cast<int32_t>(round);
  out->sign_mask = n > 0 ? -1 : 0;
  out->n = n;
#if !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
  out->multiplier = static_cast<int64_t>(m.q) << left;
  out->nudge = (int64_t{1} << 30) + round * (int64_t{1} << 31);
  out->negative = n > 0 ? -(int64_t{1} << 31) : 0;
  out->total = 31 + n;
#endif
  return true;
}

}  // namespace internal

namespace {

using namespace internal;  // NOLINT: the core's shared internals

#include "rnnpool_tables.inc"

// Activations that requantise their input by an activation multiplier M_a:
// all but relu (sigmoid / tanh to the table's Q3.12, quantSigm / quantTanh to
// Q14 / Q15).
bool HasActivationMultiplier(Activation a) { return a != Activation::kRelu; }

// Largest |MBQM(x, m)| over |x| <= max_abs_input (an upper bound), Prepare time.
int64_t RequantBound(int64_t max_abs_input, const Multiplier& m) {
  const int32_t left = m.shift > 0 ? m.shift : 0;
  const int32_t n = m.shift > 0 ? 0 : -m.shift;
  const int64_t shifted = max_abs_input > (int64_t{1} << 31) >> left ? int64_t{1} << 31
                                                                      : max_abs_input << left;
  return ((((shifted * m.q) >> 31) + 1) >> n) + 1;
}

// base (2) of interval i of table t, and its d.
constexpr int32_t InterpolationSlope(const int16_t (&t)[kTableSize], int32_t i) {
  return t[i + 1] - t[i];
}
constexpr int32_t InterpolationBase(const int16_t (&t)[kTableSize], int32_t i) {
  const int32_t d = InterpolationSlope(t, i);
  return 128 * t[i] + 64 - (d < 0 ? 1 : 0) - 128 * i * d;
}

constexpr InterpolationTable MakeInterpolationTable(const int16_t (&t)[kTableSize]) {
  InterpolationTable table{};
  for (int32_t i = 0; i + 1 < kTableSize; ++i) {
#if RNNPOOL_ARM_DSP
    table.entry[i][0] = InterpolationBase(t, i) + 32768 * InterpolationSlope(t, i);  // (7)
    table.entry[i][1] = InterpolationSlope(t, i);
#else
    table.slope[i] = InterpolationSlope(t, i);
    table.base[i] = InterpolationBase(t, i);
#endif
  }
  return table;
}

// True if base + d o stays in int32 for every o of its interval, and so does
// base' = base + 32768 d (checked at compile time for the builtin tables; an
// overflow in MakeInterpolationTable itself would not compile either).
constexpr bool InterpolationFitsInt32(const int16_t (&t)[kTableSize]) {
  for (int32_t i = 0; i + 1 < kTableSize; ++i) {
    const int64_t base = InterpolationBase(t, i), d = InterpolationSlope(t, i);
    for (const int64_t o : {int64_t{128} * i, int64_t{128} * i + 127, int64_t{32768}}) {
      const int64_t v = base + d * o;
      if (v < INT32_MIN || v > INT32_MAX) return false;
    }
  }
  return true;
}

constexpr InterpolationTable kSigmoidInterpolation = MakeInterpolationTable(kSigmoidTable);
constexpr InterpolationTable kTanhInterpolation = MakeInterpolationTable(kTanhTable);
static_assert(InterpolationFitsInt32(kSigmoidTable) && InterpolationFitsInt32(kTanhTable),
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

// The offset folded into an activation's M_a: table activations index with
// t + 32768, quantSigm adds 2^14 (spec 4.4); quantTanh, relu: none.
int32_t ActivationOffset(Kind kind) {
  return kind == Kind::kTable ? 32768 : (kind == Kind::kQuantSigm ? kOneQ14 : 0);
}

// The builtin int16 table an interpolation table was made from.
const int16_t* ValuesOf(const InterpolationTable* interpolation) {
  if (interpolation == &kSigmoidInterpolation) return kSigmoidTable;
  if (interpolation == &kTanhInterpolation) return kTanhTable;
  return nullptr;
}

bool MakeFastActivation(Kind kind, const int16_t* table, const Multiplier& m,
                        const InterpolationTable** interpolation, const int16_t** values,
                        FastRequant* requant) {
  *interpolation = nullptr;
  *values = nullptr;
  *requant = FastRequant{};
  if (kind == Kind::kRelu) return true;
  if (kind == Kind::kTable) {
    *interpolation = FindInterpolationTable(table);
    if (*interpolation == nullptr) return false;
    *values = ValuesOf(*interpolation);
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
  const int16_t* gate_values = nullptr;
  const int16_t* update_values = nullptr;
  const bool fast =
      MakeFastRequant(cell.recurrent_multiplier, max_acc, 0, true, &c->recurrent) &&
      MakeFastRequant(cell.update_multiplier, max_coef_c, 0, false, &c->update) &&
      MakeFastActivation(gate, cell.gate_table, cell.gate_activation_multiplier,
                         &c->gate_table, &gate_values, &c->gate_activation) &&
      MakeFastActivation(update, cell.update_table, cell.update_activation_multiplier,
                         &c->update_table, &update_values, &c->update_activation);
#if RNNPOOL_X86_SIMD
  c->gate_values = gate_values;
  c->update_values = update_values;
#endif
  return fast;
}

void MakeProjectionRequant(const Multiplier& m, int64_t max_abs_input, ProjectionRequant* r) {
  r->fast = MakeFastRequant(m, max_abs_input, 0, true, &r->fast_form);
  r->generic = MakeRequant(m);
}

#if RNNPOOL_ARM_DSP
// ---------------------------------------------------------------------------
// The DSP path's plan (rnnpool_core_internal.h (5), (6), (7)).
// ---------------------------------------------------------------------------
inline int32_t LeftOf(const Multiplier& m) { return m.shift > 0 ? m.shift : 0; }
inline int32_t RightOf(const Multiplier& m) { return m.shift > 0 ? 0 : -m.shift; }

// (5) for m; the caller bounds |x'| below 2^31. False for q = 2^30 with n >= 1.
bool MakeDspRequant(const Multiplier& m, DspRequant* r) {
  const int32_t n = RightOf(m);
  if (n > 0 && m.q == (int32_t{1} << 30)) return false;
  r->q = m.q;
  r->round = n > 0 ? int32_t{1} << (n - 1) : 0;
  r->sign_mask = n > 0 ? -1 : 0;
  r->n = n;
  return true;
}

// (6) for an activation's M_a (nothing for relu).
bool MakeDspActivation(Kind kind, const Multiplier& m, DspActivation* a) {
  *a = DspActivation{};
  if (kind == Kind::kRelu) return true;
  const int32_t left = LeftOf(m), n = RightOf(m);
  const int32_t shift = 15 + n - left;
  if (left > 14 || shift > 30 || (n > 0 && m.q == (int32_t{1} << 30))) return false;
  a->q = m.q;
  a->bias = (int32_t{1} << (14 - left)) + (n > 0 ? int32_t{1} << (14 + n) : 0);
  a->sign_mask = n > 0 ? int32_t{1} << 15 : 0;
  a->shift = shift;
  return true;
}

// The smallest gate value z a gate family gives (for the bound of coef).
int32_t SmallestGate(Kind kind, const int16_t* table) {
  if (kind == Kind::kQuantSigm) return 0;
  if (kind != Kind::kTable) return INT16_MIN;
  int32_t smallest = INT16_MAX;
  for (int32_t i = 0; i < kTableSize; ++i) smallest = table[i] < smallest ? table[i] : smallest;
  return smallest;
}

// Bump allocation in the plan's pair storage (byte offsets, 4-aligned).
struct PairStorage {
  int8_t* base;
  size_t used;
  int32_t Take(size_t bytes) {  // -1 if it does not fit
    if (base == nullptr || used + bytes > kInt8PlanPairBytes) return -1;
    const size_t offset = used;
    used += bytes;
    return static_cast<int32_t>(offset);
  }
  void Put(int32_t offset, size_t index, uint32_t word) {
    std::memcpy(base + offset + 4 * index, &word, sizeof(word));
  }
};

inline uint32_t Int16Pair(int32_t low, int32_t high) {
  return (static_cast<uint32_t>(low) & 0xFFFFu) | (static_cast<uint32_t>(high) << 16);
}

// A matrix M [in][units] times 2^pre in the DSP path's column form
// (rnnpool_core_internal.h ChunkShape): per output o, word i holds the int16
// pair (M[j0][o], M[j1][o]) of the inputs the kernel pairs in that word:
// j0 = 2i, j1 = 2i + 1 for int16 inputs (states); for pixels, whose words of
// four channels SXTB16 splits into lanes (c, c+2), (c+1, c+3), word i of a
// chunk of eight channels holds j0 = 8 (i / 4) + 4 ((i % 4) / 2) + i % 2,
// j1 = j0 + 2. Zeros past `in`. Returns the offset, or -1 if it does not fit.
int32_t PutColumns(const int8_t* m, int32_t in, int32_t units, int32_t pre, bool pixels,
                   const ChunkShape& shape, PairStorage* s) {
  const int32_t words = shape.Words();
  const int32_t offset = s->Take(static_cast<size_t>(units) * words * 4);
  if (offset < 0) return -1;
  for (int32_t o = 0; o < units; ++o) {
    for (int32_t i = 0; i < words; ++i) {
      const int32_t j0 = pixels ? 8 * (i / 4) + 4 * ((i % 4) / 2) + i % 2 : 2 * i;
      const int32_t j1 = pixels ? j0 + 2 : j0 + 1;
      const int32_t low = j0 < in ? m[j0 * units + o] * (1 << pre) : 0;
      const int32_t high = j1 < in ? m[j1 * units + o] * (1 << pre) : 0;
      s->Put(offset, static_cast<size_t>(o) * words + i, Int16Pair(low, high));
    }
  }
  return offset;
}

// The chunks of `in` int16 inputs read as pairs (a last odd pair of three
// becomes a full chunk: one more zero pair).
ChunkShape StateChunks(int32_t in) {
  const int32_t pairs = (in + 1) / 2;
  ChunkShape shape{pairs / 4, false};
  if (pairs % 4 == 3) {
    ++shape.full;
  } else if (pairs % 4 != 0) {
    shape.half = true;
  }
  return shape;
}

// One cell in DSP form; false if the DSP path cannot run it.
bool MakeDspCell(const Int8Cell& cell, const FastCell& fast, Kind gate, Kind update,
                 int32_t units, PairStorage* storage, DspCell* d) {
  // |U| 2^pre must fit int16; h @ U 2^pre fits int32 (MakeFastCell's narrow M_h).
  const int32_t pre = LeftOf(cell.recurrent_multiplier) + 1;
  if (pre > 7 || !MakeDspRequant(cell.recurrent_multiplier, &d->recurrent_requant)) {
    return false;
  }
  if (!MakeDspActivation(gate, cell.gate_activation_multiplier, &d->gate_activation) ||
      !MakeDspActivation(update, cell.update_activation_multiplier, &d->update_activation)) {
    return false;
  }
  // M_c on (coef c) 2^update_pre: n >= 1, |coef c| 2^pre < 2^31.
  d->update_pre = LeftOf(cell.update_multiplier) + 1;
  const int64_t largest_coef =
      (static_cast<int64_t>(fast.coef_bias) -
       static_cast<int64_t>(fast.zeta) * SmallestGate(gate, cell.gate_table)) >> 15;
  if (RightOf(cell.update_multiplier) < 1 ||
      (largest_coef << (15 + d->update_pre)) >= (int64_t{1} << 31) ||
      !MakeDspRequant(cell.update_multiplier, &d->update)) {
    return false;
  }
  d->coef_bias = fast.coef_bias;
  d->zeta = fast.zeta;
  d->gate_table = fast.gate_table != nullptr ? &fast.gate_table->entry[256][0] : nullptr;
  d->update_table = fast.update_table != nullptr ? &fast.update_table->entry[256][0] : nullptr;
  d->recurrent_shape = StateChunks(units);
  d->recurrent = PutColumns(cell.recurrent_kernel, units, units, pre, false, d->recurrent_shape,
                            storage);
  d->biases = storage->Take(static_cast<size_t>(units) * 8);
  if (d->recurrent < 0 || d->biases < 0) return false;
  for (int32_t o = 0; o < units; ++o) {
    storage->Put(d->biases, 2 * static_cast<size_t>(o), static_cast<uint32_t>(cell.gate_bias[o]));
    storage->Put(d->biases, 2 * static_cast<size_t>(o) + 1,
                 static_cast<uint32_t>(cell.update_bias[o]));
  }
  return true;
}

// The DSP projections: onto RNN1 from pixels (k a multiple of 4), onto RNN2
// from RNN1's states; weights -1 where the portable MatVec runs instead.
void MakeDspProjection(const Int8Cell& cell, const ProjectionRequant& m, bool pixels,
                       int32_t in, int32_t units, int32_t zero_point, PairStorage* storage,
                       DspProjection* p) {
  p->weights = -1;
  p->zero_point = -1;
  const int32_t pre = LeftOf(cell.input_multiplier) + 1;
  // Narrow M_x (the accumulator times 2^pre fits int32), |W| 2^pre fits int16,
  // and for pixels the partial sums |sum x W| + |zp colsum(W)| <= k 2^15 2^pre.
  if (!m.fast || pre > 7 || !MakeDspRequant(cell.input_multiplier, &p->requant)) return;
  if (!pixels) {
    p->shape = StateChunks(in);
    p->weights = PutColumns(cell.kernel, in, units, pre, false, p->shape, storage);
    return;
  }
  if (in % 4 != 0 || (static_cast<int64_t>(in) << (15 + pre)) >= (int64_t{1} << 31)) return;
  p->shape = ChunkShape{in / 8, in % 8 == 4};
  const int32_t weights = PutColumns(cell.kernel, in, units, pre, true, p->shape, storage);
  const int32_t sums = storage->Take(static_cast<size_t>(units) * 4);
  if (weights < 0 || sums < 0) return;
  for (int32_t o = 0; o < units; ++o) {
    int32_t sum = 0;
    for (int32_t c = 0; c < in; ++c) sum += cell.kernel[c * units + o];
    storage->Put(sums, static_cast<size_t>(o),
                 static_cast<uint32_t>(-zero_point * sum * (1 << pre)));
  }
  p->weights = weights;
  p->zero_point = sums;
}
#endif  // RNNPOOL_ARM_DSP

}  // namespace

namespace internal {

void MakeInt8Plan(const RnnPoolInt8Params& params, Int8Plan* plan, int8_t* pairs,
                  bool allow_simd) {
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
#if RNNPOOL_ARM_DSP
  // The DSP path's cells first (they need the pair storage), then the
  // projections in what is left.
  PairStorage storage{pairs, 0};
  plan->fast = plan->fast &&
               MakeDspCell(params.rnn1, plan->cells.fast[0], plan->gate, plan->update,
                           s.rnn1_units, &storage, &plan->dsp[0]) &&
               MakeDspCell(params.rnn2, plan->cells.fast[1], plan->gate, plan->update,
                           s.rnn2_units, &storage, &plan->dsp[1]);
  if (!plan->fast) storage.used = 0;
#endif
  if (plan->fast) {
#if RNNPOOL_ARM_DSP
    const int32_t units[2] = {s.rnn1_units, s.rnn2_units};
    for (int32_t i = 0; i < 2; ++i) {
      DspCell& cell = plan->dsp[i];
      const bool rounds =
          cell.gate_activation.sign_mask != 0 || cell.update_activation.sign_mask != 0;
      cell.activate = SelectActivateDsp(plan->gate, plan->update, rounds);
      // Without the corrections (n = 0: shift <= 15), quantSigm's +2^14 goes
      // into the bias of (6), still below 2^30.
      if (!rounds && plan->gate == Kind::kQuantSigm) {
        cell.gate_activation.bias += int32_t{1} << (14 + cell.gate_activation.shift);
      }
      if (!rounds && plan->update == Kind::kQuantSigm) {
        cell.update_activation.bias += int32_t{1} << (14 + cell.update_activation.shift);
      }
      cell.pre_activate = SelectPreActivateDsp(
          cell.recurrent_shape.full == 1 && !cell.recurrent_shape.half && units[i] % 2 == 0,
          cell.recurrent_requant.n > 0);
    }
    plan->fast_sweep[0] = plan->fast_sweep[1] = nullptr;
#else
    plan->fast_sweep[0] = plan->fast_sweep[1] = SelectSweep(plan->gate, plan->update);
#endif
  } else {
    plan->fast_sweep[0] = plan->fast_sweep[1] = nullptr;
    MakeCellCtx(params.rnn1, &plan->cells.generic[0]);
    MakeCellCtx(params.rnn2, &plan->cells.generic[1]);
  }
  MakeProjectionRequant(params.rnn1.input_multiplier, max_acc1, &plan->mx1);
  MakeProjectionRequant(params.rnn2.input_multiplier, max_acc2, &plan->mx2);
  plan->my = MakeRequant(params.output_multiplier);
  const int32_t h1 = s.rnn1_units, h2 = s.rnn2_units;
  // AVX2 stages (x86-64 with AVX2): the fast path's sweeps of cells with a
  // multiple of 8 units, and projections in fast form onto 8 k units.
  plan->simd_project1 = nullptr;
  plan->simd_project2 = nullptr;
  plan->simd_sweep_group[0] = plan->simd_sweep_group[1] = nullptr;
  plan->simd_stages = 0;
#if RNNPOOL_X86_SIMD
  if (allow_simd && CpuHasAvx2()) {
    const int32_t units[2] = {s.rnn1_units, s.rnn2_units};
    for (int32_t cell = 0; cell < 2; ++cell) {
      if (plan->fast && units[cell] % 8 == 0) {
        plan->fast_sweep[cell] = SelectSweepAvx2(plan->gate, plan->update);
        if (units[cell] == 8) {
          plan->simd_sweep_group[cell] = SelectSweepGroupAvx2(plan->gate, plan->update);
        }
        plan->simd_stages |= cell == 0 ? kInt8SimdRnn1Sweep : kInt8SimdRnn2Sweep;
      }
    }
    if (plan->mx1.fast && h1 % 8 == 0) {
      plan->simd_project1 = ProjectPixelsAvx2;
      plan->simd_stages |= kInt8SimdRnn1Projection;
    }
    if (plan->mx2.fast && h2 % 8 == 0) {
      plan->simd_project2 = ProjectStatesAvx2;
      plan->simd_stages |= kInt8SimdRnn2Projection;
    }
  }
#else
  (void)allow_simd;
#endif
#if RNNPOOL_ARM_DSP
  MakeDspProjection(params.rnn1, plan->mx1, true, s.in_channels, h1, params.input_zero_point,
                    &storage, &plan->dsp_proj[0]);
  MakeDspProjection(params.rnn2, plan->mx2, false, h1, h2, 0, &storage, &plan->dsp_proj[1]);
  // M_y on a state h: |h| 2^(left+1) <= 2^31 for left <= 15.
  plan->output_pre = LeftOf(params.output_multiplier) + 1;
  plan->dsp_output = plan->output_pre <= 16 && MakeDspRequant(params.output_multiplier,
                                                              &plan->output);
#else
  (void)pairs;
  (void)h1;  // (used by the SIMD stages only)
  (void)h2;
#endif
}

}  // namespace internal

bool Int8FastPathApplies(const RnnPoolInt8Params& params) {
  RnnPoolInt8Plan plan;  // with its pair storage, which the DSP path needs
  return PrepareInt8Plan(params, &plan) == Status::kOk && PlanOf(plan).fast;
}

Status PrepareInt8Plan(const RnnPoolInt8Params& params, const Int8PlanOptions& options,
                       RnnPoolInt8Plan* plan) {
  const Status status = ValidateInt8Params(params);
  if (status != Status::kOk) return status;
  MakeInt8Plan(params, new (plan->storage) Int8Plan,
               reinterpret_cast<int8_t*>(plan->storage + kPairStorageOffset),
               options.allow_simd);
  return Status::kOk;
}

Status PrepareInt8Plan(const RnnPoolInt8Params& params, RnnPoolInt8Plan* plan) {
  return PrepareInt8Plan(params, Int8PlanOptions(), plan);
}

bool Int8PlanIsFast(const RnnPoolInt8Plan& plan) { return PlanOf(plan).fast; }

const RnnPoolShape& Int8PlanShape(const RnnPoolInt8Plan& plan) {
  return PlanOf(plan).params.shape;
}

uint32_t Int8PlanSimdStages(const RnnPoolInt8Plan& plan) { return PlanOf(plan).simd_stages; }

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
