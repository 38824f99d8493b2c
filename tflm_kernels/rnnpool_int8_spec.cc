/* RNNPool kernel core, int8 spec transcription: docs/int8_rnnpool.md's
 * operations one by one (the generic path, taken when the fast path's
 * preconditions fail; ActivationInt16). Integer arithmetic only. */
#include <cstddef>
#include <cstdint>

#include "rnnpool_core.h"
#include "rnnpool_core_internal.h"

namespace rnnpool {
namespace internal {
namespace {

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
}  // namespace

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

void SweepInt8Spec(const Int8CellCtx& c, Kind gate, Kind update, int32_t units,
                   const int32_t* gx, int32_t steps, ptrdiff_t step_stride, int16_t* h,
                   int32_t* acc) {
  for (int32_t t = 0; t < steps; ++t, gx += step_stride) {
    if (t > 0) MatVec<int32_t>(h, units, 0, c.recurrent_kernel, units, acc);  // |acc| <= 2^30
    for (int32_t o = 0; o < units; ++o) {
      h[o] = StepUnit(c, gate, update, o, gx[o], t == 0 ? 0 : acc[o], t == 0 ? 0 : h[o]);
    }
  }
}

}  // namespace internal

// Spec 4.4, in place (the generic path's Activate<>).
Status ActivationInt16(Activation activation, const int16_t* table,
                       const Multiplier& multiplier, int16_t* values, int32_t n) {
  if (!internal::IsKnownActivation(activation)) return Status::kBadActivation;
  if ((internal::IsTableActivation(activation) && table == nullptr) ||
      (values == nullptr && n > 0)) {
    return Status::kNullPointer;
  }
  if (activation != Activation::kRelu && !internal::MultiplierOk(multiplier)) {
    return Status::kBadMultiplier;
  }
  const detail::Requant m = detail::MakeRequant(multiplier);
  const internal::Kind kind = internal::KindOf(activation);
  for (int32_t i = 0; i < n; ++i) {
    values[i] = static_cast<int16_t>(internal::ActivateAny(kind, values[i], table, m));
  }
  return Status::kOk;
}

}  // namespace rnnpool
